"""Console benchmark: what a CM's open console costs the database during a big snow night.

    python bench/console.py [--subscribers 20000] [--alerts 40] [--runs 20]

On SQLite and on PostgreSQL (CRIEUR_TEST_PG_DSN, default the local `test` database, in a schema made and
dropped here), with `--alerts` alerts each sent by SMS to `--subscribers` numbers (alerts x subscribers
deliveries), 2,000 citizen questions and 20 sources, measures (median over --runs, milliseconds):
  attention     one tick of an open /console/events stream (attention.gather: what the badge shows)
  progress      "Progression des envois" (delivery_progress.recent: the 8 latest alerts)
  dashboard     the whole /console page through aiohttp (login session, attention, every section)
Goals are printed next to the figures, not asserted: each open console tab runs `attention` every
2 seconds, so it should stay far below that; the dashboard should render well under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.domain import Alert, Severity  # noqa: E402
from alerts.ingest import SourceSpec  # noqa: E402
from alerts.storage import open_store  # noqa: E402

PASSWORD = "banc-d-essai-console"


async def timed(runs: int, action) -> float:  # noqa: ANN001
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        found.append((time.perf_counter() - started) * 1000)
    return statistics.median(found)


async def scenario(label: str, url: str, subscribers: int, alerts: int, runs: int, folder: pathlib.Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from alerts.web import attention, delivery_progress, make_app
    from alerts.web.accounts import add_user
    from tests.test_web_support import csrf_of, make_crieur

    store = await open_store(url)
    await store.add_subscribers([(f"+336{n:08d}", "41") for n in range(subscribers)])
    await store.close()
    crieur = await make_crieur(folder, database=url)
    store = crieur.store
    started = time.perf_counter()
    for n in range(alerts):
        alert = await store.add_alert(
            Alert(
                title=f"Neige : RD {900 + n} coupée",
                text="Chaussée enneigée.",
                territories=("41",),
                hashtags=("#route41",),
                channels=("sms",),
                severity=Severity.SEVERE,
            )
        )
        await store.enqueue_subscribers(alert.id, "sms", ["41"], "Alert", "Neige")
    for n in range(2000):
        await store.add_question(channel="sms", sender=f"+337{n:08d}", text=f"Question {n} sur la RD 957 ?")
    crieur.config.sources = [SourceSpec(f"source-{n}", "rss", f"https://s{n}.example/rss") for n in range(20)]
    for spec in crieur.config.sources:
        await store.save_source_state(
            spec.name,
            {
                "kind": "rss",
                "last_status": "ok",
                "consecutive_failures": 0,
                "last_success": "2026-12-03T17:00:00+00:00",
            },
        )
    print(f"{label}: {alerts * subscribers} deliveries, 2000 questions stored in {time.perf_counter() - started:.1f} s")
    await add_user(store, "camille", PASSWORD, "cm")
    async with TestClient(TestServer(make_app(crieur))) as client:
        token = csrf_of(await (await client.get("/console/login")).text())
        await client.post("/console/login", data={"username": "camille", "password": PASSWORD, "csrf": token})

        async def dashboard() -> None:
            response = await client.get("/console")
            assert response.status == 200
            await response.read()

        tick = await timed(runs, lambda: attention.gather(crieur, "camille"))
        progress = await timed(runs, lambda: delivery_progress.recent(store))
        page = await timed(max(3, runs // 4), dashboard)
    await store.close()
    print(f"  attention (one event-stream tick)  {tick:8.1f} ms   goal < 200 ms (runs every 2 s per open tab)")
    print(f"  progress (8 latest alerts)         {progress:8.1f} ms")
    print(f"  dashboard page                     {page:8.1f} ms   goal < 1000 ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=20000)
    parser.add_argument("--alerts", type=int, default=40)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    from tests.conftest import drop_pg_schema, make_pg_schema

    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        (folder / "sqlite").mkdir()
        await scenario(
            "SQLite",
            f"sqlite:///{folder / 'sqlite' / 'bench.db'}",
            args.subscribers,
            args.alerts,
            args.runs,
            folder / "sqlite",
        )
        dsn = await make_pg_schema()
        try:
            (folder / "pg").mkdir()
            await scenario("PostgreSQL", dsn, args.subscribers, args.alerts, args.runs, folder / "pg")
        finally:
            await drop_pg_schema(dsn)


if __name__ == "__main__":
    asyncio.run(main())
