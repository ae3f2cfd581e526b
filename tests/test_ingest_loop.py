"""SourceLoop: per-source tasks, health, state, backoff, isolation of failures."""

import asyncio
import logging
import pathlib
import shutil
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web

from alerts.ingest import SourceSpec
from alerts.ingest.loop import MemoryStateStore, SourceLoop

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"


class Sink:
    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[tuple[str, list]] = []
        self.fail_times = fail_times

    async def __call__(self, spec, items) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("database is locked")
        self.calls.append((spec.name, items))


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def flux(tmp_path):
    for name in ("prefecture41_rss.xml", "vigilance_encours.json", "datex2_v2_cd41.xml"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def file_spec(flux, name, kind, **kw):
    return SourceSpec(name=kind, kind=kind, url=f"file:{name}", options={"base_dir": str(flux)}, **kw)


async def test_poll_once_sinks_items_then_not_modified(session, flux):
    sink, store = Sink(), MemoryStateStore()
    loop = SourceLoop(session, [file_spec(flux, "prefecture41_rss.xml", "rss")], sink, store)
    health = await loop.poll_once("rss")
    assert health["last_status"] == "ok" and health["last_items"] == 3 and health["consecutive_failures"] == 0
    ((name, items),) = sink.calls
    assert name == "rss" and all(item.source == "rss" for item in items)
    assert store.states["rss"]["etag"] and store.states["rss"]["last_modified"].endswith("GMT")
    assert datetime.fromisoformat(store.states["rss"]["next_run"]) > datetime.now(timezone.utc)
    again = await loop.poll_once("rss")
    assert again["last_status"] == "not_modified" and len(sink.calls) == 1


async def test_sink_failure_keeps_items_for_the_next_poll(session, flux, caplog):
    sink, store = Sink(fail_times=1), MemoryStateStore()
    loop = SourceLoop(session, [file_spec(flux, "vigilance_encours.json", "vigilance")], sink, store)
    with caplog.at_level(logging.ERROR, logger="crieur.ingest"):
        failed = await loop.poll_once("vigilance")
    assert failed["last_status"] == "error" and failed["consecutive_failures"] == 1
    assert "sink failed" in failed["last_error"] and "database is locked" in failed["last_error"]
    assert failed["etag"] is None  # not committed: the next fetch must not be a 304
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'vigilance'" in errors[0].getMessage()
    recovered = await loop.poll_once("vigilance")
    assert recovered["last_status"] == "ok" and recovered["consecutive_failures"] == 0
    assert len(sink.calls[0][1]) == 7


async def test_parse_error_recorded_with_backoff_and_source_stays(session, flux, caplog):
    (flux / "vigilance_encours.json").write_bytes(b'{"product": ')
    loop = SourceLoop(
        session, [file_spec(flux, "vigilance_encours.json", "vigilance", interval=300)], Sink(), MemoryStateStore()
    )
    for expected in (1, 2):
        health = await loop.poll_once("vigilance")
        assert health["consecutive_failures"] == expected
    assert "malformed JSON" in health["last_error"] and "'vigilance'" in health["last_error"]
    delay = (datetime.fromisoformat(health["next_run"]) - datetime.now(timezone.utc)).total_seconds()
    assert 60 < delay <= 240  # second failure: about 2 x 60 s plus jitter, not the 300 s interval
    assert sum(r.levelno >= logging.ERROR for r in caplog.records) == 2  # one per failure
    shutil.copy(DATA / "vigilance_encours.json", flux / "vigilance_encours.json")
    assert (await loop.poll_once("vigilance"))["last_status"] == "ok"


async def test_skipped_records_show_in_health(session, flux):
    body = (DATA / "datex2_v2_cd41.xml").read_bytes().replace(b' id="CD41-REC-0015-1"', b"")
    (flux / "datex2_v2_cd41.xml").write_bytes(body)
    loop = SourceLoop(session, [file_spec(flux, "datex2_v2_cd41.xml", "datex2")], Sink(), MemoryStateStore())
    health = await loop.poll_once("datex2")
    assert health["last_status"] == "ok" and health["last_items"] == 3
    assert len(health["issues"]) == 1 and "'id' is missing" in health["issues"][0]


async def test_state_is_restored_from_the_store(session, flux):
    store = MemoryStateStore()
    first = SourceLoop(session, [file_spec(flux, "prefecture41_rss.xml", "rss")], Sink(), store)
    await first.poll_once("rss")
    sink = Sink()
    restarted = SourceLoop(session, [file_spec(flux, "prefecture41_rss.xml", "rss")], sink, store)
    health = await restarted.poll_once("rss")
    assert health["last_status"] == "not_modified" and sink.calls == []


class BrokenStore:
    async def load(self, name):
        raise OSError("disk full")

    async def save(self, name, state):
        raise OSError("disk full")


async def test_a_broken_state_store_does_not_stop_ingestion(session, flux):
    sink = Sink()
    loop = SourceLoop(session, [file_spec(flux, "prefecture41_rss.xml", "rss")], sink, BrokenStore())
    assert (await loop.poll_once("rss"))["last_status"] == "ok" and len(sink.calls) == 1


def test_duplicate_names_are_refused():
    spec = SourceSpec(name="a", kind="rss", url="file:a.xml")
    with pytest.raises(ValueError, match="'a'"):
        SourceLoop(None, [spec, spec], Sink(), MemoryStateStore())


async def test_a_hanging_source_does_not_delay_another(session, flux):
    async def hang(request):
        await asyncio.sleep(30)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/hang", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        slow = SourceSpec(name="slow", kind="rss", url=f"http://127.0.0.1:{port}/hang", interval=0.2, timeout=1)
        fast = SourceSpec(
            name="fast",
            kind="vigilance",
            url="file:vigilance_encours.json",
            interval=0.1,
            options={"base_dir": str(flux)},
        )
        sink = Sink()
        loop = SourceLoop(session, [slow, fast], sink, MemoryStateStore())
        task = asyncio.create_task(loop.run())
        await asyncio.sleep(1.5)
        # the fast source went on while the slow one was still waiting for its first answer
        health = {h["name"]: h for h in loop.health()}
        assert health["fast"]["last_status"] in {"ok", "not_modified"}
        assert health["fast"]["last_success"] is not None
        assert health["slow"]["last_status"] == "error" and "within 1 s" in health["slow"]["last_error"]
        assert not task.done()  # the loop never dies
        (flux / "vigilance_encours.json").write_bytes(b"{broken")
        await asyncio.sleep(0.4)
        assert {h["name"]: h for h in loop.health()}["fast"]["last_status"] == "error"
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sink.calls and all(name == "fast" for name, _ in sink.calls)
    finally:
        await runner.cleanup()


async def test_run_honours_a_saved_next_run_and_runs_until_cancelled(session, flux):
    store = MemoryStateStore()
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    store.states["rss"] = {"last_status": "ok", "next_run": later.isoformat(), "consecutive_failures": 0}
    sink = Sink()
    loop = SourceLoop(session, [file_spec(flux, "prefecture41_rss.xml", "rss", interval=0.05)], sink, store)
    empty = SourceLoop(session, [], sink, store)
    tasks = [asyncio.create_task(loop.run()), asyncio.create_task(empty.run())]
    await asyncio.sleep(0.3)
    assert sink.calls == []  # restarted service does not hammer a source polled a moment ago
    assert {h["name"]: h for h in loop.health()}["rss"]["next_run"] == later.isoformat()
    assert not any(t.done() for t in tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
