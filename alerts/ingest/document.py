"""Read one document outside the polling loop, the way a source would read it: `crieur ingest` and
`crieur rules test` show a CM what a real feed becomes before it is added as a source.

The format is guessed from the content when no kind is given (a CAP alert or MeteoAlarm feed, DATEX II,
RSS/Atom, GeoJSON or road-state JSON, Météo-France vigilance JSON, a zip of CAP files).
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass, field, replace
from typing import Iterable
from urllib.parse import urlsplit

from ..domain import Item
from . import KINDS, ParseError, SourceSpec, parse
from .errors import collect_issues, stop_collecting

_FIRST_TAG = re.compile(rb"<(?![?!])(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_XML_ROOTS = {
    b"alert": "cap",
    b"alerts": "cap",
    b"rss": "rss",
    b"RDF": "rss",
    b"d2LogicalModel": "datex2",
    b"payload": "datex2",
    b"messageContainer": "datex2",
    b"situationPublication": "datex2",
}


def guess_kind(body: bytes, name: str = "") -> str | None:
    """The source kind that reads `body`, or None when the content says nothing Crieur reads."""
    if body[:4] == b"PK\x03\x04":
        return "cap"  # DWD's zip of CAP files
    if name.lower().endswith(".csv"):
        return "csv"
    head = body[:8192].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        if b"FeatureCollection" in head or b"roadConditions" in head:
            return "geojson"
        if b"phenomenon" in head or b"domain_id" in head or b"domain_ids" in head:
            return "vigilance"
        return None
    match = _FIRST_TAG.search(head)
    if match is None:
        return None
    root = match.group(1)
    if root == b"feed":  # MeteoAlarm and NWS Atom carry CAP; others are news feeds
        return "cap" if b"urn:oasis:names:tc:emergency:cap" in head else "rss"
    if root in _XML_ROOTS:
        return _XML_ROOTS[root]
    return "datex2" if b"datex2.eu/schema" in head else None


@dataclass(slots=True)
class Document:
    spec: SourceSpec
    items: list[Item]
    issues: list[str] = field(default_factory=list)
    linked_fetched: int = 0


def is_url(location: str) -> bool:
    return urlsplit(location).scheme.lower() in {"http", "https"}


async def read_document(
    location: str,
    kind: str | None = None,
    *,
    name: str = "",
    authority: str = "",
    follow: bool | None = None,
    allow: Iterable[str] = (),
    max_bytes: int = 5_000_000,
    timeout: float = 20,
) -> Document:
    """Items of the file or http(s) URL `location`. URLs go through the SSRF-guarded session (`allow`
    lifts it for named hosts); MeteoAlarm links are followed for URLs, and for files when `follow`.
    Raises ParseError (unreadable document, unknown format) or FetchError (cannot get it)."""
    from ..security import safe_session
    from .fetch import fetch
    from .links import LinkedDocuments, follow_cap_links, follows_links

    if kind is not None and kind not in KINDS:
        raise ParseError(f"unknown kind {kind!r} (known: {', '.join(sorted(KINDS))})", source=location)
    remote = is_url(location)
    url = location if remote else pathlib.Path(location).resolve().as_uri()
    label = name or (urlsplit(location).path.rsplit("/", 1)[-1] if remote else pathlib.Path(location).name) or location
    spec = SourceSpec(
        name=label, kind=kind or "rss", url=url, authority=authority, max_bytes=max_bytes, timeout=timeout
    )
    async with safe_session(list(allow)) as session:
        result = await fetch(session, spec, None, None)
        guessed = kind or guess_kind(result.body, label)
        if guessed is None:
            raise ParseError("format not recognised (give --kind: " + ", ".join(sorted(KINDS)) + ")", source=label)
        spec = replace(spec, kind=guessed)
        issues, token = collect_issues()
        try:
            items = parse(spec, result.body, result.content_type)
        finally:
            stop_collecting(token)
        document = Document(spec, items, issues)
        if follows_links(spec) and (remote if follow is None else follow):
            memory = LinkedDocuments()
            document.items, link_issues = await follow_cap_links(session, spec, items, memory)
            document.issues += link_issues
            document.linked_fetched = memory.fetched
    return document
