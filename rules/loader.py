"""Reading and checking rule files.

A rule file (commented example: examples/loir-et-cher/rules.yaml)::

    mode: first-match          # required. "first-match": stop at the first rule that fires;
                               # "all": every rule that matches fires.
    rules:
      - name: neige-routes-41  # required, unique across all loaded files
        when:                  # every condition given must hold; all are optional
          source: [prefecture-41, meteo]     # item.source is one of these
          category: [Met]                    # CAP category (case-insensitive)
          event: [neige-verglas]             # item.event (case-insensitive)
          msg_type: [Alert, Update]          # CAP msgType
          severity: Moderate                 # at least: Minor, Moderate, Severe, Extreme
          keywords: {any: [neige, verglas], all: [], none: [exercice]}
                                             # in title + text, whole words or phrases, case and
                                             # accents ignored; a plain list means any:
          regex: ['\\bRD ?\\d+\\b']          # at least one matches the title or the text (any case)
          roads: [D, N10]                    # the item has a road of one of these kinds or refs
          territories: ["41"]                # the item resolves to one of these territories
          attributes: {colour: [orange, rouge]}   # item.attributes[colour] is one of these
          episode: true                      # true: only during a snow episode on the item's
                                             # territories; false: only outside; absent: always
          time: {from: "05:00", to: "22:00", days: [mon, tue, wed, thu, fri]}  # Europe/Paris
        then:
          territories: ["41"]                # added to those resolved from the item
          hashtags: ["#neige"]               # added after the territories' hashtags
          channels: [mastodon, sms, web]     # required
          template: {default: alerte, sms: alerte-sms}   # or one name for every channel
          priority: 10
          approve: true                      # a CM approves before anything is sent; or, with a
                                             # deadline: {within: 15m, otherwise: publish} (or discard,
                                             # escalate: page the head of communication), see alerts.oncall
          escalate_to: prefecture-41         # authority id (authorities.yaml)
          suppress_duplicates: 30m           # same rule + territories + text within 30 min: no alert
          episode: start                     # start / end the snow episode on its territories
          sms_gsm7: true                     # SMS rendered in GSM-7 (ê → e, « → ") to save segments
          publish_at: onset                  # not before the item's onset (an arrêté from 06:00)
          end_after: 6h                      # its "fin d'alerte" goes out 6 h after publication
        continue: false                      # override the mode for this rule

`continue` defaults to false in first-match mode and to true in "all" mode. Several files are read in
the order given, as one list; each rule keeps the default of its own file.

Every problem is reported with file, line and column (`RuleError`), all at once; unknown keys are errors
so that a typo never silently disables a condition. What a rule refers to is checked against `Known` (the
configuration's channels, sources, territories, templates, authorities, and the words the parsers produce:
rules.references); a likely typo is an error that names the word probably meant. `review_rules` also
returns warnings: rules that load but can never fire (rules.references, rules.lint).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import time
from typing import Collection, Iterable, Mapping

from yaml.nodes import MappingNode, Node, SequenceNode

from alerts.domain import MsgType, Road, Severity

from . import references
from .model import DAYS, Action, Condition, Rule, RuleSet, TimeWindow
from .roads import parse_road_spec
from .text import fold, normalise_phrase
from .vocabulary import Vocabulary
from .yamlcheck import (
    EMPTY_LIST_FR,
    Checker,
    RuleError,
    ValidationFailed,
    collector_paused,
    compose,
    describe,
    did_you_mean,
    display_name,
)
from .yamlcheck import hint as suggestion

SEVERITIES = ("Minor", "Moderate", "Severe", "Extreme")
MODES = ("first-match", "all")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HASHTAG = re.compile(r"^#\w+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$")

WHEN_KEYS = (
    "source",
    "category",
    "event",
    "msg_type",
    "severity",
    "keywords",
    "regex",
    "roads",
    "territories",
    "attributes",
    "episode",
    "time",
)
THEN_KEYS = (
    "territories",
    "hashtags",
    "channels",
    "template",
    "priority",
    "approve",
    "escalate_to",
    "suppress_duplicates",
    "episode",
    "sms_gsm7",
    "publish_at",
    "end_after",
)


PARSERS = Vocabulary.from_parsers()


@dataclass(frozen=True, slots=True)
class Known:
    """What rule files may refer to. None: not checked (e.g. no templates directory given).

    sources: configured source name → parser ("rss", "cap"...; `vocabulary.parser_of`); empty or None:
    not checked. places: commune INSEE codes and folded commune / département names → territory code,
    to tell a CM who wrote a commune where a territory is expected. vocabulary: what items can carry."""

    territories: Collection[str] | None = None
    templates: Collection[str] | None = None
    channels: Collection[str] | None = None
    authorities: Collection[str] | None = None
    sources: Mapping[str, str] | None = None
    places: Mapping[str, str] | None = None
    vocabulary: Vocabulary = PARSERS


@dataclass(frozen=True, slots=True)
class Review:
    """Everything `check` has to say about rule files: errors stop them from loading, warnings do not."""

    ruleset: RuleSet
    errors: list[RuleError]
    warnings: list[RuleError]


def load_rules(paths: Iterable[str | os.PathLike[str]], known: Known = Known()) -> RuleSet:
    """Read and validate rule files; raises ValidationFailed carrying every error of every file."""
    ruleset, errors = check_rules(paths, known)
    if errors:
        raise ValidationFailed(errors)
    return ruleset


def check_rules(paths: Iterable[str | os.PathLike[str]], known: Known = Known()) -> tuple[RuleSet, list[RuleError]]:
    """Validate rule files. Returns the rules that validated and all errors (empty when all is well)."""
    review = review_rules(paths, known)
    return review.ruleset, review.errors


def review_rules(paths: Iterable[str | os.PathLike[str]], known: Known = Known()) -> Review:
    """check_rules, plus the warnings: rules that load but can never fire (rules.lint)."""
    from .lint import never_firing

    rules: list[Rule] = []
    errors: list[RuleError] = []
    warnings: list[RuleError] = []
    names: dict[str, str] = {}
    files: list[str] = []
    for path in paths:
        name = display_name(path)
        files.append(name)
        with collector_paused():
            file_rules, file_errors, file_names, file_warnings = _check_file(path, known)
        warnings.extend(file_warnings)
        duplicates: set[int] = set()
        for rule_name, line, column in file_names:
            if rule_name in names:
                file_errors.append(
                    RuleError(
                        name,
                        line,
                        column,
                        f"name: rule {rule_name!r} is already defined at {names[rule_name]}",
                        french=f"name : la règle {rule_name!r} existe déjà en {names[rule_name]}",
                    )
                )
                duplicates.add(line)
            else:
                names[rule_name] = f"{name}:{line}"
        rules.extend(rule for rule in file_rules if rule.line not in duplicates)
        errors.extend(sorted(file_errors, key=lambda e: (e.line, e.column)))  # top to bottom, as a CM reads
    ruleset = RuleSet(tuple(rules), tuple(files))
    warnings.extend(never_firing(ruleset))
    warnings.sort(key=lambda w: (files.index(w.file) if w.file in files else len(files), w.line, w.column))
    return Review(ruleset, errors, warnings)


def _check_file(
    path: str | os.PathLike[str], known: Known
) -> tuple[list[Rule], list[RuleError], list[tuple[str, int, int]], list[RuleError]]:
    """Valid rules, errors, (name, line, column) of every named rule, valid or not, and warnings."""
    root, errors = compose(path)
    if errors:
        return [], errors, [], []
    checker = _RuleChecker(display_name(path))
    if root is None:
        checker.error(
            None,
            "",
            "the file is empty: expected 'mode:' and 'rules:'",
            "le fichier est vide : 'mode:' et 'rules:' attendus",
        )
        return [], checker.errors, [], []
    top = checker.mapping(root, "", ["mode", "rules"], required=["mode", "rules"])
    if not top:
        return [], checker.errors, [], checker.warnings
    mode = checker.choice(top["mode"][1], "mode", MODES) if "mode" in top else None
    rules: list[Rule] = []
    if "rules" in top:
        for node, _path in checker.items(top["rules"][1], "rules", scalar_ok=False):
            rule = _rule(checker, node, mode or "first-match", known)
            if rule is not None:
                rules.append(rule)
    return rules, checker.errors, checker.names, checker.warnings


class _RuleChecker(Checker):
    def __init__(self, file: str):
        super().__init__(file)
        self.names: list[tuple[str, int, int]] = []


def _rule(checker: _RuleChecker, node: Node, mode: str, known: Known) -> Rule | None:
    fields = checker.mapping(node, "", ["name", "when", "then", "continue"], required=["name", "then"])
    if fields is None:
        return None
    before = len(checker.errors)
    name = None
    if "name" in fields:
        name = checker.string(fields["name"][1], "name")
        name_node = fields["name"][1]
        if name is not None and not _NAME.match(name):
            checker.error(
                name_node,
                "name",
                f"use letters, digits, '-', '_' or '.', got {name!r}",
                f"lettres, chiffres, '-', '_' ou '.' seulement, trouvé {name!r}",
            )
        elif name is not None:
            checker.names.append((name, node.start_mark.line + 1, name_node.start_mark.column + 1))
    when = _when(checker, fields["when"][1], known) if "when" in fields else Condition()
    then = _then(checker, fields["then"][1], known) if "then" in fields else None
    stop = mode == "first-match"
    if "continue" in fields:
        value = checker.boolean(fields["continue"][1], "continue")
        if value is not None:
            stop = not value
    if len(checker.errors) > before or name is None or when is None or then is None:
        return None
    return Rule(name, when, then, stop, checker.file, node.start_mark.line + 1, node.start_mark.column + 1)


# -- when ---------------------------------------------------------------------------------------------


def _when(checker: Checker, node: Node, known: Known) -> Condition | None:
    fields = checker.mapping(node, "when", WHEN_KEYS)
    if fields is None:
        return None
    values: dict = {}
    vocabulary = known.vocabulary
    if "source" in fields:
        values["sources"] = frozenset(
            checker.string_list(
                fields["source"][1],
                "when.source",
                lambda v, n, p: references.check_source(checker, v, n, p, known.sources),
                non_empty=True,
            )
        )
    scope = references.Scope.start(values.get("sources"), known.sources, vocabulary)
    for key, (_key_node, value_node) in fields.items():
        path = f"when.{key}"
        if key == "source":
            continue
        if key == "category":
            found = _vocabulary_list(checker, value_node, path, "category", scope, vocabulary)
            values["categories"] = frozenset(fold(v) for v in found)
        elif key == "event":
            found = _vocabulary_list(checker, value_node, path, "event", scope, vocabulary)
            values["events"] = frozenset(fold(v) for v in found)
        elif key == "msg_type":
            if _empty_list(checker, value_node, path):
                continue
            choices = [m.value for m in MsgType]
            picked = [checker.choice(n, p, choices, fold_case=True) for n, p in checker.items(value_node, path)]
            values["msg_types"] = frozenset(MsgType(v) for v in picked if v)
            if values["msg_types"] and all(picked):
                listed = ", ".join(sorted(m.value for m in values["msg_types"]))
                scope.narrow(
                    checker,
                    value_node,
                    path,
                    references.msg_type_producers(vocabulary, values["msg_types"]),
                    f"the message type {listed}",
                    f"le type de message {listed}",
                )
        elif key == "severity":
            word = checker.choice(value_node, path, SEVERITIES, fold_case=True)
            if word:
                values["min_severity"] = Severity.parse(word)
                scope.narrow(
                    checker,
                    value_node,
                    path,
                    references.severity_producers(vocabulary, values["min_severity"]),
                    f"a severity of {word} or more",
                    f"une gravité {word} ou plus",
                )
        elif key == "keywords":
            values.update(_keywords(checker, value_node, path))
        elif key == "regex":
            values["regexes"] = tuple(checker.string_list(value_node, path, lambda v, n, p: _regex(checker, v, n, p)))
        elif key == "roads":
            specs = checker.string_list(value_node, path, lambda v, n, p: _road(checker, v, n, p), non_empty=True)
            values["road_kinds"] = frozenset(s for s in specs if isinstance(s, str))
            values["road_refs"] = frozenset(s for s in specs if isinstance(s, Road))
        elif key == "territories":
            values["territories"] = frozenset(_territories(checker, value_node, path, known, non_empty=True))
        elif key == "attributes":
            values["attributes"] = _attributes(checker, value_node, path, scope, vocabulary)
        elif key == "episode":
            values["episode"] = checker.boolean(value_node, path)
        elif key == "time":
            values["time"] = _time(checker, value_node, path)
    return Condition(**values)


def _vocabulary_list(
    checker: Checker, node: Node, path: str, name: str, scope: references.Scope, vocabulary: Vocabulary
) -> list[str]:
    """Values of an event / category / attribute condition, each checked against what the parsers
    produce; then the rule's scope is narrowed to the kinds of source that produce one of them."""
    producers: set[str] = set()
    failed = False

    def convert(value: str, child: Node, child_path: str) -> str | None:
        nonlocal failed
        kinds = references.check_value(checker, child, child_path, name, value, vocabulary)
        if kinds is None:
            failed = True
            return None
        producers.update(kinds)
        return value

    found = checker.string_list(node, path, convert, non_empty=True)
    if found and not failed:
        what, what_fr = references.label(name)
        listed = ", ".join(repr(v) for v in found)
        scope.narrow(checker, node, path, producers, f"the {what} {listed}", f"{what_fr} {listed}")
    return found


