"""Parse throughput of every ingest format, and the cost of Crieur's RSS ingestion relative to bare feedparser.

    python bench/ingest.py [--n N]

Real documents: the largest published document of each format in ../shared/samples (DWD's zip of
8-language CAP alerts, SMHI's 17 alerts, DiaLog's arrêtés, a 40-item RSS feed, MeteoAlarm's UK feed...),
parsed as a source reads them.

For RSS the ratio compares, on the same bytes in the same run:
  feedparser.parse(bytes)                                  (bare)
  alerts.ingest.parse(spec, bytes)                         (parse + normalise: roads, areas, raw, dates)
  the above + await store.ingest(items) on SQLite          (full ingest, if alerts.storage is importable)
Each store round uses a fresh source name so that every item is a new row (the worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import pathlib
import re
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402

from alerts.ingest import SourceSpec, parse  # noqa: E402

DATA = ROOT / "tests" / "data" / "ingest"
FIXTURES = [
    ("rss", "prefecture41_rss.xml", "application/rss+xml"),
    ("atom", "cd28_atom.xml", "application/atom+xml"),
    ("cap", "cap_41_alert.xml", "application/cap+xml"),
    ("cap", "meteoalarm_france_atom.xml", "application/atom+xml"),
    ("datex2", "datex2_v2_cd41.xml", "application/xml"),
    ("datex2", "datex2_v3_dir.xml", "application/xml"),
    ("geojson", "viabilite41.geojson", "application/geo+json"),
    ("csv", "viabilite28.csv", "text/csv"),
    ("vigilance", "vigilance_encours.json", "application/json"),
]


def timed(n: int, fn: Callable[[], object]) -> float:
    fn()  # warm caches and imports
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def big_rss(entries: int) -> bytes:
    """The préfecture feed with its items repeated under distinct guids: a busy day's feed."""
    body = (DATA / "prefecture41_rss.xml").read_bytes()
    head, rest = body.split(b"<item>", 1)
    items_part, tail = (b"<item>" + rest).rsplit(b"</item>", 1)
    items = re.findall(rb"<item>.*?</item>", items_part + b"</item>", re.S)
    out = []
    for i in range(entries):
        item = items[i % len(items)]
        item = re.sub(rb"<guid[^>]*>.*?</guid>|(?=<title>)", b"", item, count=1)
        out.append(item.replace(b"<title>", b'<guid isPermaLink="false">bench-%d</guid><title>' % i, 1))
    return head + b"".join(out) + tail


SAMPLES = ROOT.parent / "shared" / "samples"
SAMPLE_KINDS = {
    "cap": "cap",
    "meteoalarm": "cap",
    "datex2": "datex2",
    "rss": "rss",
    "roadstate": "geojson",
    "vigilance": "vigilance",
}


def real_documents(n: int) -> None:
    """items/s on the largest real document of each samples folder (and the DWD zip)."""
    if not SAMPLES.is_dir():
        print(f"\nreal documents: {SAMPLES} not found, skipped")
        return
    chosen: dict[str, pathlib.Path] = {}
    for path in SAMPLES.rglob("*"):
        folder = path.parent.name
        if path.is_file() and folder in SAMPLE_KINDS and path.suffix != ".zip":
            if folder not in chosen or path.stat().st_size > chosen[folder].stat().st_size:
                chosen[folder] = path
    zips = list(SAMPLES.glob("cap/*.zip"))
    if zips:
        chosen["cap (zip)"] = max(zips, key=lambda path: path.stat().st_size)
    print(f"\n{'real document':<58} {'bytes':>8} {'items':>5} {'docs/s':>8} {'items/s':>9}")
    for folder, path in sorted(chosen.items()):
        kind = SAMPLE_KINDS[folder.split()[0]]
        spec = SourceSpec(name=path.name, kind=kind, url="file:unused")
        body = path.read_bytes()
        count = len(parse(spec, body))
        rounds = max(1, n // 10) if len(body) > 50_000 else n
        seconds = timed(rounds, functools.partial(parse, spec, body))
        rate = rounds / seconds
        print(f"{path.name[:58]:<58} {len(body):>8} {count:>5} {rate:>8.0f} {rate * count:>9.0f}")


def formats(n: int) -> None:
    print(f"{'format':<10} {'fixture':<28} {'items':>5} {'docs/s':>9} {'items/s':>9}")
    for kind, name, content_type in FIXTURES:
        spec = SourceSpec(name="bench", kind=kind, url="file:unused")
        body = (DATA / name).read_bytes()
        count = len(parse(spec, body, content_type))
        seconds = timed(n, functools.partial(parse, spec, body, content_type))
        print(f"{kind:<10} {name:<28} {count:>5} {n / seconds:>9.0f} {n * count / seconds:>9.0f}")


async def open_bench_store(path: str):
    try:
        from alerts.storage import open_store
    except ImportError as exc:
        print(f"  store step not available (alerts.storage: {exc})")
        return None
    return await open_store(f"sqlite:///{path}")


async def rss_ratio(n: int, body: bytes, label: str) -> None:
    spec = SourceSpec(name="bench", kind="rss", url="file:unused")
    count = len(parse(spec, body, "application/rss+xml"))
    bare = timed(n, lambda: feedparser.parse(body))
    ours = timed(n, lambda: parse(spec, body, "application/rss+xml"))
    print(f"\nRSS {label}: {len(body)} bytes, {count} items, n={n}")
    print(f"  feedparser.parse(bytes)        {bare / n * 1000:8.3f} ms/doc")
    print(f"  Crieur parse + normalise       {ours / n * 1000:8.3f} ms/doc   ratio {ours / bare:5.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_bench_store(str(pathlib.Path(tmp) / "bench.sqlite"))
        if store is None:
            return
        try:
            await store.ingest(parse(SourceSpec(name="warm", kind="rss", url="file:x"), body))
            start = time.perf_counter()
            for i in range(n):
                round_spec = SourceSpec(name=f"bench-{i}", kind="rss", url="file:unused")
                await store.ingest(parse(round_spec, body, "application/rss+xml"))
            full = time.perf_counter() - start
        finally:
            await store.close()
    print(f"  Crieur parse + normalise + store {full / n * 1000:6.3f} ms/doc   ratio {full / bare:5.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="documents parsed per measurement (default 200)")
    args = parser.parse_args(argv)
    n = max(1, args.n)
    formats(n)
    real_documents(n)
    asyncio.run(rss_ratio(n, (DATA / "prefecture41_rss.xml").read_bytes(), "préfecture fixture"))
    asyncio.run(rss_ratio(max(1, n // 10), big_rss(200), "200-item feed"))


if __name__ == "__main__":
    main()
