"""Feed servers that hang or dribble bytes: the other sources keep their schedule (SourceLoop)."""

from __future__ import annotations

import asyncio
import itertools
import pathlib
import time

import aiohttp
from aiohttp import web

from alerts.ingest import SourceSpec
from alerts.ingest.loop import MemoryStateStore, SourceLoop

VIGILANCE = (pathlib.Path(__file__).resolve().parent / "data" / "ingest" / "vigilance_encours.json").read_bytes()
INTERVAL = 0.2


async def test_hanging_and_dribbling_feeds_do_not_hold_up_the_others():
    hits: list[float] = []
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503)

    async def dribble(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        await response.write(b"<?xml version='1.0'?><rss version='2.0'><channel>")
        while not release.is_set():  # one byte every 0.1 s: the socket is never idle for long
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    async def good(request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        return web.Response(body=VIGILANCE, content_type="application/json")

    app = web.Application()
    app.router.add_get("/hang", hang)
    app.router.add_get("/dribble", dribble)
    app.router.add_get("/vigilance", good)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    calls: list[str] = []

    async def sink(spec, items) -> None:
        calls.append(spec.name)

    specs = [
        SourceSpec(name="hang", kind="rss", url=f"{base}/hang", interval=INTERVAL, timeout=1),
        SourceSpec(name="dribble", kind="rss", url=f"{base}/dribble", interval=INTERVAL, timeout=1),
        SourceSpec(name="vigilance", kind="vigilance", url=f"{base}/vigilance", interval=INTERVAL, timeout=1),
    ]
    try:
        async with aiohttp.ClientSession() as session:
            loop = SourceLoop(session, specs, sink, MemoryStateStore())
            task = asyncio.create_task(loop.run())
            await asyncio.sleep(3.0)
            health = {h["name"]: h for h in loop.health()}
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        release.set()
        await runner.cleanup()

    # about one poll per interval; a poll waiting on the stuck servers would make gaps of a whole second
    assert len(hits) >= 8, hits
    gaps = [b - a for a, b in itertools.pairwise(hits)]
    assert max(gaps) < INTERVAL + 0.5, gaps
    assert health["vigilance"]["last_status"] == "ok" and health["vigilance"]["consecutive_failures"] == 0
    for name in ("hang", "dribble"):  # both cut at their timeout, the body never complete
        assert health[name]["last_status"] == "error", health[name]
        assert "within 1 s" in health[name]["last_error"]
        assert health[name]["consecutive_failures"] >= 1
    assert calls and set(calls) == {"vigilance"}
