"""Details of reading real publications that the shared samples do not all show: localised RSS dates, a
CAP Cancel without <info>, DATEX II sentences with cause and end time, the French date helpers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.domain import MsgType
from alerts.french import date_fr, datetime_fr, without_article
from alerts.ingest import SourceSpec, parse
from alerts.ingest.dates import parse_localised
from alerts.ingest.datex2 import parse_at

UTC = timezone.utc


@pytest.mark.parametrize(
    "written, expected",
    [
        ("lun., 24 déc. 2018 10:00:00 +0100", datetime(2018, 12, 24, 9, 0, tzinfo=UTC)),
        ("Seg, 24 Set 2018 19:42:40 -0300", datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)),
        ("lundi 24 décembre 2018 10h30", datetime(2018, 12, 24, 9, 30, tzinfo=UTC)),  # no zone: Paris
        ("jeu., 1er août 2019 07:05:00 CEST", datetime(2019, 8, 1, 5, 5, tzinfo=UTC)),
        ("ven., 5 juil. 2019 07:05:00 +0200", datetime(2019, 7, 5, 5, 5, tzinfo=UTC)),
        ("martes, 4 de diciembre de 2018 09:00", datetime(2018, 12, 4, 8, 0, tzinfo=UTC)),
        ("gio, 24 ott 2018 19:42:40 +0200", datetime(2018, 10, 24, 17, 42, 40, tzinfo=UTC)),
        ("Qua, 3 Out 2018 08:00:00 GMT", datetime(2018, 10, 3, 8, 0, tzinfo=UTC)),
        ("24/12/2018 10:00", datetime(2018, 12, 24, 9, 0, tzinfo=UTC)),
    ],
)
def test_localised_dates(written, expected):
    assert parse_localised(written) == expected


@pytest.mark.parametrize(
    "written",
    [
        "Wed, 03 Jan 2018 00:41:00 GMT",  # English: feedparser's own handler
        "5 jui 2019",  # juin or juillet: refused rather than guessed
        "32 déc. 2018",
        "demain matin",
        "",
    ],
)
def test_what_is_not_a_localised_date(written):
    assert parse_localised(written) is None


def test_rss_items_get_their_localised_dates():
    body = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Préfecture</title>
      <language>fr</language>
      <item><title>Arrêté poids lourds</title><link>https://p.example/1</link>
        <pubDate>lun., 24 déc. 2018 10:00:00 +0100</pubDate></item>
      <item><title>Trânsito cortado</title><link>https://p.example/2</link>
        <pubDate>Seg, 24 Set 2018 19:42:40 -0300</pubDate></item>
      <item><title>English</title><link>https://p.example/3</link>
        <pubDate>Wed, 03 Jan 2018 00:41:00 GMT</pubDate></item>
    </channel></rss>""".encode()
    items = parse(SourceSpec(name="prefecture", kind="rss", url="file:unused"), body)
    assert [i.sent for i in items] == [
        datetime(2018, 12, 24, 9, 0, tzinfo=UTC),
        datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC),
        datetime(2018, 1, 3, 0, 41, tzinfo=UTC),
    ]


