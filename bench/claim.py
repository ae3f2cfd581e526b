"""The outbox's own path, no HTTP: claim batches of 500 and mark them sent, over backlogs of N queued
deliveries, on SQLite and PostgreSQL.

    python bench/claim.py [--backlogs 10000,100000,1000000] [--batch 500] [--measure 40] [--explain]

For each backlog and backend: the time of one claim at the start of the backlog (median of the first 5),
the rows/s of claim + mark_sent over the first --measure batches, then the time of one claim at the end
(median of the last 5). To reach the end of a large backlog without sending it all, the rows between are
marked sent by one UPDATE (not timed): what a claim then reads is what it reads at the end of a real drain.
Goal: a claim costs the same at both ends and for every backlog (proportional to the batch, not to the
backlog). --explain prints the plan of the claim of queued deliveries at the start of the largest backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.storage import open_store  # noqa: E402
from alerts.storage.outbox import SQL  # noqa: E402
from tests.conftest import drop_pg_schema, make_pg_schema  # noqa: E402


async def plan(store: Any, batch: int) -> str:
    """The query plan of the claim of queued deliveries (one channel), as the backend would run it now."""
    now = time.time()
    parts = {
        "channels": "AND channel IN ($5)",
        "lock": "FOR UPDATE SKIP LOCKED" if store.db.dialect == "postgresql" else "",
    }
    sql = SQL["claim_queued"].format(**parts)
    args = (now + 60, "bench", now, batch, "sms")
    if store.db.dialect == "postgresql":
        async with store.db.transaction() as tx:  # EXPLAIN ANALYZE runs the UPDATE: rolled back
            rows = await tx.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", *args)
            lines = [r["QUERY PLAN"] for r in rows]
            raise _Rollback("\n".join(lines))
    rows = await store.db.fetch(f"EXPLAIN QUERY PLAN {sql}", *args)
    return "\n".join(str(r["detail"]) for r in rows)


class _Rollback(Exception):
    pass


async def drain(db_url: str, backlog: int, batch: int, measure: int, explain: bool) -> dict[str, Any]:
    store = await open_store(db_url)
    try:
        await store.add_subscribers((f"+336{i:08d}", "41") for i in range(backlog))
        await store.enqueue_subscribers(1, "sms", ["41"], "Alert", "Neige : RD 957 fermée.")
        if store.db.dialect == "postgresql":
            await store.db.execute("ANALYZE deliveries")
        shown = ""
        if explain:
            try:
                shown = await plan(store, batch)
            except _Rollback as plan_text:
                shown = str(plan_text)
        first: list[float] = []
        started = time.perf_counter()
        for _ in range(max(1, min(measure, backlog // batch - 6))):  # 6 batches left for the end
            before = time.perf_counter()
            claimed = await store.outbox.claim("bench", batch, 60.0, ["sms"])
            first.append(time.perf_counter() - before)
            await store.outbox.mark_sent("bench", [(d.id, f"SM{d.id}", "queued") for d in claimed])
        rows = len(first) * batch / (time.perf_counter() - started)
        skip = backlog - len(first) * batch - 6 * batch
        if skip > 0:  # the middle of the backlog, sent at once
            await store.db.execute(
                "UPDATE deliveries SET state = 'sent', sent_at = $1 WHERE id IN (SELECT id FROM deliveries "
                "WHERE state = 'queued' ORDER BY priority DESC, id LIMIT $2)",
                time.time(),
                skip,
            )
        last: list[float] = []
        while True:
            before = time.perf_counter()
            claimed = await store.outbox.claim("bench", batch, 60.0, ["sms"])
            last.append(time.perf_counter() - before)
            if not claimed:
                break
            await store.outbox.mark_sent("bench", [(d.id, f"SM{d.id}", "queued") for d in claimed])
        left = int(await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state <> 'sent'"))
        assert left == 0, f"{left} deliveries not sent"
    finally:
        await store.close()
    return {
        "first": statistics.median(first[:5]) * 1000,
        "last": statistics.median(last[-6:-1]) * 1000,
        "rows": rows,
        "plan": shown,
    }


async def main(args: argparse.Namespace) -> None:
    results: list[tuple[int, str, dict[str, Any]]] = []
    largest = max(args.backlogs)
    for backlog in args.backlogs:
        explain = args.explain and backlog == largest
        with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
            result = await drain(f"sqlite:///{tmp}/claim.db", backlog, args.batch, args.measure, explain)
            results.append((backlog, "SQLite", result))
        url = await make_pg_schema()
        try:
            results.append((backlog, "PostgreSQL", await drain(url, backlog, args.batch, args.measure, explain)))
        finally:
            await drop_pg_schema(url)
        for size, name, r in results[-2:]:
            print(f"{name} {size:,}: {r['first']:.1f} / {r['last']:.1f} ms", file=sys.stderr, flush=True)
    print(f"\nClaim {args.batch} + mark sent (rows/s over the first {args.measure} batches)\n")
    print(f"{'backlog':>10}  {'backend':<12}{'claim at start ms':>18}{'claim at end ms':>17}{'rows/s':>10}")
    for backlog, name, r in results:
        print(f"{backlog:>10,}  {name:<12}{r['first']:>18.1f}{r['last']:>17.1f}{r['rows']:>10,.0f}")
    for backlog, name, r in results:
        if r["plan"]:
            print(f"\nplan of claim_queued, {name}, {backlog:,} queued:\n{r['plan']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backlogs", type=lambda v: [int(x) for x in v.split(",") if x], default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--measure", type=int, default=40, help="batches claimed and marked sent at the start")
    parser.add_argument("--explain", action="store_true")
    asyncio.run(main(parser.parse_args()))
