"""Deciding which rules fire for an item.

Cost per item does not grow with rules × keywords: the title and text are normalised once
(`rules.text.normalise`), every keyword of every rule sits in one Aho-Corasick automaton, and one scan
gives the set of keywords present. Only rules *anchored* on a found keyword (one of their `all` words,
else their `any` words; filed under their sources, if they name any), rules anchored on the item's source or event, and the few rules with none of these
are then checked in full, in file order. `decide_naive` checks every rule with plain substring searches;
it is the reference the tests and the benchmark compare against.

Templates: when a rule names none, each channel gets "alerte", "mise-a-jour" or "fin-alerte" after the
item's CAP msgType (Alert / Update / Cancel).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import ahocorasick

from alerts.domain import Alert, AlertStatus, Item, MsgType, Road

from .model import Condition, Rule, RuleSet
from .roads import roads_in_text
from .territories import Territories
from .text import fold, normalise

PARIS = ZoneInfo("Europe/Paris")
_DECISION_CACHE = 100_000
DEFAULT_TEMPLATES = {MsgType.ALERT: "alerte", MsgType.UPDATE: "mise-a-jour", MsgType.CANCEL: "fin-alerte"}


@dataclass(frozen=True, slots=True)
class EvalState:
    """What a rule may depend on besides the item: the time and the territories in a snow episode."""

    now: datetime
    episodes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("EvalState.now must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule that fired for one item: what to publish, where, and how."""

    rule: str
    territories: tuple[str, ...]
    hashtags: tuple[str, ...]
    channels: tuple[str, ...]
    templates: Mapping[str, str]  # channel -> template name
    priority: int = 0
    approve: bool = False
    escalate_to: str | None = None
    suppress_window: int = 0  # seconds; 0 = no duplicate suppression
    episode_action: str | None = None  # "start" / "end" / None
    sms_gsm7: bool = False
    publish_at: str = ""  # "onset"
    end_after: int = 0  # seconds

    def to_alert(self, item: Item) -> Alert:
        publish_at = item.onset if self.publish_at == "onset" else None
        start = publish_at or item.sent or datetime.now(timezone.utc)  # end_after counts from there
        return Alert(
            title=item.title,
            text=item.text,
            territories=self.territories,
            hashtags=self.hashtags,
            channels=self.channels,
            severity=item.severity,
            status=AlertStatus.PENDING_APPROVAL if self.approve else AlertStatus.PUBLISHED,
            msg_type=item.msg_type,
            rule=self.rule,
            item_key=item.key,
            link=item.link,
            roads=item.roads or roads_in_text(f"{item.title}\n{item.text}"),
            areas=item.areas,
            geometry=item.geometry,
            templates=dict(self.templates),
            sms_gsm7=self.sms_gsm7,
            expires=item.expires,
            authority=item.authority,
            publish_at=publish_at,
            end_at=start + timedelta(seconds=self.end_after) if self.end_after else None,
        )

    def dedup_key(self, item: Item) -> str:
        """Same rule, territories and text (ignoring case, accents, punctuation) → same key; the caller
        drops a new alert whose key it has seen within `suppress_window` seconds."""
        basis = "\x1f".join((self.rule, ",".join(self.territories), normalise(f"{item.title}\n{item.text}")))
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()


class _View:
    """Facts about one item, computed at most once per evaluation."""

    __slots__ = ("item", "state", "norm", "_territories", "_roads", "_local", "_engine")

    def __init__(self, engine: "Engine", item: Item, state: EvalState, norm: str):
        self._engine = engine
        self.item = item
        self.state = state
        self.norm = norm
        self._territories: tuple[str, ...] | None = None
        self._roads: tuple[Road, ...] | None = None
        self._local: datetime | None = None

    @property
    def territories(self) -> tuple[str, ...]:
        if self._territories is None:
            terr = self._engine.territories
            self._territories = terr.resolve(self.item, self.norm) if terr is not None else ()
        return self._territories

    @property
    def roads(self) -> tuple[Road, ...]:
        if self._roads is None:
            self._roads = self.item.roads or roads_in_text(f"{self.item.title}\n{self.item.text}")
        return self._roads

    @property
    def local(self) -> datetime:
        if self._local is None:
            self._local = self.state.now.astimezone(PARIS)
        return self._local


