"""Territory resolution: areas, INSEE codes, EMMA_ID, names in text, unambiguous roads."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.domain import Area, Item, Road
from rules.territories import Territories, Territory, departement_of, emma_to_departement, load_territories

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "loir-et-cher"


@pytest.fixture(scope="module")
def territories() -> Territories:
    return load_territories(EXAMPLES / "territories.yaml")


def resolve(territories: Territories, text: str = "", *areas: Area, roads: tuple[Road, ...] = ()) -> tuple[str, ...]:
    return territories.resolve(Item(source="s", external_id="1", text=text, areas=areas, roads=roads))


def test_example_file(territories):
    assert territories.codes() == ("41", "28")
    assert territories.by_code["41"].hashtag == "#route41"
    assert territories.by_code["41"].communes["41018"] == "Blois"
    assert territories.by_code["28"].communes["28088"] == "Châteaudun"


@pytest.mark.parametrize(
    "area, expected",
    [
        (Area("departement", "41"), ("41",)),
        (Area("departement", "45"), ()),
        (Area("commune", "41269"), ("41",)),  # Vendôme, listed
        (Area("commune", "41999"), ("41",)),  # unlisted: by its first two characters
        (Area("commune", "28134"), ("28",)),  # Dreux
        (Area("commune", "45234"), ()),
        (Area("NUTS3", "FRB05"), ("41",)),
        (Area("NUTS3", "FR242"), ("28",)),
        (Area("EMMA_ID", "FR041"), ()),  # EMMA_IDs are not département numbers
        (Area("EMMA_ID", "FR035"), ()),  # Haute-Savoie
        (Area("region", "24"), ()),
    ],
)
def test_areas(territories, area, expected):
    assert resolve(territories, "", area) == expected


def test_code_helpers():
    assert departement_of("41018") == "41" and departement_of("2A004") == "2A" and departement_of("97105") == "971"
    assert emma_to_departement("FR035") == "74" and emma_to_departement("FR041") is None
    assert emma_to_departement("FR02B") is None and emma_to_departement("DE111") is None


def test_listed_commune_wins_over_prefix():
    # a commune listed under another territory (e.g. a territory grouping communes across a border)
    territories = Territories(
        [
            Territory("41", "Loir-et-Cher", "#route41", {"28088": "Châteaudun"}),
            Territory("28", "Eure-et-Loir", "#route28"),
        ]
    )
    assert resolve(territories, "", Area("commune", "28088")) == ("41",)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Chaussée glissante à VENDOME et à Chartres", ("41", "28")),  # file order, accents ignored
        ("Neige à Châteaudun puis Blois", ("41", "28")),
        ("Routes du loir et cher", ("41",)),
        ("Eure-et-Loir : vigilance", ("28",)),
        ("Les Bloisiens", ()),  # whole words
        ("Romorantin-Lanthenay", ("41",)),
        ("Nogent le Rotrou", ("28",)),
        ("rien à signaler", ()),
    ],
)
def test_names_in_text(territories, text, expected):
    assert resolve(territories, text) == expected


def test_names_only_when_configured():
    territories = Territories([Territory("41", "Loir-et-Cher", "#route41", {"41018": "Blois"}, match_names=False)])
    assert resolve(territories, "Neige à Blois") == ()


def test_roads_only_when_unambiguous(territories):
    # both example territories manage D roads: a bare D957 says nothing
    assert resolve(territories, "", roads=(Road("D", "957"),)) == ()
    single = Territories(
        [
            Territory("41", "Loir-et-Cher", "#route41", road_kinds=frozenset({"D"})),
            Territory("28", "Eure-et-Loir", "#route28", road_refs=frozenset({Road("N", "10")})),
        ]
    )
    assert resolve(single, "", roads=(Road("D", "957"),)) == ("41",)
    assert resolve(single, "", roads=(Road("N", "10"),)) == ("28",)
    assert resolve(single, "", roads=(Road("A", "10"),)) == ()
    # refs in text are read when a territory lists exact refs
    assert resolve(single, "Bouchon sur la RN 10") == ("28",)


def test_hashtags_in_stable_order(territories):
    assert territories.hashtags(["28", "41", "28", "99"]) == ("#route41", "#route28")


# ---------------------------------------------------------------------------------- border communes


@pytest.mark.parametrize(
    "text, area, expected",
    [
        ("", Area("commune", "41075"), ("41", "28")),  # Droué, by its INSEE code
        ("Neige à Droué : la D921 est glissante", None, ("41", "28")),  # by its name
        ("", Area("commune", "28103"), ("41", "28")),  # Cloyes-les-Trois-Rivières, from the other side
        ("Route coupée à CLOYES-LES-TROIS-RIVIERES", None, ("41", "28")),
        ("", Area("commune", "41018"), ("41",)),  # Blois is far from any edge
        ("", Area("commune", "28085"), ("28",)),
    ],
)
def test_border_communes_concern_both_territories(territories, text, area, expected):
    assert resolve(territories, text, *([area] if area else [])) == expected
    assert territories.hashtags(expected) == tuple(f"#route{c}" for c in expected)


def test_border_communes_are_checked(tmp_path):
    from rules.yamlcheck import ValidationFailed

    path = tmp_path / "territories.yaml"
    path.write_text(
        "territories:\n"
        '  - code: "41"\n    name: Loir-et-Cher\n    hashtag: "#route41"\n'
        '    communes: {"41075": Droué}\n'
        '    border_communes:\n      "41075": ["45"]\n      "41018": ["28"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as failed:
        load_territories(path)
    messages = [str(e) for e in failed.value.errors]
    assert any("yaml:8:" in m and "'41018' is not one of this territory's communes" in m for m in messages), messages
    assert any("yaml:7:" in m and "no territory '45' in this file" in m for m in messages), messages
