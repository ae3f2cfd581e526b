"""Mastodon mentions of the département's account are questions: polled, routed like any other, answered
in the thread through the outbox (a direct mention privately, to its author only). The same loop polls
Bluesky's notifications (alerts.citizens.bluesky)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from channels.base import Channel, RateLimited

from ..ingest.common import html_to_text
from .base import Part
from .conversations import Thread

if TYPE_CHECKING:
    from .desk import Citizens

log = logging.getLogger("crieur.citizens")

MENTIONS_STATE = "mastodon-mentions"  # row of the sources table that remembers the last mention handled
MAX_MENTION_AGE = 24 * 3600.0  # older mentions (before the service started) are not answered
_MENTION = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]+(?:@[A-Za-z0-9.\-]+[A-Za-z0-9])?")


def mention_text(content: str) -> str:
    """A Mastodon status's HTML as the citizen's question: tags, entities and @mentions removed."""
    text = _MENTION.sub(" ", html_to_text(content))
    return " ".join(text.split())


class Mentions(Part):
    """The mention poller of one service."""

    def __init__(self, desk: Citizens):
        super().__init__(desk.crieur)
        self.desk = desk
        self._stopping = asyncio.Event()

    def channel(self) -> Channel | None:
        """The account whose mentions are questions: `citizens.mastodon_channel`, else the first channel of
        kind "mastodon" able to read notifications (a dry-run wrapper cannot)."""
        name = self.config.mastodon_channel
        candidates = [self.channels[name]] if name and name in self.channels else list(self.channels.values())
        return next((ch for ch in candidates if ch.kind == "mastodon" and hasattr(ch, "notifications")), None)

    async def poll(self) -> int:
        """Answer the mentions received since the last poll, in the thread; returns how many were taken."""
        channel = self.channel()
        if channel is None:
            return 0
        state = await self.store.load_source_state(MENTIONS_STATE) or {}
        notifications = await channel.notifications(since_id=state.get("since_id"))  # type: ignore[attr-defined]
        handled = 0
        for note in sorted(notifications, key=lambda n: (len(str(n.get("id", ""))), str(n.get("id", "")))):
            if note.get("type", "mention") == "mention" and await self._answer_mention(channel, note):
                handled += 1
            state = {"since_id": str(note.get("id")), "updated": time.time()}
            await self.store.save_source_state(MENTIONS_STATE, state)
        return handled

    async def _answer_mention(self, channel: Channel, note: Mapping[str, Any]) -> bool:
        status = note.get("status") or {}
        account = note.get("account") or status.get("account") or {}
        acct, status_id = str(account.get("acct") or ""), str(status.get("id") or "")
        if not acct or not status_id:
            return False
        created = str(status.get("created_at") or note.get("created_at") or "")
        try:
            age = (self.desk.now() - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()
        except ValueError:
            age = 0.0
        if age > MAX_MENTION_AGE:
            log.info("mention %s by %s is %.0f h old: not answered", status_id, acct, age / 3600)
            return False
        text = mention_text(str(status.get("content") or ""))
        if not text:
            return False
        territories = self.desk.territories_in(text)
        # A direct mention is a private message: its answers go back as direct statuses that mention its
        # author only (the question names them as its recipient), never with the channel's own visibility,
        # which would expose the exchange.
        private = status.get("visibility") == "direct"
        thread = Thread("mastodon", channel=channel.name, recipient=acct if private else "", reply_to=status_id)
        await self.desk.conversations.receive(thread, acct, text, territories)
        return True

    async def run(self, interval: float = 60.0) -> None:
        """Poll mentions every `interval` seconds until `stop()`; a failing poll is logged and retried."""
        self._stopping.clear()
        while not self._stopping.is_set():
            wait = interval
            for name, poll in (("mastodon", self.poll), ("bluesky", self.desk.bluesky.poll)):
                try:
                    await poll()
                except RateLimited as exc:
                    wait = max(wait, exc.retry_after or 0.0)
                    log.warning("mentions (%s): rate limited, next poll in %.0f s", name, wait)
                except Exception as exc:  # a provider or database outage must not end the loop
                    log.warning("mentions (%s): poll failed: %s: %s", name, type(exc).__name__, exc)
            try:
                await asyncio.wait_for(self._stopping.wait(), wait)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()
