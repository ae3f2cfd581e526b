"""Rule files: every error names file:line:column and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alerts.domain import Road, Severity
from rules.loader import Known, check_rules, load_rules
from rules.territories import check_territories
from rules.yamlcheck import ValidationFailed

KNOWN = Known(territories=("41", "28"), templates=("alerte", "alerte-sms"))


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors_of(path: Path, known: Known = KNOWN) -> list[str]:
    _rules, errors = check_rules([path], known)
    return [str(e).replace(str(path), "rules.yaml") for e in errors]


def test_valid_file_converts_every_field(tmp_path):
    path = write(
        tmp_path,
        """
        mode: first-match
        rules:
          - name: neige-routes-41
            when:
              source: [prefecture-41, meteo]
              category: Met
              event: [Neige-Verglas]
              severity: moderate
              keywords: {any: [Neige, "chaussée glissante"], all: [route], none: [exercice]}
              regex: ['\\bRD ?\\d+\\b']
              roads: [D, RN10]
              territories: [41]
              episode: true
              time: {from: "05:00", to: "22:00", days: [mon, FRI]}
            then:
              territories: ["28"]
              hashtags: ["#neige", verglas]
              channels: [mastodon, sms, web]
              template: {default: alerte, sms: alerte-sms}
              priority: 10
              approve: true
              escalate_to: prefecture-41
              suppress_duplicates: 1h30m
              episode: start
            continue: true
    """,
    )
    ruleset = load_rules([path], KNOWN)
    (rule,) = ruleset.rules
    when, then = rule.when, rule.then
    assert rule.name == "neige-routes-41" and rule.stop is False and rule.line == 3
    assert when.sources == {"prefecture-41", "meteo"} and when.categories == {"met"}
    assert when.events == {"neige-verglas"} and when.min_severity is Severity.MODERATE
    assert when.any_words == ("neige", "chaussee glissante") and when.all_words == ("route",)
    assert when.none_words == ("exercice",)
    assert when.regexes[0].search("sur la rd957")
    assert when.road_kinds == {"D"} and when.road_refs == {Road("N", "10")}
    assert when.territories == {"41"} and when.episode is True
    assert when.time is not None and when.time.days == {0, 4}
    assert then.territories == ("28",) and then.hashtags == ("#neige", "#verglas")
    assert then.channels == ("mastodon", "sms", "web")
    assert dict(then.templates) == {"default": "alerte", "sms": "alerte-sms"}
    assert (then.priority, then.approve, then.escalate_to) == (10, True, "prefecture-41")
    assert then.suppress_window == 5400 and then.episode_action == "start"


def test_mode_sets_default_continue(tmp_path):
    rule = "  - name: {0}\n    then: {{channels: [web]}}\n"
    first = write(tmp_path, "mode: first-match\nrules:\n" + rule.format("a"), "a.yaml")
    every = write(
        tmp_path, "mode: all\nrules:\n" + rule.format("b") + "    continue: false\n" + rule.format("c"), "b.yaml"
    )
    rules = load_rules([first, every]).rules
    assert [(r.name, r.stop) for r in rules] == [("a", True), ("b", True), ("c", False)]


def test_bad_severity_exact_position(tmp_path):
    path = write(
        tmp_path,
        """
        mode: first-match
        rules:
          - name: r1
            when:
              severity: Big
            then: {channels: [web]}
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:5:17: when.severity: expected one of Minor, Moderate, Severe, Extreme, got 'Big'"
    ]


def test_bad_indentation_is_a_syntax_error_with_position(tmp_path):
    path = write(
        tmp_path,
        """
        mode: first-match
        rules:
          - name: r1
            when:
              source: [a]
             event: [b]
            then: {channels: [web]}
    """,
    )
    (error,) = errors_of(path)
    assert error.startswith("rules.yaml:6:6: YAML syntax:"), error
    assert "indentation" in error


