"""A MeteoAlarm Atom source follows each entry's link to the full CAP document (the real MeteoAlarm
France feed and the real Météo-France CAP from ../shared/samples, served on loopback): French <info>,
every area's département, sender's name; conditional GET, SSRF guard, size limit, fetches per poll."""

import pathlib

import pytest
from aiohttp import web

from alerts.domain import Area, MsgType
from alerts.ingest import SourceSpec
from alerts.ingest.loop import MemoryStateStore, SourceLoop
from alerts.security import safe_session

SAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "samples"
FEED = SAMPLES / "meteoalarm" / "meteoalarm-legacy-atom-france-2022-12-08.xml"
CAP = SAMPLES / "cap" / "meteofrance-vigilance-avalanches-update-references-fr-en.xml"
ORIGIN = b"https://feeds.meteoalarm.org"


class Server:
    """The feed at /feed and every linked CAP document at /api/v1/warnings/feeds-france/<id>."""

    def __init__(self, cap_body: bytes) -> None:
        self.cap_body = cap_body
        self.cap_requests: list[dict[str, str]] = []
        self.link_origin = ""  # where the feed says its CAP documents are (http://127.0.0.1:port)
        self.etag_broken = False  # True: the server answers 200 with a new body whatever the client has

    async def feed(self, request: web.Request) -> web.Response:
        body = FEED.read_bytes().replace(ORIGIN, self.link_origin.encode())
        return web.Response(body=body, content_type="application/atom+xml")

    async def cap(self, request: web.Request) -> web.Response:
        self.cap_requests.append({"path": request.path, "if-none-match": request.headers.get("If-None-Match", "")})
        etag = '"cap-v2"' if self.etag_broken else '"cap-v1"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=self.cap_body, content_type="application/cap+xml", headers={"ETag": etag})


class Running:
    def __init__(self, base: str) -> None:
        self.base = base

    def make_url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def server():
    assert FEED.is_file() and CAP.is_file(), f"real samples missing in {SAMPLES}"
    state = Server(CAP.read_bytes())
    app = web.Application()
    app.router.add_get("/feed", state.feed)
    app.router.add_get("/api/v1/warnings/feeds-france/{id}", state.cap)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    state.link_origin = f"http://127.0.0.1:{port}"
    try:
        yield Running(f"http://127.0.0.1:{port}"), state
    finally:
        await runner.cleanup()


def spec(running, **options):
    return SourceSpec(name="meteoalarm-fr", kind="cap", url=(running.make_url("/feed")), options=options)


async def poll(running, allow=("127.0.0.1",), **options):
    sunk: list = []

    async def sink(source, items):
        sunk.extend(items)

    async with safe_session(list(allow)) as session:
        loop = SourceLoop(session, [spec(running, **options)], sink, MemoryStateStore())
        health = await loop.poll_once("meteoalarm-fr")
        return loop, sunk, health, session


async def test_entries_become_the_french_cap_they_link_to(server):
    running, state = server
    sunk: list = []

    async def sink(source, items):
        sunk.append(list(items))

    async with safe_session(["127.0.0.1"]) as session:
        loop = SourceLoop(session, [spec(running)], sink, MemoryStateStore())
        health = await loop.poll_once("meteoalarm-fr")
        assert health["last_status"] == "ok" and health["issues"] == []
        # 12 entries, 2 distinct warnings, each linking one CAP document (here both serve the sample)
        assert sorted(r["path"].rsplit("/", 1)[1] for r in state.cap_requests) == [
            "04d497d4-d114-4d6b-93ba-13fa7ed577fe",
            "2f32f9f9-06df-48aa-b0a0-10493ea07c51",
        ]
        items = sunk[0]
        assert len(items) == 2
        item = items[0]
        assert item.external_id == "2.49.0.0.250.0.FR.20221207060126.964028"
        assert item.msg_type is MsgType.UPDATE
        assert item.references == ("2.49.0.0.250.0.FR.20221206160108.315028",)
        assert item.language == "fr-FR" and item.title == "Vigilance jaune avalanches"
        assert item.authority == "Météo-France"  # senderName METEO-FRANCE, as French readers write it
        deps = [a.code for a in item.areas if a.kind == "departement"]
        assert deps == ["04", "05", "06", "38", "73", "74"]  # NUTS 2013 FR821..FR718
        assert item.attributes["cap_link"].startswith((running.make_url("/api/v1/warnings/")))
        # second poll: the feed is fetched again (no validator), the CAP documents answer 304
        state.cap_requests.clear()
        await loop.poll_once("meteoalarm-fr")
        assert [r["if-none-match"] for r in state.cap_requests] == ['"cap-v1"', '"cap-v1"']
        assert [i.title for i in sunk[1]] == ["Vigilance jaune avalanches"] * 2


