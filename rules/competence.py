"""Who is responsible for what: the competence directory, question routing and escalation to webmasters.

A citizen's question ("les poids lourds peuvent-ils rouler ?", "l'A10 est-elle fermée ?", "ma rue n'est
pas déneigée à Blois") is routed to the authority that decides on it. Crieur answers at once with what
that authority has published, and warns its webmaster, above all when it has published nothing.

Routing policy (what wins when a question matches several authorities), in this order:

1. A *subject* topic — one defined by keywords only, such as the préfecture's heavy-goods-vehicle bans,
   school transport or a commune's streets — matched by a keyword. The question is about a decision,
   whichever road it is taken on: "les poids lourds sont-ils interdits sur l'A10 ?" → préfecture.
2. A road named in the question, through the topics that list road patterns; an explicit reference
   ("A10") beats a road kind ("A"). The manager of the road answers for its state: "l'A10 est-elle
   déneigée ?" → the motorway company, although "déneigée" is also a département word.
3. A *road manager* topic (keywords and road patterns) matched by a keyword without any road named:
   "la route de Vendôme est-elle salée ?" → the département, which runs most roads.
4. Nothing: the question goes to the operator's team (`in_scope`).

Ties are broken by: the question names one of the authority's places ("Blois", "Eure-et-Loir"); the
longer matched keyword; the authority shares a territory with the operator's own département; file order.
An authority of kind "commune" that lists places is only considered when one of them is named, so "ma rue"
without a town goes to a generic "votre mairie" entry if the file has one.

Keywords are matched on accent- and case-folded whole words (rules.text); each word also matches its
plural in s or x ("poids lourd" matches "poids lourds").
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from types import MappingProxyType

from yaml.nodes import Node

from alerts.domain import Item, Road
from rules.roads import parse_road_spec, roads_in_text
from rules.text import normalise, normalise_phrase
from rules.yamlcheck import Checker, ValidationFailed, compose, display_name

__all__ = [
    "AUTHORITY_KINDS",
    "Authority",
    "Contact",
    "Directory",
    "DirectoryError",
    "Escalation",
    "EscalationKey",
    "Reason",
    "Routing",
    "Topic",
    "escalation_key",
    "escalation_window",
    "sign_ack",
    "verify_ack",
]

AUTHORITY_KINDS = ("departement", "prefecture", "dir", "concessionnaire", "commune", "region")
ROAD_KINDS = ("D", "N", "A", "C", "VC", "M")
SOCIAL_NETWORKS = ("mastodon", "x", "bluesky", "facebook", "instagram", "linkedin")

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}$")
_URL = re.compile(r"^https?://[^\s/]+\S*$")
_TERRITORY = re.compile(r"^(\d{2,3}|2[AB])$")


class DirectoryError(ValidationFailed):
    """The authorities file did not validate; `errors` lists every problem as file:line:column: field."""


# --------------------------------------------------------------------------------------------- model


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


# ----------------------------------------------------------------------------------------- directory


class Directory:
    """The authorities of a service's territories, loaded from one YAML file."""

    def __init__(self, authorities: Iterable[Authority], self_id: str, *, source: str = "<memory>"):
        self.authorities: tuple[Authority, ...] = tuple(authorities)
        self.source = source
        by_id = {a.id: a for a in self.authorities}
        if len(by_id) != len(self.authorities):
            raise ValueError("authority ids must be unique")
        if self_id not in by_id:
            raise ValueError(f"self authority {self_id!r} is not in the directory")
        self._by_id = by_id
        self.self_id = self_id

    @property
    def own(self) -> Authority:
        """The operator's own département."""
        return self._by_id[self.self_id]

    def get(self, authority_id: str) -> Authority | None:
        return self._by_id.get(authority_id)

    def __getitem__(self, authority_id: str) -> Authority:
        return self._by_id[authority_id]

    def __iter__(self) -> Iterator[Authority]:
        return iter(self.authorities)

    def __len__(self) -> int:
        return len(self.authorities)

    def unknown_feeds(self, sources: Collection[str]) -> list[str]:
        """Feed names used by authorities that the service configuration does not define."""
        known = set(sources)
        return sorted({f for a in self.authorities for f in a.feeds if f not in known})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Directory":
        """Read an authorities file; raises DirectoryError listing every problem as file:line:column."""
        root, errors = compose(path)
        if errors:
            raise DirectoryError(errors)
        checker = Checker(display_name(path))
        if root is None:
            checker.error(None, "", "empty file: expected keys 'self' and 'authorities'")
            raise DirectoryError(checker.errors)
        directory = _read_directory(checker, root)
        if checker.errors or directory is None:
            raise DirectoryError(checker.errors)
        return directory

    # ------------------------------------------------------------------------------------- routing

    def route(
        self, text: str, territories: Collection[str] = (), roads: Collection[Road] = ()
    ) -> Routing:
        """Decide who answers a citizen's question (see the module docstring for the policy).

        `territories` restricts the candidates (the citizen's subscriptions, the channel's territory);
        `roads` adds roads already found by the caller to those read in `text`.
        """
        norm = normalise(text or "")
        all_roads = tuple(dict.fromkeys([*roads, *roads_in_text(text or "")]))
        wanted = set(territories)
        home = set(self.own.territories)
        candidates: list[tuple[int, Authority, bool]] = []
        for order, authority in enumerate(self.authorities):
            if wanted and not wanted.intersection(authority.territories):
                continue
            named = authority.place_in(norm)
            if authority.kind == "commune" and authority.places and not named:
                continue
            candidates.append((order, authority, named))

        def local(order: int, authority: Authority) -> tuple[bool, int]:
            """Last tie-breakers: shares a territory with the operator, then file order."""
            return (bool(home.intersection(authority.territories)), -order)

        # 1. subject topics matched by keyword, 3. road-manager topics matched by keyword.
        subject: list[tuple[tuple, Authority, Topic, str]] = []
        managed: list[tuple[tuple, Authority, Topic, str]] = []
        for order, authority, named in candidates:
            for topic in authority.topics:
                keyword = topic.keyword_in(norm)
                if keyword is None:
                    continue
                rank = (named, len(normalise_phrase(keyword)), *local(order, authority))
                (managed if topic.manages_roads else subject).append((rank, authority, topic, keyword))
        if subject:
            _, authority, topic, keyword = max(subject, key=lambda c: c[0])
            return self._routing(authority, topic, Reason.KEYWORD, keyword)

        # 2. roads, in the order the question names them.
        for road in all_roads:
            by_road = [
                ((topic.road_match(road), named, *local(order, authority)), authority, topic)
                for order, authority, named in candidates
                for topic in authority.topics
                if topic.road_match(road)
            ]
            if by_road:
                _, authority, topic = max(by_road, key=lambda c: c[0])
                return self._routing(authority, topic, Reason.ROAD, str(road))

        if managed:
            _, authority, topic, keyword = max(managed, key=lambda c: c[0])
            return self._routing(authority, topic, Reason.KEYWORD, keyword)
        return Routing(None, None, True, Reason.NONE)

    def _routing(self, authority: Authority, topic: Topic, reason: Reason, evidence: str) -> Routing:
        return Routing(authority, topic, authority.id == self.self_id, reason, evidence)

    def publication_for(self, routing: Routing, items: Iterable[Item], now: datetime) -> Item | None:
        """What the routed authority has published on the routed topic (None when nothing matched)."""
        if routing.authority is None or routing.topic is None:
            return None
        return self.latest_publication(routing.authority, routing.topic, items, now)

    def latest_publication(
        self, authority: Authority, topic: Topic, items: Iterable[Item], now: datetime
    ) -> Item | None:
        """The authority's latest current publication on `topic`, or None (the information gap).

        Only items from the authority's feeds count; withdrawn, expired and superseded ones (referenced by
        a later Update or Cancel from the same source) are skipped. Latest means most recently sent.
        """
        feeds = set(authority.feeds)
        own = [item for item in items if item.source in feeds]
        superseded = {(item.source, ref) for item in own for ref in _referenced_ids(item.references)}
        best: Item | None = None
        for item in own:
            if (item.source, item.external_id) in superseded or not item.is_current(now):
                continue
            if not topic.matches_item(item):
                continue
            if best is None or _sent_key(item) > _sent_key(best):
                best = item
        return best


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _sent_key(item: Item) -> datetime:
    sent = item.sent or item.onset
    if sent is None:
        return _EPOCH
    return sent if sent.tzinfo else sent.replace(tzinfo=timezone.utc)


