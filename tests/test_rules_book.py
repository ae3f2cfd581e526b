"""RuleBook reload, item files and the `crieur rules` CLI functions."""

from __future__ import annotations

import io
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from alerts.domain import Area, Item, MsgType, Road, Severity
from rules import cli
from rules.book import RuleBook
from rules.engine import EvalState
from rules.itemfile import ItemFileError, item_from_dict, load_item
from rules.yamlcheck import ValidationFailed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "loir-et-cher"
DATA = ROOT / "tests" / "data" / "rules"
T0 = datetime(2013, 1, 18, 6, 0, tzinfo=timezone.utc)


# -- RuleBook -----------------------------------------------------------------------------------------


def copy_example(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLES, target)
    return target


def test_reload_keeps_old_rules_on_error(tmp_path):
    config = copy_example(tmp_path)
    rules = config / "rules.yaml"
    book = RuleBook.load(rules, territories=config / "territories.yaml", templates=config / "templates")
    before = book.engine
    assert len(before) == 7
    rules.write_text(rules.read_text(encoding="utf-8").replace("severity: Moderate", "severity: Big"), encoding="utf-8")
    errors = book.reload()
    assert [e.message for e in errors] == ["when.severity: expected one of Minor, Moderate, Severe, Extreme, got 'Big'"]
    assert book.engine is before  # old rules still in force
    road = Item(source="routes-41", external_id="1", title="Neige à Blois", text="verglas", severity=Severity.SEVERE)
    assert [d.rule for d in book.decide(road, EvalState(T0))] == ["neige-hors-episode"]
    rules.write_text("mode: first-match\nrules:\n  - name: seule\n    then: {channels: [web]}\n", encoding="utf-8")
    assert book.reload() == []
    assert book.engine is not before and [r.name for r in book.engine.rules] == ["seule"]


def test_reload_checks_territories_and_templates_too(tmp_path):
    config = copy_example(tmp_path)
    book = RuleBook.load(config / "rules.yaml", territories=config / "territories.yaml", templates=config / "templates")
    (config / "templates" / "alerte-sms.j2").unlink()
    errors = book.reload()
    assert len(errors) == 4 and all("unknown template 'alerte-sms'" in e.message for e in errors)
    assert "alerte-sms" in book.templates.names()  # previous snapshot kept whole


def test_load_raises_with_every_error(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("mode: first\nrules:\n  - name: a\n    then: {channels: []}\n    oops: 1\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as caught:
        RuleBook.load(bad)
    assert [f"{e.line}:{e.column}" for e in caught.value.errors] == ["1:7", "4:22", "5:5"]
    assert caught.value.errors[1].message.startswith("then.channels: empty list")


# -- item files ---------------------------------------------------------------------------------------


def test_item_file():
    item = load_item(DATA / "item-rd957.yaml")
    assert item.source == "routes-41" and item.roads == (Road("D", "957"),)
    assert item.areas == (Area("commune", "41018"),) and item.severity is Severity.MODERATE
    assert item.sent == datetime(2013, 1, 20, 5, 12, tzinfo=timezone.utc)
    vigilance = load_item(DATA / "item-vigilance-orange.yaml")
    assert vigilance.attributes == {"colour": "orange"} and vigilance.msg_type is MsgType.ALERT


@pytest.mark.parametrize(
    "data, message",
    [
        ({"title": "x"}, "field source: required"),
        ({"source": "s", "severity": "Big"}, "field severity: expected Minor"),
        ({"source": "s", "areas": ["41"]}, 'field areas: expected "kind:code"'),
        ({"source": "s", "roads": ["route 12"]}, "field roads: expected a road like D957"),
        ({"source": "s", "sent": "2013-01-20T06:00:00"}, "field sent: '2013-01-20T06:00:00' has no UTC offset"),
        ({"source": "s", "titel": "x"}, "field titel: unknown field"),
        ({"source": "s", "msg_type": "Nope"}, "field msg_type: expected Alert, Update or Cancel"),
    ],
)
def test_item_file_errors(data, message):
    with pytest.raises(ItemFileError, match=message.replace("(", r"\(")):
        item_from_dict(data, "item.yaml")


# -- CLI ----------------------------------------------------------------------------------------------


def test_check_ok_and_errors(tmp_path):
    out = io.StringIO()
    assert cli.check([EXAMPLES / "rules.yaml"], out=out) == 0
    assert out.getvalue() == "OK: 7 rule(s) in 1 file(s), 2 territories (41, 28), 4 templates\n"
    config = copy_example(tmp_path)
    rules = config / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("priority: 50", "priorty: 50").replace('["#neige"]', '["neige!"]'), encoding="utf-8")
    out = io.StringIO()
    assert cli.check([rules], out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[-1] == "2 error(s): nothing changed, fix them and check again"
    assert lines[0].startswith(f"{rules}:") and "then.hashtags[0]: expected a hashtag like #neige" in lines[0]
    assert "then.priorty: unknown key" in lines[1]


def test_rules_test_prints_every_channel(monkeypatch):
    out = io.StringIO()
    code = cli.test(
        [EXAMPLES / "rules.yaml"],
        DATA / "item-rd957.yaml",
        now=datetime(2013, 1, 20, 6, tzinfo=timezone.utc),
        episodes=["41"],
        signature="— JD",
        out=out,
    )
    printed = out.getvalue()
    assert code == 0, printed
    assert "rule neige-routes-episode fires" in printed
    assert "territories: 41   hashtags: #route41" in printed
    for channel in ("mastodon", "x", "bluesky", "facebook", "sms", "web"):
        assert f"  [{channel}] template " in printed
    assert "[x] template alerte, 238/280 (x)" in printed
    assert "[sms] template alerte-sms, 233 septets, 2 segment(s) GSM-7" in printed
    assert "    | #route41 — JD" in printed


def test_rules_test_without_match_and_bad_item(tmp_path):
    item = tmp_path / "item.json"
    item.write_text(json.dumps({"source": "autre", "title": "Rien", "text": "Beau temps"}), encoding="utf-8")
    out = io.StringIO()
    assert cli.test([EXAMPLES / "rules.yaml"], item, now=T0, out=out) == 0
    assert out.getvalue().endswith("no rule fires: nothing would be published\n")
    item.write_text("{source: [", encoding="utf-8")
    out = io.StringIO()
    assert cli.test([EXAMPLES / "rules.yaml"], item, now=T0, out=out) == 2
    assert out.getvalue().startswith(f"{item}:1:")


@pytest.mark.parametrize("folder", ["cap", "datex2", "meteoalarm", "rss", "vigilance"])
def test_rules_test_reads_every_real_published_document(samples_dir, folder):
    """`crieur rules test` takes a real document as its item file: each of the shared samples of the formats
    Crieur reads runs through the example rules, and says what they make of it (0: a rule fires, 1: none)."""
    documents = sorted(p for p in (samples_dir / folder).iterdir() if p.is_file())
    assert documents, f"no shared sample in {samples_dir / folder}"
    for path in documents:
        out = io.StringIO()
        assert cli.test([EXAMPLES / "rules.yaml"], path, now=T0, out=out) in (0, 1), (path, out.getvalue())
        assert out.getvalue().strip(), path
