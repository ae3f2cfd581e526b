"""What the parsers can put in an item, per source kind: the words a rule's `when:` may compare against.

Everything here is read from the parser modules' own constants (alerts.ingest.*), so that a new
vigilance phenomenon or DATEX event is known to the rule checker the day the parser learns it. CAP events,
RSS categories and CAP awareness types are free text: their vocabulary is *open* and holds what the
configured sources were seen to publish (`seen_in_sources` reads the `file:` sources); a value close to
one of those words but not equal is still reported as a likely typo.

Values are compared as the engine compares them: `rules.text.fold` (case and accents ignored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from alerts.domain import Item, MsgType, Severity
from alerts.ingest import KINDS, SourceSpec, cap, datex2, geojson, vigilance
from alerts.ingest.datex2_fr import RECORD_TYPES as DATEX2_RECORD_TYPES

from .text import fold

log = logging.getLogger("crieur.rules")


@dataclass(frozen=True, slots=True)
class Words:
    """Values a field may take. closed: nothing else can ever appear; open: free text, these were seen."""

    spellings: tuple[str, ...] = ()
    closed: bool = True

    def has(self, value: str) -> bool:
        folded = fold(value)
        return any(fold(s) == folded for s in self.spellings)

    def merged(self, other: "Words") -> "Words":
        return Words(tuple(dict.fromkeys((*self.spellings, *other.spellings))), self.closed and other.closed)


NOTHING = Words(("",))  # the field is always empty for this kind
FREE = Words((), closed=False)


@dataclass(frozen=True, slots=True)
class KindWords:
    """What one kind of source (rss, cap, datex2...) can produce."""

    kind: str
    events: Words
    categories: Words
    msg_types: frozenset[MsgType]
    max_severity: Severity
    attributes: Mapping[str, Words] = field(default_factory=dict)

    def field(self, name: str) -> Words | None:
        """events / categories, or an attribute (None: this kind never sets that attribute)."""
        if name == "event":
            return self.events
        if name == "category":
            return self.categories
        return self.attributes.get(name)


def _words(values: Iterable[object], closed: bool = True) -> Words:
    return Words(tuple(dict.fromkeys(str(v) for v in values)), closed)


def _parser_words() -> dict[str, KindWords]:
    """One entry per parser module, from its constants."""
    datex_events = sorted({event for event, _category in datex2.CLASSES})
    datex_categories = sorted({category for _event, category in datex2.CLASSES})
    rss = KindWords("rss", NOTHING, FREE, frozenset({MsgType.ALERT}), Severity.UNKNOWN)
    return {
        "rss": rss,
        "cap": KindWords(
            "cap",
            FREE,
            _words(cap.CATEGORIES),
            frozenset(MsgType),
            Severity.EXTREME,
            {**{name: FREE for name in cap.ATTRIBUTES}, "colour": _words(cap.COLOURS), "status": _words(cap.STATUSES)},
        ),
        "datex2": KindWords(
            "datex2",
            _words(datex_events),
            _words(datex_categories),
            frozenset(MsgType),
            Severity.EXTREME,
            {
                **{name: FREE for name in datex2.ATTRIBUTES},
                "record_type": _words(DATEX2_RECORD_TYPES),
                "validity_status": _words(datex2.VALIDITY_STATUSES),
                "hgv": _words(["true"]),
            },
        ),
        "geojson": KindWords(
            "geojson",
            _words([geojson.EVENT]),
            _words([geojson.CATEGORY]),
            frozenset({MsgType.ALERT, MsgType.CANCEL}),
            max(geojson.DEFAULT_STATES.values()),
            {**{name: FREE for name in geojson.ATTRIBUTES}, "state": _words(geojson.DEFAULT_STATES, closed=False)},
        ),
        "vigilance": KindWords(
            "vigilance",
            _words(vigilance.PHENOMENA.values()),
            _words(["Met"]),
            frozenset({MsgType.ALERT, MsgType.CANCEL}),
            max(vigilance.SEVERITIES.values()),
            {
                **{name: FREE for name in vigilance.ATTRIBUTES},
                "colour": _words(vigilance.COLOURS.values()),
                "phenomenon": _words(vigilance.PHENOMENA.values()),
                "colour_id": _words(vigilance.COLOURS),
                "phenomenon_id": _words(vigilance.PHENOMENA),
            },
        ),
    }


_PARSERS = _parser_words()


def parser_of(kind: str) -> str:
    """Source kind → the parser that reads it ("atom" → "rss", "csv" → "geojson")."""
    return KINDS[kind]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Per source kind, the parsers' words plus what the configured sources were seen to publish."""

    kinds: Mapping[str, KindWords]

    @classmethod
    def from_parsers(cls, seen: Iterable[Item] = (), kinds_of: Mapping[str, str] | None = None) -> "Vocabulary":
        """`seen`: items read from the configured sources; `kinds_of`: source name → parser (`parser_of`)."""
        kinds = dict(_PARSERS)
        extra: dict[str, dict[str, list[str]]] = {}
        for item in seen:
            kind = (kinds_of or {}).get(item.source)
            if kind is None:
                continue
            bucket = extra.setdefault(kind, {})
            bucket.setdefault("event", []).append(item.event)
            bucket.setdefault("category", []).append(item.category)
            for name, value in item.attributes.items():
                if isinstance(value, str) and len(value) <= 80:
                    bucket.setdefault(name, []).append(value)
        for kind, found in extra.items():
            base = kinds[kind]
            attributes = dict(base.attributes)
            for name, values in found.items():
                if name in attributes and not attributes[name].closed:
                    attributes[name] = attributes[name].merged(_words(v for v in values if v))
            kinds[kind] = KindWords(
                kind,
                base.events
                if base.events.closed
                else base.events.merged(_words(v for v in found.get("event", []) if v)),
                base.categories
                if base.categories.closed
                else base.categories.merged(_words(v for v in found.get("category", []) if v)),
                base.msg_types,
                base.max_severity,
                attributes,
            )
        return cls(kinds)

    def attribute_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for words in self.kinds.values() for name in words.attributes))

    def producers(self, name: str, value: str, kinds: Iterable[str]) -> tuple[str, ...]:
        """The kinds (among `kinds`) whose items may have `value` in field `name`."""
        found = []
        for kind in kinds:
            words = self.kinds[kind].field(name)
            if words is not None and (words.has(value) or not words.closed):
                found.append(kind)
        return tuple(found)

    def exact_producers(self, name: str, value: str, kinds: Iterable[str]) -> tuple[str, ...]:
        """Kinds that list `value` itself (not merely accept free text)."""
        return tuple(k for k in kinds if (w := self.kinds[k].field(name)) is not None and w.has(value))

    def spellings(self, name: str, kinds: Iterable[str]) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(s for k in kinds if (w := self.kinds[k].field(name)) is not None for s in w.spellings if s)
        )

    def closed(self, name: str, kinds: Iterable[str]) -> bool:
        return all(w.closed for k in kinds if (w := self.kinds[k].field(name)) is not None)


def seen_in_sources(sources: Iterable[SourceSpec]) -> list[Item]:
    """Items of the configured `file:` sources as they stand now (remote sources are not fetched by a
    check). A document that cannot be read adds nothing: the source's own health reports it."""
    from alerts.ingest import ParseError, parse
    from alerts.ingest.fetch import _CONTENT_TYPES, _file_path

    items: list[Item] = []
    for spec in sources:
        if not spec.url.lower().startswith("file:"):
            continue
        path = _file_path(spec)
        try:
            body = path.read_bytes()
            items.extend(parse(spec, body, _CONTENT_TYPES.get(path.suffix.lower(), "")))
        except (OSError, ParseError) as exc:
            log.debug("source %s not read for the rule check: %s", spec.name, exc)
    return items