def _referenced_ids(references: Iterable[str]) -> Iterable[str]:
    """CAP references are "sender,identifier,sent"; other formats give the identifier alone."""
    for reference in references:
        parts = reference.split(",")
        yield parts[1].strip() if len(parts) == 3 else reference.strip()


# ------------------------------------------------------------------------------------ file reading

_AUTHORITY_KEYS = (
    "id", "name", "short_name", "kind", "territories", "places", "topics", "site", "social", "feeds",
    "webmaster",
)
_TOPIC_KEYS = ("id", "label", "keywords", "roads", "plural")


def _read_directory(checker: Checker, root: Node) -> Directory | None:
    top = checker.mapping(root, "", ("self", "authorities"), required=("self", "authorities"))
    if top is None:
        return None
    self_id = checker.string(top["self"][1], "self") if "self" in top else None
    authorities: list[Authority] = []
    seen: dict[str, Node] = {}
    if "authorities" in top:
        for node, path in checker.items(top["authorities"][1], "authorities", scalar_ok=False):
            authority = _read_authority(checker, node, path)
            if authority is None:
                continue
            if authority.id in seen:
                checker.error(node, f"{path}.id", f"duplicate authority id {authority.id!r}")
                continue
            seen[authority.id] = node
            authorities.append(authority)
    if self_id is not None and authorities:
        own = next((a for a in authorities if a.id == self_id), None)
        if own is None:
            checker.error(top["self"][1], "self", f"no authority has id {self_id!r}")
        elif own.kind != "departement":
            checker.error(top["self"][1], "self", f"{self_id!r} is a {own.kind}, expected a departement")
    if checker.errors or self_id is None:
        return None
    return Directory(authorities, self_id, source=checker.file)


