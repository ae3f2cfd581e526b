"""The outbox's own path, no HTTP: claim batches of 500 and mark them sent, over a backlog of N queued
deliveries, on SQLite and PostgreSQL.

    python bench/claim.py [--backlog 100000] [--batch 500]

Prints, per backend, the time of one claim at the start of the backlog (median of the first 5) and at its
end (median of the last 5), and the rows/s of claim + mark_sent over the whole backlog. Goal: the claim
costs the same at both ends (proportional to the batch, not to the backlog).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.storage import open_store  # noqa: E402

PG_DSN = os.environ.get("CRIEUR_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def drain(db_url: str, backlog: int, batch: int) -> dict[str, float]:
    store = await open_store(db_url)
    try:
        await store.add_subscribers((f"+336{i:08d}", "41") for i in range(backlog))
        await store.enqueue_subscribers(1, "sms", ["41"], "Alert", "Neige : RD 957 fermée.")
        claims: list[float] = []
        started = time.perf_counter()
        while True:
            before = time.perf_counter()
            claimed = await store.outbox.claim("bench", batch, 60.0, ["sms"])
            claims.append(time.perf_counter() - before)
            if not claimed:
                break
            await store.outbox.mark_sent("bench", [(d.id, f"SM{d.id}", "queued") for d in claimed])
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    return {
        "first": statistics.median(claims[:5]) * 1000,
        "last": statistics.median(claims[-6:-1]) * 1000,
        "rows": backlog / seconds,
    }


async def main(args: argparse.Namespace) -> None:
    import asyncpg

    results = {}
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        results["SQLite"] = await drain(f"sqlite:///{tmp}/claim.db", args.backlog, args.batch)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_DSN)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in PG_DSN else "?"
        results["PostgreSQL"] = await drain(f"{PG_DSN}{sep}search_path={schema}", args.backlog, args.batch)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    print(f"\nClaim {args.batch} + mark sent, over a backlog of {args.backlog:,}\n")
    print(f"{'backend':<12}{'claim at start ms':>18}{'claim at end ms':>17}{'rows/s':>10}")
    for name, r in results.items():
        print(f"{name:<12}{r['first']:>18.1f}{r['last']:>17.1f}{r['rows']:>10,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