def test_cap_cancel_without_info_still_ends_what_it_references():
    body = b"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>MF-41-3</identifier>
      <sender>vigilance@meteo.fr</sender><sent>2013-01-21T06:00:00+01:00</sent><status>Actual</status>
      <msgType>Cancel</msgType><scope>Public</scope><note>Fin de vigilance</note>
      <references>vigilance@meteo.fr,MF-41-1,2013-01-19T16:00:00+01:00 vigilance@meteo.fr,MF-41-2,2013-01-20T06:00:00+01:00</references>
    </alert>"""
    (item,) = parse(SourceSpec(name="mf", kind="cap", url="file:unused"), body)
    assert item.msg_type is MsgType.CANCEL and item.withdrawn
    assert item.references == ("MF-41-1", "MF-41-2")
    assert item.title == "Fin de l'alerte" and item.text == "Fin de vigilance"
    assert item.authority == "Météo-France"  # from the sender address, as French readers name it
    alert_without_info = body.replace(b"<msgType>Cancel</msgType>", b"<msgType>Alert</msgType>")
    wrapped = b"<alerts xmlns='urn:oasis:names:tc:emergency:cap:1.2'>" + alert_without_info + b"</alerts>"
    assert parse(SourceSpec(name="mf", kind="cap", url="file:unused"), wrapped) == []  # an Alert needs <info>


DATEX_V2 = """<d2LogicalModel xmlns="http://datex2.eu/schema/2/2_0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <payloadPublication xsi:type="SituationPublication" lang="fr">
    <publicationTime>2013-01-20T07:00:00+01:00</publicationTime>
    <publicationCreator><country>fr</country><nationalIdentifier>CD41</nationalIdentifier></publicationCreator>
    <situation id="S1"><situationRecord xsi:type="{type}" id="R1" version="1">
      <situationRecordVersionTime>2013-01-20T07:00:00+01:00</situationRecordVersionTime>
      <validity><validityStatus>active</validityStatus><validityTimeSpecification>
        <overallStartTime>2013-01-20T06:00:00+01:00</overallStartTime>
        <overallEndTime>2013-01-21T18:00:00+01:00</overallEndTime></validityTimeSpecification></validity>
      <cause><causeType>{cause}</causeType></cause>
      <groupOfLocations xsi:type="Linear"><linearWithinLinearElement><linearElement>
        <roadNumber>D957</roadNumber></linearElement><directionBoundOnLinearSection>{direction}</directionBoundOnLinearSection>
      </linearWithinLinearElement></groupOfLocations>
      {detail}
    </situationRecord></situation></payloadPublication></d2LogicalModel>"""


def datex(type_: str, cause: str, direction: str, detail: str):
    body = DATEX_V2.format(type=type_, cause=cause, direction=direction, detail=detail).encode()
    (item,) = parse_at(
        SourceSpec(name="cd41", kind="datex2", url="file:unused"), body, datetime(2013, 1, 20, 10, 0, tzinfo=UTC)
    )
    return item


def test_datex2_sentence_what_road_direction_cause_until():
    item = datex(
        "RoadOrCarriagewayOrLaneManagement",
        "poorWeather",
        "southBound",
        "<roadOrCarriagewayOrLaneManagementType>roadClosed</roadOrCarriagewayOrLaneManagementType>",
    )
    assert item.title == "Route fermée sur la RD 957"
    assert item.text == (
        "Route fermée sur la RD 957 en direction du sud, en raison des conditions météorologiques, "
        "jusqu'au 21 janvier 2013 à 18 h 00."
    )
    assert item.authority == "CD41" and item.attributes["cause"] == "poorWeather"


def test_datex2_unknown_values_fall_back_to_generic_french():
    item = datex(
        "RoadOrCarriagewayOrLaneManagement",
        "somethingNew",
        "sideways",
        "<roadOrCarriagewayOrLaneManagementType>futureValue</roadOrCarriagewayOrLaneManagementType>",
    )
    assert item.title == "Restriction de circulation sur la RD 957"  # the record type's French name
    assert item.text.startswith("Restriction de circulation sur la RD 957, en raison d'un incident,")
    for raw in ("futureValue", "somethingNew", "sideways", "RoadOrCarriagewayOrLaneManagement"):
        assert raw not in item.title + item.text


def test_french_date_helpers():
    assert date_fr(datetime(2026, 12, 1, 12, 0, tzinfo=UTC)) == "1er décembre 2026"
    assert datetime_fr(datetime(2026, 7, 24, 14, 40, 9, tzinfo=UTC)) == "24 juillet 2026 à 16 h 40"
    assert datetime_fr(datetime(2026, 1, 5, 7, 5, tzinfo=timezone(timedelta(hours=1)))) == "5 janvier 2026 à 7 h 05"
    assert without_article("la Préfecture de Loir-et-Cher") == "Préfecture de Loir-et-Cher"
    assert without_article("l'État") == "État" and without_article("Météo-France") == "Météo-France"
