""" "Santé des sources" in the console: OK / en retard / en panne computed from real polls of real HTTP
servers (the ingestion loop writes each source's state into the database, the console reads it), the
error explained in French, the raw record one click away."""

from __future__ import annotations

import asyncio
import html as html_lib
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from alerts.ingest import SourceSpec
from alerts.ingest.loop import SourceLoop
from alerts.web import source_health
from alerts.web.durations import ago, duration_fr, within
from tests.test_web_support import Web, web_env  # noqa: F401  (fixture)

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Pr\xc3\xa9fecture</title><link>https://prefecture-41.example/</link>
<description>Actualit\xc3\xa9s</description>
<item><title>Neige sur la RD 957</title><link>https://prefecture-41.example/a/1</link><guid>a-1</guid>
<description>Circulation difficile.</description><pubDate>Thu, 03 Dec 2026 16:00:00 GMT</pubDate></item>
</channel></rss>"""


@pytest.fixture
async def feeds() -> AsyncIterator[str]:
    """A préfecture's server: /rss answers a feed, /busy a 503, /page an HTML page."""

    async def rss(request: web.Request) -> web.Response:
        return web.Response(body=RSS, content_type="application/rss+xml")

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    app = web.Application()
    app.router.add_get("/rss", rss)
    app.router.add_get("/busy", busy)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


class StateInStore:
    def __init__(self, web_env: Web) -> None:
        self.store = web_env.store

    async def load(self, name: str) -> dict | None:
        return await self.store.load_source_state(name)

    async def save(self, name: str, state: dict) -> None:
        await self.store.save_source_state(name, state)


async def test_source_states_from_real_polls_are_shown_in_french(web_env: Web, feeds: str) -> None:
    specs = [
        SourceSpec("prefecture-41", "rss", f"{feeds}/rss", interval=30, timeout=5),
        SourceSpec("meteo-vigilance", "cap", f"{feeds}/rss", interval=0.4, timeout=0.4),  # a feed, not CAP
        SourceSpec("dir-centre-ouest", "rss", f"{feeds}/busy", interval=0.4, timeout=0.4),
        SourceSpec("prefecture-28", "rss", f"{feeds}/rss", interval=60, timeout=5),
        SourceSpec("ville-blois", "rss", f"{feeds}/rss", interval=0.4, timeout=0.4),
    ]
    web_env.crieur.config.sources = specs

    async def sink(spec: SourceSpec, items: list) -> None:
        await web_env.store.ingest(items)

    async with aiohttp.ClientSession() as session:
        loop = SourceLoop(session, specs, sink, StateInStore(web_env))
        await loop.poll_once("ville-blois")  # read once, then left alone: late after 2 intervals + timeout
        await loop.poll_once("meteo-vigilance")  # never read successfully: down at once
        for _ in range(3):  # three failures in a row: down
            await loop.poll_once("dir-centre-ouest")
        await asyncio.sleep(1.4)
        await loop.poll_once("prefecture-41")  # fresh: OK
        await loop.poll_once("prefecture-28")

    await web_env.login()
    page = html_lib.unescape(await (await web_env.client.get("/console")).text())
    section = page[page.index("Santé des sources") :]
    cards = {
        name: section[section.index(f"</span> {name} ") :][:2000]
        for name in ("prefecture-41", "meteo-vigilance", "dir-centre-ouest", "ville-blois")
    }
    states = {v.name: v.state for v in source_health.views(await web_env.store.source_states(), specs)}
    assert states == {
        "prefecture-41": "ok",
        "prefecture-28": "ok",
        "ville-blois": "late",
        "meteo-vigilance": "down",
        "dir-centre-ouest": "down",
    }
    assert 'pill-down">en panne' in section and 'pill-late">en retard' in section and 'pill-ok">OK' in section
    # the ones needing a CM come first
    assert section.index("dir-centre-ouest") < section.index("ville-blois") < section.index("prefecture-41")
    assert "Le serveur a répondu 503 : service indisponible" in cards["dir-centre-ouest"]
    assert "3 échecs de suite" in cards["dir-centre-ouest"]
    assert "Le fichier n'est pas au format CAP" in cards["meteo-vigilance"]
    assert "Aucune lecture réussie depuis" in cards["ville-blois"]
    assert "lue à l'instant" in cards["prefecture-41"] or "lue il y a" in cards["prefecture-41"]
    assert "prochaine lecture" in cards["prefecture-41"]
    # the raw record is one click away
    assert "<details>" in cards["dir-centre-ouest"] and "HTTP 503 Service Unavailable" in cards["dir-centre-ouest"]
    assert "last_status : " not in section  # no raw dump outside the details


