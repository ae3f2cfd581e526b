"""Follow the full CAP document behind a MeteoAlarm Atom entry (`link type="application/cap+xml"`).

A MeteoAlarm entry only carries index fields and an English title; the CAP document it links to has
Météo-France's French <info>, every area's NUTS3 code and the sender's name. Each linked document is
fetched like a source (same session, hence the same SSRF guard; same timeout and size limit;
conditional GET with the ETag/Last-Modified of the previous fetch), at most `max_linked` documents
per poll (source option, default 20: MeteoAlarm's France feed links one document per warning, shared
by all its areas). A link that cannot be fetched or read is reported in the source's health; its entry
then keeps the last good copy of the document, or, never fetched yet, stays as the feed gave it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin, urlsplit

import aiohttp

from ..domain import Item
from . import SourceSpec
from .cap import alert_item
from .errors import ParseError, RecordError
from .fetch import FetchError, fetch
from .xml import local, parse_xml

DEFAULT_MAX_LINKED = 20


@dataclass(slots=True)
class _Cached:
    etag: str | None
    last_modified: str | None
    item: Item


@dataclass(slots=True)
class LinkedDocuments:
    """Per-source memory of linked documents (for conditional GET) and what the last round did."""

    cache: dict[str, _Cached] = field(default_factory=dict)
    fetched: int = 0
    not_modified: int = 0


def linked_url(spec: SourceSpec, item: Item) -> str | None:
    """The absolute URL of the CAP document an entry links to (relative links resolve against the feed)."""
    href = str(item.attributes.get("cap_link") or "")
    if not href:
        return None
    return urljoin(spec.url, href) if urlsplit(spec.url).scheme in {"http", "https"} else href


def follows_links(spec: SourceSpec) -> bool:
    """CAP sources follow MeteoAlarm links unless options.follow_links is false."""
    return spec.kind == "cap" and spec.options.get("follow_links", True) is not False


async def follow_cap_links(
    session: aiohttp.ClientSession, spec: SourceSpec, items: list[Item], memory: LinkedDocuments
) -> tuple[list[Item], list[str]]:
    """Items with each MeteoAlarm entry replaced by the CAP alert it links to; and the problems met."""
    urls: dict[str, None] = {}
    for item in items:
        if (url := linked_url(spec, item)) is not None:
            urls[url] = None
    if not urls:
        return items, []
    limit = int(spec.options.get("max_linked", DEFAULT_MAX_LINKED))
    issues: list[str] = []
    wanted = list(urls)[: max(0, limit)]
    if len(urls) > len(wanted):
        issues.append(
            f"source {spec.name!r}: {len(urls) - len(wanted)} linked CAP documents not fetched "
            f"this poll (limit max_linked={limit})"
        )
    for stale in [url for url in memory.cache if url not in urls]:  # entries gone from the feed
        del memory.cache[stale]
    results = await asyncio.gather(*(_one(session, spec, url, memory) for url in wanted))
    documents: dict[str, Item] = {}
    for url, (found, problem) in zip(wanted, results, strict=True):
        if found is not None:
            documents[url] = found
        if problem:
            issues.append(problem)
    out: list[Item] = []
    replaced: set[str] = set()
    for item in items:
        url = linked_url(spec, item) or ""
        full = documents.get(url) if url else None
        if full is None:
            out.append(item)
        elif url not in replaced:  # several entries may link to one document: it is one item
            replaced.add(url)
            out.append(full)
    return out, issues


def _copy(cached: _Cached | None) -> Item | None:
    return replace(cached.item, attributes=dict(cached.item.attributes)) if cached is not None else None


async def _one(
    session: aiohttp.ClientSession, spec: SourceSpec, url: str, memory: LinkedDocuments
) -> tuple[Item | None, str]:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:  # a feed must not make Crieur read local files
        return None, f"source {spec.name!r}: linked CAP {url[:200]!r} refused (only http and https are followed)"
    linked = replace(spec, url=url, kind="cap")
    cached = memory.cache.get(url)
    try:
        result = await fetch(session, linked, cached.etag if cached else None, cached.last_modified if cached else None)
    except FetchError as exc:
        # the last good copy stands in, so that an outage does not turn the item back into its index entry
        return _copy(cached), f"linked CAP {url[:200]!r}: {exc}"
    if result.status == "not_modified" and cached is not None:
        memory.not_modified += 1
        return _copy(cached), ""
    memory.fetched += 1
    try:
        root = parse_xml(result.body, spec.name, what="linked CAP")
        if local(root.tag) != "alert":
            raise RecordError(f"not a CAP <alert> (root <{local(root.tag)}>)")
        item = alert_item(spec, root)
    except (ParseError, RecordError) as exc:
        return _copy(cached), f"source {spec.name!r}: linked CAP {url[:200]!r} unreadable: {exc}"
    item.attributes["cap_link"] = url
    memory.cache[url] = _Cached(result.etag, result.last_modified, item)
    return item, ""