def _matches_rest(when: Condition, then_territories: tuple[str, ...], view: _View) -> bool:
    """Every condition except keywords, cheapest first."""
    item = view.item
    if when.sources is not None and item.source not in when.sources:
        return False
    if when.msg_types is not None and item.msg_type not in when.msg_types:
        return False
    if when.categories is not None and fold(item.category) not in when.categories:
        return False
    if when.events is not None and fold(item.event) not in when.events:
        return False
    if when.min_severity is not None and item.severity < when.min_severity:
        return False
    for name, accepted in when.attributes:
        value = item.attributes.get(name)
        if value is None or fold(str(value)) not in accepted:
            return False
    if when.time is not None and not when.time.contains(view.local):
        return False
    if when.territories is not None and when.territories.isdisjoint(view.territories):
        return False
    if when.episode is not None:
        concerned = set(view.territories).union(then_territories)
        if when.episode == concerned.isdisjoint(view.state.episodes):
            return False
    if when.has_roads:
        if not any(r in when.road_refs or r.kind in when.road_kinds for r in view.roads):
            return False
    if when.regexes:  # title and text apart, so that ^ and $ mean the start and end of each
        if not any(p.search(item.title) or p.search(item.text) for p in when.regexes):
            return False
    return True


Check = Callable[[_View], bool]


def _compile(when: Condition, then_territories: tuple[str, ...]) -> tuple[Check, ...]:
    """The non-keyword conditions a rule actually has, as small predicates in `_matches_rest`'s order;
    the indexed engine runs these, the naive one `_matches_rest`, and the tests compare both."""
    checks: list[Check] = []
    if when.sources is not None:
        sources = when.sources
        checks.append(lambda v: v.item.source in sources)
    if when.msg_types is not None:
        msg_types = when.msg_types
        checks.append(lambda v: v.item.msg_type in msg_types)
    if when.categories is not None:
        categories = when.categories
        checks.append(lambda v: fold(v.item.category) in categories)
    if when.events is not None:
        events = when.events
        checks.append(lambda v: fold(v.item.event) in events)
    if when.min_severity is not None:
        minimum = when.min_severity
        checks.append(lambda v: v.item.severity >= minimum)
    if (
        when.attributes
        or when.time is not None
        or when.territories is not None
        or when.episode is not None
        or when.has_roads
        or when.regexes
    ):
        rest = Condition(
            attributes=when.attributes,
            time=when.time,
            territories=when.territories,
            episode=when.episode,
            road_kinds=when.road_kinds,
            road_refs=when.road_refs,
            regexes=when.regexes,
        )
        checks.append(lambda v: _matches_rest(rest, then_territories, v))
    return tuple(checks)


def _all_hold(checks: tuple[Check, ...], view: _View) -> bool:
    for check in checks:
        if not check(view):
            return False
    return True