def _keywords(checker: Checker, node: Node, path: str) -> dict:
    if not isinstance(node, MappingNode):
        return {"any_words": tuple(_phrases(checker, node, path))}
    fields = checker.mapping(node, path, ["any", "all", "none"])
    if fields is None:
        return {}
    result = {f"{key}_words": tuple(_phrases(checker, value, f"{path}.{key}")) for key, (_k, value) in fields.items()}
    excluded = result.get("none_words", ())
    if excluded:

        def blocked(phrase: str) -> str | None:
            return next((n for n in excluded if f" {n} " in f" {phrase} "), None)

        required = [(w, blocked(w)) for w in result.get("all_words", ())]
        if any(n for _w, n in required):
            word, none = next((w, n) for w, n in required if n)
            checker.warn(
                fields["all"][1],
                f"{path}.all",
                f"this rule can never fire: {word!r} is required but {none!r} is excluded (keywords.none)",
                f"cette règle ne se déclenchera jamais : {word!r} est exigé mais {none!r} est exclu (keywords.none)",
            )
        elif result.get("any_words") and all(blocked(w) for w in result["any_words"]):
            checker.warn(
                fields["any"][1],
                f"{path}.any",
                "this rule can never fire: every keyword of 'any' contains a word of 'none'",
                "cette règle ne se déclenchera jamais : chaque mot de 'any' contient un mot de 'none'",
            )
    return result


