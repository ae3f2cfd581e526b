"""Scheduled messages: an alert with a `publish_at` still ahead waits as SCHEDULED and goes out then; a
published alert with an `end_at` gets its "fin d'alerte" then.

Both come from the rules (`publish_at: onset`, `end_after: 6h`) or from whoever builds the alert. Each
transition is one conditional UPDATE, so of two processes ticking at once one publishes or ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

from .domain import Alert, AlertStatus

log = logging.getLogger("crieur.schedule")


def scheduled_later(alert: Alert, now: float | None = None) -> bool:
    """Whether the alert's publish_at is still ahead."""
    moment = time.time() if now is None else now
    return alert.publish_at is not None and alert.publish_at.timestamp() > moment


class Scheduler:
    """`tick()` publishes what is due and ends what is over; the service runs it every `interval`."""

    def __init__(self, crieur: Any, *, clock: Callable[[], float] = time.time):
        self.crieur = crieur
        self.clock = clock
        self._stop = asyncio.Event()

    async def run(self, interval: float = 30.0) -> None:
        while not self._stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed; trying again in %.0f s", interval)
            try:
                await asyncio.wait_for(self._stop.wait(), interval)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()

    async def tick(self) -> tuple[list[int], list[int]]:
        """(ids published, ids ended) by this call."""
        now = self.clock()
        store = self.crieur.store
        published, ended = [], []
        for alert in await store.alerts((AlertStatus.SCHEDULED,), limit=1000):
            if scheduled_later(alert, now):
                continue
            if await store.set_alert_status(alert.id, AlertStatus.PUBLISHED, only_from=AlertStatus.SCHEDULED):
                fresh = await store.alert(alert.id)
                await self.crieur.fanout.plan(fresh)
                published.append(alert.id)
                log.info("scheduled alert %s published (due %s)", alert.id, _iso(alert.publish_at))
        for alert in await store.alerts((AlertStatus.PUBLISHED,), limit=1000):
            if alert.end_at is None or alert.end_at.timestamp() > now:
                continue
            if await store.set_alert_status(alert.id, AlertStatus.ENDED, only_from=AlertStatus.PUBLISHED):
                await self.crieur.end_alert(alert.id, by="schedule")
                ended.append(alert.id)
                log.info("alert %s ended as scheduled (%s)", alert.id, _iso(alert.end_at))
        return published, ended


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="minutes") if moment else "-"
