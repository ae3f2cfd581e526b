"""What a scrape of /metrics costs the database, after a long history: the outbox's backlog query (the one
`Outbox.queue_stats` runs) against the count of every delivery by channel and state that it replaced, in
the same run, on SQLite and PostgreSQL.

    python bench/scrape.py [--history 1000000] [--backlog 10000] [--rounds 5]

The table holds --history finished deliveries (sent, a few failed and cancelled) and a backlog of --backlog
queued and 500 being sent, on two channels. Each round times both queries, one after the other. Goal: the
scrape costs the backlog, not the history (on SQLite it runs in the database thread the worker shares).
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
from tests.conftest import drop_pg_schema, make_pg_schema  # noqa: E402

EVERY_DELIVERY = "SELECT channel, state, COUNT(*) AS n FROM deliveries GROUP BY channel, state"
SENDING = 500
HISTORY = "CAST($1 AS INTEGER)"
BACKLOG = "CAST($2 AS INTEGER)"


def fill(dialect: str) -> str:
    """One statement writing $1 finished deliveries, then $2 queued and SENDING being sent (ids in order)."""
    numbers = (
        "generate_series(1, {last}) g"
        if dialect == "postgresql"
        else "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1 + $2 + 500) SELECT g FROM s)"
    ).format(last=f"{HISTORY} + {BACKLOG} + {SENDING}")
    return f"""
INSERT INTO deliveries (key, alert_id, channel, recipient, text, due_at, created_at, updated_at, state)
SELECT 'k' || g, 1 + g / 50000, CASE WHEN g % 3 = 0 THEN 'email' ELSE 'sms' END, '+336' || g, 'Neige', 0, g, g,
       CASE WHEN g > {HISTORY} + {SENDING} THEN 'queued' WHEN g > {HISTORY} THEN 'sending'
            WHEN g % 97 = 0 THEN 'failed' WHEN g % 89 = 0 THEN 'cancelled' ELSE 'sent' END
FROM {numbers}"""


async def measure(db_url: str, history: int, backlog: int, rounds: int) -> dict[str, list[float]]:
    store = await open_store(db_url)
    try:
        await store.db.execute(fill(store.db.dialect), history, backlog)
        await store.db.execute("ANALYZE deliveries" if store.db.dialect == "postgresql" else "ANALYZE")
        times: dict[str, list[float]] = {"every delivery": [], "backlog": []}
        for _ in range(rounds):
            started = time.perf_counter()
            await store.db.fetch(EVERY_DELIVERY)
            times["every delivery"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            stats = await store.outbox.queue_stats()
            times["backlog"].append((time.perf_counter() - started) * 1000)
        counted = sum(n for _, _, n in stats["by_channel_state"])
        assert counted == backlog + SENDING, f"the backlog query counted {counted}"
        return times
    finally:
        await store.close()


async def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="crieur-bench-") as tmp:
        results["SQLite"] = await measure(f"sqlite:///{tmp}/scrape.db", args.history, args.backlog, args.rounds)
    url = await make_pg_schema()
    try:
        results["PostgreSQL"] = await measure(url, args.history, args.backlog, args.rounds)
    finally:
        await drop_pg_schema(url)
    print(
        f"\nA /metrics scrape's outbox query, {args.history:,} finished deliveries and {args.backlog + SENDING:,}"
        f" not finished, {args.rounds} rounds: min  median  max (ms)\n"
    )
    for backend, times in results.items():
        for name, values in times.items():
            label = f"{backend}, {'count of every delivery (before)' if name != 'backlog' else 'backlog (now)'}"
            print(f"{label:<48}{spread(values)}")
        ratio = statistics.median(times["every delivery"]) / statistics.median(times["backlog"])
        print(f"{'':<48}{ratio:.0f}x less")


def spread(values: list[float]) -> str:
    return f"{min(values):9.1f}{statistics.median(values):9.1f}{max(values):9.1f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parsed: Any = parser.parse_args()
    asyncio.run(main(parsed))
