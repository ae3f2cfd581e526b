"""Citizens: the pieces that need no server — mention text, flood limit settings and counters, the
literal reading of a delivery key in a status callback URL, known territories."""

from __future__ import annotations

import pathlib
from types import SimpleNamespace

import pytest

from alerts.citizens import Citizens, FloodLimits, mention_text, query_value
from alerts.config import ServiceConfig
from rules.competence import Directory

DATA = pathlib.Path(__file__).resolve().parent / "data" / "citizens"


def test_mention_text_strips_html_entities_and_mentions():
    content = (
        '<p><span class="h-card" translate="no"><a href="https://social.example/@route41" class="u-url mention">'
        "@<span>route41</span></a></span> Les poids lourds peuvent-ils circuler entre Blois &amp; Vendôme ?"
        '<br>Merci @habitant@autre.example !</p><p><a href="https://x.example/tags/route41" class="hashtag">'
        "#<span>route41</span></a></p>"
    )
    assert mention_text(content) == ("Les poids lourds peuvent-ils circuler entre Blois & Vendôme ? Merci ! #route41")
    assert mention_text("<p>@<span>cd41</span></p>") == ""
    assert mention_text("<p>écrire à contact@mairie.example</p>") == "écrire à contact@mairie.example"


def test_flood_limits_from_configuration():
    assert FloodLimits.from_mapping(None) == FloodLimits()
    assert FloodLimits.from_mapping({"per_number": "3", "replies_window": 30}) == FloodLimits(
        per_number=3, replies_window=30.0
    )
    with pytest.raises(ValueError, match=r"citizens\.limits\.per_number: must be positive"):
        FloodLimits.from_mapping({"per_number": 0})
    with pytest.raises(ValueError, match=r"citizens\.limits\.replies: expected a number, not 'many'"):
        FloodLimits.from_mapping({"replies": "many"})
    with pytest.raises(ValueError, match=r"citizens\.limits\.per_minute: unknown setting"):
        FloodLimits.from_mapping({"per_minute": 5})


async def test_flood_counters_are_shared_by_every_process_and_free_slots_as_time_passes(store):
    from alerts.shared_limits import SharedCounter

    now = [1000.0]
    processes = [SharedCounter(lambda: store.db, "sms:number", 2, 60.0, lambda: now[0]) for _ in range(2)]
    assert await processes[0].allow("+33612345601") and await processes[1].allow("+33612345601")
    assert not await processes[0].allow("+33612345601") and not await processes[1].allow("+33612345601")
    assert await processes[1].allow("+33612345602")  # another number, its own allowance
    now[0] += 29
    assert not await processes[0].allow("+33612345601")  # refusals are not counted
    now[0] += 1
    assert await processes[1].allow("+33612345601")  # one every window / limit = 30 s


def test_status_callback_key_is_read_literally():
    assert query_value("d=21:sms:Alert:+33612345601", "d") == "21:sms:Alert:+33612345601"
    assert query_value("x=1&d=21%3Asms%3AAlert%3A%2B33612345601", "d") == "21:sms:Alert:+33612345601"
    assert query_value("x=1", "d") == ""


def test_known_territories_fall_back_to_the_directory_departements(tmp_path):
    directory = Directory.load(DATA / "authorities.yaml")
    crieur = SimpleNamespace(
        config=ServiceConfig(path=tmp_path / "c.yaml"),
        store=None,
        channels={},
        metrics=None,
        directory=directory,
        rules=None,
    )
    assert Citizens(crieur).territories() == [("41", "", ""), ("28", "", "")]

    class Unloaded:
        @property
        def territories(self):
            raise RuntimeError("no rules loaded yet")

    crieur.rules = Unloaded()
    assert [code for code, _, _ in Citizens(crieur).territories()] == ["41", "28"]


def test_limits_come_from_the_configuration_when_not_given(tmp_path):
    config = ServiceConfig(path=tmp_path / "c.yaml")
    config.citizen_limits = {"per_number": 2}  # type: ignore[attr-defined]
    citizens = Citizens(
        SimpleNamespace(config=config, store=None, channels={}, directory=None, rules=None, metrics=None)
    )
    assert citizens.limits == FloodLimits(per_number=2)
