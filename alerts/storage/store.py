"""Everything Crieur keeps, behind one class whose SQL serves SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from alerts.domain import Alert, AlertStatus, Item
from alerts.places import Audience, Target

from .db import Database, Executor, StorageError, connect, migrate
from .inbox import Inbox
from .outbox import Delivery, DeliveryState, NewDelivery, Outbox, settle
from .queries import in_list
from .records import alert_from_row, alert_row, digest_of, item_from_dict, item_json, to_epoch

log = logging.getLogger("crieur.storage")


@dataclass(frozen=True, slots=True)
class Ingested:
    """What storing an item changed: "new", "updated", "withdrawn" or "unchanged"."""

    item: Item
    change: str


class Store:
    def __init__(self, db: Database):
        self.db = db
        self.outbox = Outbox(db)
        self.inbox = Inbox(db, self.outbox)

    @property
    def dialect(self) -> str:
        return self.db.dialect

    async def close(self) -> None:
        await self.outbox.close()
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
                    chunk = ids[start : start + 500]
                    for row in await tx.fetch(
                        "SELECT external_id, digest FROM items WHERE source = $1"
                        f" AND external_id IN ({in_list(2, len(chunk))})",
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

            def item_row(i: Item, data: str, digest: str) -> tuple[Any, ...]:
                """$1..$10 of both the INSERT and the UPDATE below."""
                return (
                    i.source,
                    i.external_id,
                    i.version,
                    digest,
                    i.msg_type.value,
                    to_epoch(i.sent),
                    to_epoch(i.expires),
                    i.title,
                    data,
                    now,
                )

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
                f"SELECT data FROM items WHERE source IN ({in_list(2, len(sources))})"
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
            f"INSERT INTO alerts ({', '.join(columns)}) VALUES ({in_list(1, len(columns))}) RETURNING id",
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
            f"SELECT * FROM alerts WHERE status IN ({in_list(2, len(statuses))})"
            " ORDER BY severity DESC, updated_at DESC LIMIT $1",
            limit * (5 if territory else 1),
            *[s.value for s in statuses],
        )
        found = [alert_from_row(r) for r in rows]
        if territory is not None:
            found = [a for a in found if territory in a.territories][:limit]
        return found

    async def latest_alert_for_item(self, item_key: str) -> Alert | None:
        row = await self.db.fetchrow("SELECT * FROM alerts WHERE item_key = $1 ORDER BY id DESC LIMIT 1", item_key)
        return alert_from_row(row) if row else None

    async def recent_alert_like(self, dedup: str, since: float) -> Alert | None:
        """An alert with the same duplicate key (rule, territories, text) since `since`."""
        row = await self.db.fetchrow(
            "SELECT * FROM alerts WHERE dedup = $1 AND created_at >= $2 ORDER BY id DESC LIMIT 1",
            dedup,
            since,
        )
        return alert_from_row(row) if row else None

    async def set_alert_status(
        self, alert_id: int, status: AlertStatus, *, only_from: AlertStatus | None = None
    ) -> bool:
        """Change an alert's status; with `only_from`, only if it is in that status now (one conditional
        UPDATE: of two CMs approving at once, one wins). Returns whether the alert changed."""
        if only_from is None:
            count = await self.db.execute(
                "UPDATE alerts SET status = $2, updated_at = $3 WHERE id = $1", alert_id, status.value, time.time()
            )
        else:
            count = await self.db.execute(
                "UPDATE alerts SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4",
                alert_id,
                status.value,
                time.time(),
                only_from.value,
            )
        return count > 0

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

    # ------------------------------------------------------------------ deliveries: see outbox.py
    # The outbox owns the `deliveries` table; these pass through to it, for the callers that hold a Store.

    async def enqueue(self, deliveries: Sequence[NewDelivery], supersedes: int | None = None) -> int:
        return await self.outbox.enqueue(deliveries, supersedes)

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
        return await self.outbox.enqueue_subscribers(
            alert_id, channel, territories, kind, text, priority, supersedes, medium=medium, subject=subject, link=link
        )

    async def claim(self, worker: str, limit: int, lease: float, channels: Sequence[str] = ()) -> list[Delivery]:
        return await self.outbox.claim(worker, limit, lease, channels)

    async def delivery(self, key: str) -> Delivery | None:
        return await self.outbox.delivery(key)

    async def deliveries(
        self, alert_id: int | None = None, state: DeliveryState | str | None = None, limit: int = 100
    ) -> list[Delivery]:
        return await self.outbox.deliveries(alert_id, state, limit)

    async def set_provider_status(self, key: str, status: str, error: str = "") -> bool:
        return await self.outbox.set_provider_status(key, status, error)

    async def progress(self, alert_id: int | None = None) -> list[dict[str, Any]]:
        return await self.outbox.progress(alert_id)

    async def queue_stats(self) -> dict[str, Any]:
        return await self.outbox.queue_stats()

    async def notify_work(self) -> None:
        await self.outbox.notify_work()

    async def wait_for_work(self, timeout: float) -> None:
        await self.outbox.wait_for_work(timeout)

    # ------------------------------------------------------------------ subscribers

    async def subscribe(self, phone: str, territories: Sequence[str], medium: str = "sms") -> list[str]:
        """Subscribe a number (or, `medium` "email", an address); returns the territories it was not yet
        subscribed to. Subscribing again after STOP is the citizen's explicit wish: it lifts the opt-out."""
        async with self.db.transaction() as tx:
            return await _subscribe(tx, phone, territories, medium)

    async def opt_out(self, phone: str, reason: str = "stop") -> int:
        """STOP (or a provider's "unsubscribed"/"invalid" answer): remove every subscription, block the
        number, and cancel what is still queued for it. Returns the number of deliveries cancelled."""
        now = time.time()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM subscribers WHERE phone = $1", phone)
            await tx.execute(
                "UPDATE consents SET withdrawn_at = $2 WHERE address = $1 AND withdrawn_at IS NULL", phone, now
            )
            await tx.execute(
                "INSERT INTO opt_outs (phone, reason, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (phone) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at",
                phone,
                reason,
                now,
            )
            cancelled = await self.outbox.cancel_queued_for(tx, phone, f"opt-out: {reason}")
        await settle()  # a worker about to send to this number sees the opt-out (alerts.storage.outbox)
        return cancelled

    async def unsubscribe(self, address: str) -> int:
        """An e-mail address's one-click unsubscribe: every subscription removed, its consents withdrawn,
        what is queued for it cancelled; returns the subscriptions removed. Unlike STOP it blocks nothing
        (no carrier keeps a block): subscribing again on the web sends the confirmation link again."""
        now = time.time()
        async with self.db.transaction() as tx:
            removed = await tx.execute("DELETE FROM subscribers WHERE phone = $1", address)
            await tx.execute(
                "UPDATE consents SET withdrawn_at = $2 WHERE address = $1 AND withdrawn_at IS NULL", address, now
            )
            await self.outbox.cancel_queued_for(tx, address, "unsubscribed")
        return removed

    async def opted_out(self, phone: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM opt_outs WHERE phone = $1", phone) is not None

    # ------------------------------------------------------------------ web subscriptions and consents

    async def add_pending(self, **fields: Any) -> int:
        """A subscription asked on the web, until its code or link confirms it (migration 0014)."""
        fields["places"] = json.dumps(list(fields["places"]))
        fields["labels"] = json.dumps(list(fields.get("labels", ())), ensure_ascii=False)
        columns = list(fields)
        return int(
            await self.db.fetchval(
                f"INSERT INTO pending_subscriptions ({', '.join(columns)}) VALUES ({in_list(1, len(columns))})"
                " RETURNING id",
                *fields.values(),
            )
        )

    async def pending(self, pending_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchrow("SELECT * FROM pending_subscriptions WHERE id = $1", pending_id)
        if row is not None:
            row = dict(row, places=json.loads(row["places"]), labels=json.loads(row["labels"]))
        return row

    async def prune_pending(self, before: float) -> int:
        """Forget the web subscriptions whose code or link expired before `before`, confirmed or not (the
        consent kept is the proof of a confirmed one)."""
        return await self.db.execute("DELETE FROM pending_subscriptions WHERE expires_at < $1", before)

    async def wrong_code(self, pending_id: int) -> int:
        """Count a wrong code; returns the attempts made so far."""
        return int(
            await self.db.fetchval(
                "UPDATE pending_subscriptions SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
                pending_id,
            )
        )

    async def confirm_pending(self, pending_id: int, now: float) -> list[str] | None:
        """Confirm a pending subscription once: subscribe its address to its places and record the consent.
        Returns the places newly subscribed, or None when it was already confirmed (a second click)."""
        async with self.db.transaction() as tx:
            claimed = await tx.execute(
                "UPDATE pending_subscriptions SET confirmed_at = $2 WHERE id = $1 AND confirmed_at IS NULL",
                pending_id,
                now,
            )
            if not claimed:
                return None
            row = await tx.fetchrow("SELECT * FROM pending_subscriptions WHERE id = $1", pending_id)
            assert row is not None
            await tx.execute(
                "INSERT INTO consents (address, medium, via, places, text_version, text, ip, asked_at, given_at)"
                " VALUES ($1, $2, 'web', $3, $4, $5, $6, $7, $8)",
                row["address"],
                row["medium"],
                row["places"],
                row["consent_version"],
                row["consent_text"],
                row["ip"],
                row["created_at"],
                now,
            )
            return await _subscribe(tx, row["address"], json.loads(row["places"]), row["medium"])

    async def record_consent(
        self, address: str, medium: str, via: str, places: Sequence[str], version: str, text: str
    ) -> None:
        """A consent given at once (a subscription SMS is its own opt-in: the citizen texted us)."""
        now = time.time()
        await self.db.execute(
            "INSERT INTO consents (address, medium, via, places, text_version, text, ip, asked_at, given_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, '', $7, $7)",
            address,
            medium,
            via,
            json.dumps(list(places)),
            version,
            text,
            now,
        )

    async def consents(self, address: str) -> list[dict[str, Any]]:
        return await self.db.fetch("SELECT * FROM consents WHERE address = $1 ORDER BY id", address)

    async def subscriptions(self, phone: str) -> list[str]:
        rows = await self.db.fetch("SELECT territory FROM subscribers WHERE phone = $1 ORDER BY territory", phone)
        return [r["territory"] for r in rows]

    async def subscriber_count(self, territories: Sequence[str]) -> int:
        if not territories:
            return 0
        return int(
            await self.db.fetchval(
                f"SELECT COUNT(DISTINCT phone) FROM subscribers WHERE territory IN ({in_list(1, len(territories))})",
                *territories,
            )
        )

    async def target_keys(self, targets: Sequence[Target]) -> dict[Target, list[str]]:
        """The subscription keys each target reaches: itself, and for a territory concerned as a whole
        every commune and road subscribed within it (alerts.places)."""
        out: dict[Target, list[str]] = {}
        for target in targets:
            keys = [target.key]
            if target.whole:
                rows = await self.db.fetch(
                    "SELECT DISTINCT territory FROM subscribers WHERE territory LIKE $1 ORDER BY territory",
                    f"{target.key}:%",
                )
                keys += [r["territory"] for r in rows]
            out[target] = keys
        return out

    async def audience(self, targets: Sequence[Target], medium: str = "sms") -> Audience:
        """How many numbers (addresses for `medium` "email"), not opted out, `targets` reach, and how many
        for each of them."""
        by_target = await self.target_keys(targets)

        async def count(keys: Sequence[str]) -> int:
            if not keys:
                return 0
            return int(
                await self.db.fetchval(
                    "SELECT COUNT(DISTINCT s.phone) FROM subscribers s WHERE s.medium = $1"
                    f" AND s.territory IN ({in_list(2, len(keys))})"
                    " AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = s.phone)",
                    medium,
                    *keys,
                )
                or 0
            )

        every = sorted({key for keys in by_target.values() for key in keys})
        reasons = [(target.label, await count(keys)) for target, keys in by_target.items()]
        return Audience(total=await count(every), reasons=tuple(reasons))

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
        sent = await self.outbox.messages_to(phone)
        consents = await self.consents(phone)
        return {
            "phone": phone,
            "subscriptions": subs,
            "opt_out": opt,
            "questions": questions,
            "messages": sent,
            "consents": consents,
        }

    async def delete_subscriber(self, phone: str) -> None:
        """RGPD erasure: forget the number everywhere, but keep it blocked so that nothing reaches it."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM subscribers WHERE phone = $1", phone)
            await tx.execute(
                "UPDATE questions SET sender = 'effacé', text = '', recipient = '', answer = ''"
                " WHERE sender = $1 OR recipient = $1",
                phone,
            )
            await tx.execute("DELETE FROM pending_subscriptions WHERE address = $1", phone)
            await tx.execute("DELETE FROM consents WHERE address = $1", phone)
            await self.outbox.erase_recipient(tx, phone)
            await tx.execute("DELETE FROM opt_outs WHERE phone = $1", phone)

    # ------------------------------------------------------------------ questions and escalations

    async def add_question(self, **fields: Any) -> int:
        fields.setdefault("created_at", time.time())
        for name in ("territories",):
            if name in fields and not isinstance(fields[name], str):
                fields[name] = json.dumps(list(fields[name]))
        columns = list(fields)
        return int(
            await self.db.fetchval(
                f"INSERT INTO questions ({', '.join(columns)}) VALUES ({in_list(1, len(columns))}) RETURNING id",
                *fields.values(),
            )
        )

    async def question(self, question_id: int) -> dict[str, Any] | None:
        return await self.db.fetchrow("SELECT * FROM questions WHERE id = $1", question_id)

    async def questions(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if status:
            return await self.db.fetch(
                "SELECT * FROM questions WHERE status = $1 ORDER BY id DESC LIMIT $2", status, limit
            )
        return await self.db.fetch("SELECT * FROM questions ORDER BY id DESC LIMIT $1", limit)

    async def set_question(self, question_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
        await self.db.execute(f"UPDATE questions SET {sets} WHERE id = $1", question_id, *fields.values())

    async def count_escalation(self, authority: str, topic: str, window_start: float) -> tuple[dict[str, Any], bool]:
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

    async def escalation(self, escalation_id: int) -> dict[str, Any] | None:
        return await self.db.fetchrow("SELECT * FROM escalations WHERE id = $1", escalation_id)

    async def escalations(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self.db.fetch("SELECT * FROM escalations ORDER BY id DESC LIMIT $1", limit)

    async def set_escalation_state(self, escalation_id: int, state: str) -> bool:
        column = {"sent": "sent_at", "acknowledged": "acknowledged_at"}.get(state)
        extra = f", {column} = $3" if column else ""
        args: list[Any] = [escalation_id, state] + ([time.time()] if column else [])
        return await self.db.execute(f"UPDATE escalations SET state = $2{extra} WHERE id = $1", *args) > 0

    # ------------------------------------------------------------------ snow episodes

    async def set_episode(
        self, territory: str, active: bool, by: str = "", reason: str = "", at: float | None = None
    ) -> None:
        """Start or end a territory's snow episode. Starting one already on changes nothing (its start stays
        when a rule starts it again); every episode is kept in episode_history."""
        now = time.time() if at is None else at
        async with self.db.transaction() as tx:
            if active:
                await tx.execute(
                    "INSERT INTO episodes (territory, active, started_at, started_by, reason, ended_at)"
                    " VALUES ($1, 1, $2, $3, $4, NULL) ON CONFLICT (territory) DO UPDATE SET active = 1,"
                    " started_at = excluded.started_at, started_by = excluded.started_by,"
                    " reason = excluded.reason, ended_at = NULL WHERE episodes.active = 0",
                    territory,
                    now,
                    by,
                    reason,
                )
                await tx.execute(
                    "INSERT INTO episode_history (territory, started_at, started_by, reason) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT DO NOTHING",
                    territory,
                    now,
                    by,
                    reason,
                )
            else:
                await tx.execute(
                    "UPDATE episodes SET active = 0, ended_at = $2 WHERE territory = $1 AND active = 1", territory, now
                )
                await tx.execute(
                    "UPDATE episode_history SET ended_at = $2, ended_by = $3, end_reason = $4"
                    " WHERE territory = $1 AND ended_at IS NULL",
                    territory,
                    now,
                    by,
                    reason,
                )

    async def episode_history(self, territory: str) -> list[dict[str, Any]]:
        """A territory's snow episodes, newest first."""
        return await self.db.fetch(
            "SELECT * FROM episode_history WHERE territory = $1 ORDER BY started_at DESC, id DESC", territory
        )

    async def episodes(self) -> list[dict[str, Any]]:
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


async def _subscribe(tx: Executor, address: str, places: Sequence[str], medium: str) -> list[str]:
    """Subscribe within a transaction; the address wrote to us (or confirmed), so its "stop" and
    "undeliverable" opt-outs are lifted (it works again)."""
    now = time.time()
    await tx.execute("DELETE FROM opt_outs WHERE phone = $1 AND reason IN ('stop', 'undeliverable')", address)
    added = []
    for place in places:
        count = await tx.execute(
            "INSERT INTO subscribers (phone, territory, created_at, medium) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (phone, territory) DO NOTHING",
            address,
            place,
            now,
            medium,
        )
        if count:
            added.append(place)
    return added
