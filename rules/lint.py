"""Rules that load but can never fire because an earlier rule takes every item they would take.

Rules are read top to bottom; a rule that stops the reading (`first-match` mode, or `continue: false`)
*shadows* a later rule when every item the later rule accepts is also accepted by it. `covers(a, b)`
decides that conservatively, condition by condition: when it is not sure, it says no (no false warning).
The other never-firing cases (a value no configured source produces, conditions that contradict each
other, keywords both required and excluded) are found while the rule is read (rules.loader).
"""

from __future__ import annotations

from typing import TypeVar

from .model import Condition, Rule, RuleSet
from .yamlcheck import RuleError


def never_firing(ruleset: RuleSet) -> list[RuleError]:
    warnings: list[RuleError] = []
    stoppers: list[Rule] = []
    for rule in ruleset.rules:
        shadow = next((s for s in stoppers if covers(s, rule)), None)
        if shadow is not None:
            where = f"{shadow.file}:{shadow.line}" if shadow.file != rule.file else f"line {shadow.line}"
            where_fr = f"{shadow.file}:{shadow.line}" if shadow.file != rule.file else f"ligne {shadow.line}"
            warnings.append(
                RuleError(
                    rule.file,
                    rule.line,
                    rule.column,
                    f"rule {rule.name!r} can never fire: rule {shadow.name!r} ({where}) comes first, takes every "
                    "item it would take and stops there (move it above, or give the earlier rule continue: true)",
                    "warning",
                    f"la règle {rule.name!r} ne se déclenchera jamais : la règle {shadow.name!r} ({where_fr}) passe "
                    "avant, prend tous les messages qu'elle prendrait et arrête la lecture (placez-la au-dessus, ou "
                    "ajoutez continue: true à la précédente)",
                )
            )
        if rule.stop:
            stoppers.append(rule)
    return warnings


def covers(first: Rule, later: Rule) -> bool:
    """True when every item that `later` accepts, `first` accepts too (in any state and at any time)."""
    a, b = first.when, later.when
    return (
        _superset(a.sources, b.sources)
        and _superset(a.categories, b.categories)
        and _superset(a.events, b.events)
        and _superset(a.msg_types, b.msg_types)
        and (a.min_severity is None or (b.min_severity is not None and b.min_severity >= a.min_severity))
        and _keywords_cover(a, b)
        and (not a.regexes or {p.pattern for p in a.regexes} == {p.pattern for p in b.regexes})
        and _roads_cover(a, b)
        and _superset(a.territories, b.territories)
        and _attributes_cover(a, b)
        and _time_covers(a, b)
        and (a.episode is None or (a.episode == b.episode and first.then.territories == later.then.territories))
    )


T = TypeVar("T")


def _superset(a: frozenset[T] | None, b: frozenset[T] | None) -> bool:
    """Condition a (None: anything) accepts whatever condition b accepts."""
    return a is None or (b is not None and b <= a)


def _contains(phrase: str, word: str) -> bool:
    return f" {word} " in f" {phrase} "


def _keywords_cover(a: Condition, b: Condition) -> bool:
    # every word a requires is required by b (or is part of a phrase b requires)
    if not all(any(_contains(w, x) for w in b.all_words) for x in a.all_words):
        return False
    # an item b accepts contains one of a's `any` words
    if a.any_words:
        via_all = any(_contains(w, x) for w in b.all_words for x in a.any_words)
        via_any = bool(b.any_words) and all(any(_contains(w, x) for x in a.any_words) for w in b.any_words)
        if not (via_all or via_any):
            return False
    # an item b accepts contains none of a's excluded words: b excludes each (or a word inside it)
    return all(any(_contains(n, m) for m in b.none_words) for n in a.none_words)


def _roads_cover(a: Condition, b: Condition) -> bool:
    if not a.has_roads:
        return True
    if not b.has_roads:
        return False
    return b.road_kinds <= a.road_kinds and all(r in a.road_refs or r.kind in a.road_kinds for r in b.road_refs)


def _time_covers(a: Condition, b: Condition) -> bool:
    """a's window holds b's (same days; windows that do not run over midnight), or a has none."""
    if a.time is None or a.time == b.time:
        return True
    if b.time is None or not b.time.days <= a.time.days:
        return False
    x, y = a.time, b.time
    if x.start > x.end or y.start > y.end:
        return False
    return x.start <= y.start and y.end <= x.end


def _attributes_cover(a: Condition, b: Condition) -> bool:
    later = dict(b.attributes)
    return all(name in later and later[name] <= accepted for name, accepted in a.attributes)
