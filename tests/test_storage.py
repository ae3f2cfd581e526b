"""The store, run on SQLite and PostgreSQL alike (the `store` fixture is parametrised)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest

from alerts.domain import Alert, AlertStatus, Area, Item, MsgType, Road, Severity
from alerts.storage import NewDelivery, open_store
from alerts.storage.db import migrate


def _item(**overrides) -> Item:
    fields = dict(
        source="prefecture-41",
        external_id="guid-1",
        title="Neige",
        text="Neige sur la RD 957",
        severity=Severity.SEVERE,
        roads=(Road("D", "957"),),
        areas=(Area("departement", "41"),),
        sent=datetime(2026, 11, 25, 5, 40, tzinfo=timezone.utc),
        raw="<item>...</item>",
    )
    fields.update(overrides)
    return Item(**fields)


async def test_migrations_apply_once(store):
    assert await migrate(store.db) == []
    assert await store.db.fetchval("SELECT COUNT(*) FROM schema_migrations") >= 1


async def test_ingest_deduplicates_and_keeps_versions(store):
    first = await store.ingest([_item()])
    assert [r.change for r in first] == ["new"]
    again = await store.ingest([_item()])
    assert [r.change for r in again] == ["unchanged"]
    changed = await store.ingest([_item(text="Neige et verglas sur la RD 957", version="2")])
    assert [r.change for r in changed] == ["updated"]
    cancelled = await store.ingest([_item(msg_type=MsgType.CANCEL, version="3")])
    assert [r.change for r in cancelled] == ["withdrawn"]
    assert await store.db.fetchval("SELECT COUNT(*) FROM items") == 1
    assert await store.db.fetchval("SELECT COUNT(*) FROM item_versions") == 3
    stored = await store.item("prefecture-41", "guid-1")
    assert stored is not None and stored.msg_type is MsgType.CANCEL and stored.roads == (Road("D", "957"),)
    assert stored.raw == "<item>...</item>"


async def test_alert_roundtrip(store):
    alert = await store.add_alert(
        Alert(
            title="Neige",
            text="Neige sur la RD 957",
            territories=("41",),
            hashtags=("#route41",),
            channels=("sms", "mastodon"),
            severity=Severity.SEVERE,
            roads=(Road("D", "957"),),
            expires=datetime.now(timezone.utc) + timedelta(hours=1),
        )
    )
    again = await store.alert(alert.id)
    assert again.territories == ("41",) and again.hashtags == ("#route41",) and again.roads == (Road("D", "957"),)
    assert [a.id for a in await store.alerts(territory="41")] == [alert.id]
    assert await store.alerts(territory="28") == []
    await store.set_alert_status(alert.id, AlertStatus.ENDED)
    assert await store.alerts() == []


async def test_enqueue_is_idempotent_by_key(store):
    rows = [NewDelivery(key="1:mastodon:Alert:", alert_id=1, channel="mastodon", text="t")]
    assert await store.enqueue(rows) == 1
    assert await store.enqueue(rows) == 0
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries") == 1


async def test_enqueue_subscribers_once_per_number_and_never_to_opted_out(store):
    await store.add_subscribers(
        [
            ("+33600000001", "41"),
            ("+33600000001", "28"),
            ("+33600000002", "41"),
            ("+33600000003", "28"),
            ("+33600000004", "41"),
        ]
    )
    await store.opt_out("+33600000004")
    assert await store.enqueue_subscribers(7, "sms", ["41", "28"], "Alert", "Neige") == 3
    assert await store.enqueue_subscribers(7, "sms", ["41", "28"], "Alert", "Neige") == 0
    recipients = sorted(r.recipient for r in await store.deliveries(alert_id=7))
    assert recipients == ["+33600000001", "+33600000002", "+33600000003"]


async def test_claim_leases_do_not_overlap_and_expired_leases_come_back_in_doubt(store):
    await store.enqueue(
        [NewDelivery(key=f"k{i}", alert_id=1, channel="sms", text="t", recipient=f"+3360000{i:04d}") for i in range(10)]
    )
    a = await store.claim("worker-a", 6, lease=0.5)
    b = await store.claim("worker-b", 6, lease=30)
    assert len(a) == 6 and len(b) == 4
    assert not {r.id for r in a} & {r.id for r in b}
    assert all(r.in_doubt == 0 and r.attempts == 1 for r in a + b)
    assert await store.claim("worker-c", 10, lease=30) == []
    await asyncio.sleep(0.6)
    again = await store.claim("worker-c", 10, lease=30)
    assert sorted(r.id for r in again) == sorted(r.id for r in a)
    assert all(r.in_doubt == 1 and r.attempts == 2 for r in again)


async def test_stop_cancels_what_is_queued_for_the_number(store):
    await store.add_subscribers([("+33600000001", "41"), ("+33600000002", "41")])
    await store.enqueue_subscribers(3, "sms", ["41"], "Alert", "Neige")
    cancelled = await store.opt_out("+33600000001")
    assert cancelled == 1
    assert await store.subscriptions("+33600000001") == []
    claimed = await store.claim("w", 10, lease=30)
    assert [r.recipient for r in claimed] == ["+33600000002"]
    # subscribing again is an explicit wish and lifts the STOP
    assert await store.subscribe("+33600000001", ["41"]) == ["41"]
    assert not await store.opted_out("+33600000001")


async def test_progress_reports_counts_rate_and_eta(store):
    await store.enqueue(
        [NewDelivery(key=f"k{i}", alert_id=5, channel="sms", text="t", recipient=str(i)) for i in range(4)]
    )
    claimed = await store.claim("w", 2, lease=30)
    await store.outbox.mark_sent("w", [(r.id, f"SM{r.id}", "queued") for r in claimed])
    [report] = await store.progress(5)
    assert report["total"] == 4 and report["sent"] == 2 and report["queued"] == 2 and report["failed"] == 0


async def test_escalation_counts_questions_in_one_row(store):
    window = time.time() // 3600 * 3600
    first, opened = await store.count_escalation("prefecture-41", "poids-lourds", window)
    second, opened_again = await store.count_escalation("prefecture-41", "poids-lourds", window)
    assert opened and not opened_again
    assert first["id"] == second["id"] and second["question_count"] == 2


async def test_episodes(store):
    await store.set_episode("41", True, by="jd", reason="vigilance orange")
    assert await store.active_episodes() == frozenset({"41"})
    await store.set_episode("41", False, by="jd")
    assert await store.active_episodes() == frozenset()


async def test_rgpd_export_and_delete(store):
    await store.subscribe("+33600000001", ["41", "28"])
    await store.add_question(channel="sms", sender="+33600000001", text="La RD 957 est-elle salée ?")
    exported = await store.export_subscriber("+33600000001")
    assert sorted(s["territory"] for s in exported["subscriptions"]) == ["28", "41"]
    assert exported["questions"][0]["text"] == "La RD 957 est-elle salée ?"
    # asked on the web form, the number left only as the way back for the answer
    await store.add_question(
        channel="web", sender="", text="Et la D956 ?", recipient="+33600000001", answer="La D956 est ouverte."
    )
    await store.delete_subscriber("+33600000001")
    exported = await store.export_subscriber("+33600000001")
    assert exported["subscriptions"] == [] and exported["questions"] == []
    rows = await store.questions()
    assert [(q["sender"], q["text"], q["recipient"], q["answer"]) for q in rows] == [("effacé", "", "", "")] * 2


async def test_postgres_workers_claim_disjoint_batches(pg_url):
    """Two processes' worth of pools claiming at once: SKIP LOCKED hands each row to exactly one."""
    first, second = await open_store(pg_url), await open_store(pg_url)
    try:
        await first.enqueue(
            [NewDelivery(key=f"k{i}", alert_id=1, channel="sms", text="t", recipient=str(i)) for i in range(300)]
        )
        batches = await asyncio.gather(*(s.claim(f"w{n}", 40, lease=30) for n in range(4) for s in (first, second)))
        ids = [r.id for batch in batches for r in batch]
        assert len(ids) == len(set(ids)) == 300
    finally:
        await first.close()
        await second.close()


