"""Escalations to an authority's webmaster: one per authority, topic and time window, counting the questions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .authorities import Routing

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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
