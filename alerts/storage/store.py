"""Everything Crieur keeps, behind one class whose SQL serves SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from alerts.domain import Alert, AlertStatus, Item, MsgType

from .db import Database, PostgresDatabase, StorageError, connect, migrate
from .records import alert_from_row, alert_row, digest_of, item_from_dict, item_json, to_epoch

log = logging.getLogger("crieur.storage")
NOTIFY_CHANNEL = "crieur_deliveries"


@dataclass(frozen=True, slots=True)
class Ingested:
    """What storing an item changed: "new", "updated", "withdrawn" or "unchanged"."""

    item: Item
    change: str


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


def _in(start: int, count: int) -> str:
    """`$start, $start+1, ...` placeholders for an IN list."""
    return ", ".join(f"${i}" for i in range(start, start + count))


class Store:
    def __init__(self, db: Database):
        self.db = db
        self._work = asyncio.Event()
        self._listener: Any = None
        self._listener_lock = asyncio.Lock()

    @property
    def dialect(self) -> str:
        return self.db.dialect

    async def close(self) -> None:
        if self._listener is not None and isinstance(self.db, PostgresDatabase):
            await self.db.unlisten(self._listener, NOTIFY_CHANNEL, self._on_notify)
            self._listener = None
        await self.db.close()

    # ------------------------------------------------------------------ sources

    async def load_source_state(self, name: str) -> dict[str, Any] | None:
        raw = await self.db.fetchval("SELECT state FROM sources WHERE name = $1", name)
        return json.loads(raw) if raw else None

    async def save_source_state(self, name: str, state: dict[str, Any]) -> None:
        await self.db.execute(
            "INSERT INTO sources (name, state, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            name,
            json.dumps(state, default=str),
            time.time(),
        )

    async def source_states(self) -> dict[str, dict[str, Any]]:
        rows = await self.db.fetch("SELECT name, state FROM sources ORDER BY name")
        return {r["name"]: json.loads(r["state"]) for r in rows}

    # ------------------------------------------------------------------ items

    async def ingest(self, items: Iterable[Item]) -> list[Ingested]:
        """Store items, deduplicated by (source, external_id); a changed one keeps its history.

        One batch is a handful of statements whatever its size (one look-up, then bulk writes), so that
        storing a feed costs little next to parsing it."""
        now = time.time()
        batch: dict[tuple[str, str], tuple[Item, str, str]] = {}
        for item in items:  # a feed repeating a guid: the first entry wins, as a reader would see it
            data = item_json(item)
            batch.setdefault((item.source, item.external_id), (item, data, digest_of(data)))
        if not batch:
            return []
        results: list[Ingested] = []
        async with self.db.transaction() as tx:
            known: dict[tuple[str, str], str] = {}
            by_source: dict[str, list[str]] = {}
            for source, external_id in batch:
                by_source.setdefault(source, []).append(external_id)
            for source, ids in by_source.items():
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    for row in await tx.fetch(
                        "SELECT external_id, digest FROM items WHERE source = $1"
                        f" AND external_id IN ({_in(2, len(chunk))})",
                        source,
                        *chunk,
                    ):
                        known[(source, row["external_id"])] = row["digest"]
            new, changed, unchanged = [], [], []
            for key, (item, data, digest) in batch.items():
                if key not in known:
                    new.append((item, data, digest))
                    results.append(Ingested(item, "withdrawn" if item.withdrawn else "new"))
                elif known[key] != digest:
                    changed.append((item, data, digest))
                    results.append(Ingested(item, "withdrawn" if item.withdrawn else "updated"))
                else:
                    unchanged.append(key)
                    results.append(Ingested(item, "unchanged"))

            def item_row(i: Item, data: str, digest: str) -> tuple:
                """$1..$10 of both the INSERT and the UPDATE below."""
                return (i.source, i.external_id, i.version, digest, i.msg_type.value, to_epoch(i.sent),
                        to_epoch(i.expires), i.title, data, now)

            if new:
                await tx.executemany(
                    "INSERT INTO items (source, external_id, version, digest, msg_type, sent, expires, title, data,"
                    " first_seen, last_seen) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$10)",
                    [item_row(*entry) for entry in new],
                )
            if changed:
                await tx.executemany(
                    "UPDATE items SET version = $3, digest = $4, msg_type = $5, sent = $6, expires = $7,"
                    " title = $8, data = $9, last_seen = $10 WHERE source = $1 AND external_id = $2",
                    [item_row(*entry) for entry in changed],
                )
            if unchanged:
                await tx.executemany(
                    "UPDATE items SET last_seen = $3 WHERE source = $1 AND external_id = $2",
                    [(source, external_id, now) for source, external_id in unchanged],
                )
            if new or changed:
                await tx.executemany(
                    "INSERT INTO item_versions (item_id, version, digest, raw, received_at)"
                    " SELECT id, $3, $4, $5, $6 FROM items WHERE source = $1 AND external_id = $2",
                    [(i.source, i.external_id, i.version, digest, i.raw, now) for i, _, digest in new + changed],
                )
        return results

    async def items(self, sources: Sequence[str] = (), limit: int = 200) -> list[Item]:
        """Latest items, newest first, optionally from given sources only."""
        if sources:
            rows = await self.db.fetch(
                f"SELECT data FROM items WHERE source IN ({_in(2, len(sources))})"
                " ORDER BY COALESCE(sent, first_seen) DESC LIMIT $1",
                limit,
                *sources,
            )
        else:
            rows = await self.db.fetch(
                "SELECT data FROM items ORDER BY COALESCE(sent, first_seen) DESC LIMIT $1", limit
            )
        return [item_from_dict(json.loads(r["data"])) for r in rows]

    async def item(self, source: str, external_id: str) -> Item | None:
        row = await self.db.fetchrow(
            "SELECT i.data, v.raw FROM items i LEFT JOIN item_versions v ON v.id ="
            " (SELECT MAX(id) FROM item_versions WHERE item_id = i.id)"
            " WHERE i.source = $1 AND i.external_id = $2",
            source,
            external_id,
        )
        return item_from_dict(json.loads(row["data"]), row["raw"] or "") if row else None

    # ------------------------------------------------------------------ alerts

    async def add_alert(self, alert: Alert, created_by: str = "", dedup: str = "") -> Alert:
        now = time.time()
        row = alert_row(alert, now)
        row["created_by"] = created_by
        row["dedup"] = dedup
        columns = list(row)
        alert_id = await self.db.fetchval(
            f"INSERT INTO alerts ({', '.join(columns)}) VALUES ({_in(1, len(columns))}) RETURNING id",
            *row.values(),
        )
        return await self.alert(alert_id)  # type: ignore[return-value]

    async def alert(self, alert_id: int) -> Alert | None:
        row = await self.db.fetchrow("SELECT * FROM alerts WHERE id = $1", alert_id)
        return alert_from_row(row) if row else None

    async def alerts(
        self,
        statuses: Sequence[AlertStatus] = (AlertStatus.PUBLISHED,),
        territory: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        rows = await self.db.fetch(
            f"SELECT * FROM alerts WHERE status IN ({_in(2, len(statuses))})"
            " ORDER BY severity DESC, updated_at DESC LIMIT $1",
            limit * (5 if territory else 1),
            *[s.value for s in statuses],
        )
        found = [alert_from_row(r) for r in rows]
        if territory is not None:
            found = [a for a in found if territory in a.territories][:limit]
        return found

    async def latest_alert_for_item(self, item_key: str) -> Alert | None:
        row = await self.db.fetchrow(
            "SELECT * FROM alerts WHERE item_key = $1 ORDER BY id DESC LIMIT 1", item_key
        )
        return alert_from_row(row) if row else None

    async def recent_alert_like(self, dedup: str, since: float) -> Alert | None:
        """An alert with the same duplicate key (rule, territories, text) since `since`."""
        row = await self.db.fetchrow(
            "SELECT * FROM alerts WHERE dedup = $1 AND created_at >= $2 ORDER BY id DESC LIMIT 1",
            dedup,
            since,
        )
        return alert_from_row(row) if row else None

    async def set_alert_status(self, alert_id: int, status: AlertStatus) -> None:
        await self.db.execute(
            "UPDATE alerts SET status = $2, updated_at = $3 WHERE id = $1", alert_id, status.value, time.time()
        )

    async def expire_alerts(self, now: float) -> int:
        return await self.db.execute(
            "UPDATE alerts SET status = $1, updated_at = $2 WHERE status = $3"
            " AND expires IS NOT NULL AND expires <= $2",
            AlertStatus.EXPIRED.value,
            now,
            AlertStatus.PUBLISHED.value,
        )

    async def last_change(self) -> float:
        """Newest alert change: what the public pages' ETag is made of."""
        return float(await self.db.fetchval("SELECT COALESCE(MAX(updated_at), 0) FROM alerts") or 0)

    # ------------------------------------------------------------------ deliveries (the outbox)

    async def enqueue(self, deliveries: Sequence[NewDelivery]) -> int:
        """Queue deliveries; a key already present is left as it is. Returns how many were new."""
        if not deliveries:
            return 0
        now = time.time()
        added = 0
        async with self.db.transaction() as tx:
            for d in deliveries:
                added += await tx.execute(
                    "INSERT INTO deliveries (key, alert_id, channel, recipient, kind, text, subject, link,"
                    " reply_to, extra, due_at, created_at, updated_at)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$11,$11) ON CONFLICT (key) DO NOTHING",
                    d.key, d.alert_id, d.channel, d.recipient, d.kind, d.text, d.subject, d.link, d.reply_to,
                    d.extra, now,
                )
        await self.notify_work()
        return added

    async def enqueue_subscribers(
        self, alert_id: int, channel: str, territories: Sequence[str], kind: str, text: str
    ) -> int:
        """One delivery per subscribed number of any of `territories` (each number once), in one statement:
        100,000 subscribers are queued without passing through Python."""
        if not territories:
            return 0
        now = time.time()
        prefix = f"{alert_id}:{channel}:{kind}:"
        count = await self.db.execute(
            "INSERT INTO deliveries (key, alert_id, channel, recipient, kind, text, due_at, created_at,"
            " updated_at)"
            " SELECT $1 || s.phone, $2, $3, s.phone, $4, $5, $6, $6, $6 FROM"
            f" (SELECT DISTINCT phone FROM subscribers WHERE territory IN ({_in(7, len(territories))})) s"
            " WHERE NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = s.phone)"
            " ON CONFLICT (key) DO NOTHING",
            prefix,
            alert_id,
            channel,
            kind,
            text,
            now,
            *territories,
        )
        await self.notify_work()
        return count

    async def claim(self, worker: str, limit: int, lease: float, channels: Sequence[str] = ()) -> list[dict]:
        """Take up to `limit` due deliveries under a lease of `lease` seconds. A delivery whose lease
        expired (its worker died mid-send) is taken again with `in_doubt` set."""
        now = time.time()
        channel_filter = f" AND channel IN ({_in(5, len(channels))})" if channels else ""
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        sql = (
            "UPDATE deliveries SET in_doubt = CASE WHEN state = 'sending' THEN 1 ELSE in_doubt END,"
            " state = 'sending', lease_until = $1, worker = $2, attempts = attempts + 1,"
            " first_attempt_at = COALESCE(first_attempt_at, $3), updated_at = $3"
            " WHERE id IN (SELECT id FROM deliveries WHERE"
            " ((state = 'queued' AND due_at <= $3) OR (state = 'sending' AND lease_until < $3))"
            f"{channel_filter}"
            " AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = deliveries.recipient)"
            f" ORDER BY id LIMIT $4{lock})"
            " RETURNING *"
        )
        async with self.db.transaction() as tx:
            rows = await tx.fetch(sql, now + lease, worker, now, limit, *channels)
        rows.sort(key=lambda r: r["id"])
        return rows

    async def mark_sent(self, results: Sequence[tuple[int, str, str]]) -> None:
        """(delivery id, provider id, provider status) for each delivery the provider accepted."""
        if results:
            now = time.time()
            await self.db.executemany(
                "UPDATE deliveries SET state = 'sent', provider_id = $2, provider_status = $3, sent_at = $4,"
                " updated_at = $4, lease_until = NULL, last_error = '' WHERE id = $1",
                [(i, pid, status, now) for i, pid, status in results],
            )

    async def renew(self, worker: str, ids: Sequence[int], lease: float) -> int:
        """Extend the lease of `worker`'s deliveries among `ids` that are still in flight."""
        if not ids:
            return 0
        return await self.db.execute(
            f"UPDATE deliveries SET lease_until = $1 WHERE worker = $2 AND state = 'sending'"
            f" AND id IN ({_in(3, len(ids))})",
            time.time() + lease,
            worker,
            *ids,
        )

    async def mark_retry(self, delivery_id: int, error: str, due_at: float, in_doubt: bool = False) -> None:
        """Try again at `due_at`. `in_doubt`: the provider may have accepted it (a timeout, a connection
        lost after the request went out), so the next attempt asks the provider first."""
        await self.db.execute(
            "UPDATE deliveries SET state = 'queued', due_at = $2, last_error = $3, lease_until = NULL,"
            " updated_at = $4, in_doubt = $5 WHERE id = $1",
            delivery_id,
            due_at,
            error[:500],
            time.time(),
            int(in_doubt),
        )

    async def mark_failed(self, delivery_id: int, error: str, state: str = "failed") -> None:
        """End a delivery: "failed" (the provider refused it for good) or "dead" (attempts exhausted)."""
        await self.db.execute(
            "UPDATE deliveries SET state = $2, last_error = $3, lease_until = NULL, updated_at = $4"
            " WHERE id = $1",
            delivery_id,
            state,
            error[:500],
            time.time(),
        )

    async def release(self, worker: str) -> int:
        """Give back the leases of a worker that stops cleanly (nothing of them is in flight)."""
        return await self.db.execute(
            "UPDATE deliveries SET state = 'queued', lease_until = NULL, attempts = attempts - 1,"
            " updated_at = $2 WHERE state = 'sending' AND worker = $1",
            worker,
            time.time(),
        )

    async def delivery(self, key: str) -> dict | None:
        return await self.db.fetchrow("SELECT * FROM deliveries WHERE key = $1", key)

    async def deliveries(self, alert_id: int | None = None, state: str | None = None, limit: int = 100) -> list[dict]:
        clauses, args = [], []
        if alert_id is not None:
            args.append(alert_id)
            clauses.append(f"alert_id = ${len(args)}")
        if state is not None:
            args.append(state)
            clauses.append(f"state = ${len(args)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(limit)
        return await self.db.fetch(f"SELECT * FROM deliveries {where} ORDER BY id LIMIT ${len(args)}", *args)

    async def set_provider_status(self, key: str, status: str, error: str = "") -> bool:
        """A provider's later word on a sent delivery (Twilio status callback: delivered, failed...)."""
        count = await self.db.execute(
            "UPDATE deliveries SET provider_status = $2, last_error = CASE WHEN $3 = '' THEN last_error"
            " ELSE $3 END, updated_at = $4 WHERE key = $1",
            key,
            status,
            error,
            time.time(),
        )
        return count > 0

    async def progress(self, alert_id: int | None = None) -> list[dict[str, Any]]:
        """Per alert and channel: totals by state, send rate over the last minute and estimated end."""
        now = time.time()
        where, args = ("WHERE alert_id = $2", [now - 60, alert_id]) if alert_id is not None else ("", [now - 60])
        rows = await self.db.fetch(
            "SELECT alert_id, channel, state, COUNT(*) AS n,"
            " SUM(CASE WHEN sent_at >= $1 THEN 1 ELSE 0 END) AS recent,"
            " MIN(first_attempt_at) AS started, MAX(sent_at) AS last_sent"
            f" FROM deliveries {where} GROUP BY alert_id, channel, state ORDER BY alert_id, channel",
            *args,
        )
        report: dict[tuple[int, str], dict[str, Any]] = {}
        for row in rows:
            entry = report.setdefault(
                (row["alert_id"], row["channel"]),
                {"alert_id": row["alert_id"], "channel": row["channel"], "total": 0, "states": {},
                 "recent": 0, "started": None, "last_sent": None},
            )
            entry["total"] += row["n"]
            entry["states"][row["state"]] = row["n"]
            entry["recent"] += row["recent"] or 0
            for field, pick in (("started", min), ("last_sent", max)):
                if row[field] is not None:
                    entry[field] = row[field] if entry[field] is None else pick(entry[field], row[field])
        out = []
        for entry in report.values():
            states = entry["states"]
            done = sum(states.get(s, 0) for s in ("sent", "failed", "dead", "cancelled"))
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
                    "rate_per_s": round(rate, 1),
                    "eta_s": round(remaining / rate, 1) if rate > 0 and remaining else (0.0 if not remaining else None),
                }
            )
        return out

    async def queue_stats(self) -> dict[str, Any]:
        rows = await self.db.fetch("SELECT channel, state, COUNT(*) AS n FROM deliveries GROUP BY channel, state")
        oldest = await self.db.fetchval("SELECT MIN(created_at) FROM deliveries WHERE state = 'queued'")
        return {
            "by_channel_state": [(r["channel"], r["state"], r["n"]) for r in rows],
            "oldest_queued_age": (time.time() - oldest) if oldest else 0.0,
        }

    # wake-ups: in one process an Event; across processes PostgreSQL LISTEN/NOTIFY

    async def notify_work(self) -> None:
        self._work.set()
        if self.dialect == "postgresql":
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

    # ------------------------------------------------------------------ subscribers

    async def subscribe(self, phone: str, territories: Sequence[str]) -> list[str]:
        """Subscribe a number; returns the territories it was not yet subscribed to. Subscribing again
        after STOP is the citizen's explicit wish: it lifts the opt-out."""
        now = time.time()
        added = []
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM opt_outs WHERE phone = $1 AND reason = 'stop'", phone)
            for territory in territories:
                count = await tx.execute(
                    "INSERT INTO subscribers (phone, territory, created_at) VALUES ($1, $2, $3)"
                    " ON CONFLICT (phone, territory) DO NOTHING",
                    phone,
                    territory,
                    now,
                )
                if count:
                    added.append(territory)
        return added

    async def opt_out(self, phone: str, reason: str = "stop") -> int:
        """STOP (or a provider's "unsubscribed"/"invalid" answer): remove every subscription, block the
        number, and cancel what is still queued for it. Returns the number of deliveries cancelled."""
        now = time.time()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM subscribers WHERE phone = $1", phone)
            await tx.execute(
                "INSERT INTO opt_outs (phone, reason, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (phone) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at",
                phone,
                reason,
                now,
            )
            return await tx.execute(
                "UPDATE deliveries SET state = 'cancelled', last_error = $2, updated_at = $3"
                " WHERE recipient = $1 AND state = 'queued'",
                phone,
                f"opt-out: {reason}",
                now,
            )

    async def opted_out_among(self, phones: Sequence[str]) -> set[str]:
        """Which of `phones` must receive nothing (one query for a whole batch of sends)."""
        if not phones:
            return set()
        rows = await self.db.fetch(f"SELECT phone FROM opt_outs WHERE phone IN ({_in(1, len(phones))})", *phones)
        return {r["phone"] for r in rows}

    async def opted_out(self, phone: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM opt_outs WHERE phone = $1", phone) is not None

    async def subscriptions(self, phone: str) -> list[str]:
        rows = await self.db.fetch("SELECT territory FROM subscribers WHERE phone = $1 ORDER BY territory", phone)
        return [r["territory"] for r in rows]

    async def subscriber_count(self, territories: Sequence[str]) -> int:
        if not territories:
            return 0
        return int(
            await self.db.fetchval(
                f"SELECT COUNT(DISTINCT phone) FROM subscribers WHERE territory IN ({_in(1, len(territories))})",
                *territories,
            )
        )

    async def add_subscribers(self, rows: Iterable[tuple[str, str]]) -> None:
        """Bulk import (phone, territory) pairs, e.g. from a migration of an older list."""
        now = time.time()
        await self.db.executemany(
            "INSERT INTO subscribers (phone, territory, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (phone, territory) DO NOTHING",
            [(p, t, now) for p, t in rows],
        )

    async def export_subscriber(self, phone: str) -> dict[str, Any]:
        """Everything kept about one number (RGPD right of access)."""
        subs = await self.db.fetch("SELECT territory, created_at FROM subscribers WHERE phone = $1", phone)
        opt = await self.db.fetchrow("SELECT reason, created_at FROM opt_outs WHERE phone = $1", phone)
        questions = await self.db.fetch(
            "SELECT id, channel, text, status, created_at FROM questions WHERE sender = $1 ORDER BY id", phone
        )
        sent = await self.db.fetch(
            "SELECT alert_id, channel, state, text, sent_at FROM deliveries WHERE recipient = $1 ORDER BY id", phone
        )
        return {"phone": phone, "subscriptions": subs, "opt_out": opt, "questions": questions, "messages": sent}

    async def delete_subscriber(self, phone: str) -> None:
        """RGPD erasure: forget the number everywhere, but keep it blocked so that nothing reaches it."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM subscribers WHERE phone = $1", phone)
            await tx.execute("UPDATE questions SET sender = 'effacé', text = '' WHERE sender = $1", phone)
            await tx.execute(
                "UPDATE deliveries SET recipient = 'effacé', text = '', state = CASE WHEN state = 'queued'"
                " THEN 'cancelled' ELSE state END WHERE recipient = $1",
                phone,
            )
            await tx.execute("DELETE FROM opt_outs WHERE phone = $1", phone)

    # ------------------------------------------------------------------ questions and escalations

    async def add_question(self, **fields: Any) -> int:
        fields.setdefault("created_at", time.time())
        for name in ("territories",):
            if name in fields and not isinstance(fields[name], str):
                fields[name] = json.dumps(list(fields[name]))
        columns = list(fields)
        return await self.db.fetchval(
            f"INSERT INTO questions ({', '.join(columns)}) VALUES ({_in(1, len(columns))}) RETURNING id",
            *fields.values(),
        )

    async def questions(self, status: str | None = None, limit: int = 100) -> list[dict]:
        if status:
            return await self.db.fetch(
                "SELECT * FROM questions WHERE status = $1 ORDER BY id DESC LIMIT $2", status, limit
            )
        return await self.db.fetch("SELECT * FROM questions ORDER BY id DESC LIMIT $1", limit)

    async def set_question(self, question_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
        await self.db.execute(f"UPDATE questions SET {sets} WHERE id = $1", question_id, *fields.values())

    async def count_escalation(self, authority: str, topic: str, window_start: float) -> tuple[dict, bool]:
        """Count one more question in the escalation of (authority, topic, window); returns it and whether
        this question opened it."""
        now = time.time()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO escalations (authority, topic, window_start, question_count, created_at,"
                " last_question_at) VALUES ($1, $2, $3, 1, $4, $4)"
                " ON CONFLICT (authority, topic, window_start) DO UPDATE SET"
                " question_count = escalations.question_count + 1, last_question_at = excluded.last_question_at",
                authority,
                topic,
                window_start,
                now,
            )
            row = await tx.fetchrow(
                "SELECT * FROM escalations WHERE authority = $1 AND topic = $2 AND window_start = $3",
                authority,
                topic,
                window_start,
            )
        assert row is not None
        return row, row["question_count"] == 1

    async def escalation(self, escalation_id: int) -> dict | None:
        return await self.db.fetchrow("SELECT * FROM escalations WHERE id = $1", escalation_id)

    async def escalations(self, limit: int = 100) -> list[dict]:
        return await self.db.fetch("SELECT * FROM escalations ORDER BY id DESC LIMIT $1", limit)

    async def set_escalation_state(self, escalation_id: int, state: str) -> bool:
        column = {"sent": "sent_at", "acknowledged": "acknowledged_at"}.get(state)
        extra = f", {column} = $3" if column else ""
        args: list[Any] = [escalation_id, state] + ([time.time()] if column else [])
        return await self.db.execute(f"UPDATE escalations SET state = $2{extra} WHERE id = $1", *args) > 0

    # ------------------------------------------------------------------ snow episodes

    async def set_episode(self, territory: str, active: bool, by: str = "", reason: str = "") -> None:
        now = time.time()
        if active:
            await self.db.execute(
                "INSERT INTO episodes (territory, active, started_at, started_by, reason, ended_at)"
                " VALUES ($1, 1, $2, $3, $4, NULL) ON CONFLICT (territory) DO UPDATE SET active = 1,"
                " started_at = excluded.started_at, started_by = excluded.started_by, reason = excluded.reason,"
                " ended_at = NULL",
                territory,
                now,
                by,
                reason,
            )
        else:
            await self.db.execute(
                "UPDATE episodes SET active = 0, ended_at = $2 WHERE territory = $1", territory, now
            )

    async def episodes(self) -> list[dict]:
        return await self.db.fetch("SELECT * FROM episodes ORDER BY territory")

    async def active_episodes(self) -> frozenset[str]:
        rows = await self.db.fetch("SELECT territory FROM episodes WHERE active = 1")
        return frozenset(r["territory"] for r in rows)


async def open_store(url: str) -> Store:
    """Connect and bring the schema up to date; on failure nothing is left open."""
    db = await connect(url)
    try:
        await migrate(db)
    except Exception as exc:
        await db.close()
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot prepare the database schema: {exc}") from exc
    return Store(db)
