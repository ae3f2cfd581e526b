"""The delivery engine on both backends, with a channel that records and fails on demand (the provider
contracts themselves are tested per adapter against fake servers in test_channel_*.py)."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest

from alerts.delivery import DeliveryWorker, TokenBucket, WorkerSettings, backoff_delay
from alerts.shared_limits import Rate
from alerts.storage import NewDelivery
from channels.base import Channel, Limits, Message, PermanentError, RateLimited, Receipt, TransientError


class Recorder(Channel):
    kind = "recorder"
    limits = Limits()
    per_recipient = True

    def __init__(self, name="sms", rate=1000.0, idempotent=False):
        super().__init__(name, {"rate": rate})
        self.sent: list[Message] = []
        self.failures: dict[str, list[Exception]] = {}
        self.provider_has: dict[str, Receipt] = {}
        self.idempotent = idempotent  # type: ignore[misc]

    async def send(self, message: Message) -> Receipt:
        queue = self.failures.get(message.recipient)
        if queue:
            raise queue.pop(0)
        self.sent.append(message)
        return Receipt(f"P{len(self.sent)}")

    async def find_sent(self, message: Message, since: float):
        return self.provider_has.get(message.key)


def rows(n, channel="sms"):
    return [
        NewDelivery(
            key=f"1:{channel}:Alert:+336{i:08d}", alert_id=1, channel=channel, text="Neige", recipient=f"+336{i:08d}"
        )
        for i in range(n)
    ]


FAST = WorkerSettings(retry_initial=0.01, retry_max=0.05, max_attempts=3, idle_wait=0.05)


async def test_every_delivery_sent_once(store):
    await store.enqueue(rows(250))
    channel = Recorder()
    await DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=FAST).drain()
    assert sorted(m.recipient for m in channel.sent) == sorted(r.recipient for r in rows(250))
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 250
    sent = await store.deliveries(state="sent", limit=1)
    assert sent[0].provider_id.startswith("P")


async def test_transient_errors_are_retried_then_dead(store):
    await store.enqueue(rows(2))
    channel = Recorder()
    channel.failures["+33600000000"] = [TransientError("500")]  # recovers on the 2nd attempt
    channel.failures["+33600000001"] = [TransientError("500")] * 5  # never recovers within 3 attempts
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=FAST)
    for _ in range(6):
        await worker.drain()
        await asyncio.sleep(0.06)
    states = {r.recipient: r for r in await store.deliveries()}
    assert states["+33600000000"].state == "sent" and states["+33600000000"].attempts == 2
    assert states["+33600000001"].state == "dead" and states["+33600000001"].attempts == 3
    assert "500" in states["+33600000001"].last_error


async def test_permanent_error_fails_at_once_and_acts_on_the_recipient(store):
    await store.subscribe("+33600000000", ["41"])
    await store.enqueue(rows(1))
    channel = Recorder()
    channel.failures["+33600000000"] = [PermanentError("unsubscribed", code="21610", recipient_action="unsubscribe")]
    await DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=FAST).drain()
    [row] = await store.deliveries()
    assert row.state == "failed" and row.attempts == 1 and "21610" in row.last_error
    assert await store.opted_out("+33600000000") and await store.subscriptions("+33600000000") == []


async def test_rate_limited_waits_for_retry_after(store):
    await store.enqueue(rows(1))
    channel = Recorder()
    channel.failures["+33600000000"] = [RateLimited("429", retry_after=0.3)]
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=FAST)
    await worker.drain()
    [row] = await store.deliveries()
    assert row.state == "queued" and row.due_at >= time.time() + 0.1
    await asyncio.sleep(0.35)
    await worker.drain()
    [row] = await store.deliveries()
    assert row.state == "sent"


async def test_in_doubt_delivery_is_not_sent_twice(store):
    """A worker died after the provider accepted two messages but before it recorded them."""
    await store.enqueue(rows(3))
    await store.claim("dead-worker", 10, lease=0.05)
    channel = Recorder()
    channel.provider_has = {r.key: Receipt("SM-already") for r in rows(2)}
    await asyncio.sleep(0.1)
    await DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=FAST).drain()
    assert [m.recipient for m in channel.sent] == ["+33600000002"]
    states = sorted((r.recipient, r.state, r.provider_id) for r in await store.deliveries())
    assert states == [
        ("+33600000000", "sent", "SM-already"),
        ("+33600000001", "sent", "SM-already"),
        ("+33600000002", "sent", "P1"),
    ]


async def test_idempotent_provider_gets_the_same_key_again(store):
    await store.enqueue(rows(1, channel="mastodon"))
    await store.claim("dead-worker", 10, lease=0.05)
    await asyncio.sleep(0.1)
    channel = Recorder("mastodon", idempotent=True)
    await DeliveryWorker(store, {"mastodon": channel}, worker_id="w", settings=FAST).drain()
    assert [m.key for m in channel.sent] == [rows(1, channel="mastodon")[0].key]


async def test_clean_stop_releases_leases(store):
    await store.enqueue(rows(5))
    worker = DeliveryWorker(
        store, {"sms": Recorder(rate=2.0)}, worker_id="w", settings=WorkerSettings(lease=2.0, idle_wait=0.05)
    )
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)
    worker.stop()
    await asyncio.wait_for(task, 10)
    counts = dict(
        (r["state"], r["n"]) for r in await store.db.fetch("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
    )
    assert counts.get("sending", 0) == 0
    assert counts.get("sent", 0) + counts.get("queued", 0) == 5


async def test_token_bucket_paces_sends():
    bucket = TokenBucket(rate=20, burst=1)
    start = time.monotonic()
    for _ in range(6):
        await bucket.acquire()
    assert time.monotonic() - start >= 0.2  # 5 waits of 1/20 s after the first token
    bucket.pause(0.2)
    start = time.monotonic()
    await bucket.acquire()
    assert time.monotonic() - start >= 0.15


def test_backoff_grows_and_is_capped():
    delays = [backoff_delay(n, initial=1, maximum=30) for n in range(1, 10)]
    assert delays[0] < 3 and max(delays) <= 31 and delays[5] >= 16


async def test_a_timeout_leaves_the_delivery_in_doubt_and_the_provider_is_asked_first(store):
    """The provider may have accepted a send whose answer never came: the retry asks before sending."""
    await store.enqueue(rows(2))
    channel = Recorder()
    channel.failures["+33600000000"] = [TransientError("no answer", code="timeout")]
    channel.failures["+33600000001"] = [TransientError("HTTP 500", code="500")]
    # Retries wait a full second, so that a loaded machine cannot make them due within the first drain.
    settings = WorkerSettings(retry_initial=1.0, retry_max=1.0, max_attempts=3, idle_wait=0.05)
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=settings)
    await worker.drain()
    states = {r.recipient: r for r in await store.deliveries()}
    assert states["+33600000000"].in_doubt == 1 and states["+33600000001"].in_doubt == 0
    channel.provider_has = {rows(1)[0].key: Receipt("SM-accepted-before-the-timeout")}
    await asyncio.sleep(1.1)
    await worker.drain()
    states = {r.recipient: r for r in await store.deliveries()}
    assert states["+33600000000"].provider_id == "SM-accepted-before-the-timeout"
    assert [m.recipient for m in channel.sent] == ["+33600000001"]  # the 500 was known not sent: sent again


class SharedProvider(Recorder):
    """One provider seen by two workers: slow sends, one at a time, and what it has accepted is what the
    in-doubt lookup finds."""

    def __init__(self, sent: list[Message], accepted: dict[str, Receipt]):
        super().__init__()
        self.sent = sent
        self.provider_has = accepted

    async def send(self, message: Message) -> Receipt:
        await asyncio.sleep(0.05)
        receipt = await super().send(message)
        self.provider_has[message.key] = receipt
        return receipt


async def test_a_worker_whose_lease_renewals_fail_stops_sending_before_another_may_take_over(store):
    """Worker 1's lease renewals fail (a database that no longer answers it): it stops sending a third of a
    lease before its leases lapse, and worker 2, taking the rest in doubt, sends each of them once."""
    await store.enqueue(rows(40))
    sent: list[Message] = []
    accepted: dict[str, Receipt] = {}
    settings = WorkerSettings(lease=0.9, concurrency=1, batch=40, idle_wait=0.05, retry_initial=0.01)
    first = DeliveryWorker(store, {"sms": SharedProvider(sent, accepted)}, worker_id="w1", settings=settings)

    async def renewal_refused(*args: object) -> int:
        raise ConnectionError("the database does not answer this worker")

    first.outbox = copy.copy(store.outbox)
    first.outbox.renew = renewal_refused  # type: ignore[method-assign]
    claimed = await first._claim_held("sms")
    assert len(claimed.claimed) == 40
    started = time.monotonic()
    await first._process("sms", claimed.claimed, held=claimed)
    await claimed.release()
    by_first = len(sent)
    assert 0 < by_first < 40  # 40 sends of 50 ms would outlast the 0.9 s lease
    assert time.monotonic() - started >= 0.55  # it sent while the lease surely held (0.9 s - 0.3 s)

    await asyncio.sleep(0.9)  # the leases lapse
    second = DeliveryWorker(store, {"sms": SharedProvider(sent, accepted)}, worker_id="w2", settings=settings)
    await second.drain()
    assert sorted(m.recipient for m in sent) == sorted(r.recipient for r in rows(40))  # each exactly once
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 40


async def test_a_renewal_after_a_lapse_does_not_give_back_the_deliveries_another_worker_took_meanwhile(store):
    """Worker 1's renewal fails once (PostgreSQL ends it as a deadlock after a second's wait), its leases
    lapse, and worker 2 takes its unsent deliveries in doubt. Worker 1's next renewal succeeds, for none of
    them: worker 1 must not send them (it did, trusting the renewal for its whole batch, and worker 2, finding
    nothing at the provider yet, sent them too)."""
    await store.enqueue(rows(40))
    sent: list[Message] = []
    accepted: dict[str, Receipt] = {}
    settings = WorkerSettings(lease=0.9, concurrency=1, batch=40, idle_wait=0.05, retry_initial=0.01)
    first = DeliveryWorker(store, {"sms": SharedProvider(sent, accepted)}, worker_id="w1", settings=settings)
    first.buckets["sms"].rate = Rate(20.0)  # a send every 50 ms: 40 outlast the lease
    second = DeliveryWorker(store, {"sms": SharedProvider(sent, accepted)}, worker_id="w2", settings=settings)
    renew = store.outbox.renew
    renewals = 0
    taken: list[Any] = []
    sent_when_taken: list[int] = []

    async def lapsing_renewal(worker: str, ids: list[int], lease: float) -> set[int]:
        nonlocal renewals
        renewals += 1
        if renewals == 2:  # past the lease: worker 2 takes what worker 1 has not recorded as sent
            await asyncio.sleep(0.4)
            taken.append(await second._claim_held("sms"))
            sent_when_taken.append(len(sent))
        if renewals <= 2:
            raise ConnectionError("deadlock detected")
        return await renew(worker, ids, lease)

    first.outbox = copy.copy(store.outbox)
    first.outbox.renew = lapsing_renewal  # type: ignore[method-assign]
    held = await first._claim_held("sms")
    await first._process("sms", held.claimed, held=held)
    await held.release()
    assert renewals >= 3 and taken, renewals
    assert len(sent) == sent_when_taken[0], "worker 1 sent deliveries worker 2 held"

    await second._process("sms", taken[0].claimed, held=taken[0])  # in doubt: the provider is asked first
    await taken[0].release()
    assert sorted(m.recipient for m in sent) == sorted(r.recipient for r in rows(40))  # each exactly once
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 40


class Held(Recorder):
    """Records each send; a send to a number in `hold` waits until `release` is set."""

    def __init__(self, hold: set[str]):
        super().__init__()
        self.hold = hold
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def send(self, message: Message) -> Receipt:
        if message.recipient in self.hold:
            self.holding.set()
            await self.release.wait()
        return await super().send(message)


async def test_an_opt_out_that_has_returned_is_seen_although_one_query_answered_the_whole_batch(store):
    """The first send's question asked about the whole batch, and that answer serves the next sends for a
    while (Gate.freshness). An opt-out returns only SETTLE after its commit, so the send to that number,
    asked about right after the opt-out returned, is withheld all the same."""
    deliveries = rows(3)
    await store.enqueue(deliveries)
    stopped = deliveries[2].recipient
    channel = Held({deliveries[0].recipient, deliveries[1].recipient})  # the third waits for a sender
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=WorkerSettings(concurrency=2))
    asked: list[list[int]] = []
    withheld_among = worker.withheld.ask

    async def counted(ids: list[int]) -> Any:
        asked.append(list(ids))
        return await withheld_among(ids)

    worker.withheld.ask = counted
    sending = asyncio.create_task(worker.run_once("sms"))
    await asyncio.wait_for(channel.holding.wait(), 5)
    assert len(asked) == 1 and len(asked[0]) == 3  # the first query asked about the third too
    await store.opt_out(stopped)
    channel.release.set()
    await sending
    assert sorted(m.recipient for m in channel.sent) == [deliveries[0].recipient, deliveries[1].recipient]
    cancelled = await store.deliveries(state="cancelled")
    assert [d.recipient for d in cancelled] == [stopped] and "opt-out" in cancelled[0].last_error


async def test_one_query_answers_the_sends_of_a_moment_and_the_batch_ahead(store):
    """250 sends ask "may this still go?" just before sending: a few queries answer them all."""
    await store.enqueue(rows(250))
    worker = DeliveryWorker(store, {"sms": Recorder()}, worker_id="w", settings=FAST)
    queries = 0
    withheld_among = worker.withheld.ask

    async def counted(ids: list[int]) -> Any:
        nonlocal queries
        queries += 1
        return await withheld_among(ids)

    worker.withheld.ask = counted
    await worker.drain()
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 250
    assert 1 <= queries <= 25, queries


async def test_the_next_batch_goes_out_while_a_slow_send_of_the_last_one_is_under_way(store):
    """Batches follow each other through shared senders: one slow send does not hold up the next batch."""
    deliveries = rows(12)
    await store.enqueue(deliveries)
    slow = deliveries[0].recipient
    channel = Held({slow})
    settings = WorkerSettings(batch=4, concurrency=4, idle_wait=0.05)
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=settings)
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while len(channel.sent) < 11 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert sorted(m.recipient for m in channel.sent) == sorted(d.recipient for d in deliveries[1:])
    finally:
        channel.release.set()
        worker.stop()
        await running
    assert sorted(m.recipient for m in channel.sent) == sorted(d.recipient for d in deliveries)
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 12


class Slow(Recorder):
    """Each send takes 10 ms."""

    async def send(self, message: Message) -> Receipt:
        await asyncio.sleep(0.01)
        return await super().send(message)


async def test_senders_take_the_next_delivery_themselves_instead_of_a_task_per_send(store):
    """300 deliveries through 4 senders start a handful of tasks, not one per send: a sender that has
    finished takes the next delivery at once (a task per send left its slot idle for two turns of the loop)."""
    await store.enqueue(rows(300))
    worker = DeliveryWorker(
        store, {"sms": Recorder()}, worker_id="w", settings=WorkerSettings(batch=100, concurrency=4)
    )
    loop = asyncio.get_running_loop()
    started = 0

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal started
        started += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        await worker.drain()
    finally:
        loop.set_task_factory(None)
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 300
    assert started < 100, started


async def test_the_next_batch_is_claimed_while_deliveries_of_the_current_one_still_wait_for_a_sender(store):
    """The claim of the next batch runs while the senders still have deliveries of the current batch to take
    (half a batch at most, `concurrency` at most), so they do not wait for the database between batches."""
    await store.enqueue(rows(16))
    channel = Slow()
    settings = WorkerSettings(batch=8, concurrency=2, idle_wait=0.05)
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=settings)
    claim = worker._claim
    sent_at_claims: list[int] = []

    async def watched(name: str) -> Any:
        sent_at_claims.append(len(channel.sent))
        return await claim(name)

    worker._claim = watched  # type: ignore[method-assign]
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while len(channel.sent) < 16 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await running
    assert len(channel.sent) == 16
    # Second claim: two of the first batch's eight still waited (2 in flight, 4 sent), not all started (6 sent).
    assert sent_at_claims[1] <= 5, sent_at_claims


async def test_a_worker_cancelled_mid_send_leaves_no_task_waiting_and_gives_its_leases_back(store):
    """A worker cancelled while a send hangs (a provider that never answers, past the service's grace): the
    sends under way are cancelled, no batch waits for them any more, and the deliveries go back to the queue,
    those whose send was under way *in doubt* (the provider may have them: it is asked before they go again)."""
    await store.enqueue(rows(6))
    channel = Held({r.recipient for r in rows(6)})  # every send hangs
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=WorkerSettings(batch=6, concurrency=2))
    before = asyncio.all_tasks()
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(channel.holding.wait(), 5)
    running.cancel()
    try:
        await running
    except asyncio.CancelledError:
        pass
    await asyncio.sleep(0.05)
    left = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert left == [], left
    states = [(d.state.value, d.in_doubt) for d in await store.deliveries()]
    assert sorted(states) == [("queued", False)] * 4 + [("queued", True)] * 2  # 2 senders were under way
    assert channel.sent == []


async def test_a_drain_cancelled_mid_send_gives_its_batch_back_at_once_and_no_other_lease(store):
    """`crieur send` interrupted while a send hangs: what its batch had not sent goes back to the queue at
    once (not after the lease), the send cut short *in doubt*; leases the same worker holds for another
    batch (its `run` loop's) are left alone."""
    await store.enqueue(rows(3))
    channel = Held({r.recipient for r in rows(3)})  # every send hangs
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=WorkerSettings(batch=3, concurrency=1))
    draining = asyncio.create_task(worker.drain())
    await asyncio.wait_for(channel.holding.wait(), 5)
    other = [
        NewDelivery(
            key=f"2:sms:Alert:+3370000000{i}", alert_id=2, channel="sms", text="Verglas", recipient=f"+3370000000{i}"
        )
        for i in range(2)
    ]
    await store.enqueue(other)
    held_elsewhere = await store.outbox.claim("w", 2, 60.0)  # what the worker's run loop would hold
    assert {d.alert_id for d in held_elsewhere} == {2}
    draining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await draining
    states = sorted((d.alert_id, d.state.value, d.in_doubt) for d in await store.deliveries())
    assert states == [(1, "queued", False)] * 2 + [(1, "queued", True)] + [(2, "sending", False)] * 2
    assert channel.sent == []


class Timed(Recorder):
    """Records, for each send, how long ago its sender took its token (`tokens`: task -> token time)."""

    def __init__(self, rate: float):
        super().__init__(rate=rate)
        self.tokens: dict[asyncio.Task[Any] | None, float] = {}
        self.after_token: list[float] = []

    async def send(self, message: Message) -> Receipt:
        self.after_token.append(time.monotonic() - self.tokens[asyncio.current_task()])
        return await super().send(message)


async def test_a_send_whose_last_check_waited_on_a_stalled_query_takes_a_new_token_rather_than_go_late(store):
    """The "may this still go?" query stalls for 100 ms once, mid-flow (a busy database): the sends that took
    their tokens meanwhile would all go at once when it answers, above the rate for that moment, as a provider
    counts it. They let those tokens go and take new ones instead, so every send leaves close to its token."""
    await store.enqueue(rows(200))
    channel = Timed(rate=200.0)
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=WorkerSettings(batch=100, concurrency=16))
    late: list[str] = []
    worker.on_event = lambda kind, data: late.append(kind) if kind == "late token" else None
    bucket = worker.buckets["sms"]
    acquire = bucket.acquire

    async def timed_acquire() -> None:
        await acquire()
        channel.tokens[asyncio.current_task()] = time.monotonic()

    bucket.acquire = timed_acquire  # type: ignore[method-assign]
    withheld_among = worker.withheld.ask
    queries = 0

    async def stalls_once(ids: list[int]) -> Any:
        nonlocal queries
        queries += 1
        if queries == 6:
            await asyncio.sleep(0.1)
        return await withheld_among(ids)

    worker.withheld.ask = stalls_once
    await worker.drain()
    assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") == 200
    assert len(channel.sent) == 200 and queries > 6
    assert late, "no token was let go: the stall did not hold up a send after its token"
    # Without new tokens, the sends held up by the stall left 20 to 100 ms after theirs.
    assert max(channel.after_token) < 0.04, sorted(channel.after_token)[-10:]
