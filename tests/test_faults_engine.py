"""Engine guarantees under faults, in one process: STOP during a fan-out, leases kept by a live but slow
worker, receipts kept when the database refuses them for a moment. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import collections

import aiohttp

from alerts.delivery import DeliveryWorker, WorkerSettings
from channels.base import Channel, Message, Receipt
from tests.fakes.twilio import FakeTwilio
from tests.faults.engine import run_until_drained
from tests.faults.worker import twilio_channel
from tests.test_faults_kill import TEXT, phones, wait_until


async def test_stop_during_fanout_blocks_numbers_of_a_batch_already_claimed(store):
    numbers = phones(100)
    stopped = numbers[50:60]
    async with FakeTwilio() as fake, aiohttp.ClientSession() as session:
        channel = twilio_channel(fake.base_url, rate=40)  # 100 SMS take 2.5 s: time to send STOP
        await channel.start(session)
        await store.add_subscribers((n, "41") for n in numbers)
        await store.enqueue_subscribers(3, "sms", ["41"], "Alert", TEXT)
        worker = DeliveryWorker(store, {"sms": channel}, settings=WorkerSettings(lease=10, concurrency=8))
        task = asyncio.create_task(run_until_drained(worker, store, 30))
        await wait_until(lambda: len(fake.messages) >= 10, 10, "the first SMS")
        # the whole alert is one claimed batch by now: claim's own opt-out filter cannot help any more
        assert not await store.deliveries(state="queued")
        for number in stopped:
            await store.opt_out(number)
        await task
    received = collections.Counter(m["to"] for m in fake.messages)
    assert not set(stopped) & set(received), "an SMS went to a number after its STOP"
    assert set(received) == set(numbers) - set(stopped) and max(received.values()) == 1
    rows = {r.recipient: r for r in await store.deliveries(alert_id=3, limit=200)}
    assert {n for n, r in rows.items() if r.state == "cancelled"} == set(stopped)
    assert all("opt-out" in rows[n].last_error for n in stopped)


class SlowChannel(Channel):
    """Answers after `delay` seconds: a provider that is slow, not down."""

    kind = "slow"
    per_recipient = True

    def __init__(self, delay: float):
        super().__init__("slow", {"rate": 1000})
        self.delay = delay
        self.sent: list[str] = []

    async def send(self, message: Message) -> Receipt:
        await asyncio.sleep(self.delay)
        self.sent.append(message.recipient)
        return Receipt(provider_id=f"id-{len(self.sent)}")


async def test_a_live_worker_keeps_its_leases_past_their_first_term(store):
    channel = SlowChannel(delay=0.4)
    from alerts.storage import NewDelivery

    await store.enqueue(
        [NewDelivery(key=f"k{i}", alert_id=4, channel="slow", text="t", recipient=f"+3360000{i:04d}") for i in range(6)]
    )
    settings = WorkerSettings(lease=0.9, concurrency=1, batch=6)
    slow = DeliveryWorker(store, {"slow": channel}, worker_id="slow", settings=settings)
    other = DeliveryWorker(store, {"slow": channel}, worker_id="other", settings=settings)
    busy = asyncio.create_task(slow.run_once("slow"))  # 6 × 0.4 s = 2.4 s, well past the 0.9 s lease
    await asyncio.sleep(1.5)
    assert await other.run_once("slow") is False  # nothing to take: the leases were renewed
    await busy
    assert sorted(channel.sent) == sorted(set(channel.sent)) and len(channel.sent) == 6
    assert all(r.state == "sent" and r.worker == "slow" for r in await store.deliveries(alert_id=4))


async def test_receipts_survive_a_failed_flush(store, monkeypatch):
    channel = SlowChannel(delay=0)
    from alerts.storage import NewDelivery

    await store.enqueue(
        [
            NewDelivery(key=f"f{i}", alert_id=5, channel="slow", text="t", recipient=f"+3361000{i:04d}")
            for i in range(20)
        ]
    )
    worker = DeliveryWorker(store, {"slow": channel}, settings=WorkerSettings(lease=30))
    real = store.outbox.mark_sent
    failures = []

    async def flaky(worker, results):
        if not failures:
            failures.append(len(results))
            raise ConnectionError("database went away")
        return await real(worker, results)

    monkeypatch.setattr(store.outbox, "mark_sent", flaky)
    try:
        await worker.run_once("slow")
    except ConnectionError:
        pass
    await worker.flush()  # the next flush records what the failed one could not
    assert failures and failures[0] > 0
    rows = await store.deliveries(alert_id=5)
    assert [r.state for r in rows] == ["sent"] * 20
    assert len(channel.sent) == 20  # and nothing was sent twice for it