def _phrases(checker: Checker, node: Node, path: str) -> list[str]:
    def convert(value: str, child: Node, child_path: str) -> str | None:
        phrase = normalise_phrase(value)
        if not phrase:
            checker.error(
                child,
                child_path,
                f"keyword {value!r} has no Latin letters or digits to match",
                f"le mot-clé {value!r} n'a ni lettre latine ni chiffre à chercher",
            )
            return None
        if phrase.isdigit():
            checker.error(
                child,
                child_path,
                f'keyword {value!r} is only a number (in a [...] list a comma separates values: quote "7,5 tonnes")',
                f"le mot-clé {value!r} n'est qu'un nombre (dans une liste [...] la virgule sépare les valeurs : "
                'écrivez "7,5 tonnes" entre guillemets)',
            )
            return None
        return phrase

    return list(dict.fromkeys(checker.string_list(node, path, convert)))


def _regex(checker: Checker, value: str, node: Node, path: str) -> re.Pattern[str] | None:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        checker.error(
            node,
            path,
            f"invalid regular expression '{value}': {exc.msg} at position {exc.pos}",
            f"expression régulière invalide '{value}' : {exc.msg} à la position {exc.pos}",
        )
        return None


def _road(checker: Checker, value: str, node: Node, path: str) -> str | Road | None:
    spec = parse_road_spec(value)
    if spec is None:
        checker.error(
            node,
            path,
            f"expected a road kind (D, N, A, C) or a road like D957, got {value!r}",
            f"type de route (D, N, A, C) ou route comme D957 attendu, trouvé {value!r}",
        )
    return spec


