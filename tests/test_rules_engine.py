"""Matching: keyword semantics, conditions, modes, territories, decisions, and indexed == naive."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.domain import AlertStatus, Area, Item, MsgType, Road, Severity
from rules.engine import Decision, Engine, EvalState
from rules.loader import Known, load_rules
from rules.model import Action, Condition, Rule, RuleSet
from rules.territories import Territories, Territory, load_territories

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "loir-et-cher"
PARIS = ZoneInfo("Europe/Paris")
NOW = EvalState(datetime(2013, 1, 20, 7, 0, tzinfo=PARIS))


@pytest.fixture(scope="module")
def territories() -> Territories:
    return load_territories(EXAMPLES / "territories.yaml")


def engine_from(tmp_path: Path, text: str, territories: Territories | None = None) -> Engine:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    known = Known(territories=territories.codes()) if territories else Known()
    return Engine(load_rules([path], known), territories)


def item(title: str = "", text: str = "", **fields) -> Item:
    return Item(
        source=fields.pop("source", "routes-41"),
        external_id=fields.pop("external_id", "1"),
        title=title,
        text=text,
        **fields,
    )


def fired(engine: Engine, it: Item, state: EvalState = NOW) -> list[str]:
    names = [d.rule for d in engine.decide(it, state)]
    assert names == [d.rule for d in engine.decide_naive(it, state)]
    return names


KEYWORDS = """
    mode: all
    rules:
      - name: neige
        when: {keywords: [neige]}
        then: {channels: [web]}
      - name: verglas
        when: {keywords: {any: [verglas]}}
        then: {channels: [web]}
      - name: chaussee-glissante
        when: {keywords: {any: [Chaussée glissante]}}
        then: {channels: [web]}
      - name: neige-et-route
        when: {keywords: {all: [neige, route], none: [exercice]}}
        then: {channels: [web]}
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Neige sur la RD 957", ["neige"]),
        ("NEIGÉ", ["neige"]),  # case and accents ignored
        ("Routes enneigées", []),  # whole words only
        ("chaussée verglacée", []),  # "verglas" is not "verglacé"
        ("Plaques de verglas.", ["verglas"]),
        ("CHAUSSEE  GLISSANTE", ["chaussee-glissante"]),
        ("chaussée, glissante", ["chaussee-glissante"]),  # punctuation separates words, it is not a word
        ("chaussées glissantes", []),
        ("Route fermée : neige", ["neige", "neige-et-route"]),
        ("Exercice : route et neige", ["neige"]),  # none: excludes
        ("neige-route", ["neige", "neige-et-route"]),  # hyphens separate words
    ],
)
def test_keyword_semantics(tmp_path, text, expected):
    assert fired(engine_from(tmp_path, KEYWORDS), item(text=text)) == expected


def test_keywords_search_title_and_text(tmp_path):
    engine = engine_from(tmp_path, KEYWORDS)
    assert fired(engine, item(title="Neige", text="route barrée")) == ["neige", "neige-et-route"]


def test_severity_is_a_minimum(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: severe
            when: {severity: Severe}
            then: {channels: [web]}
    """,
    )
    assert fired(engine, item(severity=Severity.MODERATE)) == []
    assert fired(engine, item(severity=Severity.SEVERE)) == ["severe"]
    assert fired(engine, item(severity=Severity.EXTREME)) == ["severe"]
    assert fired(engine, item()) == []


def test_source_category_event_msgtype_attributes(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: vigilance
            when:
              source: [meteo-vigilance]
              category: [met]
              event: [neige-verglas]
              msg_type: [Alert, Update]
              attributes: {colour: [orange, rouge]}
            then: {channels: [web]}
    """,
    )
    base = dict(source="meteo-vigilance", category="Met", event="Neige-Verglas", attributes={"colour": "Orange"})
    assert fired(engine, item(**base)) == ["vigilance"]
    assert fired(engine, item(**{**base, "source": "meteo"})) == []
    assert fired(engine, item(**{**base, "category": "Safety"})) == []
    assert fired(engine, item(**{**base, "event": "vent"})) == []
    assert fired(engine, item(**{**base, "msg_type": MsgType.CANCEL})) == []
    assert fired(engine, item(**{**base, "attributes": {"colour": "jaune"}})) == []
    assert fired(engine, item(**{**base, "attributes": {}})) == []