async def test_a_worker_that_lost_its_lease_cannot_overwrite_the_new_holder(store):
    """Transitions out of `sending` name their holder: worker A, whose lease expired and whose deliveries
    worker B took over, can neither retry, end nor mark them sent."""
    from alerts.errors import LeaseLost
    from alerts.storage import DeliveryState

    await store.enqueue(
        [NewDelivery(key=f"lost{i}", alert_id=8, channel="sms", text="t", recipient=f"+336{i:08d}") for i in range(3)]
    )
    held_by_a = await store.claim("worker-a", 3, lease=0.05)
    await asyncio.sleep(0.1)
    held_by_b = await store.claim("worker-b", 3, lease=30)
    assert [d.id for d in held_by_b] == [d.id for d in held_by_a] and all(d.in_doubt for d in held_by_b)
    with pytest.raises(LeaseLost, match="lost0"):
        await store.outbox.mark_retry(held_by_a[0], "worker-a", "timeout", time.time() + 60)
    with pytest.raises(LeaseLost):
        await store.outbox.mark_ended(held_by_a[1], "worker-a", DeliveryState.FAILED, "refused")
    lost = await store.outbox.mark_sent("worker-a", [(d.id, "SM-a", "sent") for d in held_by_a])
    assert lost == [d.id for d in held_by_a]
    rows = await store.deliveries(alert_id=8)
    assert all(r.state is DeliveryState.SENDING and r.worker == "worker-b" and r.provider_id == "" for r in rows)
    # the holder's own transitions go through
    assert await store.outbox.mark_sent("worker-b", [(held_by_b[0].id, "SM-b", "sent")]) == []
    await store.outbox.mark_ended(held_by_b[1], "worker-b", DeliveryState.DEAD, "attempts exhausted")
    await store.outbox.mark_retry(held_by_b[2], "worker-b", "timeout", time.time() + 60, in_doubt=True)
    states = [(r.key, r.state, r.provider_id) for r in await store.deliveries(alert_id=8)]
    assert states == [("lost0", "sent", "SM-b"), ("lost1", "dead", ""), ("lost2", "queued", "")]


