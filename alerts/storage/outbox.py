"""The outbox: the one owner of the `deliveries` table, and the lifecycle of a delivery.

    queued ──claim──▶ sending ──mark_sent──▶ sent
       ▲                 │ ├──mark_ended──▶ failed (refused for good) · dead (attempts exhausted) · cancelled
       └──mark_retry─────┘ └──(lease expires: the worker died)──▶ claimed again, *in doubt*
    queued ──opt-out / erasure──▶ cancelled

Exactly once rests on:
- the key (`delivery_key`): a second enqueue of the same delivery is a no-op;
- the lease: a worker holds what it claimed until `lease_until`, renews it while sending, and every
  transition out of `sending` names that worker, so a worker that lost its lease cannot overwrite what
  the new holder does (`LeaseLost`);
- the in-doubt flag: a delivery taken over after a lease expired may have gone already, so the next
  attempt asks the provider first (see alerts/delivery.py).

Just before sending, a worker asks whether the delivery is *withheld* (its recipient opted out, a newer
version of its alert came: `withheld_among`), and one answer serves its sends for SETTLE / 2. The changes
it must see (`Store.opt_out`, an enqueue that supersedes) return only SETTLE after their commit (`settle`),
so a send asked about once such a change has returned is judged by a query that started after the commit.

The statements are in outbox.sql, by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from alerts.errors import LeaseLost

from .db import Database, Executor, PostgresDatabase, in_transaction
from .queries import in_list, load

log = logging.getLogger("crieur.outbox")
NOTIFY_CHANNEL = "crieur_deliveries"
SQL = load("outbox")
SETTLE = 0.1  # seconds; see the module's docstring
RENEW_AGAIN = 0.05  # seconds before a lease renewal asks again for the rows another statement held


async def settle() -> None:
    """What a change that withholds deliveries waits after its commit before it returns (see above)."""
    await asyncio.sleep(SETTLE)


class DeliveryState(enum.StrEnum):
    """A delivery's state, as stored in `deliveries.state`."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # the provider refused it for good
    DEAD = "dead"  # retryable failures until the attempts ran out
    CANCELLED = "cancelled"  # the number opted out (or was erased) before it went

    @property
    def finished(self) -> bool:
        return self in (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.DEAD, DeliveryState.CANCELLED)


# A provider's receipt saying a sent message did not reach the handset.
UNDELIVERED_STATUSES = ("undelivered", "failed")
# The views of an alert's recipients (`Outbox.recipients`): everyone, the provider says delivered, the send
# failed or was not delivered, the number was put aside (invalid, unsubscribed by the carrier, undeliverable).
RECIPIENT_VIEWS = ("all", "delivered", "failed", "aside")


def delivery_key(alert_id: int, channel: str, kind: str, recipient: str) -> str:
    """The idempotency key of an alert's delivery. The recipient comes last: `enqueue_subscribers` passes
    the key with an empty recipient and the SQL appends each phone to it."""
    return f"{alert_id}:{channel}:{kind}:{recipient}"


def escalation_delivery_key(escalation_id: int, channel: str, recipient: str) -> str:
    """The key of a webmaster's escalation message (email or webhook)."""
    return f"escalation:{escalation_id}:{channel}:{recipient}"


def answer_delivery_key(question_id: int, channel: str) -> str:
    """The key of the automatic answer to a citizen's question, in its thread."""
    return f"q{question_id}:{channel}"


def group_answer_delivery_key(answer_id: int, question_id: int) -> str:
    """The key of a CM's answer to a group as it goes to one asker: once per question and answer."""
    return f"a{answer_id}:q{question_id}"


