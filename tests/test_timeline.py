"""One snow episode's timeline, page and API, on SQLite and PostgreSQL: the Météo-France warnings that open,
update and close a Loir-et-Cher episode, the Département's posts, in order, with the start and the end;
another territory has no episode."""

from __future__ import annotations

import html

from aiohttp.test_utils import TestClient, TestServer

from alerts.web import make_app
from tests.test_service import cap_items, crieur  # noqa: F401 (fixture)


async def test_the_timeline_of_an_episode(crieur):  # noqa: F811
    for name in ("cap_41_alert.xml", "cap_41_update.xml", "cap_41_cancel.xml"):
        await crieur.on_items(None, cap_items(name))
    client = TestClient(TestServer(make_app(crieur), host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.get("/api/v1/episodes/41/timeline")
        assert response.status == 200
        timeline = await response.json()
        kinds = [e["kind"] for e in timeline["entries"]]
        assert kinds.count("debut-episode") == kinds.count("fin-episode") == 1 and not timeline["active"]
        # the warning that opened the episode came just before its start; the end comes after the last warning
        assert kinds.index("vigilance") < kinds.index("debut-episode") < kinds.index("fin-episode")
        assert len(kinds) - 1 - kinds[::-1].index("vigilance") < kinds.index("fin-episode")
        assert kinds.count("vigilance") == 3  # alert, update, cancel: each version received
        posts = [e["msg_type"] for e in timeline["entries"] if e["kind"] == "publication-departement"]
        assert posts == ["Alert", "Update", "Cancel"]
        times = [e["at"] for e in timeline["entries"]]
        assert times == sorted(times)
        assert timeline["entries"][0]["colour"] == "orange" and timeline["entries"][0]["authority"]

        page = await client.get("/t/41/episode")
        text = html.unescape(await page.text())
        assert page.status == 200 and "Épisode neigeux" in text and "Vigilance orange" in text
        assert text.index("Début de l'épisode") < text.index("Fin d'alerte du Département")

        assert (await client.get("/api/v1/episodes/28/timeline")).status == 404  # no episode there
        assert (await client.get("/api/v1/episodes/99/timeline")).status == 404  # no such territory
    finally:
        await client.close()