def state(**fields: object) -> dict:
    return {"name": "s", "kind": "rss", "last_status": "ok", "consecutive_failures": 0, **fields}


NOW = datetime(2026, 12, 3, 18, 0, tzinfo=timezone.utc)
SPEC = SourceSpec("s", "rss", "https://example.org/rss", interval=300, timeout=20)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, "waiting"),
        ({"last_success": (NOW - timedelta(minutes=2)).isoformat()}, "ok"),
        ({"last_success": (NOW - timedelta(seconds=619)).isoformat()}, "ok"),  # 2 intervals + timeout
        ({"last_success": (NOW - timedelta(seconds=621)).isoformat()}, "late"),
        ({"last_success": (NOW - timedelta(seconds=1861)).isoformat()}, "down"),  # 6 intervals + 3 timeouts
        ({"last_success": (NOW - timedelta(minutes=1)).isoformat(), "consecutive_failures": 1}, "late"),
        ({"last_success": (NOW - timedelta(minutes=1)).isoformat(), "consecutive_failures": 3}, "down"),
        ({"consecutive_failures": 1, "last_status": "error"}, "down"),  # never read at all
    ],
)
def test_judge_against_the_poll_interval(fields: dict, expected: str) -> None:
    assert source_health.judge(state(**fields), SPEC, NOW)[0] == expected


def test_a_source_no_longer_configured_is_judged_on_failures_only() -> None:
    old = state(last_success=(NOW - timedelta(days=3)).isoformat())
    [only] = source_health.views({"s": old}, [], NOW)
    assert only.state == "ok" and "plus dans la configuration" in only.next


@pytest.mark.parametrize(
    "message, expected",
    [
        ("source 'x': HTTP 503 Service Unavailable", "Le serveur a répondu 503 : service indisponible"),
        ("source 'x': HTTP 404 Not Found", "Le serveur a répondu 404 : adresse introuvable"),
        (
            "source 'x': no complete answer within 20 s",
            "Délai dépassé : le serveur n'a pas envoyé le document complet en 20 s",
        ),
        ("source 'x': ClientConnectorError: Cannot connect to host a:80", "Impossible de joindre le serveur"),
        ("source 'x': expected a CAP <alert> or an Atom <feed>, found <rss>", "n'est pas au format CAP"),
        ("source 'x', line 3: malformed CAP document: mismatched tag", "mal formé (XML invalide) (ligne 3)"),
        ("source 'x': expected cap but the server sent an HTML page (content type 'text/html')", "page web"),
        ("source 'x': sink failed: OperationalError: database is locked", "n'a pas pu être traité"),
        ("source 'x': something nobody foresaw", "Lecture en échec"),
    ],
)
def test_errors_are_explained_in_words(message: str, expected: str) -> None:
    assert expected in source_health.explain_error(message, "cap")


def test_durations_in_french() -> None:
    assert (ago(2), ago(12), ago(125), ago(3900)) == ("à l'instant", "il y a 12 s", "il y a 2 min", "il y a 1 h 05")
    assert (within(0), within(30), duration_fr(3 * 86400)) == ("maintenant", "dans 30 s", "3 j")
