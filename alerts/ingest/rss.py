"""RSS 0.9x / 1.0 / 2.0 and Atom feeds (préfecture news, road bulletins) through feedparser.

feedparser is lenient and decodes whatever encoding the feed declares (ISO-8859-1 préfecture feeds
included). It does not keep the XML of each entry, so for Item.raw we re-read the document with the
safe XML reader and serialise the matching <item>/<entry>; if that reading fails (feedparser coped with
a malformed feed), raw is the JSON of what feedparser extracted.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from datetime import datetime, timezone
from typing import Any

import feedparser

from ..domain import Area, Item
from ..roads import parse_roads
from . import dates
from .common import commune_area, content_hash, dedupe, departement_area, html_to_text, origin
from .errors import ParseError, skip_record
from .xml import local, parse_xml, serialise

dates.register()  # French, Portuguese, Spanish... day and month names in pubDate

_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_DEP_TAG = re.compile(r"^(?:d[ée]partement|dept?|dpt)\s*[:=\-_ ]\s*(\w{1,3})$", re.IGNORECASE)
_INSEE_TAG = re.compile(r"^(?:insee|code[_ ]insee)\s*[:=\-_ ]\s*(\w{5})$", re.IGNORECASE)


def _struct_to_datetime(value: time.struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


def _raw_entries(body: bytes, source: str) -> list[str] | None:
    """XML text of each <item>/<entry> in document order, or None if the document is not well formed."""
    try:
        root = parse_xml(body, source, what="feed")
    except ParseError:
        return None
    names = {"item", "entry"}
    return [serialise(node) for node in root.iter() if local(node.tag) in names]


def _jsonable(value: Any) -> Any:
    if isinstance(value, time.struct_time):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _areas(spec_departement: str, tags: list[dict[str, Any]]) -> tuple[Area, ...]:
    """Areas the feed states explicitly: configured département, "departement:41"/"insee:41018" tags."""
    found: list[Area] = []
    if spec_departement:
        area = departement_area(spec_departement)
        if area:
            found.append(area)
    for tag in tags:
        term = str(tag.get("term") or "").strip()
        scheme = str(tag.get("scheme") or "").lower()
        if (m := _DEP_TAG.match(term)) and (area := departement_area(m.group(1))):
            found.append(area)
        elif (m := _INSEE_TAG.match(term)) and (area := commune_area(m.group(1))):
            found.append(area)
        elif "insee" in scheme and (area := commune_area(term)):
            found.append(area)
        elif "departement" in scheme.replace("é", "e") and (area := departement_area(term)):
            found.append(area)
    return dedupe(found)


def _entry_text(entry: Any) -> str:
    candidates = [c.get("value", "") for c in entry.get("content") or [] if isinstance(c, dict)]
    candidates.append(entry.get("summary") or "")
    best = max(candidates, key=len)
    return html_to_text(str(best))


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    if _ENTITY_DECLARATION.search(body[:65536]):
        raise ParseError(
            "refused feed declaring XML entities (possible entity-expansion or XXE attack)", source=spec.name
        )
    headers = {"content-type": content_type} if content_type else {}
    try:
        feed = feedparser.parse(body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    except (ValueError, AssertionError, LookupError) as exc:  # feedparser's own errors on hostile bytes (fuzzing)
        raise ParseError(f"not a readable RSS/Atom feed: {type(exc).__name__}: {exc}", source=spec.name) from None
    if not feed.entries:
        if feed.bozo:
            reason = feed.get("bozo_exception")
            line = getattr(reason, "getLineNumber", lambda: None)() if reason is not None else None
            raise ParseError(f"not a readable RSS/Atom feed: {reason}", source=spec.name, line=line)
        if not feed.get("version") and not feed.get("feed"):
            raise ParseError("not an RSS/Atom feed (no channel, no entries)", source=spec.name)
        return []

    raws = _raw_entries(body, spec.name)
    if raws is not None and len(raws) != len(feed.entries):
        raws = None
    departement = str(spec.options.get("departement") or "")
    language = str(feed.feed.get("language") or "fr").strip()[:10] or "fr"
    items: list[Item] = []
    for index, entry in enumerate(feed.entries):
        try:
            items.append(_item(spec, entry, departement, language, raws[index] if raws else None))
        except (ValueError, TypeError, KeyError) as exc:
            skip_record(spec.name, f"entry {index + 1}", exc)
    if not items and feed.bozo:
        raise ParseError(f"no usable entry in a malformed feed: {feed.get('bozo_exception')}", source=spec.name)
    return items


def _item(spec: Any, entry: Any, departement: str, language: str, raw: str | None) -> Item:
    title = html_to_text(str(entry.get("title") or ""))
    text = _entry_text(entry)
    link = str(entry.get("link") or "")
    # dict.get: FeedParserDict.get("updated_parsed") silently falls back to the published date,
    # and an RSS item edited in place keeps its pubDate, so only a real <updated> makes a version.
    published = _struct_to_datetime(dict.get(entry, "published_parsed"))
    updated = _struct_to_datetime(dict.get(entry, "updated_parsed"))
    sent = published or updated
    external_id = str(entry.get("id") or "").strip() or link.strip()
    if not external_id:
        if not title and not text:
            raise ValueError("entry has no id, link, title nor text")
        external_id = "sha:" + content_hash(title, entry.get("published") or entry.get("updated") or "")
    version = updated.isoformat() if updated else "sha:" + content_hash(title, text, link)
    tags = [t for t in entry.get("tags") or [] if isinstance(t, dict)]
    return Item(
        source=spec.name,
        external_id=external_id,
        version=version,
        sent=sent,
        title=title,
        text=text,
        language=language,
        category=str(tags[0].get("term") or "") if tags else "",
        areas=_areas(departement, tags),
        roads=parse_roads(f"{title}\n{text}"),
        link=link,
        raw=raw if raw is not None else json.dumps(_jsonable(dict(entry)), ensure_ascii=False),
        authority=origin(spec),
    )
