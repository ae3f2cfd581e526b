"""Fan-out benchmark: one alert to N SMS subscribers of territory 41, through the real delivery engine and
Twilio adapter, to a fake Twilio running as its own process (no provider rate limit).

    python bench/fanout.py [--subscribers 20000] [--pg-workers 1,2,4] [--apprise N]

Measures, in one run:
  enqueue      time of Fanout's one-statement enqueue (Store.enqueue_subscribers) of N deliveries
  dispatch     messages/s from the end of the enqueue to the last delivery marked sent, with the worker
               processes (`python -m tests.faults.worker`) already running: SQLite with one process,
               PostgreSQL with 1, 2 and 4 processes
  Apprise      the same number of JSON notifications posted by Apprise (json:// URLs, its own parallel
               notify) to a local endpoint of the same kind (an aiohttp process answering 200)
Every scenario checks that the fake provider accepted exactly N messages. PostgreSQL: the server named
by CRIEUR_TEST_PG_DSN (default the local `test` database), in a schema made and dropped here.
Goals are printed next to the figures, not asserted: the numbers depend on the machine (2 cores here are
shared by the workers, the fake provider and the database).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.storage import open_store  # noqa: E402
from tests.faults.procs import Proc  # noqa: E402

PG_DSN = os.environ.get("CRIEUR_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TEXT = "Neige : RD 957 fermée entre Blois et Vendôme, itinéraire conseillé par la RD 917. #route41"


async def accepted_on_stop(proc: Proc) -> int:
    proc.signal(signal.SIGTERM)
    await proc.wait(30)
    line = await proc.wait_line("stopping:")
    return int(line.split(",")[1].split()[0])


async def scenario(label: str, db_url: str, workers: int, n: int, logs: pathlib.Path) -> dict:
    # The fake checks nothing against Twilio's description here: the benchmark measures Crieur's dispatch,
    # not the validator (the test suite runs the same fake with every request and answer checked).
    fake = await Proc.python_module("tests.fakes.twilio", "--port", "0", "--no-contract",
                                    stderr_path=logs / "twilio.stderr")
    api = (await fake.wait_line("listening on")).split()[-1]
    store = await open_store(db_url)
    procs: list[Proc] = []
    try:
        await store.add_subscribers((f"+336{i:08d}", "41") for i in range(n))
        for index in range(workers):
            proc = await Proc.python_module(
                "tests.faults.worker", "--db", db_url, "--api-base", api, "--lease", "30",
                "--worker-id", f"bench-{index}", "--log-level", "ERROR",
                stderr_path=logs / f"{label.replace(' ', '_')}-{index}.stderr")
            procs.append(proc)
        for proc in procs:
            await proc.wait_line("worker ready")
        started = time.perf_counter()
        queued = await store.enqueue_subscribers(1, "sms", ["41"], "Alert", TEXT)
        enqueued = time.perf_counter()
        assert queued == n, f"{label}: {queued} queued instead of {n}"
        deadline = enqueued + max(120.0, n / 100)
        while True:
            sent = int(await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'"))
            if sent >= n:
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"{label}: only {sent} of {n} sent before the deadline")
            await asyncio.sleep(0.1)
        done = time.perf_counter()
    finally:
        for proc in procs:
            await proc.stop()
        await store.close()
    accepted = await accepted_on_stop(fake)
    assert accepted == n, f"{label}: the provider accepted {accepted} messages for {n} deliveries"
    return {"label": label, "enqueue_s": enqueued - started, "rate": n / (done - enqueued),
            "seconds": done - enqueued}


async def pg_schema(create: bool, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}" if create else f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def apprise_reference(n: int, logs: pathlib.Path, fan: int = 200) -> float:
    import apprise

    sink = await Proc.python_module("tests.faults.sink", "--port", "0", stderr_path=logs / "sink.stderr")
    base = (await sink.wait_line("listening on")).split()[-1].replace("http://", "json://")
    notifier = apprise.Apprise()
    for index in range(fan):  # Apprise notifies the servers of one call in parallel
        notifier.add(f"{base}/hook/{index}")
    rounds = max(1, n // fan)

    def post_all() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            notifier.notify(title="Crieur", body=TEXT)
        return time.perf_counter() - started

    seconds = await asyncio.to_thread(post_all)
    accepted = await accepted_on_stop(sink)
    assert accepted == rounds * fan, f"Apprise: {accepted} of {rounds * fan} accepted"
    return rounds * fan / seconds


async def main(args: argparse.Namespace) -> None:
    n = args.subscribers
    results = []
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        logs = pathlib.Path(tmp)
        results.append(await scenario("SQLite, 1 process", f"sqlite:///{logs / 'crieur.db'}", 1, n, logs))
        for workers in args.pg_workers:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            await pg_schema(True, schema)
            sep = "&" if "?" in PG_DSN else "?"
            try:
                results.append(await scenario(f"PostgreSQL, {workers} process{'es' if workers > 1 else ''}",
                                              f"{PG_DSN}{sep}search_path={schema}", workers, n, logs))
            finally:
                await pg_schema(False, schema)
        apprise_n = args.apprise if args.apprise is not None else n
        apprise_rate = await apprise_reference(apprise_n, logs) if apprise_n else 0.0

    print(f"\nFan-out of {n:,} SMS (territory 41) to a fake Twilio process, {os.cpu_count()} cores\n")
    print(f"{'scenario':<26}{'enqueue s':>10}{'dispatch s':>12}{'msg/s':>9}{'x Apprise':>11}   goal")
    for index, r in enumerate(results):
        ratio = r["rate"] / apprise_rate if apprise_rate else float("nan")
        goal = "enqueue < 5 s; >= 2,000 msg/s" if index == 0 else "scales with workers; >= 3x Apprise"
        print(f"{r['label']:<26}{r['enqueue_s']:>10.2f}{r['seconds']:>12.2f}{r['rate']:>9.0f}{ratio:>11.2f}   {goal}")
    if apprise_rate:
        print(f"{'Apprise json://, parallel':<26}{'':>10}{apprise_n / apprise_rate:>12.2f}{apprise_rate:>9.0f}"
              f"{1.0:>11.2f}   reference ({apprise_n:,} posts)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--pg-workers", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 2, 4],
                        help="worker process counts for PostgreSQL, e.g. 1,2,4 (empty: skip PostgreSQL)")
    parser.add_argument("--apprise", type=int, default=None,
                        help="notifications for the Apprise reference (default: as many as subscribers; 0 skips)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
