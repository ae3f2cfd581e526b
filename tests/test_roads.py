"""Road references in free French text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.domain import Road
from alerts.roads import fold, normalise_road, parse_roads

D957, N10, A10, C12 = Road("D", "957"), Road("N", "10"), Road("A", "10"), Road("C", "12")


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("RD 957", D957),
        ("D957", D957),
        ("RD957", D957),
        ("D 957", D957),
        ("rd957", D957),
        ("d957", D957),
        ("route départementale 957", D957),
        ("Route Departementale 957", D957),
        ("départementale 957", D957),
        ("R.D. 957", D957),
        ("RD n° 957", D957),
        ("RD\u00a0957", D957),
        ("route départementale n°957", D957),
        ("RN10", N10),
        ("N 10", N10),
        ("RN 10", N10),
        ("route nationale 10", N10),
        ("Nationale 10", N10),
        ("A10", A10),
        ("A 10", A10),
        ("autoroute A10", A10),
        ("Autoroute A 10", A10),
        ("autoroute 10", A10),
        ("VC 12", C12),
        ("voie communale 12", C12),
        ("Voie Communale n° 12", C12),
        ("D957A", Road("D", "957A")),
        ("RD 957a", Road("D", "957A")),
        ("D0957", D957),
        ("  RD 2152 ", Road("D", "2152")),
    ],
)
def test_normalise_road_accepts_the_usual_spellings(ref, expected):
    assert normalise_road(ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "41000",
        "A la",
        "D'abord",
        "RD",
        "957",
        "RD 957 et RD 924",
        "CD41",
        "route 957",
        "E5",
        "D957AB",
        "N°10",
        "A10 km 45",
        "AD 957",
    ],
)
def test_normalise_road_refuses_what_is_not_one_reference(ref):
    assert normalise_road(ref) is None


def test_parse_roads_finds_every_reference_in_order_without_duplicates():
    text = (
        "Verglas sur la RD 957 et l'A10 ; la D957 reste délicate, la route nationale 10 est dégagée. "
        "Déviation par la voie communale 12 puis la départementale 2152."
    )
    assert parse_roads(text) == (D957, A10, N10, C12, Road("D", "2152"))


@pytest.mark.parametrize(
    "text",
    [
        "À la sortie de Blois, prudence.",
        "A la demande du préfet, à 10 km de Vendôme, à 10 h.",
        "D'abord, n'oubliez pas : 41000 Blois, 28000 Chartres.",
        "rendez-vous à 9 h, accumulations de 10 cm, 7,5 t",
        "n° 10 de la liste, le CG41 et le CD41 communiquent #route41",
        "a 10 minutes de la gare, d 3 jours",
        "code INSEE 2A004 et 41018",
        "Les 42 engins, 4 h de travail, version 1.0",
        "",
    ],
)
def test_parse_roads_avoids_false_positives(text):
    assert parse_roads(text) == ()


def test_spaced_single_letter_needs_upper_case_but_attached_form_does_not():
    assert parse_roads("sur a 10 puis n 10") == ()
    assert parse_roads("sur A 10 puis N 10 et D 957") == (A10, N10, D957)
    assert parse_roads("sur a10 puis rn10") == (A10, N10)


def test_punctuation_around_references():
    assert parse_roads("(RD957), «A10», N10. Puis D 957A ; RN10/A10") == (D957, A10, N10, Road("D", "957A"))
    assert parse_roads("l'A10 et d'A11") == (A10, Road("A", "11"))
    assert parse_roads("RD 957.5") == ()  # a decimal is not a road


def test_every_kind_round_trips_through_its_label():
    for road in (D957, N10, A10, Road("D", "957A")):
        assert normalise_road(road.label) == road
    assert normalise_road("VC 12") == C12


def test_fold_keeps_positions():
    text = "Départementale À Œuvre ﬁn"
    assert len(fold(text)) == len(text)
    assert fold("Départementale À") == "departementale a"


@given(st.text(max_size=200))
def test_parse_roads_never_fails_and_returns_well_formed_roads(text):
    for road in parse_roads(text):
        assert road.kind in {"D", "N", "A", "C"}
        assert road.number[:1].isdigit()
        prefix = {"D": "RD", "N": "RN", "A": "A", "C": "VC"}[road.kind]
        assert normalise_road(f"{prefix} {road.number}") == road