async def test_one_key_builder_serves_python_and_sql(store):
    """`enqueue_subscribers` builds in SQL the key `delivery_key` builds in Python."""
    from alerts.storage import delivery_key

    await store.add_subscribers([("+33600000001", "41")])
    await store.enqueue_subscribers(9, "sms", ["41"], "Alert", "Neige")
    assert await store.delivery(delivery_key(9, "sms", "Alert", "+33600000001")) is not None


async def test_alert_status_changes_only_from_the_named_status(store):
    held = await store.add_alert(
        Alert(
            title="Neige",
            text="t",
            territories=("41",),
            hashtags=(),
            channels=("sms",),
            status=AlertStatus.PENDING_APPROVAL,
        )
    )
    assert await store.set_alert_status(held.id, AlertStatus.PUBLISHED, only_from=AlertStatus.PENDING_APPROVAL)
    assert not await store.set_alert_status(held.id, AlertStatus.REJECTED, only_from=AlertStatus.PENDING_APPROVAL)
    assert (await store.alert(held.id)).status is AlertStatus.PUBLISHED


@pytest.mark.postgres
async def test_after_a_large_fan_out_recording_and_renewing_read_their_rows_by_id(pg_url):
    """A fan-out leaves, until VACUUM, a dead index entry per row sent in every index that has `state`. The
    statements that name held rows by id (mark_sent, renew) must reach them through the primary key: taking
    `state = 'sending'` to an index of `state` read every dead entry (85 ms for 200 rows after 19,000)."""
    store = await open_store(pg_url)
    try:
        await store.add_subscribers((f"+336{i:08d}", "41") for i in range(20_000))
        await store.enqueue_subscribers(1, "sms", ["41"], "Alert", "Neige : RD 957 fermée.")
        for _ in range(39):
            claimed = await store.outbox.claim("w", 500, 60.0, ["sms"])
            await store.outbox.mark_sent("w", [(d.id, f"SM{d.id}", "queued") for d in claimed])
        held = await store.outbox.claim("w", 500, 60.0, ["sms"])
        statements: list[tuple[str, tuple]] = []
        fetch, execute = store.db.fetch, store.db.execute

        async def fetch_seen(sql: str, *args: object) -> list:
            statements.append((sql, args))
            return await fetch(sql, *args)

        async def execute_seen(sql: str, *args: object) -> int:
            statements.append((sql, args))
            return await execute(sql, *args)

        store.db.fetch, store.db.execute = fetch_seen, execute_seen  # type: ignore[method-assign]
        await store.outbox.renew("w", [d.id for d in held[:200]], 60.0)
        await store.outbox.mark_sent("w", [(d.id, f"SM{d.id}", "queued") for d in held[:200]])
        store.db.fetch, store.db.execute = fetch, execute  # type: ignore[method-assign]
        assert [sql.split()[0] for sql, _ in statements] == ["UPDATE", "UPDATE"]
        for sql, args in statements:
            async with store.db.pool.acquire() as conn:
                transaction = conn.transaction()  # EXPLAIN ANALYZE runs the UPDATE: rolled back
                await transaction.start()
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", *args))
                await transaction.rollback()
            indexes = set(re.findall(r"Index Scan (?:using|on) (\w+)", plan))
            assert indexes == {"deliveries_pkey"} and "Seq Scan" not in plan, plan
    finally:
        await store.close()


def sms_deliveries(count: int) -> list[NewDelivery]:
    return [
        NewDelivery(key=f"1:sms:Alert:+336{i:08d}", alert_id=1, channel="sms", text="Neige", recipient=f"+336{i:08d}")
        for i in range(count)
    ]


@contextlib.asynccontextmanager
async def record_of_sends_held_half_way(store: Any) -> AsyncIterator[tuple[list[int], asyncio.Task[list[int]]]]:
    """Worker "w" records every row it holds as sent, the last in the table's order first, and a third
    transaction holds the middle row: inside, mark_sent holds the rows after the middle one and waits for it.
    Yields the ids in the table's order (the order in which a statement that scans the table, as a renewal or
    a supersession does, locks them) and the recording task; leaving commits the third transaction."""
    in_table_order = [r["id"] for r in await store.db.fetch("SELECT id FROM deliveries ORDER BY ctid")]
    async with store.db.transaction() as blocker:
        await blocker.fetch("SELECT id FROM deliveries WHERE id = $1 FOR UPDATE", in_table_order[20])
        recording = asyncio.create_task(
            store.outbox.mark_sent("w", [(i, f"SM{i}", "queued") for i in reversed(in_table_order)])
        )
        await asyncio.sleep(0.3)
        yield in_table_order, recording


