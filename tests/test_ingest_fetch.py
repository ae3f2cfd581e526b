"""fetch() against a local aiohttp server on 127.0.0.1, and file: URLs."""

import asyncio
import gzip
import os
import pathlib
import time

import aiohttp
import pytest
from aiohttp import web

from alerts.ingest import SourceSpec
from alerts.ingest.fetch import FetchError, fetch, next_delay

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"
FEED = (DATA / "prefecture41_rss.xml").read_bytes()
ETAG = '"v1-feed"'
HITS = web.AppKey("hits", list)
LAST_MODIFIED = "Sun, 20 Jan 2013 08:45:00 GMT"


async def feed(request: web.Request) -> web.Response:
    request.app[HITS].append(dict(request.headers))
    if request.headers.get("If-None-Match") == ETAG:
        return web.Response(status=304, headers={"ETag": ETAG})
    return web.Response(
        body=FEED,
        content_type="application/rss+xml",
        charset="iso-8859-1",
        headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED},
    )


async def gzipped(request: web.Request) -> web.Response:
    size = int(request.query.get("size", "0"))
    payload = FEED if not size else b"<rss>" + b" " * size + b"</rss>"
    return web.Response(
        body=gzip.compress(payload), headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
    )


async def big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if request.query.get("declared"):
        response.content_length = 10_000
    await response.prepare(request)
    for _ in range(10):
        await response.write(b"x" * 1000)
    await response.write_eof()
    return response


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(body=b"late")


async def dribble(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/xml"})
    await response.prepare(request)
    for _ in range(300):
        await response.write(b" ")
        await asyncio.sleep(0.05)
    return response


async def unavailable(request: web.Request) -> web.Response:
    return web.Response(status=503, text="Service Unavailable")


@pytest.fixture
async def server():
    app = web.Application()
    app[HITS] = []
    app.router.add_get("/feed.xml", feed)
    app.router.add_get("/gz", gzipped)
    app.router.add_get("/big", big)
    app.router.add_get("/hang", hang)
    app.router.add_get("/dribble", dribble)
    app.router.add_get("/503", unavailable)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


def spec(url, **kw):
    options = kw.pop("options", {})
    return SourceSpec(name="src", kind="rss", url=url, options=options, **kw)


async def test_ok_then_conditional_get_returns_not_modified(server, session):
    app, base = server
    first = await fetch(session, spec(f"{base}/feed.xml"), None, None)
    assert first.status == "ok" and first.body == FEED
    assert first.etag == ETAG and first.last_modified == LAST_MODIFIED
    assert first.content_type.startswith("application/rss+xml")
    second = await fetch(session, spec(f"{base}/feed.xml"), first.etag, first.last_modified)
    assert second.status == "not_modified" and second.body == b"" and second.etag == ETAG
    assert app[HITS][1]["If-None-Match"] == ETAG
    assert app[HITS][1]["If-Modified-Since"] == LAST_MODIFIED
    assert "If-None-Match" not in app[HITS][0]


async def test_gzip_is_decoded(server, session):
    _, base = server
    result = await fetch(session, spec(f"{base}/gz"), None, None)
    assert result.body == FEED


async def test_size_limit_applies_to_the_decoded_stream(server, session):
    _, base = server
    # 2 MB of spaces compress to about 2 kB: the limit must count what gzip expands to.
    with pytest.raises(FetchError, match="exceeds the limit of 100000 bytes"):
        await fetch(session, spec(f"{base}/gz?size=2000000", max_bytes=100_000), None, None)


@pytest.mark.parametrize("query", ["", "?declared=1"])
async def test_body_over_the_limit(server, session, query):
    _, base = server
    with pytest.raises(FetchError, match="exceeds the limit of 5000") as info:
        await fetch(session, spec(f"{base}/big{query}", max_bytes=5000), None, None)
    assert "'src'" in str(info.value)
    ok = await fetch(session, spec(f"{base}/big{query}", max_bytes=10_000), None, None)
    assert len(ok.body) == 10_000


async def test_non_2xx_is_an_error_with_status(server, session):
    _, base = server
    with pytest.raises(FetchError) as info:
        await fetch(session, spec(f"{base}/503"), None, None)
    assert info.value.status == 503 and "HTTP 503" in str(info.value)


@pytest.mark.parametrize("path", ["/hang", "/dribble"])
async def test_total_deadline(server, session, path):
    _, base = server
    started = time.monotonic()
    with pytest.raises(FetchError, match="within 0.5 s"):
        await fetch(session, spec(f"{base}{path}", timeout=0.5), None, None)
    assert time.monotonic() - started < 2


async def test_connection_refused_is_a_fetch_error(session):
    with pytest.raises(FetchError, match="'src'"):
        await fetch(session, spec("http://127.0.0.1:9/feed.xml", timeout=2), None, None)


async def test_file_url_relative_to_base_dir_with_mtime(session, tmp_path):
    path = tmp_path / "flux" / "vigilance.json"
    path.parent.mkdir()
    path.write_bytes(b'{"x": 1}')
    os.utime(path, (1358668800, 1358668800))  # 2013-01-20 08:00 UTC
    source = spec("file:flux/vigilance.json", options={"base_dir": str(tmp_path)})
    first = await fetch(session, source, None, None)
    assert first.status == "ok" and first.body == b'{"x": 1}' and first.content_type == "application/json"
    assert first.last_modified == "Sun, 20 Jan 2013 08:00:00 GMT"
    again = await fetch(session, source, first.etag, first.last_modified)
    assert again.status == "not_modified"
    path.write_bytes(b'{"x": 2}')
    changed = await fetch(session, source, first.etag, first.last_modified)
    assert changed.status == "ok" and changed.body == b'{"x": 2}'
    with pytest.raises(FetchError, match="exceeds the limit"):
        await fetch(
            session, spec("file:flux/vigilance.json", max_bytes=3, options={"base_dir": str(tmp_path)}), None, None
        )
    with pytest.raises(FetchError, match="cannot read absent.json"):
        await fetch(session, spec("file:absent.json", options={"base_dir": str(tmp_path)}), None, None)


async def test_unsupported_scheme(session):
    with pytest.raises(FetchError, match="unsupported URL scheme 'ftp'"):
        await fetch(session, spec("ftp://example.invalid/x"), None, None)


def test_next_delay_backs_off_with_jitter_and_a_cap():
    source = spec("http://127.0.0.1/x", interval=300)
    assert next_delay(source, 0) == 300
    delays = [next_delay(source, n) for n in range(1, 12)]
    assert 60 <= delays[0] <= 120
    assert all(d <= 1800 for d in delays) and delays[-1] == 1800
    assert delays[4] > delays[0]
    assert len({next_delay(source, 3) for _ in range(20)}) > 1  # jitter
    capped = spec("http://127.0.0.1/x", interval=10, options={"max_backoff": 60})
    assert max(next_delay(capped, n) for n in range(1, 20)) <= 60
