"""Validated rules, as the engine uses them. Built by `rules.loader`; immutable."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Mapping

from alerts.domain import MsgType, Road, Severity

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Local (Europe/Paris) times from `start` (included) to `end` (excluded) on `days` (0 = Monday).

    A window whose end is before its start runs over midnight ("22:00" to "05:00"); its early-morning part
    belongs to the day it started, so `days: [fri]` covers Saturday 02:00."""

    start: time
    end: time
    days: frozenset[int] = frozenset(range(7))

    def contains(self, local: datetime) -> bool:
        now = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.start <= self.end:
            return self.start <= now < self.end and weekday in self.days
        if now >= self.start:
            return weekday in self.days
        if now < self.end:
            return (weekday - 1) % 7 in self.days
        return False


@dataclass(frozen=True, slots=True)
class Condition:
    """`when:` of a rule. None / empty means "no condition on this"."""

    sources: frozenset[str] | None = None
    categories: frozenset[str] | None = None  # casefolded
    events: frozenset[str] | None = None  # casefolded
    msg_types: frozenset[MsgType] | None = None
    min_severity: Severity | None = None
    any_words: tuple[str, ...] = ()  # normalised phrases (rules.text.normalise_phrase)
    all_words: tuple[str, ...] = ()
    none_words: tuple[str, ...] = ()
    regexes: tuple[re.Pattern[str], ...] = ()
    road_kinds: frozenset[str] = frozenset()
    road_refs: frozenset[Road] = frozenset()
    territories: frozenset[str] | None = None
    attributes: tuple[tuple[str, frozenset[str]], ...] = ()  # (name, casefolded accepted values)
    episode: bool | None = None
    time: TimeWindow | None = None

    @property
    def has_roads(self) -> bool:
        return bool(self.road_kinds or self.road_refs)


@dataclass(frozen=True, slots=True)
class Action:
    """`then:` of a rule."""

    territories: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    templates: Mapping[str, str] = field(default_factory=dict)  # channel name or "default" -> template
    priority: int = 0
    approve: bool = False
    # `approve: {within: 15m, otherwise: publish|discard|escalate}`: what happens when nobody decided in
    # time (alerts.oncall); 0 / "": the alert waits for a person however long it takes.
    approve_within: int = 0  # seconds
    approve_otherwise: str = ""
    escalate_to: str | None = None
    suppress_window: int = 0  # seconds
    episode_action: str | None = None  # "start" / "end"
    sms_gsm7: bool = False
    publish_at: str = ""  # "onset": not before the item's onset (alerts.schedule)
    end_after: int = 0  # seconds after publication, its "fin d'alerte" goes out; 0: never by itself


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: Condition
    then: Action
    stop: bool  # True: evaluation stops after this rule fires (the file's mode and `continue:` decide)
    file: str = ""
    line: int = 0
    column: int = 0


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rules)