@pytest.mark.postgres
async def test_a_renewal_never_deadlocks_with_the_record_of_sends_locking_the_same_rows_the_other_way(pg_url):
    """A worker records its sends (mark_sent, rows locked in the order the sends finished) while its lease
    renewal runs on another connection (rows locked in the table's order). Here mark_sent is held up half-way
    by a third transaction; the renewal then starts. Waiting for each other's rows, they deadlocked and
    PostgreSQL ended one a second later: now the renewal skips the rows another statement holds, and those are
    not renewed (they are being recorded as sent)."""
    store = await open_store(pg_url + "&enable_seqscan=off")  # a large outbox's plans, on a small one
    try:
        await store.enqueue(sms_deliveries(40))
        await store.outbox.claim("w", 40, 60.0, ["sms"])
        async with record_of_sends_held_half_way(store) as (ids, recording):
            renewing = asyncio.create_task(store.outbox.renew("w", ids, 60.0))
            await asyncio.sleep(0.3)
        renewed, lost = await asyncio.wait_for(asyncio.gather(renewing, recording), 10)
        assert lost == []
        assert renewed == set(ids[:20]), sorted(renewed)  # the rows mark_sent held, and was waiting for, skipped
        assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 40
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_renewal_asks_again_for_its_rows_another_statement_held_a_moment(pg_url):
    """A newer version of the alert marks the rows in flight (superseded_by) just as the renewal runs: the
    renewal skips them, then asks again once that statement has committed; they are still the worker's."""
    store = await open_store(pg_url)
    try:
        await store.enqueue(sms_deliveries(10))
        ids = sorted(d.id for d in await store.outbox.claim("w", 10, 60.0, ["sms"]))
        async with store.db.transaction() as newer_version:
            await newer_version.execute("UPDATE deliveries SET superseded_by = 2 WHERE id = $1", ids[3])
            renewing = asyncio.create_task(store.outbox.renew("w", ids, 60.0))
            await asyncio.sleep(0.01)  # the renewal has skipped it, and waits a moment before asking again
        assert await asyncio.wait_for(renewing, 10) == set(ids)
        # a row another worker took meanwhile stays out
        await store.db.execute("UPDATE deliveries SET worker = 'other' WHERE id = $1", ids[5])
        assert await store.outbox.renew("w", ids, 60.0) == set(ids) - {ids[5]}
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_newer_version_queued_during_the_record_of_sends_survives_a_deadlock(pg_url):
    """A CM publishes a newer version of an alert while its SMS go out: the supersession marks the rows in
    flight (in the table's order) while a worker records sends among them (in the order they finished).
    Waiting for each other's rows, they deadlock and PostgreSQL ends one: the CM's publication must not be
    the one lost (its transaction is run again). PostgreSQL ends the statement of the session that looks for
    the deadlock first; the worker's sessions here wait 10 s before looking, so that it is always the
    publication's (with both at the default second, it was one or the other, at random)."""
    seqscan_off = "&enable_seqscan=off"  # a large outbox's plans, on a small one
    worker = await open_store(pg_url + seqscan_off + "&deadlock_timeout=10s")
    cm = await open_store(pg_url + seqscan_off)
    try:
        await cm.add_subscribers((f"+336{i:08d}", "41") for i in range(40))
        await cm.enqueue_subscribers(1, "sms", ["41"], "Alert", "Neige : RD 957 fermée.")
        await worker.outbox.claim("w", 40, 60.0, ["sms"])
        async with record_of_sends_held_half_way(worker) as (ids, recording):
            publishing = asyncio.create_task(
                cm.enqueue_subscribers(2, "sms", ["41"], "Alert", "Neige : RD 957 rouverte.", supersedes=1)
            )
            await asyncio.sleep(0.3)  # it holds the rows before the middle one, and waits for the others
        recorded, published = await asyncio.wait_for(asyncio.gather(recording, publishing), 20)
        assert published == 40, published
        assert recorded == [], recorded
        # (the old version's rows recorded as sent before the supersession ran again are no longer marked)
        states = await cm.db.fetch("SELECT alert_id, state FROM deliveries ORDER BY id")
        assert [(r["alert_id"], r["state"]) for r in states] == [(1, "sent")] * 40 + [(2, "queued")] * 40
    finally:
        await worker.close()
        await cm.close()