def test_roads_and_regex(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: departementales
            when: {roads: [D]}
            then: {channels: [web]}
          - name: rn10
            when: {roads: [RN 10]}
            then: {channels: [web]}
          - name: regex
            when: {regex: ['\\bRD ?\\d+\\b', '^Fermeture']}
            then: {channels: [web]}
    """,
    )
    assert fired(engine, item(roads=(Road("D", "957"),))) == ["departementales"]
    assert fired(engine, item(text="Neige sur la RD 957")) == ["departementales", "regex"]  # roads read from text
    assert fired(engine, item(text="bouchon sur la N10")) == ["rn10"]
    assert fired(engine, item(text="fermeture du pont")) == ["regex"]
    assert fired(engine, item(text="rien")) == []


def test_episode_gating(tmp_path, territories):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: pendant
            when: {keywords: [neige], episode: true}
            then: {channels: [web]}
          - name: hors
            when: {keywords: [neige], episode: false}
            then: {channels: [web]}
          - name: toujours
            when: {keywords: [neige]}
            then: {channels: [web]}
          - name: pendant-28-ajoute
            when: {keywords: [neige], episode: true}
            then: {channels: [web], territories: ["28"]}
    """,
        territories,
    )
    blois = item(text="neige", areas=(Area("commune", "41018"),))
    at = NOW.now
    assert fired(engine, blois, EvalState(at)) == ["hors", "toujours"]
    assert fired(engine, blois, EvalState(at, frozenset({"41"}))) == ["pendant", "toujours", "pendant-28-ajoute"]
    # an episode elsewhere does not count; a territory the rule adds does
    assert fired(engine, blois, EvalState(at, frozenset({"28"}))) == ["hors", "toujours", "pendant-28-ajoute"]


def test_time_window_in_paris_time(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: matin-semaine
            when: {time: {from: "05:00", to: "10:00", days: [mon, tue, wed, thu, fri]}}
            then: {channels: [web]}
          - name: nuit-vendredi
            when: {time: {from: "22:00", to: "05:00", days: [fri]}}
            then: {channels: [web]}
    """,
    )

    def at(local: str) -> list[str]:
        moment = datetime.fromisoformat(local).replace(tzinfo=PARIS).astimezone(timezone.utc)
        return fired(engine, item(), EvalState(moment))

    assert at("2013-01-21T04:59") == []  # Monday, UTC 03:59
    assert at("2013-01-21T05:00") == ["matin-semaine"]  # UTC 04:00: Paris time decides
    assert at("2013-01-21T09:59") == ["matin-semaine"]
    assert at("2013-01-21T10:00") == []
    assert at("2013-01-19T07:00") == []  # Saturday
    assert at("2013-07-01T05:30") == ["matin-semaine"]  # summer time, UTC 03:30
    assert at("2013-01-18T23:00") == ["nuit-vendredi"]  # Friday night
    assert at("2013-01-19T02:00") == ["nuit-vendredi"]  # Saturday early morning belongs to Friday's night
    assert at("2013-01-20T02:00") == []  # Sunday early morning belongs to Saturday


def test_naive_datetime_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        EvalState(datetime(2013, 1, 20, 7, 0))


def test_first_match_and_continue(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: first-match
        rules:
          - name: journal
            when: {keywords: [neige]}
            then: {channels: [web]}
            continue: true
          - name: premiere
            when: {keywords: [neige]}
            then: {channels: [web]}
          - name: jamais
            when: {keywords: [neige]}
            then: {channels: [web]}
          - name: autre
            when: {keywords: [verglas]}
            then: {channels: [web]}
    """,
    )
    assert fired(engine, item(text="neige et verglas")) == ["journal", "premiere"]
    assert fired(engine, item(text="verglas")) == ["autre"]


