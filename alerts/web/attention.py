"""What needs a CM now, for the console's badge and page title: citizen questions they have not seen,
alerts waiting for approval, sources down.

Every console page renders it (so it works without JavaScript); console.js keeps it live through
server-sent events (/console/events), falling back to polling /console/attention. Questions count as
seen once the account has opened its dashboard (users.seen_question_id, migration 0006).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from aiohttp import web

from alerts.domain import AlertStatus

from . import site, source_health

SHOWN_QUESTIONS = 5
# Per-request: computed by the console's middleware for every page, read by rendering.render.
_RequestKey = getattr(web, "RequestKey", None)
ATTENTION: Any = _RequestKey("attention", object) if _RequestKey else "crieur.attention"


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # "question", "pending" or "source"
    text: str
    href: str


@dataclass(frozen=True, slots=True)
class Attention:
    new_questions: int = 0
    pending: int = 0
    sources_down: tuple[str, ...] = ()
    seen_question_id: int = 0
    latest_question_id: int = 0
    items: tuple[Item, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return self.new_questions + self.pending + len(self.sources_down)

    @property
    def summary(self) -> str:
        """ "1 nouvelle question · 2 alertes à valider · 1 source en panne" (or "rien pour l'instant")."""
        parts = []
        if self.new_questions:
            parts.append(
                f"{self.new_questions} nouvelle{'s' if self.new_questions > 1 else ''} "
                f"question{'s' if self.new_questions > 1 else ''}"
            )
        if self.pending:
            parts.append(f"{self.pending} alerte{'s' if self.pending > 1 else ''} à valider")
        if self.sources_down:
            count = len(self.sources_down)
            parts.append(f"{count} source{'s' if count > 1 else ''} en panne")
        return " · ".join(parts) or "rien pour l'instant"

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "summary": self.summary,
            "new_questions": self.new_questions,
            "pending": self.pending,
            "sources_down": list(self.sources_down),
            "latest_question_id": self.latest_question_id,
            "items": [{"kind": i.kind, "text": i.text, "href": i.href} for i in self.items],
        }


async def gather(crieur: Any, username: str) -> Attention:
    store = crieur.store
    seen = int(await store.db.fetchval("SELECT seen_question_id FROM users WHERE username = $1", username) or 0)
    newest = await store.db.fetch(
        "SELECT id, channel, text, created_at, group_key FROM questions WHERE id > $1 ORDER BY id DESC LIMIT $2",
        seen,
        SHOWN_QUESTIONS,
    )
    count = int(await store.db.fetchval("SELECT COUNT(*) FROM questions WHERE id > $1", seen) or 0)
    latest = int(await store.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM questions") or 0)
    pending = int(
        await store.db.fetchval("SELECT COUNT(*) FROM alerts WHERE status = $1", AlertStatus.PENDING_APPROVAL.value)
        or 0
    )
    down = [
        v.name
        for v in source_health.views(await store.source_states(), getattr(crieur.config, "sources", ()))
        if v.attention
    ]
    items = [
        Item(
            "question",
            f"Nouvelle question ({q['channel']}, {_clock(q['created_at'])}) : « {_short(q['text'])} »",
            "/console/questions/" + quote(q["group_key"], safe=":") if q["group_key"] else "/console#questions-title",
        )
        for q in newest
    ]
    if pending:
        items.append(
            Item(
                "pending",
                f"{pending} alerte{'s' if pending > 1 else ''} attend{'ent' if pending > 1 else ''} une validation",
                "/console#pending-title",
            )
        )
    items += [Item("source", f"Source en panne : {name}", "/console#sources-title") for name in down]
    return Attention(count, pending, tuple(down), seen, latest, tuple(items))


async def mark_seen(store: Any, username: str, question_id: int) -> None:
    """Questions up to `question_id` are seen by this account (never moves backwards)."""
    await store.db.execute(
        "UPDATE users SET seen_question_id = $2 WHERE username = $1 AND seen_question_id < $2",
        username,
        question_id,
    )


def _clock(timestamp: float) -> str:
    """ "18 h 23" today (Paris time), else the full date."""
    when = datetime.fromtimestamp(float(timestamp), timezone.utc).astimezone(site.PARIS)
    if when.date() == datetime.now(site.PARIS).date():
        return f"{when.hour} h {when.minute:02d}"
    return site.paris(timestamp)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def event(data: Attention) -> bytes:
    """One server-sent event carrying the attention state."""
    return f"event: attention\ndata: {json.dumps(data.as_json(), ensure_ascii=False)}\n\n".encode()


class Streams:
    """Open /console/events streams end when the application shuts down, so that a stop does not wait
    for browsers to hang up."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()

    async def on_shutdown(self, app: Any) -> None:
        self.closing.set()
