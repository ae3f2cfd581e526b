"""Reading an authorities file (YAML) into a Directory, every problem reported as file:line:column: field."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from types import MappingProxyType
from typing import TypeVar

from yaml.nodes import Node

from alerts.domain import Road
from rules.roads import parse_road_spec
from rules.text import normalise_phrase
from rules.yamlcheck import Checker

from .authorities import AUTHORITY_KINDS, ROAD_KINDS, SOCIAL_NETWORKS, Authority, Contact, Topic

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}$")
_URL = re.compile(r"^https?://[^\s/]+\S*$")
_TERRITORY = re.compile(r"^(\d{2,3}|2[AB])$")
T = TypeVar("T")

_AUTHORITY_KEYS = (
    "id",
    "name",
    "short_name",
    "kind",
    "territories",
    "places",
    "topics",
    "site",
    "social",
    "feeds",
    "webmaster",
)
_TOPIC_KEYS = ("id", "label", "keywords", "roads", "plural")


def read_directory(checker: Checker, root: Node) -> tuple[list[Authority], str] | None:
    """The authorities and the operator's own id, or None when the file has errors (in `checker`)."""
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
    return authorities, self_id


def _read_authority(checker: Checker, node: Node, path: str) -> Authority | None:
    fields = checker.mapping(node, path, _AUTHORITY_KEYS, required=("id", "name", "kind", "territories", "topics"))
    if fields is None:
        return None
    before = len(checker.errors)
    authority_id = _identifier(checker, fields["id"][1], f"{path}.id") if "id" in fields else None
    label = f"{path}({authority_id})" if authority_id else path

    def read(key: str, reader: Callable[[Node, str], T]) -> T | None:
        """`reader(value node, "authorities[i](id).key")` when the key is present, else None."""
        return reader(fields[key][1], f"{label}.{key}") if key in fields else None

    name = read("name", checker.string)
    short_name = read("short_name", checker.string)
    kind = read("kind", partial(checker.choice, choices=AUTHORITY_KINDS))
    territories = read("territories", partial(checker.string_list, convert=partial(_territory, checker))) or []
    if "territories" in fields and not territories and len(checker.errors) == before:
        checker.error(fields["territories"][1], f"{label}.territories", "expected at least one territory")
    places = read("places", checker.string_list) or []
    site = read("site", partial(_url, checker))
    social = read("social", partial(_social, checker)) or {}
    feeds = read("feeds", checker.string_list) or []
    webmaster = read("webmaster", partial(_contact, checker))
    topics: list[Topic] = []
    if "topics" in fields:
        topic_nodes = checker.items(fields["topics"][1], f"{label}.topics", scalar_ok=False)
        if not topic_nodes and len(checker.errors) == before:
            checker.error(fields["topics"][1], f"{label}.topics", "expected at least one topic")
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
        specs: list[str | Road] = checker.string_list(
            fields["roads"][1], f"{label_path}.roads", partial(_road_spec, checker)
        )
        for spec in specs:
            if isinstance(spec, Road):
                refs.add(spec)
            else:
                kinds.add(spec)
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


def _identifier(checker: Checker, node: Node, path: str) -> str | None:
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


def _url(checker: Checker, node: Node, path: str) -> str | None:
    value = checker.string(node, path)
    if value is not None and not _URL.match(value):
        checker.error(node, path, f"{value!r} is not an http(s) URL")
        return None
    return value


def _social(checker: Checker, node: Node, path: str) -> dict[str, str]:
    fields = checker.mapping(node, path, SOCIAL_NETWORKS)
    result: dict[str, str] = {}
    for key, (_, value_node) in (fields or {}).items():
        value = checker.string(value_node, f"{path}.{key}")
        if value is not None:
            result[key] = value
    return result


def _contact(checker: Checker, node: Node, path: str) -> Contact | None:
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