def _territories(checker: Checker, node: Node, path: str, known: Known, *, non_empty: bool = False) -> list[str]:
    def convert(value: str, child: Node, child_path: str) -> str | None:
        code = value.upper()
        if known.territories is not None and code not in known.territories:
            listed = ", ".join(sorted(known.territories)) or "none"
            place = (known.places or {}).get(code) or (known.places or {}).get(fold(value))
            if place is not None:
                checker.error(
                    child,
                    child_path,
                    f"{value!r} is a place of territory {place}, not a territory "
                    f"(territories file has {listed}): did you mean {place!r}?",
                    f"{value!r} est un lieu du territoire {place}, pas un territoire "
                    f"(territoires : {listed}) : vouliez-vous dire {place!r} ?",
                )
                return None
            guess = did_you_mean(code, known.territories)
            hint, hint_fr = suggestion(guess)
            checker.error(
                child,
                child_path,
                f"unknown territory {value!r} (territories file has {listed}{hint})",
                f"territoire {value!r} inconnu (territoires : {listed}{hint_fr})",
            )
            return None
        return code

    return checker.string_list(node, path, convert, non_empty=non_empty)


def _attributes(
    checker: Checker, node: Node, path: str, scope: references.Scope, vocabulary: Vocabulary
) -> tuple[tuple[str, frozenset[str]], ...]:
    fields = checker.mapping(node, path, None)
    if not fields:
        return ()
    result = []
    for key, (key_node, value) in fields.items():
        if not references.check_attribute_name(checker, key_node, f"{path}.{key}", key, vocabulary):
            continue
        found = _vocabulary_list(checker, value, f"{path}.{key}", key, scope, vocabulary)
        result.append((key, frozenset(fold(v) for v in found)))
    return tuple(result)


