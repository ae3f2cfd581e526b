"""Limits shared through the database (alerts.shared_limits), on SQLite and PostgreSQL: several
SharedRate/SharedBucket objects over one database stand for several processes."""

from __future__ import annotations

import asyncio
import time

from alerts.shared_limits import Rate, SharedBucket, SharedRate, send_budget
from alerts.storage import open_store


async def test_try_take_allows_the_burst_then_one_per_interval(store) -> None:
    now = [1_000_000.0]
    limiter = SharedRate(store.db, clock=lambda: now[0])
    rate = Rate.per(5, 600.0)
    assert [await limiter.try_take("q:198.51.100.7", rate) for _ in range(5)] == [0.0] * 5
    wait = await limiter.try_take("q:198.51.100.7", rate)
    assert 119 < wait <= 120
    assert await limiter.try_take("q:198.51.100.8", rate) == 0.0  # another key, its own budget
    now[0] += 119
    assert not await limiter.allow("q:198.51.100.7", rate)  # refusals take nothing, extend nothing
    now[0] += 1
    assert await limiter.allow("q:198.51.100.7", rate)
    assert not await limiter.allow("q:198.51.100.7", rate)


async def test_concurrent_takes_from_several_processes_never_share_a_token(store, db_url) -> None:
    other = await open_store(db_url)  # a second connection (pool) as a second process would have
    try:
        rate = Rate.per(5, 3600.0)
        limiters = [SharedRate(store.db), SharedRate(other.db)]
        results = await asyncio.gather(*(limiters[n % 2].allow("login:camille", rate) for n in range(30)))
    finally:
        await other.close()
    assert results.count(True) == 5


async def test_buckets_of_several_processes_share_one_rate(store, db_url) -> None:
    other = await open_store(db_url)
    rate = 40.0
    times: list[float] = []

    async def send(bucket: SharedBucket) -> None:
        await bucket.acquire()
        times.append(time.time())

    try:
        buckets = [
            SharedBucket(store.db, "send:twilio:+33757000041", rate),
            SharedBucket(other.db, "send:twilio:+33757000041", rate),
        ]
        started = time.time()
        await asyncio.gather(*(send(buckets[n % 2]) for n in range(80)))
    finally:
        await other.close()
    assert time.time() - started >= (80 - 2) / rate * 0.95  # together, not each, at 40/s
    times.sort()
    for index, start in enumerate(times):  # no second holds more than the rate + 10 % (the bound)
        assert sum(1 for t in times[index:] if t < start + 1.0) <= rate * 1.1


async def test_a_pause_reaches_every_process(store, db_url) -> None:
    other = await open_store(db_url)
    try:
        first = SharedBucket(store.db, "send:mastodon:a", 100.0)
        second = SharedBucket(other.db, "send:mastodon:a", 100.0)
        await first.acquire()
        first.pause(0.6)  # the provider said Retry-After
        await asyncio.sleep(0.05)  # the push lands
        started = time.time()
        await second.acquire()
        assert time.time() - started >= 0.45
    finally:
        await other.close()


def test_one_budget_per_provider_account() -> None:
    class Channel:
        def __init__(self, name: str, kind: str, **options: str) -> None:
            self.name, self.kind, self.options = name, kind, options

    assert send_budget(Channel("sms", "twilio", **{"from": "+33757000041"})) == send_budget(
        Channel("sms-urgent", "twilio", **{"from": "+33757000041"})
    )
    assert send_budget(Channel("a", "mastodon", base_url="https://m.example")) != send_budget(
        Channel("b", "mastodon", base_url="https://m.example")
    )


async def test_spent_budgets_are_pruned_once_full_again(store, monkeypatch) -> None:
    import alerts.shared_limits as shared

    now = [1_000_000.0]
    limiter = SharedRate(store.db, clock=lambda: now[0])
    for n in range(20):
        assert await limiter.allow(f"questions:address:198.51.100.{n}", Rate.per(5, 600.0))
    now[0] += 7200  # two hours later every one of them is full again
    monkeypatch.setattr(shared, "PRUNE_EVERY", 1)
    assert await limiter.allow("questions:address:203.0.113.1", Rate.per(5, 600.0))
    names = [r["name"] for r in await store.db.fetch("SELECT name FROM rate_budgets")]
    assert names == ["questions:address:203.0.113.1"]


async def test_a_busy_bucket_asks_for_its_next_slots_before_it_runs_out(store) -> None:
    """Sends waiting for a slot do not wait for the database as well: the next reservation is asked for while
    half of the current one is left. A lone send reserves only when it needs to (no slot held for nobody)."""
    bucket = SharedBucket(store.db, "send:twilio:+33757000041", 200.0)  # reservations of 20 slots
    left_when_asked: list[int] = []
    reserve = bucket.shared.reserve

    async def watched(name: str, rate: Rate, count: int = 1, at: float | None = None) -> float:
        left_when_asked.append(bucket._left)
        return await reserve(name, rate, count, at)

    bucket.shared.reserve = watched  # type: ignore[method-assign]

    async def sender() -> None:
        for _ in range(20):
            await bucket.acquire()

    await asyncio.gather(*(sender() for _ in range(5)))  # 100 sends, 5 at a time
    assert left_when_asked[0] == 0 and len(left_when_asked) >= 5
    ahead = [left for left in left_when_asked[1:] if left > 0]
    assert len(ahead) >= len(left_when_asked) - 2, left_when_asked  # all but the first and perhaps the last
    await bucket.idle()

    lone = SharedBucket(store.db, "send:twilio:+33757000042", 200.0)
    await lone.acquire()  # one send now and then: one reservation, nothing asked for in advance
    assert lone._ahead is None and lone._left == 19


async def test_a_slot_that_is_due_is_taken_without_queueing_behind_the_sends_woken_one_by_one(store) -> None:
    """Sends queued for the lock while a reservation was made are woken one per turn of the event loop. A send
    that comes meanwhile and finds a slot due takes it at once, instead of queueing behind them (at 64 sends in
    flight the queue never emptied: each send waited as many turns as there were sends before it)."""
    bucket = SharedBucket(store.db, "send:twilio:+33757000043", 1_000_000.0)
    queued = [asyncio.create_task(bucket.acquire()) for _ in range(10)]
    while not bucket._left:  # the first one reserves 1,000 slots, the nine others queue for the lock
        await asyncio.sleep(0)
    assert not all(task.done() for task in queued)
    turns: list[int] = []
    asyncio.get_running_loop().call_soon(turns.append, 1)
    await bucket.acquire()
    assert not turns  # it did not give the event loop a turn
    await asyncio.gather(*queued)
    await bucket.idle()
