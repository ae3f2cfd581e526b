"""The hashtag wall: our own alerts plus partners' posts carrying the territory hashtag.

Partners' posts come from the Mastodon tag timeline, filtered by the allow-list `config.partners` (anyone
can post #route41; only the mairies, gendarmerie... we trust appear). The timeline is cached 60 s per tag,
in the database for every web process (one fetch a minute for the whole deployment, whichever process
makes it) and in each process's memory; when Mastodon fails the wall shows our own posts only, and the
failure is cached too, so that a slow instance does not slow every page view.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from alerts.domain import Alert, web_link
from alerts.shared_limits import cached_value, claim_refresh, store_value

log = logging.getLogger("crieur.web.wall")

CACHE_SECONDS = 60.0
TIMELINE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Post:
    author: str  # "Département de Loir-et-Cher" or "@mairie_blois@mastodon.example"
    text: str  # plain text; the template escapes it
    at: datetime | None
    url: str = ""
    ours: bool = False


class _Text(HTMLParser):
    """Mastodon's status HTML to plain text (paragraphs and <br> become line breaks; no markup survives)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("br", "p") and self.parts:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(content: str) -> str:
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    return re.sub(r"\n{2,}", "\n", "".join(parser.parts)).strip()


def _account(status: dict[str, Any], instance: str) -> str:
    """ "@user@host" for a status' author, completing a local account's acct with our instance host."""
    account = status.get("account") or {}
    acct = str(account.get("acct") or "")
    if acct and "@" not in acct:
        acct = f"{acct}@{instance}"
    return f"@{acct.lower()}" if acct else ""


def _when(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class Wall:
    def __init__(self, crieur: Any, clock: Callable[[], float] = time.time):
        self.crieur = crieur
        self.clock = clock
        self._cache: dict[str, tuple[float, list[Post]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _mastodon(self) -> Any:
        for channel in self.crieur.channels.values():
            if getattr(channel, "kind", "") == "mastodon" and hasattr(channel, "tag_timeline"):
                return channel
        return None

    def generation(self, tag: str) -> str:
        """Changes when the cached partner posts for `tag` change: part of the territory page's ETag."""
        entry = self._cache.get(tag.lower())
        return f"{entry[0]:.3f}" if entry else "none"

    async def partner_posts(self, tag: str, limit: int = 20) -> list[Post]:
        tag = tag.lower()
        lock = self._locks.setdefault(tag, asyncio.Lock())
        async with lock:  # one fetch per expiry, however many readers arrive together
            entry = self._cache.get(tag)
            now = self.clock()
            if entry is not None and now - entry[0] < CACHE_SECONDS:
                return entry[1]
            db, name = self.crieur.store.db, f"wall:{tag}"
            if not await claim_refresh(db, name, CACHE_SECONDS, now):  # fresh, or another process fetches
                shared = await cached_value(db, name)
                if shared is not None:
                    self._cache[tag] = (shared[0], _load_posts(shared[1]))
                    return self._cache[tag][1]
            posts = await self._fetch(tag, limit)
            now = self.clock()
            await store_value(db, name, _dump_posts(posts), now)
            self._cache[tag] = (now, posts)
            return posts

    async def _fetch(self, tag: str, limit: int) -> list[Post]:
        partners = {
            p.strip().lower() if p.strip().startswith("@") else "@" + p.strip().lower()
            for p in self.crieur.config.partners
            if p.strip()
        }
        channel = self._mastodon()
        if channel is None or not partners:
            return []
        instance = urlsplit(str(getattr(channel, "base_url", ""))).hostname or ""
        try:
            statuses = await asyncio.wait_for(channel.tag_timeline(tag, limit), TIMELINE_TIMEOUT)
        except Exception as exc:  # any failure: the wall falls back to our own posts
            log.warning("hashtag wall: %s timeline for %s failed: %s", channel.name, tag, exc or type(exc).__name__)
            return []
        posts = []
        for status in statuses:
            if not isinstance(status, dict):
                continue
            author = _account(status, instance)
            if author not in partners:
                continue
            text = plain_text(str(status.get("content") or ""))
            url = web_link(status.get("url"))
            posts.append(Post(author, text, _when(status.get("created_at")), url))
        return posts

    async def posts(self, tag: str, own: Sequence[Alert], author: str, limit: int = 20) -> list[Post]:
        """Our alerts and the partners' posts, newest first."""
        mine = [Post(_relayed(a.authority, author), a.text or a.title, a.updated_at, "", True) for a in own]
        merged = mine + await self.partner_posts(tag)
        epoch = datetime.fromtimestamp(0, timezone.utc)
        merged.sort(key=lambda p: p.at or epoch, reverse=True)
        return merged[:limit]


def _relayed(authority: str, publisher: str) -> str:
    """ "Préfecture de Loir-et-Cher (relayé par Département de Loir-et-Cher)", or the publisher alone."""
    return f"{authority} (relayé par {publisher})" if authority and authority != publisher else publisher


def _dump_posts(posts: Sequence[Post]) -> str:
    return json.dumps(
        [{"author": p.author, "text": p.text, "at": p.at.isoformat() if p.at else None, "url": p.url} for p in posts],
        ensure_ascii=False,
    )


def _load_posts(text: str) -> list[Post]:
    try:
        raw = json.loads(text or "[]")
    except ValueError:
        return []
    return [
        Post(
            str(p.get("author", "")),
            str(p.get("text", "")),
            _when(p.get("at")) if p.get("at") else None,
            web_link(p.get("url")),
        )
        for p in raw
        if isinstance(p, dict)
    ]