def _time(checker: Checker, node: Node, path: str) -> TimeWindow | None:
    fields = checker.mapping(node, path, ["from", "to", "days"])
    if fields is None:
        return None
    start, end = time(0, 0), time(0, 0)
    ok = True
    for key in ("from", "to"):
        if key not in fields:
            continue
        value_node = fields[key][1]
        raw = value_node.value if hasattr(value_node, "value") and isinstance(value_node.value, str) else None
        match = _CLOCK.match(raw.strip()) if raw is not None else None
        if match is None:
            checker.error(
                value_node,
                f"{path}.{key}",
                f'expected a time like "05:00" (quote it), got {describe(value_node)}',
                f'heure attendue comme "05:00" (entre guillemets), trouvé {describe(value_node)}',
            )
            ok = False
            continue
        parsed = time(int(match.group(1)), int(match.group(2)))
        if key == "from":
            start = parsed
        else:
            end = parsed
    days = frozenset(range(7))
    if "days" in fields and not _empty_list(checker, fields["days"][1], f"{path}.days"):
        picked = [
            checker.choice(n, p, DAYS, fold_case=True) for n, p in checker.items(fields["days"][1], f"{path}.days")
        ]
        days = frozenset(DAYS.index(d) for d in picked if d)
    if start == end and ("from" in fields or "to" in fields):
        checker.error(
            node,
            path,
            "'from' and 'to' are equal: the window would be empty",
            "'from' et 'to' sont égaux : la plage ne s'ouvrirait jamais",
        )
        ok = False
    return TimeWindow(start, end, days) if ok else None


def _empty_list(checker: Checker, node: Node, path: str) -> bool:
    if isinstance(node, SequenceNode) and not node.value:
        checker.error(node, path, "empty list: it would never match; remove the key to accept any value", EMPTY_LIST_FR)
        return True
    return False


# -- then ---------------------------------------------------------------------------------------------


