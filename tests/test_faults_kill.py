"""Exactly once under a SIGKILL: a worker process is killed with -9 in the middle of a fan-out of 20,000 SMS,
another is started, and when the outbox is drained the (fake) provider has received every number exactly
once. Runs on SQLite and on PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

import asyncio
import collections
import signal
import time

import pytest

from alerts.storage import open_store
from tests.fakes.twilio import FakeTwilio
from tests.faults.procs import Proc

SUBSCRIBERS = 20_000
LEASE = 3.0
KILL_AT = SUBSCRIBERS // 2 + 137  # not a multiple of the claim size: a batch is half sent
TEXT = "Neige : RD 957 fermée entre Blois et Vendôme. Prudence. #route41"


def phones(count: int, prefix: str = "+336") -> list[str]:
    return [f"{prefix}{i:08d}" for i in range(count)]


async def wait_until(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def start_worker(db_url: str, api_base: str, tmp_path, name: str, *extra: str) -> Proc:
    proc = await Proc.python_module(
        "tests.faults.worker",
        "--db",
        db_url,
        "--api-base",
        api_base,
        "--lease",
        str(LEASE),
        "--worker-id",
        name,
        *extra,
        stderr_path=tmp_path / f"{name}.stderr",
    )
    await proc.wait_line("worker ready")
    return proc


@pytest.mark.slow
async def test_sigkill_mid_fanout_loses_and_doubles_nothing(db_url, tmp_path):
    numbers = phones(SUBSCRIBERS)
    store = await open_store(db_url)
    fake = FakeTwilio()
    api_base = await fake.start()
    workers: list[Proc] = []
    try:
        await store.add_subscribers((n, "41") for n in numbers)
        assert await store.enqueue_subscribers(1, "sms", ["41"], "Alert", TEXT) == SUBSCRIBERS

        first = await start_worker(db_url, api_base, tmp_path, "first")
        workers.append(first)
        await wait_until(lambda: len(fake.messages) >= KILL_AT, 180, "half of the SMS")
        first.signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        at_kill = len(fake.messages)
        sids_at_kill = {m["sid"] for m in fake.messages[:at_kill]}
        # A statement the killed worker had already sent still commits on the PostgreSQL server: wait until the
        # outbox stops changing before taking its picture, or rows counted as leased may turn out recorded.
        previous: object = None
        while (current := (await store.queue_stats())["by_channel_state"]) != previous:
            previous = current
            await asyncio.sleep(1.0)
        in_flight = await store.deliveries(state="sending", limit=SUBSCRIBERS)
        sent_rows = await store.deliveries(state="sent", limit=SUBSCRIBERS)
        assert 0 < at_kill < SUBSCRIBERS
        stats = await store.queue_stats()
        assert in_flight, f"the kill should leave leased deliveries behind: {stats} at_kill={at_kill}"
        # some messages reached the provider but were not yet recorded: the restarted worker must find them
        unrecorded = at_kill - len(sent_rows)
        print(f"at kill: provider had {at_kill}, outbox sent {len(sent_rows)}, leased {len(in_flight)}")

        second = await start_worker(db_url, api_base, tmp_path, "second", "--until-drained")
        workers.append(second)
        line = await second.wait_line("drained", timeout=180)
        assert await second.wait() == 0, second.stderr()

        counts = collections.Counter(m["to"] for m in fake.messages)
        doubled = {n: c for n, c in counts.items() if c > 1}
        lost = set(numbers) - set(counts)
        assert not doubled, f"{len(doubled)} numbers received the alert twice ({unrecorded} unrecorded at kill)"
        assert not lost, f"{len(lost)} numbers never received the alert"
        assert len(fake.messages) == SUBSCRIBERS
        assert line.startswith(f"drained sent={SUBSCRIBERS} ")
        progress = await store.progress(1)
        assert progress[0]["sent"] == SUBSCRIBERS and progress[0]["queued"] == 0
        rows = await store.deliveries(state="sent", limit=SUBSCRIBERS + 1)
        by_sid = {m["sid"] for m in fake.messages}
        assert {r.provider_id for r in rows} == by_sid  # each row names the provider's own message
        # the leased rows the provider already had were taken up again in doubt and found there, not re-sent
        # (a leased row the provider never got may lose its doubt on a later definite refusal: that is fine)
        leased = {d.id for d in in_flight}
        found_again = [r for r in rows if r.id in leased and r.provider_id in sids_at_kill]
        assert len(found_again) == unrecorded and all(r.in_doubt for r in found_again)
        assert sum(1 for r in rows if r.in_doubt) == len(in_flight)
        fake.assert_contract_kept()  # every request of both workers was one Twilio's description accepts
    finally:
        for proc in workers:
            await proc.stop()
        await fake.stop()
        await store.close()
