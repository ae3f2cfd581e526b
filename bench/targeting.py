"""Targeting benchmark: 100,000 subscribers of the Loir-et-Cher spread over the whole département, its
communes and a few roads; how long the audience count ("how many people and why") and the enqueue take for a
closure near Vendôme (a point and a road) and for a département-wide alert, on SQLite and PostgreSQL.

    python bench/targeting.py [--subscribers 100000]

Commune outlines are read from ../shared/geo. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import random
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.domain import Alert, Road  # noqa: E402
from alerts.places import Gazetteer, commune_key, road_key, targets  # noqa: E402
from alerts.storage import open_store  # noqa: E402
from tests.conftest import drop_pg_schema, make_pg_schema  # noqa: E402

GEO = ROOT.parent / "shared" / "geo"
ROADS = ["D957", "D917", "D2020", "D952", "D765"]


def subscriptions(n: int, communes: list[str]) -> list[tuple[str, str]]:
    """30 % the whole 41, 60 % one commune, 10 % one road; numbers distinct."""
    rng = random.Random(41)
    rows = []
    for i in range(n):
        phone = f"+336{i:08d}"
        draw = rng.random()
        key = (
            "41"
            if draw < 0.3
            else road_key("41", rng.choice(ROADS))
            if draw > 0.9
            else commune_key(rng.choice(communes))
        )
        rows.append((phone, key))
    return rows


async def scenario(label: str, db_url: str, gazetteer: Gazetteer, n: int) -> None:
    store = await open_store(db_url)
    try:
        communes = sorted(c for c in gazetteer.communes if c.startswith("41"))
        started = time.perf_counter()
        await store.add_subscribers(subscriptions(n, communes))
        loaded = time.perf_counter() - started
        closure = Alert(
            title="D957 fermée",
            text="D957 fermée",
            territories=("41",),
            hashtags=(),
            channels=("sms",),
            roads=(Road("D", "957"),),
            geometry={"type": "Point", "coordinates": [1.0655, 47.7930]},
        )
        everyone = Alert(title="Neige", text="Vigilance neige", territories=("41",), hashtags=(), channels=("sms",))
        print(f"{label}: {n:,} subscribers loaded in {loaded:.1f} s")
        for alert_id, (name, alert) in enumerate((("closure near Vendôme", closure), ("whole 41", everyone)), 1):
            started = time.perf_counter()
            found = targets(alert, gazetteer)
            resolved = time.perf_counter() - started
            started = time.perf_counter()
            audience = await store.audience(found)
            counted = time.perf_counter() - started
            started = time.perf_counter()
            keys = [k for ks in (await store.target_keys(found)).values() for k in ks]
            queued = await store.enqueue_subscribers(alert_id, "sms", keys, "Alert", alert.text)
            enqueued = time.perf_counter() - started
            print(
                f"  {name:<22} geometry {resolved * 1000:6.1f} ms · audience {counted:5.2f} s · "
                f"enqueue {enqueued:5.2f} s · {queued:,} queued · {audience.describe()[:90]}"
            )
    finally:
        await store.close()


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    gazetteer = Gazetteer.from_folder(GEO)
    print(f"{len(gazetteer.communes)} commune outlines read in {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        await scenario("SQLite", f"sqlite:///{pathlib.Path(folder) / 'bench.db'}", gazetteer, args.subscribers)
    url = await make_pg_schema()
    try:
        await scenario("PostgreSQL", url, gazetteer, args.subscribers)
    finally:
        await drop_pg_schema(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    asyncio.run(main(parser.parse_args()))
