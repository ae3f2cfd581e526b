"""`crieur rules check`: what the service would refuse, and rules that can never fire, found before a snow night.

Each typo of issue 21 is tried as a CM would, on a draft rules file checked against the example
configuration (its channels, sources, territories, templates); each answer names file:line:column and the
word the CM probably meant. The service refuses the same files, and a reload keeps the rules in force."""

from __future__ import annotations

import io
import logging
import shutil
import textwrap
from pathlib import Path

import pytest

from alerts.cli import main
from alerts.config import load_config
from alerts.service import Crieur
from rules import cli
from rules.book import RuleBook
from rules.yamlcheck import ValidationFailed
from tests.conftest import EXAMPLES
from tests.test_web_support import web_env  # noqa: F401  (fixture)

HEADER = "mode: first-match\nrules:\n"


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of the example deployment; drafts go to another folder (no territories or templates beside)."""
    target = tmp_path / "loir-et-cher"
    shutil.copytree(EXAMPLES / "loir-et-cher", target)
    (tmp_path / "drafts").mkdir()
    return target


def draft(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "drafts" / "rules.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  "), encoding="utf-8")
    return path


def where(text: str, fragment: str) -> str:
    """ "line:column" (1-based) of the first `fragment` in `text`."""
    at = text.index(fragment)
    return f"{text.count(chr(10), 0, at) + 1}:{at - text.rfind(chr(10), 0, at)}"


def check(example: Path, path: Path) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = cli.check([path], config=load_config(example / "crieur.yaml"), out=out)
    return status, [line.replace(str(path), "rules.yaml") for line in out.getvalue().splitlines()]


VIGILANCE = """
- name: vigilance
  when:
    source: [{source}]
    event: [{event}]
    attributes: {{colour: [{colour}]}}
  then:
    channels: [{channel}, sms, web]
    template: {{default: alerte, sms: {template}}}
    territories: ["{territory}"]
