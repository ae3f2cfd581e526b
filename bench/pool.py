"""Time to reach N SMS subscribers through a sender pool, and the engine's own rate.

    python bench/pool.py [--subscribers 100000] [--senders 10] [--sender-rate 10] [--engine-sample 20000]

1. The pool's pace: a Twilio channel of `--senders` senders at `--sender-rate` messages/s each, paced by
   the send budget every delivery worker shares (alerts.shared_limits.provider_bucket, in SQLite and in
   PostgreSQL). Time is simulated (tests/fakes/clock.py): the limiter's arithmetic and its database
   statements are the real ones, but its waits move the clock instead of sleeping, so the hours a real
   pool takes are played in seconds. Printed: the simulated time to hand out N sends, the estimate the
   console and `crieur deliveries` show (`seconds_for`), and the wall time the simulation took.
2. The engine's own rate: `--engine-sample` deliveries fanned out by one delivery worker process with no
   rate limit to a fake Twilio process (bench/fanout.py's scenario, SQLite).
The time to reach N is the larger of N at the pool's pace and N at the engine's rate: the pool is the
bound when the engine is faster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fanout as fanout_bench  # noqa: E402  (bench/fanout.py: the engine's scenario)

from alerts.shared_limits import provider_bucket  # noqa: E402
from alerts.storage import open_store  # noqa: E402
from alerts.web.durations import duration_fr  # noqa: E402
from channels.twilio import TwilioChannel  # noqa: E402
from tests.conftest import drop_pg_schema, make_pg_schema  # noqa: E402
from tests.fakes.clock import SimulatedClock  # noqa: E402


def pool_channel(senders: int, sender_rate: float) -> TwilioChannel:
    return TwilioChannel(
        "sms",
        {
            "account_sid": "AC" + "0" * 32,
            "auth_token": "bench",
            "messaging_service_sid": "MG" + "0" * 32,
            "senders": senders,
            "sender_rate": sender_rate,
        },
    )


async def paced(db_url: str, channel: TwilioChannel, n: int) -> tuple[float, float]:
    """(simulated seconds to hand out n sends, wall seconds the simulation took)."""
    store = await open_store(db_url)
    try:
        clock = SimulatedClock()
        bucket = provider_bucket(store.db, channel, clock=clock.time, sleep=clock.sleep)
        start, wall = clock.time(), time.perf_counter()
        for _ in range(n):
            await bucket.acquire()
        return clock.time() - start, time.perf_counter() - wall
    finally:
        await store.close()


async def paced_postgresql(channel: TwilioChannel, n: int) -> tuple[float, float]:
    url = await make_pg_schema()
    try:
        return await paced(url, channel, n)
    finally:
        await drop_pg_schema(url)


def thousands(n: float) -> str:
    return f"{n:,.0f}".replace(",", "\u202f")


async def main(args: argparse.Namespace) -> None:
    n = args.subscribers
    channel = pool_channel(args.senders, args.sender_rate)
    estimate = channel.seconds_for(n)
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        logs = pathlib.Path(tmp)
        sqlite = await paced(f"sqlite:///{logs / 'pool.db'}", channel, n)
        postgresql = await paced_postgresql(channel, n)
        engine = await fanout_bench.crieur("SQLite", f"sqlite:///{logs / 'engine.db'}", 1, args.engine_sample, logs)

    rate = channel.rate
    print(
        f"\nSender pool: {args.senders} senders x {args.sender_rate:g} msg/s = {rate:g} msg/s, {os.cpu_count()} cores\n"
    )
    print(f"{'console estimate (seconds_for)':<46}{thousands(n)} SMS à {rate:g}/s : {duration_fr(estimate)}")
    for label, (simulated, wall) in (("SQLite", sqlite), ("PostgreSQL", postgresql)):
        print(
            f"{'shared send budget, ' + label:<46}{simulated:9,.0f} s simulated ({duration_fr(simulated)}), "
            f"{simulated and n / simulated:6.1f} msg/s; played in {wall:.1f} s"
        )
    print(
        f"{'engine alone, SQLite, 1 worker, no limit':<46}{engine['rate']:9,.0f} msg/s "
        f"({thousands(args.engine_sample)} SMS to a fake Twilio process)"
    )
    reach = max(sqlite[0], n / engine["rate"])
    bound = "the pool" if sqlite[0] >= n / engine["rate"] else "the engine"
    print(
        f"\ntime to reach {thousands(n)} subscribers: {duration_fr(reach)} ({reach:,.0f} s), bound by {bound}; "
        f"engine / pool = {engine['rate'] / rate:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--sender-rate", type=float, default=10.0)
    parser.add_argument("--engine-sample", type=int, default=20_000)
    asyncio.run(main(parser.parse_args()))