def _read_authority(checker: Checker, node: Node, path: str) -> Authority | None:
    fields = checker.mapping(node, path, _AUTHORITY_KEYS, required=("id", "name", "kind", "territories", "topics"))
    if fields is None:
        return None
    before = len(checker.errors)

    def value(key: str) -> Node | None:
        return fields[key][1] if key in fields else None

    authority_id = _identifier(checker, value("id"), f"{path}.id") if "id" in fields else None
    label = f"{path}({authority_id})" if authority_id else path
    name = checker.string(value("name"), f"{label}.name") if "name" in fields else None
    short_name = checker.string(value("short_name"), f"{label}.short_name") if "short_name" in fields else ""
    kind = checker.choice(value("kind"), f"{label}.kind", AUTHORITY_KINDS) if "kind" in fields else None
    territories: list[str] = []
    if "territories" in fields:
        territories = checker.string_list(value("territories"), f"{label}.territories", partial(_territory, checker))
        if not territories and len(checker.errors) == before:
            checker.error(value("territories"), f"{label}.territories", "expected at least one territory")
    places = checker.string_list(value("places"), f"{label}.places") if "places" in fields else []
    site = _url(checker, value("site"), f"{label}.site") if "site" in fields else ""
    social = _social(checker, value("social"), f"{label}.social") if "social" in fields else {}
    feeds = checker.string_list(value("feeds"), f"{label}.feeds") if "feeds" in fields else []
    webmaster = _contact(checker, value("webmaster"), f"{label}.webmaster") if "webmaster" in fields else None
    topics: list[Topic] = []
    if "topics" in fields:
        topic_nodes = checker.items(value("topics"), f"{label}.topics", scalar_ok=False)
        if not topic_nodes and len(checker.errors) == before:
            checker.error(value("topics"), f"{label}.topics", "expected at least one topic")
        for topic_node, topic_path in topic_nodes:
            topic = _read_topic(checker, topic_node, topic_path)
            if topic is None:
                continue
            if any(t.id == topic.id for t in topics):
                checker.error(topic_node, f"{topic_path}.id", f"duplicate topic id {topic.id!r}")
                continue
            topics.append(topic)
    if len(checker.errors) != before or authority_id is None or name is None or kind is None:
        return None
    return Authority(
        id=authority_id,
        name=name,
        short_name=short_name or "",
        kind=kind,
        territories=tuple(territories),
        topics=tuple(topics),
        places=tuple(places),
        site=site or "",
        social=MappingProxyType(social or {}),
        feeds=tuple(feeds),
        webmaster=webmaster,
    )