"""


def vigilance_rule(**changes: str) -> str:
    values = dict(
        source="meteo-vigilance",
        event="neige-verglas",
        colour="orange",
        channel="mastodon",
        template="alerte-sms",
        territory="41",
    )
    return VIGILANCE.format(**{**values, **changes})


def test_the_draft_without_typo_passes(example, tmp_path):
    assert check(example, draft(tmp_path, vigilance_rule())) == (
        0,
        ["OK: 1 rule(s) in 1 file(s), 2 territories (41, 28), 4 templates"],
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"channel": "smss"},
            "rules.yaml:9:18: then.channels[0]: unknown channel 'smss' (known: bluesky, email, facebook, mastodon, sms, "
            "web, x; did you mean 'sms'?)",
        ),
        (
            {"source": "meteo-vigilence"},
            "rules.yaml:5:16: when.source[0]: unknown source 'meteo-vigilence' (did you mean 'meteo-vigilance'?)",
        ),
        (
            {"event": "neige-verglass"},
            "rules.yaml:6:15: when.event[0]: no source produces the event 'neige-verglass' (did you mean 'neige-verglas'?)",
        ),
        (
            {"colour": "ornage"},
            "rules.yaml:7:29: when.attributes.colour[0]: no source produces the attribute colour 'ornage' "
            "(did you mean 'orange'?)",
        ),
        (
            {"template": "alerte-smss"},
            "rules.yaml:10:40: then.template.sms: unknown template 'alerte-smss' (known: alerte, alerte-sms, fin-alerte, "
            "mise-a-jour; did you mean 'alerte-sms'?)",
        ),
        (
            {"territory": "14"},
            "rules.yaml:11:21: then.territories[0]: unknown territory '14' (territories file has 28, 41; did you mean '41'?)",
        ),
    ],
    ids=["channel", "source", "event", "colour", "template", "territory"],
)
def test_each_typo_of_the_issue_is_an_error_with_its_position_and_a_suggestion(example, tmp_path, change, expected):
    status, lines = check(example, draft(tmp_path, vigilance_rule(**change)))
    assert status == 1
    assert lines == [expected, "1 error(s): nothing changed, fix them and check again"]


def test_the_colour_in_capitals_is_the_same_colour(example, tmp_path):
    """`colour: [Orange]` is no typo: values are compared without case, as the engine does; it fires."""
    path = draft(tmp_path, vigilance_rule(colour="Orange"))
    assert check(example, path)[0] == 0
    item = tmp_path / "item.yaml"
    item.write_text(
        "source: meteo-vigilance\nevent: neige-verglas\ntitle: Vigilance orange\n"
        "attributes: {colour: orange}\nareas: ['departement:41']\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    assert (
        cli.test(
            [path],
            item,
            EXAMPLES / "loir-et-cher" / "territories.yaml",
            EXAMPLES / "loir-et-cher" / "templates",
            out=out,
        )
        == 0
    )
    assert "rule vigilance fires" in out.getvalue()


def test_the_command_line_checks_against_the_configuration(example, tmp_path, capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        path = draft(tmp_path, vigilance_rule(template="alerte-smss"))
        assert main(["rules", "check", "--config", str(example / "crieur.yaml"), str(path)]) == 1
        assert f"{path}:10:40: then.template.sms: unknown template 'alerte-smss'" in capsys.readouterr().out
        assert main(["rules", "check", "--config", str(example / "crieur.yaml")]) == 0  # the configured rules
        assert capsys.readouterr().out == "OK: 7 rule(s) in 1 file(s), 2 territories (41, 28), 4 templates\n"
        # `rules test` loads the draft the same way: the same error, no dry run on rules the service would refuse
        item = tmp_path / "item.yaml"
        item.write_text("source: meteo-vigilance\ntitle: Vigilance orange\n", encoding="utf-8")
        path = draft(tmp_path, vigilance_rule(channel="smss"))
        assert main(["rules", "test", "--config", str(example / "crieur.yaml"), str(path), str(item)]) == 1
        assert capsys.readouterr().out.startswith(f"{path}:9:18: then.channels[0]: unknown channel 'smss'")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize(
    "when, expected",
    [
        (
            "msg_type: [Cancle]",
            "when.msg_type[0]: expected one of Alert, Update, Cancel, got 'Cancle' (did you mean 'Cancel'?)",
        ),
        (
            "severity: Severre",
            "when.severity: expected one of Minor, Moderate, Severe, Extreme, got 'Severre' (did you mean 'Severe'?)",
        ),
        (
            "attributes: {color: [orange]}",
            "when.attributes.color: no source gives items the attribute 'color' (did you mean 'colour'?)",
        ),
        (
            "attributes: {record_type: [WinterDrivingManagment]}",
            "when.attributes.record_type[0]: no source produces the attribute record_type 'WinterDrivingManagment' "
            "(did you mean 'WinterDrivingManagement'?)",
        ),
        (
            "attributes: {phenomenon: [grand-froit]}",
            "when.attributes.phenomenon[0]: no source produces the attribute phenomenon 'grand-froit' "
            "(did you mean 'grand-froid'?)",
        ),
        (
            "territories: ['41018']",
            "when.territories[0]: '41018' is a place of territory 41, not a territory "
            "(territories file has 28, 41): did you mean '41'?",
        ),
        (
            "territories: [Chartres]",
            "when.territories[0]: 'Chartres' is a place of territory 28, not a territory "
            "(territories file has 28, 41): did you mean '28'?",
        ),
    ],
    ids=["msg_type", "severity", "attribute-name", "datex-record-type", "phenomenon", "commune-code", "commune-name"],
)
def test_values_are_checked_against_what_the_parsers_produce(example, tmp_path, when, expected):
    path = draft(
        tmp_path,
        f"""
        - name: r
          when:
            {when}
          then: {{channels: [web]}}
    """,
    )
    status, lines = check(example, path)
    assert status == 1 and len(lines) == 2, lines
    assert lines[0].startswith("rules.yaml:5:") and lines[0].split(": ", 1)[1] == expected


def test_a_shadowed_rule_is_a_warning_naming_the_rule_that_takes_its_items(example, tmp_path):
    path = draft(
        tmp_path,
        """
        - name: neige
          when:
            keywords: [neige, verglas]
          then: {channels: [web]}
        - name: neige-routes
          when:
            keywords: {all: [neige, route]}
            roads: [D]
          then: {channels: [sms, web]}
        - name: neige-sauf-exercice
          when:
            keywords: {any: [neige], none: [exercice]}
            severity: Severe
          then: {channels: [sms]}
        - name: verglas-ou-pluie
          when:
            keywords: [verglas, pluie]
          then: {channels: [sms]}
        - name: cars-matin
          when: {keywords: [cars], time: {from: "05:00", to: "10:00", days: [mon, tue, wed, thu, fri]}}
          then: {channels: [sms]}
        - name: cars-matin-lundi
          when: {keywords: [cars], time: {from: "06:00", to: "08:00", days: [mon]}}
          then: {channels: [sms]}
        - name: cars-soir
          when: {keywords: [cars], time: {from: "17:00", to: "19:00", days: [mon]}}
          then: {channels: [sms]}
    """,
    )
    status, lines = check(example, path)
    assert status == 0
    warning = (
        "warning: rule {} can never fire: rule 'neige' (line 3) comes first, takes every item it would take "
        "and stops there (move it above, or give the earlier rule continue: true)"
    )
    assert lines[:3] == [
        "rules.yaml:7:5: " + warning.format("'neige-routes'"),
        "rules.yaml:12:5: " + warning.format("'neige-sauf-exercice'"),
        "rules.yaml:24:5: "
        + warning.format("'cars-matin-lundi'").replace("'neige' (line 3)", "'cars-matin' (line 21)"),
    ]
    assert lines[3] == "OK: 7 rule(s) in 1 file(s), 2 territories (41, 28), 4 templates, 3 warning(s)"


def test_no_shadow_when_the_earlier_rule_lets_reading_continue_or_is_narrower(example, tmp_path):
    path = draft(
        tmp_path,
        """
        - name: tout-neige
          when: {keywords: [neige]}
          then: {channels: [web]}
          continue: true
        - name: neige-41
          when: {keywords: [neige], territories: ["41"]}
          then: {channels: [sms]}
        - name: neige-41-grave
          when: {keywords: [neige], severity: Severe}
          then: {channels: [sms]}
        - name: neige-episode
          when: {keywords: [neige], episode: true}
          then: {channels: [sms]}
    """,
    )
    assert check(example, path)[1] == ["OK: 4 rule(s) in 1 file(s), 2 territories (41, 28), 4 templates"]


@pytest.mark.parametrize(
    "when, expected",
    [
        (
            "{source: [prefecture-41], severity: Severe}",
            "warning: when.severity: this rule can never fire: items from source prefecture-41 (rss) never have a severity "
            "of Severe or more (only cap, datex2, geojson, vigilance sources produce it)",
        ),
        (
            "{source: [prefecture-41], msg_type: [Cancel]}",
            "warning: when.msg_type: this rule can never fire: items from source prefecture-41 (rss) never have the message "
            "type Cancel (only cap, datex2, geojson, vigilance sources produce it)",
        ),
        (
            "{category: [Sécurité routière], msg_type: [Cancel]}",  # an RSS category; RSS items are never cancelled
            "warning: when.msg_type: this rule can never fire: conditions contradict each other: the message type Cancel "
            "comes only from cap, datex2, geojson, vigilance sources, which when.category already excludes",
        ),
        (
            "{keywords: {all: [neige, route], none: [route]}}",
            "warning: when.keywords.all: this rule can never fire: 'route' is required but 'route' is excluded "
            "(keywords.none)",
        ),
    ],
    ids=["severity-of-rss", "cancel-from-rss", "rss-category-and-cancel", "keyword-required-and-excluded"],
)
def test_contradictory_conditions_are_warnings(example, tmp_path, when, expected):
    path = draft(
        tmp_path,
        f"""
        - name: r
          when: {when}
          then: {{channels: [web]}}
    """,
    )
    status, lines = check(example, path)
    assert status == 0 and len(lines) == 2, lines
    assert lines[0].startswith("rules.yaml:4:") and lines[0].split(": ", 1)[1] == expected


def test_a_source_of_another_deployment_is_a_warning_not_a_typo(example, tmp_path):
    path = draft(
        tmp_path,
        """
        - name: pl
          when: {source: [prefecture-41, prefecture-45]}
          then: {channels: [web]}
    """,
    )
    status, lines = check(example, path)
    assert status == 0
    assert lines[0] == (
        "rules.yaml:4:36: warning: when.source[1]: source 'prefecture-45' is not configured "
        "(configured: meteo-vigilance, prefecture-28, prefecture-41): no item will come from it"
    )


def test_a_time_window_that_never_opens_is_refused(example, tmp_path):
    path = draft(
        tmp_path,
        """
        - name: matin
          when: {keywords: [neige], time: {from: "05:00", to: "05:00"}}
          then: {channels: [web]}
    """,
    )
    status, lines = check(example, path)
    assert status == 1
    assert lines[0] == "rules.yaml:4:37: when.time: 'from' and 'to' are equal: the window would be empty"


def test_the_example_rules_pass_without_any_warning():
    book = RuleBook.for_config(load_config(EXAMPLES / "loir-et-cher" / "crieur.yaml"))
    assert book.reload() == [] and book.warnings == []
    assert len(book.engine) == 7


def test_cap_events_seen_in_the_configured_sources_are_known(example, tmp_path):
    """The example's MeteoAlarm feed publishes `neige-verglas` events: a CAP event is free text, so an event
    close to one seen there is a typo, and an unseen word is accepted."""
    config = load_config(example / "crieur.yaml")
    book = RuleBook.for_config(config)
    book.reload()
    known = book.known(book.territories, book.templates)
    assert "neige-verglas" in known.vocabulary.kinds["cap"].events.spellings
    path = draft(tmp_path, vigilance_rule(event="Tempete"))
    assert check(example, path)[0] == 0


async def test_the_service_refuses_such_rules_and_a_reload_keeps_the_rules_in_force(example, tmp_path):
    rules = example / "rules.yaml"
    good = rules.read_text(encoding="utf-8")
    rules.write_text(good.replace("source: [meteo-vigilance]", "source: [meteo-vigilence]", 1), encoding="utf-8")
    typo = where(rules.read_text(encoding="utf-8"), "meteo-vigilence")
    config = load_config(example / "crieur.yaml")
    config.data_dir = tmp_path / "data"
    config.database = f"sqlite:///{tmp_path / 'crieur.db'}"
    config.dry_run = True
    crieur = Crieur(config)
    with pytest.raises(ValidationFailed) as failed:
        await crieur.open()
    assert [str(e) for e in failed.value.errors] == [
        f"{rules}:{typo}: when.source[0]: unknown source 'meteo-vigilence' (did you mean 'meteo-vigilance'?)"
    ]

    rules.write_text(good, encoding="utf-8")
    book = RuleBook.for_config(config).load_or_raise()
    engine = book.engine
    rules.write_text(good.replace("channels: [mastodon, x", "channels: [mastodom, x", 1), encoding="utf-8")
    [error] = book.reload()
    assert str(error) == (
        f"{rules}:{where(rules.read_text(encoding='utf-8'), 'mastodom')}: then.channels[0]: unknown channel 'mastodom' (known: bluesky, email, "
        "facebook, mastodon, sms, web, x; did you mean 'mastodon'?)"
    )
    assert error.in_french().endswith(
        "canal 'mastodom' inconnu (connus : bluesky, email, facebook, mastodon, sms, "
        "web, x ; vouliez-vous dire 'mastodon' ?)"
    )
    assert book.engine is engine  # the rules in force stay


# ------------------------------------------------------------------------------------ coverage on real data

SHARED_SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


def coverage_of(example: Path, folder: Path, rules: Path | None = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = cli.check([rules] if rules else [], config=load_config(example / "crieur.yaml"), against=folder, out=out)
    return status, out.getvalue().splitlines()


def test_coverage_names_the_silent_rules_and_the_items_no_rule_handled(example, tmp_path):
    episode = tmp_path / "episode"
    (episode / "prefecture-28").mkdir(parents=True)
    shutil.copy(example / "feeds" / "meteoalarm-41.xml", episode / "meteoalarm-41.xml")
    shutil.copy(example / "feeds" / "prefecture-41.xml", episode / "prefecture-28" / "2026-11-25.xml")
    shutil.copy(
        SHARED_SAMPLES / "datex2" / "bisonfute-tipi-v2-situation-vehicleobstruction-fr.xml", episode / "dir.xml"
    )
    (episode / "broken.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><item>', encoding="utf-8")
    (episode / "notes.json").write_text('{"hello": "world"}', encoding="utf-8")
    status, lines = coverage_of(example, episode)
    assert status == 0
    assert f"Coverage: 4 item(s) from 3 document(s) of {episode}" in lines
    report = lines[lines.index("Rules that never fired (4 of 7):") :]
    silent = [line.split(" (")[0].strip() for line in report[1:5]]
    # préfecture items carry no severity: outside an episode, `neige-hors-episode` (severity: Moderate) misses them
    assert silent == [
        "fin-episode-vigilance-levee",
        "fin-episode-vigilance-verte",
        "neige-hors-episode",
        "transports-scolaires",
    ]
    line = where((example / "rules.yaml").read_text(encoding="utf-8"), "name: fin-episode-vigilance-levee").split(":")[
        0
    ]
    assert report[1].endswith(f"rules.yaml:{line})")
    # the CAP alert opens the episode; the préfecture's items, read as prefecture-28 (their folder), are handled
    assert "Fired: debut-episode-vigilance ×1, poids-lourds-prefecture ×1, neige-routes-episode ×1" in report
    assert "Items no rule handled (1 of 4), by source and kind:" in report
    assert "  no configured datex2 source (datex2): 1" in report
    assert any(
        line.startswith('    VehicleObstruction ×1 — e.g. "Véhicule en panne sur l\'A 4" (dir.xml)') for line in report
    )
    assert report[-3] == "Not read (2):"
    assert report[-2].startswith("  broken.xml: cannot read this rss document: ")
    assert report[-1] == "  notes.json: not a format Crieur reads"


def test_a_parser_that_fails_on_a_document_is_a_line_of_the_report(example, tmp_path, monkeypatch):
    import rules.coverage

    real = rules.coverage.parse

    def flaky(spec, body, content_type=""):
        if b"neige-verglas" in body:
            raise KeyError("awareness_level")
        return real(spec, body, content_type)

    monkeypatch.setattr(rules.coverage, "parse", flaky)
    folder = tmp_path / "feeds"
    shutil.copytree(example / "feeds", folder)
    status, lines = coverage_of(example, folder)
    assert status == 0
    assert "  meteoalarm-41.xml: the cap parser failed: KeyError: 'awareness_level'" in lines
    assert any(line.startswith("Coverage: 3 item(s) from 2 document(s)") for line in lines)


def test_coverage_of_the_shared_samples(example):
    assert SHARED_SAMPLES.is_dir(), "the shared samples are missing"
    status, lines = coverage_of(example, SHARED_SAMPLES)
    assert status == 0
    assert any(line.startswith("Coverage: ") for line in lines)
    assert "  cap documents read as source meteo-vigilance" in lines
    assert any(line.startswith("  no configured datex2 source (datex2): ") for line in lines)
    assert "  providers/mastodon/mastodon-status-edited-anonymised.json: not a format Crieur reads" in lines
    # the DWD archive is opened: its alerts are items, each member named
    assert any("cap/dwd-cap-mul-8-languages-2023-06-23.zip!" in line for line in lines)


# ------------------------------------------------------------------------------------------------ console


async def test_the_console_reload_shows_the_same_report_in_french(web_env, tmp_path):  # noqa: F811
    import html

    from alerts.domain import Item, MsgType

    folder = tmp_path / "deployment"
    shutil.copytree(EXAMPLES / "loir-et-cher", folder)
    config = load_config(folder / "crieur.yaml")
    web_env.crieur.config.sources = config.sources
    web_env.crieur.rules = RuleBook.for_config(config).load_or_raise()
    await web_env.store.ingest(
        [
            Item(
                source="meteo-vigilance",
                external_id="v1",
                title="Vigilance orange neige-verglas",
                event="neige-verglas",
                msg_type=MsgType.ALERT,
                attributes={"colour": "orange"},
            ),
            Item(source="prefecture-41", external_id="p1", title="Fête de la science à Blois", category="Culture"),
        ]
    )
    token = await web_env.login("admin")
    rules = folder / "rules.yaml"
    good = rules.read_text(encoding="utf-8")
    in_force = web_env.crieur.rules.engine

    rules.write_text(good.replace("source: [meteo-vigilance]", "source: [meteo-vigilence]", 1), encoding="utf-8")
    typo = where(rules.read_text(encoding="utf-8"), "meteo-vigilence")
    answer = await web_env.client.post("/console/rules/reload", data={"csrf": token})
    page = html.unescape(await answer.text())
    assert answer.status == 400 and web_env.crieur.rules.engine is in_force
    assert "Règles non rechargées, les précédentes restent en vigueur (1 erreur(s)) :" in page
    assert (
        f"{rules}:{typo}: when.source[0] : source 'meteo-vigilence' inconnue (vouliez-vous dire 'meteo-vigilance' ?)"
    ) in page

    shadowed = good + textwrap.indent(
        textwrap.dedent("""
        - name: poids-lourds-41
          when:
            source: [prefecture-41]
            keywords: {all: [poids lourds], none: [exercice]}
          then: {channels: [web]}
    """),
        "  ",
    )
    rules.write_text(shadowed, encoding="utf-8")
    answer = await web_env.client.post("/console/rules/reload", data={"csrf": token})
    page = html.unescape(await answer.text())
    assert answer.status == 200 and web_env.crieur.rules.engine is not in_force
    assert "Règles rechargées." in page and "Règles rechargées, avec 1 avertissement(s) :" in page
    line = shadowed.splitlines().index("  - name: poids-lourds-41") + 1
    assert (
        f"{rules}:{line}:5: attention : la règle 'poids-lourds-41' ne se déclenchera jamais : la règle "
        f"'poids-lourds-prefecture' (ligne {where(good, 'name: poids-lourds-prefecture').split(':')[0]}) "
        "passe avant"
    ) in page
    assert "Couverture : les 2 derniers messages reçus, de 2 source(s)" in page
    assert "Règles qui ne se sont jamais déclenchées (7 sur 8) :" in page
    assert "Déclenchées : debut-episode-vigilance ×1" in page
    assert (
        "  prefecture-41 (rss) : 1" in page
        and "    category Culture ×1 — par ex. « Fête de la science à Blois »" in page
    )


def test_every_error_reads_in_french_for_the_console(tmp_path):
    from rules.loader import review_rules

    path = tmp_path / "rules.yaml"
    path.write_text(
        "mode: first-match\nrules:\n  - name: r\n    when: {severity: Big, keyword: [neige]}\n"
        "    then: {channels: [], priorty: 3}\n",
        encoding="utf-8",
    )
    review = review_rules([path])
    assert [e.in_french().replace(str(path), "rules.yaml") for e in review.errors] == [
        "rules.yaml:4:22: when.severity : valeur attendue parmi Minor, Moderate, Severe, Extreme, trouvé 'Big'",
        "rules.yaml:4:27: when.keyword : clé inconnue (clés possibles : source, category, event, msg_type, severity, "
        "keywords, regex, roads, territories, attributes, episode, time ; vouliez-vous dire 'keywords' ?)",
        "rules.yaml:5:22: then.channels : liste vide : elle ne correspondrait jamais ; retirez la clé pour accepter "
        "toute valeur",
        "rules.yaml:5:26: then.priorty : clé inconnue (clés possibles : territories, hashtags, channels, template, "
        "priority, approve, escalate_to, suppress_duplicates, episode, sms_gsm7, publish_at, end_after ; vouliez-vous dire 'priority' ?)",
    ]
    path.write_text("mode: first-match\nrules:\n  - name: r\n   when: {}\n", encoding="utf-8")
    [syntax] = review_rules([path]).errors
    assert syntax.in_french().replace(str(path), "rules.yaml").startswith("rules.yaml:4:4: syntaxe YAML : ")


# ------------------------------------------------------------------------- shadowing is never a false alarm

from dataclasses import replace as _replace  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rules.engine import Engine, EvalState  # noqa: E402
from rules.lint import covers  # noqa: E402
from rules.model import RuleSet  # noqa: E402
from tests.test_rules_engine import NOW, TWO, item_st, rule_st  # noqa: E402

_LOOSE = {
    "sources": None,
    "events": None,
    "categories": None,
    "msg_types": None,
    "min_severity": None,
    "territories": None,
    "episode": None,
    "any_words": (),
    "all_words": (),
    "none_words": (),
    "attributes": (),
    "road_kinds": frozenset(),
}


@st.composite
def weaker_st(draw, rule):
    """`rule` with some of its conditions dropped: it accepts at least what `rule` accepts."""
    dropped = draw(st.sets(st.sampled_from(sorted(_LOOSE))))
    when = _replace(rule.when, **{name: _LOOSE[name] for name in dropped})
    return _replace(rule, name="first", when=when, then=_replace(rule.then), stop=True)


def fires(rule, item, episodes) -> bool:
    return bool(Engine(RuleSet((rule,)), TWO).decide(item, EvalState(NOW.now, episodes)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    items=st.lists(item_st, min_size=1, max_size=6),
    episodes=st.sets(st.sampled_from(["41", "28"])).map(frozenset),
)
def test_a_rule_reported_as_shadowed_never_fires_alone_where_the_earlier_one_would_not(data, items, episodes):
    later = data.draw(rule_st(1))
    first = data.draw(st.one_of(rule_st(0), weaker_st(later)))
    if not covers(first, later):
        return
    for item in items:
        if fires(later, item, episodes):
            assert fires(first, item, episodes), (first, later, item)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_dropping_conditions_makes_a_rule_that_shadows_the_original(data):
    later = data.draw(rule_st(1))
    first = data.draw(weaker_st(later))
    assert covers(first, later)