def _then(checker: Checker, node: Node, known: Known) -> Action | None:
    fields = checker.mapping(node, "then", THEN_KEYS, required=["channels"])
    if fields is None:
        return None
    values: dict = {}
    channels: list[str] = []
    for key, (_key_node, value_node) in fields.items():
        path = f"then.{key}"
        if key == "territories":
            values["territories"] = tuple(dict.fromkeys(_territories(checker, value_node, path, known)))
        elif key == "hashtags":
            values["hashtags"] = tuple(
                dict.fromkeys(checker.string_list(value_node, path, lambda v, n, p: _hashtag(checker, v, n, p)))
            )
        elif key == "channels":
            channels = checker.string_list(
                value_node, path, lambda v, n, p: _member(checker, v, n, p, known.channels, "channel"), non_empty=True
            )
            values["channels"] = tuple(dict.fromkeys(channels))
        elif key == "template":
            values["templates"] = _template(checker, value_node, path, known)
        elif key == "priority":
            priority = checker.integer(value_node, path)
            if priority is not None:
                values["priority"] = priority
        elif key == "approve":
            values.update(_approve(checker, value_node, path))
        elif key == "escalate_to":
            authority = checker.string(value_node, path)
            if authority is not None:
                values["escalate_to"] = _member(checker, authority, value_node, path, known.authorities, "authority")
        elif key == "suppress_duplicates":
            values["suppress_window"] = _duration(checker, value_node, path) or 0
        elif key == "episode":
            values["episode_action"] = checker.choice(value_node, path, ("start", "end"))
        elif key == "sms_gsm7":
            values["sms_gsm7"] = bool(checker.boolean(value_node, path))
        elif key == "publish_at":
            values["publish_at"] = checker.choice(value_node, path, ("onset",)) or ""
        elif key == "end_after":
            values["end_after"] = _duration(checker, value_node, path) or 0
    templates = values.get("templates", {})
    if "template" in fields and templates:
        for channel in templates:
            if channel != "default" and channel not in channels:
                checker.error(
                    fields["template"][1],
                    "then.template",
                    f"channel {channel!r} is not in then.channels",
                    f"le canal {channel!r} n'est pas dans then.channels",
                )
    return Action(**values)


APPROVE_OTHERWISE = ("publish", "discard", "escalate")


def _approve(checker: Checker, node: Node, path: str) -> dict:
    """`approve: true`, or `approve: {within: 15m, otherwise: publish|discard|escalate}`."""
    if not isinstance(node, MappingNode):
        return {"approve": bool(checker.boolean(node, path))}
    fields = checker.mapping(node, path, ("within", "otherwise"), required=("within", "otherwise"))
    if not fields or "within" not in fields or "otherwise" not in fields:
        return {}
    within = _duration(checker, fields["within"][1], f"{path}.within")
    otherwise = checker.choice(fields["otherwise"][1], f"{path}.otherwise", APPROVE_OTHERWISE)
    if not within or otherwise is None:
        return {}
    return {"approve": True, "approve_within": within, "approve_otherwise": otherwise}


def _hashtag(checker: Checker, value: str, node: Node, path: str) -> str | None:
    tag = value if value.startswith("#") else f"#{value}"
    if not _HASHTAG.match(tag):
        checker.error(
            node,
            path,
            f"expected a hashtag like #neige (letters, digits, _), got {value!r}",
            f"hashtag attendu comme #neige (lettres, chiffres, _), trouvé {value!r}",
        )
        return None
    return tag


_WHAT_FR = {"channel": "canal", "template": "modèle", "authority": "autorité"}


def _member(
    checker: Checker, value: str, node: Node, path: str, known: Collection[str] | None, what: str
) -> str | None:
    if known is not None and value not in known:
        listed = ", ".join(sorted(known)) or "none"
        guess = did_you_mean(value, known)
        hint, hint_fr = suggestion(guess)
        checker.error(
            node,
            path,
            f"unknown {what} {value!r} (known: {listed}{hint})",
            f"{_WHAT_FR.get(what, what)} {value!r} inconnu (connus : {listed}{hint_fr})",
        )
        return None
    return value


def _template(checker: Checker, node: Node, path: str, known: Known) -> dict[str, str]:
    def check(name: str, value_node: Node, value_path: str) -> str | None:
        return _member(checker, name, value_node, value_path, known.templates, "template")

    if isinstance(node, MappingNode):
        fields = checker.mapping(node, path, None)
        result: dict[str, str] = {}
        for channel, (_k, value_node) in (fields or {}).items():
            name = checker.string(value_node, f"{path}.{channel}")
            if name is not None and check(name, value_node, f"{path}.{channel}") is not None:
                result[channel] = name
        return result
    name = checker.string(node, path)
    if name is None or check(name, node, path) is None:
        return {}
    return {"default": name}


def _duration(checker: Checker, node: Node, path: str) -> int | None:
    raw = node.value.strip().lower() if hasattr(node, "value") and isinstance(node.value, str) else ""
    match = _DURATION.match(raw) if raw else None
    if match is None or not any(match.groups()):
        checker.error(
            node,
            path,
            f"expected a duration like 30m, 2h or 1h30m, got {describe(node)}",
            f"durée attendue comme 30m, 2h ou 1h30m, trouvé {describe(node)}",
        )
        return None
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    return ((d * 24 + h) * 60 + m) * 60 + s