async def test_fetches_per_poll_are_capped(server):
    running, state = server
    _loop, items, health, _session = await poll(running, max_linked=1)
    assert len(state.cap_requests) == 1
    assert any("1 linked CAP documents not fetched" in issue for issue in health["issues"])
    followed = [i for i in items if i.language == "fr-FR"]
    index_only = [i for i in items if i.language == "fr" and i.title.startswith("Vigilance jaune avalanches :")]
    assert len(followed) == 1 and len(index_only) == 1  # the other warning stays as its entries said


async def test_links_to_internal_addresses_are_refused_by_the_ssrf_guard(server):
    running, state = server
    # the feed host is allowed by name, but the linked documents are on 127.0.0.1, which is not
    feed_url = (running.make_url("/feed")).replace("127.0.0.1", "localhost")
    sunk: list = []

    async def sink(source, items):
        sunk.extend(items)

    async with safe_session(["localhost"]) as session:
        loop = SourceLoop(
            session, [SourceSpec(name="meteoalarm-fr", kind="cap", url=feed_url)], sink, MemoryStateStore()
        )
        health = await loop.poll_once("meteoalarm-fr")
    assert health["last_status"] == "ok"
    assert state.cap_requests == []
    assert len(health["issues"]) == 2 and all("linked CAP" in i for i in health["issues"])
    assert [i.title for i in sunk][0].startswith("Vigilance jaune avalanches : Haute Savoie")


async def test_oversized_linked_document_is_refused_and_the_entry_kept(server):
    running, state = server
    state.cap_body = state.cap_body + b"<!--" + b"x" * 50_000 + b"-->"
    sunk: list = []

    async def sink(source, items):
        sunk.extend(items)

    async with safe_session(["127.0.0.1"]) as session:
        limited = SourceSpec(name="meteoalarm-fr", kind="cap", url=(running.make_url("/feed")), max_bytes=30_000)
        loop = SourceLoop(session, [limited], sink, MemoryStateStore())
        health = await loop.poll_once("meteoalarm-fr")
    assert any("exceeds the limit of 30000" in issue for issue in health["issues"])
    assert len(sunk) == 2 and all(i.language == "fr" and not i.text for i in sunk)


async def test_file_links_are_never_followed(tmp_path):
    body = FEED.read_bytes().replace(ORIGIN + b"/api/v1/warnings/feeds-france/", b"file:///etc/")
    (tmp_path / "feed.xml").write_bytes(body)
    sunk: list = []

    async def sink(source, items):
        sunk.extend(items)

    async with safe_session() as session:
        spec_ = SourceSpec(name="m", kind="cap", url="file:feed.xml", options={"base_dir": str(tmp_path)})
        health = await SourceLoop(session, [spec_], sink, MemoryStateStore()).poll_once("m")
    assert any("only http and https are followed" in issue for issue in health["issues"])
    assert len(sunk) == 2 and Area("departement", "74") in sunk[0].areas


async def test_an_outage_of_the_linked_documents_keeps_their_last_good_copy(server):
    running, state = server
    sunk: list = []

    async def sink(source, items):
        sunk.append(list(items))

    async with safe_session(["127.0.0.1"]) as session:
        loop = SourceLoop(session, [spec(running)], sink, MemoryStateStore())
        await loop.poll_once("meteoalarm-fr")
        state.cap_body, state.etag_broken = b"<html>maintenance</html>", True
        health = await loop.poll_once("meteoalarm-fr")
    assert len(health["issues"]) == 2 and all("unreadable" in i for i in health["issues"])
    assert [i.title for i in sunk[1]] == ["Vigilance jaune avalanches"] * 2  # not back to the index entries
