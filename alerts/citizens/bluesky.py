"""Bluesky mentions of the département's account, and replies to its posts, are questions: polled with
app.bsky.notification.listNotifications, routed like any other, answered in the thread (the reply's
parent is the citizen's post, its root the thread's first post)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from channels.base import Channel

from ..shared_limits import first_delivery
from .base import Part
from .conversations import Thread

if TYPE_CHECKING:
    from .desk import Citizens

log = logging.getLogger("crieur.citizens")

BLUESKY_STATE = "bluesky-notifications"  # row of the sources table: the newest notification handled
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9][A-Za-z0-9.\-]*[A-Za-z0-9]")


def post_text(text: str) -> str:
    """A post's text as the citizen's question: @handles removed, spaces collapsed."""
    return " ".join(_HANDLE.sub(" ", text).split())


def _ref(value: Any) -> str:
    """A strong ref {uri, cid} as the "uri|cid" the Bluesky adapter replies to."""
    if not isinstance(value, Mapping) or not value.get("uri") or not value.get("cid"):
        return ""
    return f"{value['uri']}|{value['cid']}"


class BlueskyQuestions(Part):
    def __init__(self, desk: Citizens):
        super().__init__(desk.crieur)
        self.desk = desk

    def channel(self) -> Channel | None:
        """The first channel of kind "bluesky" able to read notifications (a dry-run wrapper cannot)."""
        return next(
            (ch for ch in self.channels.values() if ch.kind == "bluesky" and hasattr(ch, "notifications")), None
        )

    async def poll(self) -> int:
        """Take the mentions and replies newer than the last handled, oldest first; returns how many."""
        channel = self.channel()
        if channel is None:
            return 0
        state = await self.store.load_source_state(BLUESKY_STATE) or {}
        newest = str(state.get("indexed_at") or "")
        notifications = await channel.notifications(since=newest)  # type: ignore[attr-defined]
        handled = 0
        for note in sorted(notifications, key=lambda n: str(n.get("indexedAt", ""))):
            indexed = str(note.get("indexedAt") or "")
            if indexed and indexed <= newest and newest:
                continue
            if await self._take(channel, note):
                handled += 1
            if indexed > newest:
                newest = indexed
                await self.store.save_source_state(BLUESKY_STATE, {"indexed_at": newest})
        return handled

    async def _take(self, channel: Channel, note: Mapping[str, Any]) -> bool:
        if note.get("reason") not in ("mention", "reply"):
            return False
        author = note.get("author") or {}
        record = note.get("record") or {}
        own = getattr(channel, "did", "")
        if not isinstance(author, Mapping) or not isinstance(record, Mapping) or (own and author.get("did") == own):
            return False
        parent = _ref({"uri": note.get("uri"), "cid": note.get("cid")})
        text = post_text(str(record.get("text") or ""))
        if not parent or not text:
            return False
        if not await first_delivery(self.store.db, f"bluesky:{note['uri']}"):
            return False  # another process took it
        reply = record.get("reply")
        root = _ref(reply.get("root")) if isinstance(reply, Mapping) else ""
        thread = Thread("bluesky", channel=channel.name, reply_to=parent, root=root or parent)
        handle = str(author.get("handle") or author.get("did") or "")
        await self.desk.conversations.receive(thread, handle, text, self.desk.territories_in(text))
        return True
