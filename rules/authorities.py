"""The competence directory's vocabulary: authorities, their topics and contacts, and where a question goes."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from alerts.domain import Item, Road
from rules.text import normalise, normalise_phrase

AUTHORITY_KINDS = ("departement", "prefecture", "dir", "concessionnaire", "commune", "region")
ROAD_KINDS = ("D", "N", "A", "C", "VC", "M")
SOCIAL_NETWORKS = ("mastodon", "x", "bluesky", "facebook", "instagram", "linkedin")


@dataclass(frozen=True, slots=True)
class Topic:
    """One competence of an authority: what it decides on, how citizens word it, which roads it runs."""

    id: str
    label: str  # French, with article, used in answers: "Les interdictions de circulation des poids lourds"
    keywords: tuple[str, ...] = ()
    road_kinds: frozenset[str] = frozenset()
    road_refs: frozenset[Road] = frozenset()
    plural: bool = True  # agreement in answers: "relèvent" / "relève"

    @property
    def manages_roads(self) -> bool:
        return bool(self.road_kinds or self.road_refs)

    def keyword_in(self, normalised_text: str) -> str | None:
        """The longest keyword found in an already normalised (rules.text.normalise) text, or None."""
        best: str | None = None
        for keyword, pattern in _keyword_patterns(self.keywords):
            if (best is None or len(keyword) > len(best)) and pattern.search(normalised_text):
                best = keyword
        return best

    def road_match(self, road: Road) -> int:
        """2 for an explicit reference ("A10"), 1 for a road kind ("A"), 0 when this topic does not run it."""
        if road in self.road_refs:
            return 2
        return 1 if road.kind in self.road_kinds else 0

    def matches_item(self, item: Item) -> bool:
        """Whether a publication is about this topic: a keyword in its title or text, or one of its roads."""
        if self.keyword_in(normalise(f"{item.title} {item.text}")):
            return True
        return any(self.road_match(road) for road in item.roads)


_PATTERN_CACHE: dict[tuple[str, ...], tuple[tuple[str, re.Pattern[str]], ...]] = {}


def _keyword_patterns(keywords: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    cached = _PATTERN_CACHE.get(keywords)
    if cached is None:
        built = []
        for keyword in keywords:
            words = normalise_phrase(keyword).split()
            if words:
                body = " ".join(re.escape(word) + "(?:s|x)?" for word in words)
                built.append((keyword, re.compile(f" {body} ")))
        cached = _PATTERN_CACHE[keywords] = tuple(built)
    return cached


@dataclass(frozen=True, slots=True)
class Contact:
    """Where to warn an authority's webmaster: an email address or a webhook URL (or both)."""

    email: str = ""
    webhook: str = ""


@dataclass(frozen=True, slots=True)
class Authority:
    id: str
    name: str  # with article, as said in French: "la Préfecture de Loir-et-Cher"
    kind: str
    territories: tuple[str, ...]
    topics: tuple[Topic, ...]
    short_name: str = ""  # "la Préfecture"; defaults to name
    places: tuple[str, ...] = ()  # names that point at this authority in a question ("Blois")
    site: str = ""
    social: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    feeds: tuple[str, ...] = ()  # source names in the service configuration
    webmaster: Contact | None = None

    @property
    def short(self) -> str:
        return self.short_name or self.name

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def place_in(self, normalised_text: str) -> bool:
        return any(f" {normalise_phrase(place)} " in normalised_text for place in self.places)


class Reason(str, enum.Enum):
    KEYWORD = "keyword"
    ROAD = "road"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a question goes. `authority` is None when nothing matched (the team answers).

    `in_scope` is True when the operator's own département answers: the question goes to its team and no
    escalation is due. `evidence` is the keyword or the road ("A10") that decided.
    """

    authority: Authority | None
    topic: Topic | None
    in_scope: bool
    reason: Reason
    evidence: str = ""