def _read_topic(checker: Checker, node: Node, path: str) -> Topic | None:
    fields = checker.mapping(node, path, _TOPIC_KEYS, required=("id", "label"))
    if fields is None:
        return None
    before = len(checker.errors)
    topic_id = _identifier(checker, fields["id"][1], f"{path}.id") if "id" in fields else None
    label_path = f"{path}({topic_id})" if topic_id else path
    label = checker.string(fields["label"][1], f"{label_path}.label") if "label" in fields else None
    keywords: list[str] = []
    if "keywords" in fields:
        keywords = checker.string_list(fields["keywords"][1], f"{label_path}.keywords", partial(_keyword, checker))
    kinds: set[str] = set()
    refs: set[Road] = set()
    if "roads" in fields:
        for spec in checker.string_list(fields["roads"][1], f"{label_path}.roads", partial(_road_spec, checker)):
            (refs if isinstance(spec, Road) else kinds).add(spec)
    if not keywords and not kinds and not refs and len(checker.errors) == before:
        checker.error(node, label_path, "a topic needs keywords or roads (or both)")
    plural = None
    if "plural" in fields:
        plural = checker.boolean(fields["plural"][1], f"{label_path}.plural")
    if len(checker.errors) != before or topic_id is None or label is None:
        return None
    if plural is None:
        plural = normalise_phrase(label).split(" ")[0] in ("les", "des", "vos", "nos", "ces")
    return Topic(topic_id, label, tuple(keywords), frozenset(kinds), frozenset(refs), plural)


def _identifier(checker: Checker, node: Node | None, path: str) -> str | None:
    value = checker.string(node, path)
    if value is not None and not _ID.match(value):
        checker.error(node, path, f"{value!r}: use lower-case letters, digits, '-' and '_'")
        return None
    return value


def _territory(checker: Checker, value: str, node: Node, path: str) -> str | None:
    code = value.upper()
    if code.isdigit() and len(code) == 1:
        code = "0" + code
    if not _TERRITORY.match(code):
        checker.error(node, path, f"{value!r} is not a département code (41, 2A, 974)")
        return None
    return code


def _keyword(checker: Checker, value: str, node: Node, path: str) -> str | None:
    if not normalise_phrase(value):
        checker.error(node, path, f"{value!r} has no word to match")
        return None
    return value


def _road_spec(checker: Checker, value: str, node: Node, path: str) -> str | Road | None:
    spec = parse_road_spec(value)
    if spec is None or (isinstance(spec, str) and spec not in ROAD_KINDS):
        checker.error(node, path, f"{value!r} is not a road kind ({', '.join(ROAD_KINDS)}) or reference (A10)")
        return None
    return spec


def _url(checker: Checker, node: Node | None, path: str) -> str | None:
    value = checker.string(node, path)
    if value is not None and not _URL.match(value):
        checker.error(node, path, f"{value!r} is not an http(s) URL")
        return None
    return value


def _social(checker: Checker, node: Node | None, path: str) -> dict[str, str]:
    fields = checker.mapping(node, path, SOCIAL_NETWORKS)
    result: dict[str, str] = {}
    for key, (_, value_node) in (fields or {}).items():
        value = checker.string(value_node, f"{path}.{key}")
        if value is not None:
            result[key] = value
    return result


