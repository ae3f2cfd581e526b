"""Météo-France vigilance JSON."""

import json
import pathlib
from datetime import datetime, timedelta, timezone

import pytest

from alerts.domain import Area, MsgType, Severity
from alerts.ingest import ParseError, SourceSpec, parse

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"
CET = timezone(timedelta(hours=1))


def spec(**options):
    return SourceSpec(name="mf-vigilance", kind="vigilance", url="file:unused", options=options)


def items_by_id(**options):
    items = parse(spec(**options), (DATA / "vigilance_encours.json").read_bytes(), "application/json")
    return {i.external_id: i for i in items}


def test_one_item_per_departement_and_phenomenon():
    items = items_by_id()
    assert set(items) == {
        "vigilance:41:5",
        "vigilance:41:7",
        "vigilance:41:1",
        "vigilance:28:5",
        "vigilance:28:2",
        "vigilance:2A:5",
        "vigilance:2910:9",
    }  # "FRA" is not a département
    snow = items["vigilance:41:5"]
    assert snow.title == "Vigilance orange neige-verglas (41)"
    assert snow.event == "neige-verglas" and snow.severity is Severity.SEVERE and snow.msg_type is MsgType.ALERT
    assert snow.attributes == {
        "colour": "orange",
        "colour_id": 3,
        "phenomenon": "neige-verglas",
        "phenomenon_id": 5,
        "domain_id": "41",
    }
    assert snow.areas == (Area("departement", "41"),)
    assert snow.sent == datetime(2013, 1, 20, 6, 0, tzinfo=CET)
    assert snow.onset == datetime(2013, 1, 20, 0, 0, tzinfo=CET)
    assert snow.expires == datetime(2013, 1, 21, 0, 0, tzinfo=CET)  # period J, not J1 (rouge)
    assert items["vigilance:41:7"].severity is Severity.MODERATE
    assert items["vigilance:41:7"].title == "Vigilance jaune grand-froid (41)"
    assert items["vigilance:2910:9"].areas == (Area("departement", "29"),)
    assert items["vigilance:2A:5"].areas == (Area("departement", "2A"),)


def test_green_is_a_cancel_of_the_same_id():
    green = items_by_id()["vigilance:41:1"]
    assert green.msg_type is MsgType.CANCEL and green.attributes["colour"] == "vert"
    assert green.title == "Fin de vigilance vent (41)"


def test_tomorrow_and_departement_filter():
    items = items_by_id(echeance="J1", departements=["41"])
    assert list(items) == ["vigilance:41:5"]
    assert items["vigilance:41:5"].severity is Severity.EXTREME
    assert items["vigilance:41:5"].attributes["colour"] == "rouge"
    assert list(items_by_id(departements=[28])) == ["vigilance:28:5", "vigilance:28:2"]


def test_versions_change_with_bulletin_and_colour():
    doc = json.loads((DATA / "vigilance_encours.json").read_text())
    before = items_by_id()["vigilance:41:5"].version
    doc["product"]["update_time"] = "2013-01-20T16:00:00+01:00"
    after = {i.external_id: i for i in parse(spec(), json.dumps(doc).encode())}["vigilance:41:5"].version
    assert before != after


def test_flat_single_departement_document():
    body = json.dumps(
        {"update_time": "2013-01-20T06:00:00+01:00", "phenomenon_items": [{"phenomenon_id": 5, "color_id": 4}]}
    ).encode()
    (item,) = parse(spec(departement="41"), body)
    assert item.external_id == "vigilance:41:5" and item.severity is Severity.EXTREME


def test_bad_phenomenon_skipped_others_kept(caplog):
    doc = json.loads((DATA / "vigilance_encours.json").read_text())
    doc["product"]["periods"][0]["timelaps"]["domain_ids"][2]["phenomenon_items"][0]["phenomenon_id"] = "42"
    items = {i.external_id for i in parse(spec(), json.dumps(doc).encode())}
    assert "vigilance:28:5" not in items and "vigilance:41:5" in items
    assert "phenomenon_id" in caplog.text and "mf-vigilance" in caplog.text


@pytest.mark.parametrize(
    "body, match",
    [
        (b"[]", "JSON object"),
        (b"{}", "not a vigilance"),
        (b'{"product": {"periods": []}}', "echeance"),
        (b'{"product": {"update_time": "lundi", "domain_ids": []}}', "update_time"),
        (b"{", "malformed"),
    ],
)
def test_unreadable_documents(body, match):
    with pytest.raises(ParseError, match=match):
        parse(spec(), body)