@dataclass(frozen=True, slots=True)
class NewDelivery:
    key: str
    alert_id: int
    channel: str
    text: str
    recipient: str = ""
    kind: str = "Alert"
    subject: str = ""
    link: str = ""
    reply_to: str = ""
    extra: str = "{}"
    priority: int = 0  # the alert's severity: higher is claimed first


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox."""

    id: int
    key: str
    alert_id: int
    channel: str
    recipient: str
    kind: str
    text: str
    subject: str
    link: str
    reply_to: str
    extra: Mapping[str, Any]
    state: DeliveryState
    attempts: int
    in_doubt: bool
    due_at: float
    lease_until: float | None
    worker: str
    first_attempt_at: float | None
    last_error: str
    provider_id: str
    provider_status: str
    created_at: float
    sent_at: float | None
    updated_at: float
    priority: int = 0
    superseded_by: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Delivery":
        return cls(
            id=row["id"],
            key=row["key"],
            alert_id=row["alert_id"],
            channel=row["channel"],
            recipient=row["recipient"],
            kind=row["kind"],
            text=row["text"],
            subject=row["subject"],
            link=row["link"],
            reply_to=row["reply_to"],
            extra=_extra(row["extra"]),
            state=_STATES[row["state"]],
            attempts=row["attempts"],
            in_doubt=bool(row["in_doubt"]),
            due_at=row["due_at"],
            lease_until=row["lease_until"],
            worker=row["worker"],
            first_attempt_at=row["first_attempt_at"],
            last_error=row["last_error"],
            provider_id=row["provider_id"],
            provider_status=row["provider_status"],
            created_at=row["created_at"],
            sent_at=row["sent_at"],
            updated_at=row["updated_at"],
            priority=row["priority"],
            superseded_by=row["superseded_by"],
        )


_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
_STATES = {state.value: state for state in DeliveryState}  # a claim reads thousands of rows


def _extra(raw: str | None) -> Mapping[str, Any]:
    """The channel payload of a row; most have none."""
    return json.loads(raw) if raw and raw != "{}" else _NO_EXTRA


class Outbox:
    """Queue, claim and finish deliveries, on SQLite and PostgreSQL alike."""

    def __init__(self, db: Database):
        self.db = db
        self._work = asyncio.Event()
        self._listener: Any = None
        self._listener_lock = asyncio.Lock()

    async def close(self) -> None:
        """Stop listening for other processes' work (the database itself belongs to the caller)."""
        if self._listener is not None and isinstance(self.db, PostgresDatabase):
            await self.db.unlisten(self._listener, NOTIFY_CHANNEL, self._on_notify)
            self._listener = None

    # ------------------------------------------------------------------ queueing

    async def enqueue(self, deliveries: Sequence[NewDelivery], supersedes: int | None = None) -> int:
        """Queue deliveries; a key already present is left as it is. Returns how many were new.
        `supersedes`: the alert these deliveries are a newer version of (see `_supersede`)."""
        if not deliveries:
            return 0
        now = time.time()
        superseded = 0

        async def queue(tx: Executor) -> int:
            nonlocal superseded
            superseded = 0
            if supersedes is not None:
                for channel in sorted({d.channel for d in deliveries}):
                    superseded += await self._supersede(tx, supersedes, channel, deliveries[0].alert_id, now)
            return await self.enqueue_within(tx, deliveries, now)

        added = await in_transaction(self.db, queue)
        await self.notify_work()
        if superseded:
            await settle()
        return added

    @staticmethod
    async def enqueue_within(tx: Executor, deliveries: Sequence[NewDelivery], now: float) -> int:
        """Within the caller's transaction (which changes something else with them, as an answer marking
        its questions answered): queue deliveries, a key already present left as it is. The caller calls
        `notify_work` once committed. Returns how many were new."""
        added = 0
        for d in deliveries:
            added += await tx.execute(
                SQL["enqueue"],
                d.key,
                d.alert_id,
                d.channel,
                d.recipient,
                d.kind,
                d.text,
                d.subject,
                d.link,
                d.reply_to,
                d.extra,
                now,
                d.priority,
            )
        return added

    async def enqueue_subscribers(
        self,
        alert_id: int,
        channel: str,
        territories: Sequence[str],
        kind: str,
        text: str,
        priority: int = 0,
        supersedes: int | None = None,
        *,
        medium: str = "sms",
        subject: str = "",
        link: str = "",
    ) -> int:
        """One delivery per subscriber of any of `territories` reached by `medium` (each address once), in
        one statement: 100,000 subscribers are queued without passing through Python."""
        if not territories:
            return 0
        now = time.time()
        superseded = 0

        async def queue(tx: Executor) -> int:
            nonlocal superseded
            if supersedes is not None:
                superseded = await self._supersede(tx, supersedes, channel, alert_id, now)
            return await tx.execute(
                SQL["enqueue_subscribers"].format(territories=in_list(11, len(territories))),
                delivery_key(alert_id, channel, kind, recipient=""),
                alert_id,
                channel,
                kind,
                text,
                now,
                priority,
                medium,
                subject,
                link,
                *territories,
            )

        count = await in_transaction(self.db, queue)
        await self.notify_work()
        if superseded:
            await settle()
        return count

    @staticmethod
    async def _supersede(tx: Executor, old_alert: int, channel: str, new_alert: int, now: float) -> int:
        """Within the transaction that queues the newer version: what of the old one is still queued on
        `channel` is cancelled, what is being sent is marked (its worker checks before sending, and the new
        version's delivery to that recipient waits for it): nobody gets the old text after the new one."""
        count = await tx.execute(
            SQL["supersede"], old_alert, channel, new_alert, f"superseded: replaced by alert {new_alert}", now
        )
        if count:
            log.info("alert %s on %s: %d deliveries of alert %s superseded", new_alert, channel, count, old_alert)
        return count

    # ------------------------------------------------------------------ a worker's transitions

    @property
    def _skip_locked(self) -> str:
        """Row locks that skip the rows another statement holds (SQLite runs one statement at a time)."""
        return "FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""

    async def claim(self, worker: str, limit: int, lease: float, channels: Sequence[str] = ()) -> list[Delivery]:
        """Take up to `limit` due deliveries under a lease of `lease` seconds, most severe first, then
        oldest. A delivery whose lease expired (its worker died mid-send) is taken again with `in_doubt` set."""
        now = time.time()
        parts = {
            "channels": f"AND channel IN ({in_list(5, len(channels))})" if channels else "",
            "lock": self._skip_locked,
        }
        async with self.db.transaction() as tx:
            rows = await tx.fetch(SQL["claim_expired"].format(**parts), now + lease, worker, now, limit, *channels)
            if len(rows) < limit:
                rows += await tx.fetch(
                    SQL["claim_queued"].format(**parts), now + lease, worker, now, limit - len(rows), *channels
                )
        return sorted((Delivery.from_row(r) for r in rows), key=lambda d: (-d.priority, d.id))

    async def renew(self, worker: str, ids: Sequence[int], lease: float) -> set[int]:
        """Extend the lease of `worker`'s deliveries among `ids` that are still in flight; returns their ids.
        The others are no longer this worker's to send: recorded already, or taken by another worker after
        this one's lease lapsed.

        The renewal skips the rows another statement holds (see the SQL). Those that were still this
        worker's before that statement (a newer version of the alert marking them, this worker recording
        them as sent, another worker claiming them) are asked for once more a moment later, when that
        statement has decided whose they are."""
        renewed = await self._renew(worker, ids, lease)
        missing = [i for i in ids if i not in renewed]
        if missing and self._skip_locked:
            sql = SQL["held"].format(ids=in_list(2, len(missing)))
            skipped = [row["id"] for row in await self.db.fetch(sql, worker, *missing)]
            if skipped:
                await asyncio.sleep(RENEW_AGAIN)
                renewed |= await self._renew(worker, skipped, lease)
        return renewed

    async def _renew(self, worker: str, ids: Sequence[int], lease: float) -> set[int]:
        if not ids:
            return set()
        sql = SQL["renew"].format(ids=in_list(3, len(ids)), lock=self._skip_locked)
        return {row["id"] for row in await self.db.fetch(sql, time.time() + lease, worker, *ids)}

    async def mark_sent(self, worker: str, results: Sequence[tuple[int, str, str]]) -> list[int]:
        """(delivery id, provider id, provider status) for each delivery the provider accepted. Returns the
        ids this worker no longer held (logged): their new holder took them in doubt, and will find them
        sent at the provider."""
        if not results:
            return []
        ids = [delivery_id for delivery_id, _, _ in results]
        elements = "json_array_elements(CAST($1 AS json))" if self.db.dialect == "postgresql" else "json_each($1)"
        rows = await self.db.fetch(
            SQL["mark_sent"].format(elements=elements),
            json.dumps([list(result) for result in results]),
            worker,
            time.time(),
        )
        recorded = {r["id"] for r in rows}
        lost = [i for i in ids if i not in recorded]
        if lost:
            log.warning(
                "worker %s had lost the lease of %d sent deliveries (ids %s): their new holder checks "
                "with the provider",
                worker,
                len(lost),
                lost[:20],
            )
        return lost

    async def mark_retry(
        self, delivery: Delivery, worker: str, error: str, due_at: float, in_doubt: bool = False
    ) -> None:
        """Try again at `due_at`. `in_doubt`: the provider may have accepted it (a timeout, a connection
        lost after the request went out), so the next attempt asks the provider first."""
        count = await self.db.execute(
            SQL["mark_retry"], delivery.id, worker, due_at, error[:500], time.time(), int(in_doubt)
        )
        self._held(count, delivery, worker)

    async def mark_ended(self, delivery: Delivery, worker: str, state: DeliveryState, error: str) -> None:
        """End a delivery this worker holds: failed, dead or cancelled."""
        if state not in (DeliveryState.FAILED, DeliveryState.DEAD, DeliveryState.CANCELLED):
            raise ValueError(f"a delivery cannot end as {state}")
        count = await self.db.execute(SQL["mark_ended"], delivery.id, worker, state.value, error[:500], time.time())
        self._held(count, delivery, worker)

    @staticmethod
    def _held(count: int, delivery: Delivery, worker: str) -> None:
        if count == 0:
            raise LeaseLost(f"delivery {delivery.key} is no longer held by worker {worker}")

    async def mark_in_doubt(self, worker: str, ids: Sequence[int]) -> None:
        """These deliveries' sends were cancelled under way: whoever sends them next asks the provider first."""
        for delivery_id in ids:
            await self.db.execute(SQL["mark_in_doubt"], delivery_id, worker)

    async def release(self, worker: str, ids: Sequence[int] | None = None) -> int:
        """Give back the leases of a worker that stops (nothing of them is in flight): all of them, or those of
        the deliveries `ids` only."""
        if ids is not None and not ids:
            return 0
        only = "" if ids is None else f"AND id IN ({in_list(3, len(ids))})"
        return await self.db.execute(SQL["release"].format(only=only), worker, time.time(), *(ids or ()))

    # ------------------------------------------------------------------ what others change

    async def cancel_queued_for(self, tx: Executor, phone: str, why: str) -> int:
        """Within the caller's transaction: cancel what is still queued for `phone`."""
        return await tx.execute(SQL["cancel_queued_for"], phone, why, time.time())

    async def erase_recipient(self, tx: Executor, phone: str) -> None:
        """Within the caller's transaction: forget `phone` and the texts sent to it (RGPD erasure)."""
        await tx.execute(SQL["erase_recipient"], phone)

    async def withheld_among(self, ids: Sequence[int]) -> dict[int, str]:
        """Which of these deliveries must not be sent now, and why: "superseded" (a newer version of their
        alert replaced them) or "opt-out" (their recipient opted out). One query for the sends of a moment."""
        found: dict[int, str] = {}
        for start in range(0, len(ids), 512):
            chunk = list(ids[start : start + 512])
            # padded to a power of two (the last id repeated): a handful of statement texts, each prepared
            # once on PostgreSQL, instead of one per length
            size = max(16, 1 << (len(chunk) - 1).bit_length())
            chunk += chunk[-1:] * (size - len(chunk))
            rows = await self.db.fetch(SQL["withheld_among"].format(ids=in_list(1, size)), *chunk)
            found.update((r["id"], r["why"]) for r in rows)
        return found

    async def set_provider_status(self, key: str, status: str, error: str = "") -> bool:
        """A provider's later word on a sent delivery (Twilio status callback: delivered, failed...)."""
        return await self.db.execute(SQL["set_provider_status"], key, status, error, time.time()) > 0

    # ------------------------------------------------------------------ reading

    async def set_provider_status_by_id(self, provider_id: str, status: str, error: str = "") -> str | None:
        """A receipt naming the provider's message id; returns the delivery's recipient, None if unknown."""
        recipient = await self.db.fetchval(SQL["set_provider_status_by_id"], provider_id, status, error, time.time())
        return None if recipient is None else str(recipient)

    async def latest_receipts(self, phone: str, count: int) -> list[str]:
        """The provider statuses of the `count` latest messages sent to `phone` that have one, newest first."""
        return [r["provider_status"] for r in await self.db.fetch(SQL["latest_receipts"], phone, count)]

    async def delivery(self, key: str) -> Delivery | None:
        row = await self.db.fetchrow(SQL["by_key"], key)
        return Delivery.from_row(row) if row else None

    async def deliveries(
        self, alert_id: int | None = None, state: DeliveryState | str | None = None, limit: int = 100
    ) -> list[Delivery]:
        rows = await self.db.fetch(SQL["list"], alert_id, None if state is None else str(state), limit)
        return [Delivery.from_row(r) for r in rows]

    async def recipients(self, alert_id: int, view: str = "all", limit: int = 500) -> list[dict[str, Any]]:
        """Per recipient of an alert: state, provider receipt and reason, put aside or not (RECIPIENT_VIEWS)."""
        if view not in RECIPIENT_VIEWS:
            raise ValueError(f"unknown view {view!r}: one of {', '.join(RECIPIENT_VIEWS)}")
        return await self.db.fetch(SQL["recipients"], alert_id, view, limit)

    async def recipient_counts(self, alert_id: int) -> dict[str, int]:
        row = await self.db.fetchrow(SQL["recipient_counts"], alert_id)
        return {view: int((row or {}).get(view) or 0) for view in ("total", "delivered", "failed", "aside")}

    async def messages_to(self, phone: str) -> list[dict[str, Any]]:
        """What was sent (or queued) to a number, for an RGPD access request."""
        return await self.db.fetch(SQL["messages_to"], phone)

    async def progress(self, alert_id: int | None = None) -> list[dict[str, Any]]:
        """Per alert and channel: totals by state, send rate over the last minute and estimated end."""
        now = time.time()
        rows = await self.db.fetch(SQL["progress"], now - 60, alert_id)
        report: dict[tuple[int, str], dict[str, Any]] = {}
        for row in rows:
            entry = report.setdefault(
                (row["alert_id"], row["channel"]),
                {
                    "alert_id": row["alert_id"],
                    "channel": row["channel"],
                    "total": 0,
                    "states": {},
                    "recent": 0,
                    "started": None,
                    "last_sent": None,
                },
            )
            entry["total"] += row["n"]
            entry["states"][row["state"]] = row["n"]
            entry["recent"] += row["recent"] or 0
            for field, pick in (("started", min), ("last_sent", max)):
                if row[field] is not None:
                    entry[field] = row[field] if entry[field] is None else pick(entry[field], row[field])
        for row in await self.db.fetch(SQL["receipts"], alert_id):
            sent = report.get((row["alert_id"], row["channel"]))
            if sent is not None:
                sent.setdefault("receipts", {})[row["provider_status"]] = row["n"]
        out = []
        for entry in report.values():
            receipts = entry.get("receipts", {})
            states = entry["states"]
            done = sum(states.get(s.value, 0) for s in DeliveryState if s.finished)
            remaining = entry["total"] - done
            if entry["started"] and entry["last_sent"] and entry["last_sent"] > entry["started"]:
                rate = states.get("sent", 0) / (entry["last_sent"] - entry["started"])
            else:
                rate = entry["recent"] / 60.0
            out.append(
                {
                    "alert_id": entry["alert_id"],
                    "channel": entry["channel"],
                    "total": entry["total"],
                    "sent": states.get("sent", 0),
                    "failed": states.get("failed", 0) + states.get("dead", 0),
                    "queued": states.get("queued", 0) + states.get("sending", 0),
                    "cancelled": states.get("cancelled", 0),
                    # the provider's receipts (Twilio status callbacks) for what was sent
                    "delivered": receipts.get("delivered", 0),
                    "undelivered": sum(receipts.get(s, 0) for s in UNDELIVERED_STATUSES),
                    "rate_per_s": round(rate, 1),
                    "eta_s": round(remaining / rate, 1) if rate > 0 and remaining else (0.0 if not remaining else None),
                }
            )
        return out

    async def queue_stats(self) -> dict[str, Any]:
        """The backlog: deliveries queued or being sent, by channel and state, and the age of the oldest
        queued one. Finished deliveries are not counted here (their number grows with the history; the
        workers count them as they finish: crieur_deliveries_total)."""
        rows = await self.db.fetch(SQL["backlog"])
        oldest = min((r["oldest"] for r in rows if r["oldest"] is not None), default=None)
        return {
            "by_channel_state": [(r["channel"], r["state"], r["n"]) for r in rows],
            "oldest_queued_age": (time.time() - oldest) if oldest else 0.0,
        }

    # ------------------------------------------------------------------ wake-ups
    # in one process an Event; across processes PostgreSQL LISTEN/NOTIFY

    async def notify_work(self) -> None:
        self._work.set()
        if self.db.dialect == "postgresql":
            await self.db.execute(f"NOTIFY {NOTIFY_CHANNEL}")

    def _on_notify(self, *_: Any) -> None:
        self._work.set()

    async def wait_for_work(self, timeout: float) -> None:
        """Until new deliveries are queued (here, or by another process on PostgreSQL) or `timeout`."""
        if isinstance(self.db, PostgresDatabase):
            async with self._listener_lock:  # every channel loop waits here: one listening connection
                if self._listener is not None and self._listener.is_closed():  # the server cut it
                    with contextlib.suppress(Exception):
                        await self.db.unlisten(self._listener, NOTIFY_CHANNEL, self._on_notify)
                    self._listener = None
                if self._listener is None:
                    try:
                        self._listener = await self.db.listen(NOTIFY_CHANNEL, self._on_notify)
                    except Exception as exc:  # the database is down: poll until it is back
                        log.warning("cannot listen for new deliveries (%s); polling", exc)
        try:
            await asyncio.wait_for(self._work.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self._work.clear()