def _contact(checker: Checker, node: Node | None, path: str) -> Contact | None:
    fields = checker.mapping(node, path, ("email", "webhook"))
    if fields is None:
        return None
    if not fields:
        checker.error(node, path, "expected email: or webhook:")
        return None
    email = webhook = ""
    if "email" in fields:
        value = checker.string(fields["email"][1], f"{path}.email")
        if value is not None and not _EMAIL.match(value):
            checker.error(fields["email"][1], f"{path}.email", f"{value!r} is not an email address")
        else:
            email = value or ""
    if "webhook" in fields:
        webhook = _url(checker, fields["webhook"][1], f"{path}.webhook") or ""
    if not email and not webhook:
        return None
    return Contact(email=email, webhook=webhook)


# ----------------------------------------------------------------------------------------- escalation


@dataclass(frozen=True, slots=True, order=True)
class EscalationKey:
    """One escalation per authority × topic × window: repeated questions add to its count."""

    authority_id: str
    topic: str
    window_start: datetime


def escalation_window(at: datetime, every: timedelta = timedelta(hours=6)) -> datetime:
    """Start of the window containing `at`: windows are aligned on multiples of `every` since the Unix
    epoch in UTC (with 6 h: 00:00, 06:00, 12:00, 18:00 UTC). `at` must carry a timezone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("escalation_window needs an aware datetime (with a timezone)")
    step = int(every.total_seconds())
    if step <= 0:
        raise ValueError("the escalation window must be positive")
    seconds = int((at - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=seconds - seconds % step)


def escalation_key(routing: Routing, at: datetime, every: timedelta = timedelta(hours=6)) -> EscalationKey | None:
    """The escalation a routed question belongs to, or None when none is due: questions in scope go to
    the team, and an authority without a webmaster contact cannot be warned."""
    if routing.in_scope or routing.authority is None or routing.topic is None:
        return None
    if routing.authority.webmaster is None:
        return None
    return EscalationKey(routing.authority.id, routing.topic.id, escalation_window(at, every))


@dataclass(slots=True)
class Escalation:
    """The questions of one window for one authority and topic, as the webmaster will read them."""

    key: EscalationKey
    count: int = 0
    samples: list[str] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None
    gap: bool = False  # at least one question found nothing current published by the authority
    max_samples: int = 5

    def add(self, question: str, at: datetime, *, gap: bool) -> None:
        """Count one more question; keep the first distinct few as samples."""
        self.count += 1
        text = " ".join(question.split())
        if text and text not in self.samples and len(self.samples) < self.max_samples:
            self.samples.append(text)
        self.first_at = at if self.first_at is None or at < self.first_at else self.first_at
        self.last_at = at if self.last_at is None or at > self.last_at else self.last_at
        self.gap = self.gap or gap


# --------------------------------------------------------------------------------- acknowledgement


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _secret(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < 16:
        raise ValueError("the acknowledgement secret must be at least 16 bytes")
    return key


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, b"crieur-ack:" + payload.encode("ascii"), hashlib.sha256).digest())


def sign_ack(
    escalation_id: int, secret: str | bytes, *, ttl: timedelta = timedelta(days=7), now: float | None = None
) -> str:
    """A URL-safe token "<id>.<expiry>.<HMAC-SHA256>" letting a webmaster acknowledge without an account."""
    if not isinstance(escalation_id, int) or isinstance(escalation_id, bool) or escalation_id < 0:
        raise ValueError("escalation_id must be a non-negative integer")
    issued = time.time() if now is None else now
    payload = f"{escalation_id}.{int(issued + ttl.total_seconds())}"
    return f"{payload}.{_signature(_secret(secret), payload)}"


def verify_ack(token: str, secret: str | bytes, *, now: float | None = None) -> int | None:
    """The escalation id of a valid, unexpired token; None for a forged, altered, expired or garbled one."""
    key = _secret(secret)  # a misconfigured secret is an error, not a silent rejection of every token
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isascii() or not parts[0].isdigit() or not parts[1].isascii() or not parts[1].isdigit():
        return None
    payload = f"{parts[0]}.{parts[1]}"
    expected = _signature(key, payload)
    if not hmac.compare_digest(expected.encode("ascii"), parts[2].encode("ascii", "replace")):
        return None
    if int(parts[1]) <= (time.time() if now is None else now):
        return None
    return int(parts[0])
