"""DATEX II v2 and v3 situation publications."""

import pathlib
from datetime import datetime, timedelta, timezone

import pytest

from alerts.domain import Certainty, MsgType, Road, Severity
from alerts.ingest import ParseError, SourceSpec, parse
from alerts.ingest.datex2 import parse_at

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"
CET = timezone(timedelta(hours=1))
DURING_EPISODE = datetime(2013, 1, 20, 10, 0, tzinfo=CET)


def spec():
    return SourceSpec(name="cd41-datex", kind="datex2", url="file:unused")


def by_id(items):
    return {i.external_id: i for i in items}


def test_v2_records():
    items = by_id(parse_at(spec(), (DATA / "datex2_v2_cd41.xml").read_bytes(), DURING_EPISODE))
    assert list(items) == ["CD41-REC-0012-1", "CD41-REC-0015-1", "CD41-REC-0015-2", "CD41-REC-0015-3"]
    snow = items["CD41-REC-0012-1"]
    assert snow.version == "3" and snow.msg_type is MsgType.UPDATE
    assert snow.sent == datetime(2013, 1, 20, 7, 0, tzinfo=CET)
    assert snow.onset == datetime(2013, 1, 19, 23, 0, tzinfo=CET) and snow.expires is None
    assert snow.roads == (Road("D", "957"),)
    assert snow.event == "neige-verglas" and snow.severity is Severity.SEVERE  # situation overallSeverity high
    assert snow.certainty is Certainty.OBSERVED
    assert snow.title == "Neige sur la chaussée sur la RD 957"  # French, never the record type's name
    assert snow.text == (
        "Neige sur la chaussée sur la RD 957 dans les deux sens.\n"
        "Neige sur la chaussée entre Blois et Vendôme, circulation délicate."
    )  # fr preferred
    assert snow.attributes["record_type"] == "WeatherRelatedRoadConditions"
    assert snow.attributes["detail"] == "snowOnTheRoad" and snow.attributes["direction"] == "both"
    assert 'id="CD41-REC-0012-1"' in snow.raw
    closure = items["CD41-REC-0015-1"]
    assert closure.event == "fermeture" and closure.severity is Severity.EXTREME
    assert closure.msg_type is MsgType.ALERT and closure.roads == (Road("D", "108"), Road("D", "917"))
    assert closure.attributes["direction"] == "northBound"
    ended = items["CD41-REC-0015-2"]  # overallEndTime before now
    assert ended.msg_type is MsgType.CANCEL and ended.severity is Severity.MINOR  # record severity low
    assert ended.expires == datetime(2013, 1, 20, 5, 0, tzinfo=CET)
    assert ended.event == "neige-verglas"  # freezingFog
    suspended = items["CD41-REC-0015-3"]
    assert suspended.msg_type is MsgType.CANCEL and suspended.attributes["validity_status"] == "suspended"


def test_v3_records_hgv_restriction_closure_and_snow():
    items = by_id(parse_at(spec(), (DATA / "datex2_v3_dir.xml").read_bytes(), DURING_EPISODE))
    hgv = items["DIRCE-2013-00457-01"]
    assert hgv.event == "restriction-poids-lourds" and hgv.attributes["hgv"] is True
    assert hgv.roads == (Road("N", "10"),) and hgv.msg_type is MsgType.UPDATE and hgv.version == "2"
    assert hgv.title == "Route fermée aux poids lourds de plus de 7,5 t sur la RN 10"  # not "Route fermée"
    assert hgv.text.startswith(
        "Route fermée aux poids lourds de plus de 7,5 t sur la RN 10 en direction du sud, "
        "jusqu'au 21 janvier 2013 à 18 h 00.\nInterdiction de circuler pour les poids lourds"
    )
    assert hgv.expires == datetime(2013, 1, 21, 18, 0, tzinfo=CET)
    assert (
        hgv.attributes["direction"] == "southBound"
        and hgv.attributes["record_type"] == "RoadOrCarriagewayOrLaneManagement"
    )
    closure = items["DIRCE-2013-00457-02"]
    assert closure.event == "fermeture" and closure.severity is Severity.EXTREME  # record severity wins
    assert closure.roads == (Road("A", "10"),)
    snow = items["DIRCE-2013-00457-03"]
    assert snow.event == "neige-verglas" and snow.attributes["detail"] == "heavySnowfall"
    assert snow.roads == (Road("D", "957"), Road("N", "10")) and snow.certainty is Certainty.LIKELY
    assert snow.sent == datetime(2013, 1, 20, 5, 0, tzinfo=timezone.utc)


def test_parse_uses_the_present_so_an_old_end_time_is_a_cancel():
    items = by_id(parse(spec(), (DATA / "datex2_v3_dir.xml").read_bytes(), "application/xml"))
    assert items["DIRCE-2013-00457-01"].msg_type is MsgType.CANCEL


def test_record_without_id_is_skipped_and_others_kept(caplog):
    body = (DATA / "datex2_v2_cd41.xml").read_bytes().replace(b' id="CD41-REC-0015-1"', b"")
    items = parse_at(spec(), body, DURING_EPISODE)
    assert "CD41-REC-0015-1" not in by_id(items) and len(items) == 3
    assert "cd41-datex" in caplog.text and "'id'" in caplog.text


def test_bad_date_names_record_and_field(caplog):
    body = (
        (DATA / "datex2_v2_cd41.xml")
        .read_bytes()
        .replace(b"<situationRecordVersionTime>2013-01-20T07:00:00+01:00", b"<situationRecordVersionTime>demain")
    )
    items = parse_at(spec(), body, DURING_EPISODE)
    assert len(items) == 3
    assert "CD41-REC-0012-1" in caplog.text and "situationRecordVersionTime" in caplog.text


def test_other_publication_types_are_refused():
    body = b"""<d2LogicalModel xmlns="http://datex2.eu/schema/2/2_0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <payloadPublication xsi:type="MeasuredDataPublication" lang="fr"/></d2LogicalModel>"""
    with pytest.raises(ParseError, match="MeasuredDataPublication"):
        parse(spec(), body)
    with pytest.raises(ParseError, match="not a DATEX II"):
        parse(spec(), b"<rss/>")


def test_v3_inside_a_message_container():
    inner = (DATA / "datex2_v3_dir.xml").read_text(encoding="utf-8").split("?>", 1)[1]
    inner = inner.replace("<sit:situationPublication ", '<payload xsi:type="sit:SituationPublication" ', 1)
    inner = inner.replace("</sit:situationPublication>", "</payload>")
    body = (
        '<messageContainer xmlns="http://datex2.eu/schema/3/messageContainer">' + inner + "</messageContainer>"
    ).encode()
    assert len(parse_at(spec(), body, DURING_EPISODE)) == 3
