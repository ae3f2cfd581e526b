"""RSS 2.0 (ISO-8859-1 préfecture feed) and Atom (road bulletins) through alerts.ingest.parse."""

import pathlib
from datetime import datetime, timezone

import pytest

from alerts.domain import Area, MsgType, Road
from alerts.ingest import ParseError, SourceSpec, parse

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"


def spec(kind="rss", **options):
    return SourceSpec(name="pref41", kind=kind, url="file:unused", options=options)


def test_iso_8859_1_rss_keeps_accents_and_maps_fields():
    items = parse(spec(), (DATA / "prefecture41_rss.xml").read_bytes(), "application/rss+xml")
    assert [i.external_id for i in items] == [
        "prefecture41-actu-2013-0142",
        "https://www.loir-et-cher.gouv.fr/Actualites/Vigilance-orange-neige-verglas",
        "https://www.loir-et-cher.gouv.fr/Actualites/Transports-scolaires-suspendus",  # no guid: the link
    ]
    first = items[0]
    assert first.source == "pref41"
    assert first.title.startswith("Épisode neigeux : interdiction de circulation des poids lourds")
    assert "arrêté préfectoral" in first.text and "<p>" not in first.text and "7,5 tonnes" in first.text
    assert first.sent == datetime(2013, 1, 20, 7, 45, tzinfo=timezone.utc)
    assert first.roads == (Road("A", "10"), Road("N", "10"), Road("D", "957"))
    assert first.areas == (Area("departement", "41"),)  # from the category "departement:41"
    assert first.link.endswith("Episode-neigeux-interdiction-poids-lourds")
    assert first.msg_type is MsgType.ALERT and first.language == "fr"
    assert "<guid" in first.raw and "prefecture41-actu-2013-0142" in first.raw
    second = items[1]
    assert second.areas == (Area("commune", "41018"),)
    assert second.roads == ()  # "À 10 km", "D'abord", "à la sortie" are not roads
    assert "Météo-France" in second.text
    assert items[2].roads == () and items[2].areas == ()  # "41000 Blois" is a postcode


def test_version_is_stable_for_same_content_and_changes_with_it():
    body = (DATA / "prefecture41_rss.xml").read_bytes()
    a = parse(spec(), body)
    b = parse(spec(), body)
    assert [i.version for i in a] == [i.version for i in b]
    changed = parse(spec(), body.replace(b"suspendus lundi sur", b"suspendus mardi sur"))
    assert changed[2].version != a[2].version and changed[0].version == a[0].version


def test_configured_departement_becomes_an_area():
    items = parse(spec(departement="41"), (DATA / "prefecture41_rss.xml").read_bytes())
    assert items[2].areas == (Area("departement", "41"),)
    assert items[1].areas == (Area("departement", "41"), Area("commune", "41018"))


def test_atom_entries():
    items = parse(spec("atom"), (DATA / "cd28_atom.xml").read_bytes(), "application/atom+xml")
    first, second = items
    assert first.external_id == "tag:eurelien.fr,2013:info-routes/2013-01-20-0007"
    assert first.sent == datetime(2013, 1, 20, 6, 30, tzinfo=timezone.utc)  # published
    assert first.version == "2013-01-20T09:00:00+00:00"  # updated
    assert first.text == "Neige tassée sur la RD939 et la route départementale 921. Salage en cours."
    assert first.roads == (Road("D", "939"), Road("D", "921"))
    assert first.areas == (Area("departement", "28"),)
    assert second.sent == datetime(2013, 1, 20, 5, 15, tzinfo=timezone.utc)  # no published: updated
    assert second.roads == (Road("N", "154"), Road("D", "910"), Road("A", "11"))
    assert "engins" in second.text and "<p>" not in second.text


def test_entry_without_id_or_link_gets_a_hash_id():
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>RD 957 fermee</title><pubDate>Sun, 20 Jan 2013 08:45:00 +0100</pubDate></item></channel></rss>"""
    (item,) = parse(spec(), body)
    assert item.external_id.startswith("sha:") and item.roads == (Road("D", "957"),)
    assert parse(spec(), body)[0].external_id == item.external_id


def test_malformed_feed_still_read_when_entries_survive():
    body = b"""<rss version="2.0"><channel><title>t</title><item><guid>x1</guid><title>RN10 & A10</title>
    <description>ok</description></item></channel>"""  # unescaped & and truncated
    items = parse(spec(), body)
    assert [i.external_id for i in items] == ["x1"]
    assert '"guid"' in items[0].raw or "x1" in items[0].raw  # JSON fallback for raw


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not a feed at all",
        b"<html><body>Erreur 500</body></html>",
        b"<?xml version='1.0'?><rss><channel><item><title>unterminated",
    ],
)
def test_unreadable_feed_raises_parse_error_naming_the_source(body):
    with pytest.raises(ParseError) as info:
        parse(spec(), body)
    assert "pref41" in str(info.value)


def test_empty_but_valid_feed_gives_no_items():
    body = b"<?xml version='1.0'?><rss version='2.0'><channel><title>Rien</title></channel></rss>"
    assert parse(spec(), body) == []