def test_bad_escape_in_double_quotes(tmp_path):
    path = write(
        tmp_path,
        """
        mode: all
        rules:
          - name: r1
            when: {regex: ["RD \\d+"]}
            then: {channels: [web]}
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:4:25: YAML syntax: while scanning a double-quoted scalar, found unknown escape character 'd'"
    ]


def test_unknown_keys_are_errors_everywhere(tmp_path):
    path = write(
        tmp_path,
        """
        mode: first-match
        rules:
          - name: r1
            when:
              keyword: [neige]
              keywords: {any: [neige], anny: [verglas]}
            then: {channels: [web], priorty: 3}
            contine: true
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:5:7: when.keyword: unknown key (expected one of source, category, event, msg_type, severity, "
        "keywords, regex, roads, territories, attributes, episode, time; did you mean 'keywords'?)",
        "rules.yaml:6:32: when.keywords.anny: unknown key (expected one of any, all, none; did you mean 'any'?)",
        "rules.yaml:7:29: then.priorty: unknown key (expected one of territories, hashtags, channels, template, "
        "priority, approve, escalate_to, suppress_duplicates, episode, sms_gsm7, publish_at, end_after; did you mean 'priority'?)",
        "rules.yaml:8:5: contine: unknown key (expected one of name, when, then, continue; did you mean 'continue'?)",
    ]


def test_wrong_types(tmp_path):
    path = write(
        tmp_path,
        """
        mode: sometimes
        rules:
          - name: r1
            when:
              episode: yes please
              time: {from: "5h", to: "22:00"}
            then:
              channels: web
              priority: high
              approve: 1
              suppress_duplicates: 30
          - just a string
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:1:7: mode: expected one of first-match, all, got 'sometimes'",
        "rules.yaml:5:16: when.episode: expected true or false, got 'yes please'",
        "rules.yaml:6:20: when.time.from: expected a time like \"05:00\" (quote it), got '5h'",
        "rules.yaml:9:17: then.priority: expected a whole number, got 'high'",
        "rules.yaml:10:16: then.approve: expected true or false, got '1'",
        "rules.yaml:11:28: then.suppress_duplicates: expected a duration like 30m, 2h or 1h30m, got '30'",
        "rules.yaml:12:5: expected a mapping, got 'just a string'",
    ]


def test_unknown_template_and_territory(tmp_path):
    path = write(
        tmp_path,
        """
        mode: all
        rules:
          - name: r1
            when: {territories: ["41", "45"]}
            then:
              territories: ["18"]
              channels: [web, sms]
              template: {default: alerte, sms: alerte-texto}
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:4:32: when.territories[1]: unknown territory '45' (territories file has 28, 41)",
        "rules.yaml:6:21: then.territories[0]: unknown territory '18' (territories file has 28, 41)",
        "rules.yaml:8:40: then.template.sms: unknown template 'alerte-texto' (known: alerte, alerte-sms)",
    ]


def test_empty_filter_lists_are_errors_but_empty_keyword_lists_are_fine(tmp_path):
    path = write(
        tmp_path,
        """
        mode: all
        rules:
          - name: r1
            when:
              source: []
              msg_type: []
              keywords: {any: [neige], all: [], none: []}
              time: {from: "05:00", to: "22:00", days: []}
            then: {channels: [web]}
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:5:15: when.source: empty list: it would never match; remove the key to accept any value",
        "rules.yaml:6:17: when.msg_type: empty list: it would never match; remove the key to accept any value",
        "rules.yaml:8:48: when.time.days: empty list: it would never match; remove the key to accept any value",
    ]


def test_template_for_a_channel_not_used(tmp_path):
    path = write(
        tmp_path,
        """
        mode: all
        rules:
          - name: r1
            then: {channels: [web], template: {sms: alerte-sms}}
    """,
    )
    assert errors_of(path) == ["rules.yaml:4:39: then.template: channel 'sms' is not in then.channels"]


def test_missing_keys_duplicates_and_numbers(tmp_path):
    path = write(
        tmp_path,
        """
        mode: all
        rules:
          - name: r1
            when: {regex: ['RD (\\d+']}
            then: {channels: [web]}
          - name: r1
            when: {keywords: [neige, 7,5 tonnes, "!!"]}
            then: {channels: [web]}
          - when: {}
            then: {}
    """,
    )
    assert errors_of(path) == [
        "rules.yaml:4:20: when.regex[0]: invalid regular expression 'RD (\\d+': missing ), unterminated subpattern "
        "at position 3",
        "rules.yaml:6:11: name: rule 'r1' is already defined at rules.yaml:3",
        "rules.yaml:7:30: when.keywords[1]: keyword '7' is only a number (in a [...] list a comma separates "
        'values: quote "7,5 tonnes")',
        "rules.yaml:7:42: when.keywords[3]: keyword '!!' has no Latin letters or digits to match",
        "rules.yaml:9:5: missing required key 'name'",
        "rules.yaml:10:11: then: missing required key 'channels'",
    ]


def test_several_files_report_together(tmp_path):
    good = write(tmp_path, "mode: all\nrules: []\n", "good.yaml")
    bad1 = write(tmp_path, "mode: all\nrules:\n  - name: x\n    then: {channels: [web], episode: begin}\n", "bad1.yaml")
    bad2 = write(tmp_path, "mode: all\n  rules: []\n", "bad2.yaml")
    with pytest.raises(ValidationFailed) as caught:
        load_rules([good, bad1, bad2])
    messages = [str(e) for e in caught.value.errors]
    assert messages[0] == f"{bad1}:4:38: then.episode: expected one of start, end, got 'begin'"
    assert messages[1].startswith(f"{bad2}:2:8: YAML syntax:")


def test_empty_and_missing_file(tmp_path):
    empty = write(tmp_path, "# nothing\n", "empty.yaml")
    assert [str(e) for e in check_rules([empty])[1]] == [
        f"{empty}:0:0: the file is empty: expected 'mode:' and 'rules:'"
    ]
    missing = tmp_path / "absent.yaml"
    (error,) = check_rules([missing])[1]
    assert error.file == str(missing) and "cannot read file" in error.message


def test_territories_file_errors(tmp_path):
    path = write(
        tmp_path,
        """
        territories:
          - code: "41"
            name: Loir-et-Cher
            hashtag: route41
            roads: [D, X9]
            communes: {"41018": Blois, "4101": Nulle}
          - code: "411"
            name: Trop long
            hashtag: "#x"
            colour: red
    """,
        "territories.yaml",
    )
    _t, errors = check_territories(path)
    assert [str(e).replace(str(path), "t.yaml") for e in errors] == [
        "t.yaml:4:14: territories[0].hashtag: expected a hashtag like #route41, got 'route41'",
        "t.yaml:5:16: territories[0].roads[1]: expected a road kind (D, N, A, C) or a road like D957, got 'X9'",
        "t.yaml:6:32: territories[0].communes: expected a 5-character INSEE code, got '4101'",
        "t.yaml:7:11: territories[1].code: expected a département code like 41 or 2A, got '411'",
        "t.yaml:10:5: territories[1].colour: unknown key (expected one of code, name, hashtag, roads, match_names, communes, border_communes)",
    ]
