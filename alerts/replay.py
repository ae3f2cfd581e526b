"""`crieur replay FOLDER [--rules FILE]`: what a recorded episode would send with the current or a proposed
rule set, without sending anything.

The documents of FOLDER (read as `crieur rules check --against` reads them: rules.coverage) are played in
the order of their dates, at accelerated time, through a full service whose channels are in dry-run and
whose database is a scratch SQLite copy holding the live subscribers (so SMS counts are real ones). The
rules see each item at its own date; between two documents the clock jumps from one due moment to the next
(a page, an approval deadline, a scheduled publication or end), where the pager and the scheduler act, so
these happen when they would have, and documents years apart replay as fast as documents minutes apart. The report: per
channel and kind, per territory, SMS segments and their cost, pages.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from .config import ServiceConfig
from .domain import Item

TAIL = timedelta(hours=6)  # after the last document: time for deadlines and scheduled ends


@dataclass(slots=True)
class ReplayReport:
    items: int = 0
    alerts: int = 0
    pending: int = 0  # still waiting for a person at the end
    deliveries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, kind) -> count
    territories: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # code -> channel -> n
    sms_messages: int = 0
    sms_segments: int = 0
    sms_cost: float = 0.0
    pages: Counter[str] = field(default_factory=Counter)  # person (recipient) -> pages
    unread: list[str] = field(default_factory=list)

    def per_channel(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (channel, _kind), n in self.deliveries.items():
            totals[channel] += n
        return dict(totals)

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "alerts": self.alerts,
            "pending": self.pending,
            "deliveries": [{"channel": c, "kind": k, "count": n} for (c, k), n in sorted(self.deliveries.items())],
            "territories": {code: dict(counts) for code, counts in sorted(self.territories.items())},
            "sms": {"messages": self.sms_messages, "segments": self.sms_segments, "cost_eur": round(self.sms_cost, 2)},
            "pages": dict(self.pages),
            "unread": self.unread,
        }

    def lines(self) -> list[str]:
        out = [f"{self.items} éléments rejoués, {self.alerts} alertes, {self.pending} encore en attente de validation"]
        out.append("Par canal :")
        for (channel, kind), n in sorted(self.deliveries.items()):
            out.append(f"  {channel:<12} {kind:<8} {n}")
        out.append("Par territoire :")
        for code, counts in sorted(self.territories.items()):
            out.append(f"  {code:<6} " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
        out.append(f"SMS : {self.sms_messages} messages, {self.sms_segments} segments, {self.sms_cost:.2f} € environ")
        if self.pages:
            out.append("Astreinte appelée : " + ", ".join(f"{who} ×{n}" for who, n in sorted(self.pages.items())))
        out += [f"Non lu : {u}" for u in self.unread]
        return out


def recorded_items(folder: str | pathlib.Path, sources: Sequence[Any]) -> tuple[list[Item], list[str]]:
    """The items of FOLDER's documents in the order of their dates (undated ones first, as found), and
    what could not be read."""
    from rules.coverage import Coverage, _items

    report = Coverage(rules=(), folder=str(folder))
    found = [item for item, _kind, _name in _items(pathlib.Path(folder), list(sources), report)]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    found.sort(key=lambda i: i.sent or epoch)  # stable: feed order among equal dates
    return found, [f"{u.document}: {u.reason}" for u in report.unread]


async def stored_items(store: Any, start: datetime, end: datetime) -> list[Item]:
    """Items the live service received between `start` and `end`, in the order of their dates. Each item in
    its last known version (earlier versions are kept only as raw documents)."""
    from .storage.records import item_from_dict

    rows = await store.db.fetch(
        "SELECT data FROM items WHERE first_seen >= $1 AND first_seen <= $2 ORDER BY id",
        start.timestamp(),
        end.timestamp(),
    )
    found = [item_from_dict(json.loads(r["data"])) for r in rows]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    found.sort(key=lambda i: i.sent or epoch)
    return found


async def replay(
    config: ServiceConfig,
    items: Sequence[Item],
    *,
    rules: Sequence[pathlib.Path] = (),
    sms_price: float = 0.0725,
    subscribers: Sequence[tuple[str, str]] = (),
) -> ReplayReport:
    """Play `items` through a dry-run copy of the service; nothing is sent, the live database is not written."""
    from rules.fitting import measure

    from .service import Crieur

    report = ReplayReport(items=len(items))
    with tempfile.TemporaryDirectory(prefix="crieur-replay-") as scratch:
        trial = dataclasses.replace(
            config,
            dry_run=True,
            data_dir=pathlib.Path(scratch),
            database=f"sqlite:///{pathlib.Path(scratch) / 'replay.db'}",
            workers=0,
            rules=list(rules) or list(config.rules),
            sources=[copy.copy(s) for s in config.sources],
        )
        crieur = Crieur(trial)
        await crieur.open()
        try:
            if subscribers:
                await crieur.store.add_subscribers(subscribers)
            clock = [0.0]
            crieur.now = lambda: datetime.fromtimestamp(clock[0], timezone.utc)
            crieur.scheduler.clock = lambda: clock[0]
            if crieur.oncall is not None:
                crieur.oncall.clock = lambda: clock[0]

            async def advance(to: datetime) -> None:
                while (due := await _next_due(crieur, clock[0])) is not None and due < to.timestamp():
                    clock[0] = due
                    await _tick(crieur)
                clock[0] = to.timestamp()
                await _tick(crieur)

            last = None
            for item in items:
                moment = item.sent or last or datetime.now(timezone.utc)
                await advance(moment)
                report.alerts += len(await crieur.process_items([item]))
                await _tick(crieur)
                last = moment
            if last is not None:
                await advance(last + TAIL)
            from .domain import AlertStatus

            report.pending = len(await crieur.store.alerts((AlertStatus.PENDING_APPROVAL,), limit=10_000))
            await _count(crieur, report, sms_price, measure)
        finally:
            await crieur.stop(grace=5)
    return report


async def _next_due(crieur: Any, now: float) -> float | None:
    """The next moment after `now` when the pager or the scheduler has something to do, or None."""
    from .domain import AlertStatus

    moments: list[float] = []
    if crieur.oncall is not None:
        for case in await crieur.store.db.fetch(
            "SELECT state, next_at, deadline FROM oncall_cases WHERE state IN ('open', 'acknowledged', 'unanswered')"
        ):
            if case["state"] == "open":
                moments.append(float(case["next_at"]))
            if case["deadline"] is not None:
                moments.append(float(case["deadline"]))
    for alert in await crieur.store.alerts((AlertStatus.SCHEDULED, AlertStatus.PUBLISHED), limit=10_000):
        moment = alert.publish_at if alert.status is AlertStatus.SCHEDULED else alert.end_at
        if moment is not None:
            moments.append(moment.timestamp())
    return min((m for m in moments if m > now), default=None)


async def _tick(crieur: Any) -> None:
    await crieur.scheduler.tick()
    if crieur.oncall is not None:
        await crieur.oncall.tick()


async def _count(crieur: Any, report: ReplayReport, sms_price: float, measure: Any) -> None:
    rows = await crieur.store.db.fetch(
        "SELECT alert_id, channel, recipient, kind, text, extra FROM deliveries ORDER BY id"
    )
    territories: dict[int, tuple[str, ...]] = {}
    for row in rows:
        channel = crieur.channels.get(row["channel"])
        report.deliveries[(row["channel"], row["kind"])] += 1
        if row["kind"] == "Page":
            report.pages[json.loads(row["extra"] or "{}").get("person", row["recipient"])] += 1
        elif row["alert_id"]:
            if row["alert_id"] not in territories:
                alert = await crieur.store.alert(row["alert_id"])
                territories[row["alert_id"]] = alert.territories if alert else ()
            for code in territories[row["alert_id"]]:
                report.territories[code][row["channel"]] += 1
        if channel is not None and channel.limits.counting == "sms":
            segments = measure(row["text"], channel.limits).segments or 1
            report.sms_messages += 1
            report.sms_segments += segments
            report.sms_cost += segments * sms_price
