"""CAP 1.2 alerts (Alert -> Update -> Cancel chain) and MeteoAlarm CAP-in-Atom."""

import pathlib
from datetime import datetime, timedelta, timezone

import pytest

from alerts.domain import Area, Certainty, MsgType, Road, Severity, Urgency
from alerts.ingest import ParseError, SourceSpec, parse

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"
PARIS_WINTER = timezone(timedelta(hours=1))
ALERT_ID = "2.49.0.0.250.0.FR.20130119150000.41.NV.1"
UPDATE_ID = "2.49.0.0.250.0.FR.20130120060000.41.NV.2"


def spec():
    return SourceSpec(name="mf-cap", kind="cap", url="file:unused")


def one(name):
    (item,) = parse(spec(), (DATA / name).read_bytes(), "application/cap+xml")
    return item


def test_alert_prefers_the_french_info_block():
    item = one("cap_41_alert.xml")
    assert item.source == "mf-cap" and item.external_id == ALERT_ID
    assert item.version == "2013-01-19T16:00:00+01:00"
    assert item.sent == datetime(2013, 1, 19, 16, 0, tzinfo=PARIS_WINTER)
    assert item.msg_type is MsgType.ALERT and item.references == ()
    assert item.event == "neige-verglas" and item.category == "Met" and item.language == "fr-FR"
    assert item.title == "Vigilance orange neige-verglas : Loir-et-Cher"
    assert item.text.startswith("Des chutes de neige de 5 à 10 cm")
    assert (item.severity, item.urgency, item.certainty) == (Severity.SEVERE, Urgency.FUTURE, Certainty.LIKELY)
    assert item.onset == datetime(2013, 1, 19, 22, 0, tzinfo=PARIS_WINTER)
    assert item.expires == datetime(2013, 1, 20, 16, 0, tzinfo=PARIS_WINTER)
    assert item.areas == (
        Area("NUTS3", "FRB05"),
        Area("departement", "41"),
        Area("NUTS3", "FR245"),
        Area("commune", "41018"),
    )
    assert item.roads == (Road("D", "957"), Road("A", "10"))
    assert item.link == "https://vigilance.meteofrance.fr/fr/loir-et-cher"
    assert item.attributes["colour"] == "orange"
    assert item.attributes["awareness_level"] == "3; orange; Severe"
    assert item.attributes["awareness_type"] == "2; snow-ice"
    assert item.attributes["instruction"].startswith("Renseignez-vous")
    assert item.geometry == {
        "type": "Polygon",
        "coordinates": [[[0.6, 47.95], [1.8, 47.95], [1.8, 47.2], [0.6, 47.2], [0.6, 47.95]]],
    }
    assert item.raw.lstrip().startswith("<") and ALERT_ID in item.raw


def test_update_references_the_alert_and_carries_a_circle():
    item = one("cap_41_update.xml")
    assert item.msg_type is MsgType.UPDATE
    assert item.references == (ALERT_ID,)
    assert item.roads == (Road("D", "957"), Road("N", "10"))
    assert item.geometry == {"type": "Point", "coordinates": [1.33, 47.59], "radius_km": 40.0}
    assert item.areas == (Area("NUTS3", "FRB05"), Area("departement", "41"))


def test_cancel_references_both_earlier_messages():
    item = one("cap_41_cancel.xml")
    assert item.msg_type is MsgType.CANCEL and item.withdrawn
    assert item.references == (ALERT_ID, UPDATE_ID)
    assert item.attributes["colour"] == "vert" and item.severity is Severity.MINOR


def test_meteoalarm_atom_entries():
    items = parse(spec(), (DATA / "meteoalarm_france_atom.xml").read_bytes(), "application/atom+xml")
    loir, eure = items
    assert loir.external_id == UPDATE_ID and loir.msg_type is MsgType.UPDATE and loir.references == (ALERT_ID,)
    assert loir.event == "Snow-ice" and loir.severity is Severity.SEVERE and loir.urgency is Urgency.IMMEDIATE
    assert loir.attributes["colour"] == "orange"  # from severity, per MeteoAlarm's awareness levels
    assert loir.areas == (Area("NUTS3", "FRB05"), Area("departement", "41"))
    assert loir.link == "https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/5b1a2c3d-41nv"
    assert loir.expires == datetime(2013, 1, 21, 6, 0, tzinfo=PARIS_WINTER)
    assert eure.areas == (
        Area("EMMA_ID", "FR035"),
        Area("departement", "74"),
        Area("NUTS3", "FR242"),
        Area("departement", "28"),
    )  # as published, even when the codes disagree
    assert eure.attributes["colour"] == "jaune" and eure.msg_type is MsgType.ALERT
    assert "<" in eure.raw and "FR242" in eure.raw


def test_atom_feed_embedding_full_cap_alerts():
    alert = (DATA / "cap_41_alert.xml").read_text(encoding="utf-8").split("?>", 1)[1]
    body = f"""<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title>
      <entry><id>e1</id><title>t</title><content type="application/cap+xml">{alert}</content></entry>
      <entry><id>e2</id><title>broken</title><content type="application/cap+xml">
        <alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><sent>2013-01-19T16:00:00+01:00</sent></alert>
      </content></entry></feed>""".encode()
    items = parse(spec(), body)
    assert [i.external_id for i in items] == [ALERT_ID]  # the alert without identifier is skipped


def test_bad_fields_name_the_field():
    body = (
        (DATA / "cap_41_alert.xml")
        .read_bytes()
        .replace(b"<sent>2013-01-19T16:00:00+01:00</sent>", b"<sent>hier soir</sent>")
    )
    with pytest.raises(ParseError, match=r"mf-cap.*sent.*hier soir"):
        parse(spec(), body)
    body = (DATA / "cap_41_alert.xml").read_bytes().replace(b"47.20,0.60 47.95", b"47.20,zz 47.95")
    with pytest.raises(ParseError, match="polygon"):
        parse(spec(), body)


def test_not_cap():
    with pytest.raises(ParseError, match="expected a CAP"):
        parse(spec(), b"<rss version='2.0'><channel/></rss>")
