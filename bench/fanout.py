"""Fan-out benchmark: one alert to N SMS subscribers of territory 41, through the real delivery engine and
Twilio adapter, to a fake Twilio running as its own process (counting mode: it validates every request and
keeps none), against the limit a plain client reaches on the same fake in the same run.

    python bench/fanout.py [--subscribers 20000] [--rounds 3] [--pg-workers 2] [--backlogs 10000,1000000]

Each round runs, one after the other (interleaved, so a machine that gets busier affects all alike):
  limit        a plain aiohttp client, 64 keep-alive connections, posting N Twilio "Messages create"
               forms (To, From, Body, Basic auth) to a fresh fake Twilio process
  SQLite       the engine's fan-out: one delivery worker process (`python -m tests.faults.worker`),
               enqueue of N deliveries (Store.enqueue_subscribers), then messages/s until all are sent
  limit        again
  PostgreSQL   the same with --pg-workers worker processes, in a schema made and dropped here
               (server: CRIEUR_TEST_PG_DSN, default the local `test` database)
The workers send 64 at a time in all (each of W workers 64 / W), as many as the plain client's connections:
with 64 each, two workers kept 128 requests in flight and the fake provider, on its one core, answered each
message at a higher cost to everyone (10–30 % fewer messages a second in the same minutes).
A Crieur figure's ratio is taken against the mean of the two limit runs around it. Each scenario also
prints the CPU time each kind of process spent per message (workers, provider, database server, and this
process: the plain client, or the progress polling), from /proc: where the 2 cores go. Every scenario checks
that the fake accepted exactly N messages. Figures are min/median/max over the rounds; the last line is
`fan-out/limit: sqlite R postgresql R` (medians). Goals are printed, not asserted: 2 cores here are shared
by the workers, the fake provider and the database.

--backlogs then runs, on each backend, one fan-out per backlog size and prints its messages/s and its ratio
to the plain client's limit measured just before and after it: the ratio should not depend on how much is
queued (claiming costs the batch, not the backlog).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import pathlib
import signal
import statistics
import sys
import tempfile
import time
from typing import Callable

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.storage import open_store  # noqa: E402
from tests.conftest import drop_pg_schema, make_pg_schema  # noqa: E402
from tests.faults.procs import Proc  # noqa: E402
from tests.faults.worker import ACCOUNT_SID, AUTH_TOKEN, SENDER  # noqa: E402

TEXT = "Neige : RD 957 fermée entre Blois et Vendôme, itinéraire conseillé par la RD 917. #route41"
CONNECTIONS = 64
# Read through the partial indexes deliveries_queued and deliveries_leased, whatever the backlog: written
# without the ORDER BY, SQLite scanned the covering index deliveries_recipient for a row in that state,
# nearly all of it at the end of a fan-out (33 ms a poll at 1,000,000, a third of a core taken from the run).
PENDING = (
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 'queued' ORDER BY channel, priority DESC, id LIMIT 1)"
    " OR EXISTS (SELECT 1 FROM deliveries WHERE state = 'sending' ORDER BY lease_until LIMIT 1)"
)


async def start_fake(logs: pathlib.Path) -> tuple[Proc, str]:
    fake = await Proc.python_module(
        "tests.fakes.twilio", "--port", "0", "--count-only", stderr_path=logs / "twilio.stderr"
    )
    return fake, (await fake.wait_line("listening on")).split()[-1]


async def accepted_on_stop(proc: Proc) -> int:
    proc.signal(signal.SIGTERM)
    await proc.wait(30)
    line = await proc.wait_line("stopping:")
    return int(line.split(",")[1].split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc), in seconds; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (its backends and background workers)."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class CpuMeter:
    """CPU µs per message spent by each kind of process between `start` and `stop`. A kind's processes are
    listed again at `stop` (a database server starts a backend per new connection); one that ended in
    between is not counted."""

    def __init__(self, kinds: dict[str, Callable[[], list[int]]]):
        self.kinds = kinds
        self.before: dict[int, float] = {}
        self.before_self = 0.0

    def start(self) -> None:
        self.before = {pid: cpu_seconds(pid) for pids in self.kinds.values() for pid in pids()}
        self.before_self = time.process_time()

    def stop(self, n: int) -> dict[str, float]:
        used = {
            kind: sum(cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in pids()) / n * 1e6
            for kind, pids in self.kinds.items()
        }
        used["bench"] = (time.process_time() - self.before_self) / n * 1e6
        return used


async def plain_client(n: int, logs: pathlib.Path) -> dict:
    """messages/s of a plain aiohttp client posting N Twilio forms over 64 keep-alive connections, and CPU µs
    per message of the client and of the fake."""
    fake, api = await start_fake(logs)
    meter = CpuMeter({"provider": lambda: [fake.pid]})
    url = f"{api}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    todo = iter(range(n))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:

            async def post_some() -> None:
                for i in todo:
                    form = {"To": f"+336{i:08d}", "From": SENDER, "Body": TEXT}
                    async with session.post(url, data=form, headers={"Authorization": auth}) as response:
                        await response.read()
                        assert response.status == 201, response.status

            meter.start()
            started = time.perf_counter()
            await asyncio.gather(*(post_some() for _ in range(CONNECTIONS)))
            seconds = time.perf_counter() - started
            cpu = meter.stop(n)
    finally:
        accepted = await accepted_on_stop(fake)
    assert accepted == n, f"plain client: the fake accepted {accepted} of {n}"
    return {"rate": n / seconds, "cpu": cpu}


async def crieur(label: str, db_url: str, workers: int, n: int, logs: pathlib.Path) -> dict:
    fake, api = await start_fake(logs)
    store = await open_store(db_url)
    procs: list[Proc] = []
    try:
        await store.add_subscribers((f"+336{i:08d}", "41") for i in range(n))
        for index in range(workers):
            procs.append(
                await Proc.python_module(
                    "tests.faults.worker",
                    "--db",
                    db_url,
                    "--api-base",
                    api,
                    "--lease",
                    "30",
                    "--concurrency",
                    str(CONNECTIONS // workers),
                    "--worker-id",
                    f"bench-{index}",
                    "--log-level",
                    "ERROR",
                    stderr_path=logs / f"{label.replace(' ', '_')}-{index}.stderr",
                )
            )
        for proc in procs:
            await proc.wait_line("worker ready")
        meter = CpuMeter(
            {"workers": lambda: [proc.pid for proc in procs], "provider": lambda: [fake.pid]}
            | ({"database": database_pids} if db_url.startswith("postgres") else {})
        )
        started = time.perf_counter()
        queued = await store.enqueue_subscribers(1, "sms", ["41"], "Alert", TEXT)
        enqueued, enqueued_wall = time.perf_counter(), time.time()
        meter.start()
        assert queued == n, f"{label}: {queued} queued instead of {n}"
        deadline = enqueued + max(120.0, n / 100)
        while await store.db.fetchval(PENDING):
            if time.perf_counter() > deadline:
                raise SystemExit(f"{label}: not all of {n} sent before the deadline")
            await asyncio.sleep(0.1)
        cpu = meter.stop(n)
        row = await store.db.fetchrow("SELECT COUNT(*) AS n, MAX(sent_at) AS last FROM deliveries WHERE state = 'sent'")
        assert row["n"] == n, f"{label}: {row['n']} sent of {n}"
        # the end is when the last send was recorded (wall clock, as the workers write it), not when the
        # poll above noticed it: the poll's 0.1 s would count against the engine (2 % of a 5 s fan-out)
        sending = float(row["last"]) - enqueued_wall
        peak = max(peak_rss_mib(proc.pid) for proc in procs)
    finally:
        for proc in procs:
            await proc.stop()
        await store.close()
    accepted = await accepted_on_stop(fake)
    assert accepted == n, f"{label}: the provider accepted {accepted} messages for {n} deliveries"
    return {"enqueue": enqueued - started, "rate": n / sending, "rss": peak, "cpu": cpu}


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident memory (VmHWM, Linux), in MiB; NaN where /proc does not say."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def postgresql(workers: int, n: int, logs: pathlib.Path) -> dict:
    url = await make_pg_schema()
    try:
        return await crieur("PostgreSQL", url, workers, n, logs)
    finally:
        await drop_pg_schema(url)


def spread(values: list[float], fmt: str) -> str:
    return "  ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


async def main(args: argparse.Namespace) -> None:
    if not args.rounds:  # --rounds 0: the backlogs only
        await backlogs(args)
        return
    n = args.subscribers
    plain: list[dict] = []
    runs: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}

    async def limit() -> float:
        plain.append(await plain_client(n, logs))
        return statistics.mean(run["rate"] for run in plain[-2:])

    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        logs = pathlib.Path(tmp)
        await limit()
        for round_ in range(args.rounds):
            result = await crieur("SQLite", f"sqlite:///{logs / f'crieur-{round_}.db'}", 1, n, logs)
            result["ratio"] = result["rate"] / await limit()
            runs["sqlite"].append(result)
            if args.pg_workers:
                result = await postgresql(args.pg_workers, n, logs)
                result["ratio"] = result["rate"] / await limit()
                runs["postgresql"].append(result)
            print(
                f"round {round_ + 1}: limit {plain[-1]['rate']:,.0f}/s, "
                + ", ".join(f"{name} {r[-1]['rate']:,.0f}/s ({r[-1]['ratio']:.2f})" for name, r in runs.items() if r),
                file=sys.stderr,
                flush=True,
            )

    print(
        f"\nFan-out of {n:,} SMS to a fake Twilio process (counting mode), {os.cpu_count()} cores, "
        f"{args.rounds} interleaved rounds: min  median  max\n"
    )
    print(
        f"{'plain aiohttp client, 64 connections':<42}{spread([r['rate'] for r in plain], '7,.0f')} msg/s   the limit"
    )
    print(f"{'  CPU per message':<42}{cpu_line(plain)}")
    labels = {
        "sqlite": "Crieur, SQLite, 1 process",
        "postgresql": f"Crieur, PostgreSQL, {args.pg_workers} process{'es' if args.pg_workers > 1 else ''}",
    }
    for name, results in runs.items():
        if not results:
            continue
        print(f"{labels[name]:<42}{spread([r['rate'] for r in results], '7,.0f')} msg/s")
        print(f"{'  / limit':<42}{spread([r['ratio'] for r in results], '7.2f')}         goal >= 0.80")
        print(f"{'  enqueue of N deliveries':<42}{spread([r['enqueue'] for r in results], '7.2f')} s")
        print(f"{'  peak RSS of a worker process':<42}{spread([r['rss'] for r in results], '7.0f')} MiB")
        print(f"{'  CPU per message':<42}{cpu_line(results)}")
    medians = {
        name: statistics.median(r["ratio"] for r in results) if results else float("nan")
        for name, results in runs.items()
    }
    if args.backlogs:
        await backlogs(args)
    print(f"fan-out/limit: sqlite {medians['sqlite']:.2f} postgresql {medians['postgresql']:.2f}")


def cpu_line(results: list[dict]) -> str:
    """Median CPU µs per message of each kind of process ("bench" is this process: the plain client itself,
    or the progress polling while Crieur sends)."""
    kinds = results[0]["cpu"].keys()
    return ", ".join(f"{kind} {statistics.median(r['cpu'][kind] for r in results):.0f}" for kind in kinds) + " µs"


async def backlogs(args: argparse.Namespace) -> None:
    """One fan-out per backlog size on each backend, one after the other: messages/s, its ratio to the plain
    client's limit (--subscribers messages) measured just before and just after it, and worker memory. The
    ratio is the figure to compare across sizes: a large backlog runs for minutes while the machine's speed
    moves."""
    sizes = [int(size) for size in args.backlogs.split(",")]
    print(f"\nBy backlog (one fan-out each; PostgreSQL with {args.pg_workers} worker processes):")
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        logs = pathlib.Path(tmp)
        limits = [(await plain_client(args.subscribers, logs))["rate"]]

        async def ratio(result: dict) -> float:
            limits.append((await plain_client(args.subscribers, logs))["rate"])
            return result["rate"] / statistics.mean(limits[-2:])

        for n in sizes:
            result = await crieur("SQLite", f"sqlite:///{logs / f'backlog-{n}.db'}", 1, n, logs)
            print(f"  SQLite      {n:>9,} queued: {backlog_line(result, await ratio(result))}", flush=True)
            if args.pg_workers:
                result = await postgresql(args.pg_workers, n, logs)
                print(f"  PostgreSQL  {n:>9,} queued: {backlog_line(result, await ratio(result))}", flush=True)


def backlog_line(result: dict, ratio: float) -> str:
    return (
        f"{result['rate']:7,.0f} msg/s ({ratio:.2f} of the limit), worker peak RSS {result['rss']:.0f} MiB, "
        + "CPU per message "
        + ", ".join(f"{kind} {us:.0f}" for kind, us in result["cpu"].items())
        + " µs"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-workers", type=int, default=2, help="worker processes on PostgreSQL (0: skip it)")
    parser.add_argument("--backlogs", default="", help="backlog sizes to compare, e.g. 10000,1000000")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