class Engine:
    """Immutable once built; `RuleBook` swaps whole engines on reload."""

    def __init__(self, ruleset: RuleSet, territories: Territories | None = None):
        self.ruleset = ruleset
        self.rules: tuple[Rule, ...] = ruleset.rules
        self.territories = territories
        ids: dict[str, int] = {}

        def idset(words: Iterable[str]) -> frozenset[int]:
            return frozenset(ids.setdefault(w, len(ids)) for w in words)

        self._any = [idset(r.when.any_words) for r in self.rules]
        self._all = [idset(r.when.all_words) for r in self.rules]
        self._none = [idset(r.when.none_words) for r in self.rules]
        # word id -> source (None: any source) -> rule indexes
        by_word: dict[int, dict[str | None, list[int]]] = {}

        def anchor_on(word: str, index: int, sources: frozenset[str] | None) -> None:
            postings = by_word.setdefault(ids[word], {})
            for source in sources if sources else (None,):
                postings.setdefault(source, []).append(index)

        self._by_source: dict[str, list[int]] = {}
        self._by_event: dict[str, list[int]] = {}
        always: list[int] = []
        for index, rule in enumerate(self.rules):
            when = rule.when
            if when.all_words:  # one required word is enough to find the rule: the longest, likely rarest
                anchor = max(when.all_words, key=len)
                anchor_on(anchor, index, when.sources)
            elif when.any_words:
                for word in when.any_words:
                    anchor_on(word, index, when.sources)
            elif when.sources:
                for source in when.sources:
                    self._by_source.setdefault(source, []).append(index)
            elif when.events:
                for event in when.events:
                    self._by_event.setdefault(event, []).append(index)
            else:
                always.append(index)
        self._by_word = {k: {src: tuple(v) for src, v in p.items()} for k, p in by_word.items()}
        self._compiled = [
            (rule, self._any[i], self._all[i], self._none[i], _compile(rule.when, rule.then.territories))
            for i, rule in enumerate(self.rules)
        ]
        self._always = frozenset(always)
        # Decisions depend only on (rule, resolved territories, msg_type): built once, shared (immutable).
        self._decisions: dict[tuple[int, tuple[str, ...], MsgType], Decision] = {}
        self._automaton = None
        if ids:
            automaton = ahocorasick.Automaton()
            for word, word_id in ids.items():
                automaton.add_word(f" {word} ", word_id)
            automaton.make_automaton()
            self._automaton = automaton

    def __len__(self) -> int:
        return len(self.rules)

    def decide(self, item: Item, state: EvalState) -> list[Decision]:
        norm = normalise(f"{item.title}\n{item.text}")
        found: set[int] = set()
        if self._automaton is not None:
            found = {word_id for _end, word_id in self._automaton.iter(norm)}
        candidates = set(self._always)
        by_word = self._by_word
        source = item.source
        for word_id in found:
            postings = by_word.get(word_id)
            if postings:
                candidates.update(postings.get(None, ()))
                candidates.update(postings.get(source, ()))
        candidates.update(self._by_source.get(item.source, ()))
        if self._by_event:
            candidates.update(self._by_event.get(fold(item.event), ()))
        view = _View(self, item, state, norm)
        decisions: list[Decision] = []
        compiled = self._compiled
        for index in sorted(candidates):
            rule, any_ids, all_ids, none_ids, checks = compiled[index]
            if any_ids and found.isdisjoint(any_ids):
                continue
            if not all_ids <= found or not found.isdisjoint(none_ids):
                continue
            if checks and not _all_hold(checks, view):
                continue
            decisions.append(self._decision_for(index, view))
            if rule.stop:
                break
        return decisions

    def decide_naive(self, item: Item, state: EvalState) -> list[Decision]:
        """Reference implementation: every rule, every keyword, one substring search each."""
        norm = normalise(f"{item.title}\n{item.text}")
        view = _View(self, item, state, norm)
        decisions: list[Decision] = []
        for index, rule in enumerate(self.rules):
            when = rule.when
            if when.any_words and not any(f" {w} " in norm for w in when.any_words):
                continue
            if not all(f" {w} " in norm for w in when.all_words):
                continue
            if any(f" {w} " in norm for w in when.none_words):
                continue
            if not _matches_rest(when, rule.then.territories, view):
                continue
            decisions.append(self._decision_for(index, view))
            if rule.stop:
                break
        return decisions

    def _decision_for(self, index: int, view: _View) -> Decision:
        key = (index, view.territories, view.item.msg_type)
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= _DECISION_CACHE:
                self._decisions.clear()
            decision = self._decisions[key] = self._decision(self.rules[index], view)
        return decision

    def _decision(self, rule: Rule, view: _View) -> Decision:
        then = rule.then
        codes = (*view.territories, *then.territories)
        if self.territories is not None:
            territories = self.territories.ordered(codes)
            tags = list(self.territories.hashtags(territories))
        else:
            territories = tuple(dict.fromkeys(codes))
            tags = []
        seen = {t.casefold() for t in tags}
        for tag in then.hashtags:
            if tag.casefold() not in seen:
                seen.add(tag.casefold())
                tags.append(tag)
        fallback = then.templates.get("default", DEFAULT_TEMPLATES[view.item.msg_type])
        templates = MappingProxyType({channel: then.templates.get(channel, fallback) for channel in then.channels})
        return Decision(
            rule=rule.name,
            territories=territories,
            hashtags=tuple(tags),
            channels=then.channels,
            templates=templates,
            priority=then.priority,
            approve=then.approve,
            escalate_to=then.escalate_to,
            suppress_window=then.suppress_window,
            episode_action=then.episode_action,
            sms_gsm7=then.sms_gsm7,
            publish_at=then.publish_at,
            end_after=then.end_after,
        )
