"""One snow episode's timeline, page and API, on SQLite and PostgreSQL: the Météo-France warnings that open,
update and close a Loir-et-Cher episode, the Département's posts, in order, with the start and the end;
another territory has no episode."""

from __future__ import annotations

import html
import json

from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator

from alerts.web import make_app
from alerts.web.api import openapi_document
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


async def test_a_past_episode_is_chosen_in_the_page_and_the_api(crieur):  # noqa: F811
    import time

    for name in ("cap_41_alert.xml", "cap_41_update.xml", "cap_41_cancel.xml"):
        await crieur.on_items(None, cap_items(name))
    later = time.time() + 3600  # a second episode an hour later, started by a CM and still on
    await crieur.store.set_episode("41", True, by="camille", reason="neige annoncée", at=later)
    await crieur.store.set_episode("41", True, by="regle", reason="encore", at=later + 60)  # already on: unchanged
    client = TestClient(TestServer(make_app(crieur), host="127.0.0.1"))
    await client.start_server()
    try:
        listing = await (await client.get("/api/v1/episodes/41")).json()
        schemas = openapi_document("", "test")["components"]["schemas"]
        for summary in listing["episodes"]:
            Draft202012Validator(schemas["Episode"]).validate(summary)
        second, first = listing["episodes"]
        assert second["active"] and second["started_by"] == "camille" and second["reason"] == "neige annoncée"
        assert not first["active"] and first["ended_at"] is not None

        current = await (await client.get("/api/v1/episodes/41/timeline")).json()
        assert current["episode"] == second["id"] and current["active"]
        assert [e["kind"] for e in current["entries"]] == ["debut-episode"]  # nothing yet in the new one

        past = await (await client.get(f"/api/v1/episodes/41/timeline?episode={first['id']}")).json()
        timeline_schema = {**schemas["Timeline"], "$defs": schemas}
        timeline_schema = json.loads(json.dumps(timeline_schema).replace("#/components/schemas/", "#/$defs/"))
        Draft202012Validator(timeline_schema).validate(past)  # the API answers as its OpenAPI document says
        kinds = [e["kind"] for e in past["entries"]]
        assert past["episode"] == first["id"] and not past["active"]
        assert kinds.count("vigilance") == 3 and kinds[-1] in ("fin-episode", "publication-departement")

        page = html.unescape(await (await client.get("/t/41/episode")).text())
        assert f'href="/t/41/episode?episode={first["id"]}"' in page and "(en cours)" in page
        chosen = html.unescape(await (await client.get(f"/t/41/episode?episode={first['id']}")).text())
        assert "Vigilance orange" in chosen and f'href="/t/41/episode?episode={second["id"]}"' in chosen

        assert (await client.get("/api/v1/episodes/41/timeline?episode=999999")).status == 404
        assert (await client.get("/api/v1/episodes/41/timeline?episode=premier")).status == 400
        assert (await client.get("/api/v1/episodes/99")).status == 404
        await crieur.store.set_episode("41", False, by="camille", reason="routes dégagées", at=later + 7200)
        ended = await (await client.get("/api/v1/episodes/41/timeline")).json()
        [end] = [e for e in ended["entries"] if e["kind"] == "fin-episode"]
        assert (end["by"], end["detail"]) == ("camille", "routes dégagées")
    finally:
        await client.close()