def test_all_mode_with_stop(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: a
            then: {channels: [web]}
          - name: b
            when: {keywords: [neige]}
            then: {channels: [web]}
            continue: false
          - name: c
            then: {channels: [web]}
    """,
    )
    assert fired(engine, item(text="verglas")) == ["a", "c"]
    assert fired(engine, item(text="neige")) == ["a", "b"]


def test_decision_and_alert(tmp_path, territories):
    engine = engine_from(
        tmp_path,
        """
        mode: first-match
        rules:
          - name: poids-lourds
            when: {keywords: [poids lourds], territories: ["41", "28"]}
            then:
              territories: ["28"]
              hashtags: ["#PL", "#route41"]
              channels: [mastodon, sms, web]
              template: {default: alerte, sms: alerte-sms}
              priority: 7
              approve: true
              escalate_to: prefecture-41
              suppress_duplicates: 30m
              episode: start
              sms_gsm7: true
    """,
        territories,
    )
    expires = datetime(2013, 1, 21, 12, tzinfo=timezone.utc)
    it = item(
        "Interdiction des poids lourds",
        "Circulation interdite aux poids lourds de plus de 7,5 t sur la RD 2020.",
        source="prefecture-41",
        areas=(Area("departement", "41"),),
        severity=Severity.SEVERE,
        msg_type=MsgType.UPDATE,
        link="https://www.loir-et-cher.gouv.fr/pl",
        expires=expires,
    )
    (decision,) = engine.decide(it, NOW)
    assert decision == Decision(
        rule="poids-lourds",
        territories=("41", "28"),
        hashtags=("#route41", "#route28", "#PL"),
        channels=("mastodon", "sms", "web"),
        templates={"mastodon": "alerte", "sms": "alerte-sms", "web": "alerte"},
        priority=7,
        approve=True,
        escalate_to="prefecture-41",
        suppress_window=1800,
        episode_action="start",
        sms_gsm7=True,
    )
    alert = decision.to_alert(it)
    assert alert.status is AlertStatus.PENDING_APPROVAL
    assert (alert.title, alert.text, alert.link, alert.expires) == (it.title, it.text, it.link, expires)
    assert alert.severity is Severity.SEVERE and alert.msg_type is MsgType.UPDATE
    assert alert.roads == (Road("D", "2020"),) and alert.areas == it.areas
    assert alert.rule == "poids-lourds" and alert.item_key == "prefecture-41:1"
    assert alert.hashtags == ("#route41", "#route28", "#PL") and alert.templates["sms"] == "alerte-sms"


def test_default_templates_follow_msg_type(tmp_path):
    engine = engine_from(
        tmp_path,
        """
        mode: all
        rules:
          - name: r
            then: {channels: [x, web], template: {web: page}}
    """,
    )
    (alert_decision,) = engine.decide(item(), NOW)
    (cancel_decision,) = engine.decide(item(msg_type=MsgType.CANCEL), NOW)
    assert alert_decision.templates == {"x": "alerte", "web": "page"}
    assert cancel_decision.templates == {"x": "fin-alerte", "web": "page"}
    assert alert_decision.to_alert(item()).status is AlertStatus.PUBLISHED


def test_dedup_key_ignores_case_and_punctuation(tmp_path):
    engine = engine_from(tmp_path, KEYWORDS)
    (first, *_), (second, *_) = engine.decide(item(text="Neige !"), NOW), engine.decide(item(text="neige"), NOW)
    assert first.dedup_key(item(text="Neige !")) == second.dedup_key(item(text="neige"))
    assert first.dedup_key(item(text="neige")) != first.dedup_key(item(text="neige forte"))


def test_example_rules_vigilance_cycle(territories):
    engine = Engine(load_rules([EXAMPLES / "rules.yaml"], Known(territories=territories.codes())), territories)
    orange = Item(
        source="meteo-vigilance",
        external_id="v",
        title="Vigilance orange neige-verglas (41)",
        category="Met",
        event="neige-verglas",
        areas=(Area("NUTS3", "FRB05"),),
        attributes={"colour": "orange"},
    )
    green = Item(
        source="meteo-vigilance",
        external_id="v",
        title="Fin de vigilance neige-verglas (41)",
        category="Met",
        event="neige-verglas",
        areas=(Area("departement", "41"),),
        msg_type=MsgType.CANCEL,
        attributes={"colour": "vert"},
    )
    (start,) = engine.decide(orange, NOW)
    (end,) = engine.decide(green, NOW)
    assert (start.rule, start.episode_action, start.territories) == ("debut-episode-vigilance", "start", ("41",))
    assert (end.rule, end.episode_action, end.territories) == ("fin-episode-vigilance-levee", "end", ("41",))
    road = item("Neige sur la RD 957 à Blois", "Chaussée glissante", severity=Severity.MODERATE)
    assert [d.rule for d in engine.decide(road, EvalState(NOW.now, frozenset({"41"})))] == ["neige-routes-episode"]
    outside = engine.decide(road, NOW)
    assert [d.rule for d in outside] == ["neige-hors-episode"] and outside[0].approve


# -- indexed engine == naive reference ----------------------------------------------------------------

WORDS = ["neige", "verglas", "route", "rd", "957", "blois", "chaussee", "glissante", "fermee", "exercice", "pl", "a"]
word = st.sampled_from(WORDS)
phrase = st.lists(word, min_size=1, max_size=2).map(" ".join)
phrases = st.lists(phrase, max_size=3).map(lambda p: tuple(dict.fromkeys(p)))


@st.composite
def rule_st(draw, index: int):
    def optional(strategy):  # mostly absent, so that some rules fire
        return st.one_of(st.none(), st.none(), st.none(), strategy)

    when = Condition(
        sources=draw(optional(st.sets(st.sampled_from(["s1", "s2", "s3"]), min_size=1).map(frozenset))),
        events=draw(optional(st.just(frozenset({"neige-verglas"})))),
        categories=draw(optional(st.just(frozenset({"met"})))),
        msg_types=draw(optional(st.sets(st.sampled_from(list(MsgType)), min_size=1).map(frozenset))),
        any_words=draw(phrases),
        all_words=draw(st.one_of(st.just(()), phrases)),
        none_words=draw(st.one_of(st.just(()), phrases)),
        min_severity=draw(optional(st.sampled_from(list(Severity)))),
        territories=draw(optional(st.sets(st.sampled_from(["41", "28"]), min_size=1).map(frozenset))),
        attributes=draw(st.sampled_from([(), (), (), (("colour", frozenset({"orange", "rouge"})),)])),
        episode=draw(st.sampled_from([None, None, None, None, True, False])),
        road_kinds=draw(st.sampled_from([frozenset(), frozenset(), frozenset(), frozenset({"D"})])),
    )
    then = Action(channels=("web",), territories=draw(st.sampled_from([(), ("28",)])))
    return Rule(f"r{index}", when, then, stop=draw(st.booleans()))


@st.composite
def ruleset_st(draw):
    count = draw(st.integers(0, 12))
    return RuleSet(tuple(draw(rule_st(i)) for i in range(count)))


text_st = st.lists(
    st.sampled_from(WORDS + ["Neige", "VERGLAS", "Chaussée", "verglacée", ",", "-", "l'", "RD957", "é", "Chartres"]),
    max_size=16,
).map(" ".join)
item_st = st.builds(
    lambda text, title, source, event, severity, msg_type, category, areas, colour: Item(
        source=source,
        external_id="x",
        title=title,
        text=text,
        event=event,
        severity=severity,
        msg_type=msg_type,
        category=category,
        areas=areas,
        attributes={"colour": colour} if colour else {},
    ),
    text_st,
    text_st,
    st.sampled_from(["s1", "s2", "s3"]),
    st.sampled_from(["", "neige-verglas", "vent"]),
    st.sampled_from(list(Severity)),
    st.sampled_from(list(MsgType)),
    st.sampled_from(["", "Met", "Transport"]),
    st.sampled_from([(), (Area("departement", "28"),), (Area("commune", "41018"),)]),
    st.sampled_from(["", "Orange", "jaune"]),
)
TWO = Territories(
    [
        Territory("41", "Loir-et-Cher", "#route41", {"41018": "Blois"}, match_names=True),
        Territory("28", "Eure-et-Loir", "#route28", {"28085": "Chartres"}, match_names=True),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ruleset=ruleset_st(),
    items=st.lists(item_st, min_size=1, max_size=5),
    episodes=st.sets(st.sampled_from(["41", "28"])).map(frozenset),
)
def test_indexed_equals_naive(ruleset, items, episodes):
    engine = Engine(ruleset, TWO)
    state = EvalState(NOW.now, episodes)
    for it in items:
        assert engine.decide(it, state) == engine.decide_naive(it, state)
