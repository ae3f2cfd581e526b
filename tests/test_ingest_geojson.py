"""Road-state open data: GeoJSON FeatureCollection and CSV."""

import json
import pathlib
from datetime import datetime, timedelta, timezone

import pytest

from alerts.domain import Area, MsgType, Road, Severity
from alerts.ingest import ParseError, SourceSpec, parse

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"
CET = timezone(timedelta(hours=1))


def spec(kind="geojson", **options):
    return SourceSpec(name="vh41", kind=kind, url="file:unused", options=options)


def test_geojson_features_with_default_mapping():
    items = parse(spec(), (DATA / "viabilite41.geojson").read_bytes(), "application/geo+json")
    assert [i.external_id for i in items] == ["VH41-0957-01", "VH41-0108-01", "VH41-2020-02", "VH41-0956-01"]
    c3, closed, delicate, normal = items
    assert c3.roads == (Road("D", "957"),) and c3.severity is Severity.SEVERE
    assert c3.areas == (Area("commune", "41269"), Area("departement", "41"))
    assert c3.sent == datetime(2013, 1, 20, 7, 30, tzinfo=CET) and c3.version == "2013-01-20T07:30:00+01:00"
    assert c3.geometry["type"] == "LineString" and c3.geometry["coordinates"][0] == [1.3089, 47.6022]
    assert c3.text.startswith("Neige tassée") and c3.attributes["state"] == "C3"
    assert json.loads(c3.raw)["properties"]["id"] == "VH41-0957-01"
    assert closed.severity is Severity.EXTREME and closed.roads == (Road("D", "108"),)
    assert closed.sent == datetime(2013, 1, 20, 6, 45, tzinfo=CET)  # "20/01/2013 06:45", Paris time
    assert delicate.severity is Severity.MODERATE and delicate.text == ""  # null comment
    assert normal.severity is Severity.MINOR and normal.msg_type is MsgType.CANCEL and normal.geometry is None
    assert c3.msg_type is MsgType.ALERT


def test_custom_mapping_states_and_bare_road_numbers():
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": None,
                "properties": {"gid": 7, "num": "957A", "niv": "orange", "maj": "2013-01-20 07:00", "code": "41018"},
            }
        ],
    }
    options = {
        "mapping": {"id": "gid", "road": "num", "state": "niv", "updated": "maj", "insee": "code"},
        "states": {"orange": "Severe"},
        "departement": "41",
    }
    (item,) = parse(spec(**options), json.dumps(doc).encode())
    assert item.external_id == "7" and item.roads == (Road("D", "957A"),)
    assert item.severity is Severity.SEVERE
    assert item.areas == (Area("departement", "41"), Area("commune", "41018"))
    assert item.sent == datetime(2013, 1, 20, 7, 0, tzinfo=CET)


def test_bad_features_are_skipped_with_their_index(caplog):
    doc = json.loads((DATA / "viabilite41.geojson").read_text(encoding="utf-8"))
    doc["features"][1]["properties"]["date_maj"] = "bientôt"
    doc["features"][2] = ["not", "a", "feature"]
    items = parse(spec(), json.dumps(doc).encode())
    assert [i.external_id for i in items] == ["VH41-0957-01", "VH41-0956-01"]
    assert "feature 2" in caplog.text and "bientôt" in caplog.text and "feature 3" in caplog.text


@pytest.mark.parametrize(
    "body, match",
    [
        (b'{"type": "FeatureCollection", "features": [', "malformed JSON"),
        (b'{"type": "Feature"}', "FeatureCollection"),
        (b'{"type": "FeatureCollection", "features": {}}', "features"),
        (b"\xff\xfe{", "JSON"),
    ],
)
def test_unreadable_documents(body, match):
    with pytest.raises(ParseError, match=match) as info:
        parse(spec(), body, "application/json")
    assert "vh41" in str(info.value)


def test_malformed_json_names_the_line():
    with pytest.raises(ParseError, match="line 3"):
        parse(spec(), b'{"type": "FeatureCollection",\n "features": [\n {,\n]}', "application/json")


def test_csv_in_cp1252_with_semicolons():
    items = parse(spec("csv"), (DATA / "viabilite28.csv").read_bytes(), "text/csv")
    first, bare, cut = items
    assert first.external_id == "VH28-0939-01" and first.roads == (Road("D", "939"),)
    assert first.text == "Neige tassée, salage en cours"  # cp1252 decoded
    assert first.geometry == {"type": "Point", "coordinates": [1.489, 48.4469]}
    assert first.areas == (Area("commune", "28085"), Area("departement", "28"))
    assert first.sent == datetime(2013, 1, 20, 7, 30, tzinfo=CET)
    assert bare.roads == (Road("D", "910"),) and bare.severity is Severity.MODERATE
    assert cut.severity is Severity.EXTREME and cut.geometry is None and "Illiers-Combray" in cut.text
    assert first.raw.startswith("VH28-0939-01;RD939;C3")


def test_geojson_kind_served_as_csv_and_bad_rows(caplog):
    body = (
        "id,route,etat,date_maj\nA1,RD 957,C2,2013-01-20T07:00:00+01:00\nA2,RD 924\n"
        "A3,RD 2152,C3,hier\nA4,N10,C4,2013-01-20T07:05:00+01:00\n"
    ).encode()
    items = parse(spec(), body, "text/csv; charset=utf-8")
    assert [i.external_id for i in items] == ["A1", "A4"]
    assert "line 3" in caplog.text and "line 4" in caplog.text


def test_csv_without_useful_columns():
    with pytest.raises(ParseError, match="line 1"):
        parse(spec("csv"), b"a;b;c\n1;2;3\n")


def test_utf8_bom_before_geojson_without_content_type():
    body = b"\xef\xbb\xbf" + (DATA / "viabilite41.geojson").read_bytes()
    assert [i.external_id for i in parse(spec(), body)][:1] == ["VH41-0957-01"]


def test_road_condition_with_an_unknown_code_reads_as_undetermined():
    """An overallRoadCondition outside Digitraffic's 1-4 is 'état non déterminé', observed as forecast."""
    doc = {
        "messageTimestamp": "2024-01-05T06:00:00Z",
        "roadConditions": [
            {
                "roadId": "00041_001",
                "observation": {"Time": "2024-01-05T05:50:00Z", "overallRoadCondition": 7},
                "forecast": [{"forecastName": "2h", "overallRoadCondition": 9}],
            }
        ],
    }
    [item] = parse(spec(), json.dumps(doc).encode(), "application/json")
    assert item.title == "Route 41 : état non déterminé" and item.severity is Severity.UNKNOWN
    assert item.text.splitlines() == [
        "Observé : état non déterminé, chaussée à ? °C, air à ? °C.",
        "Prévision à 2h : état non déterminé.",
    ]
