"""The JSON API: alerts, sources, delivery progress, the OpenAPI document, ETag and 304."""

from __future__ import annotations

import time

from alerts.domain import AlertStatus, Severity
from alerts.storage import NewDelivery
from tests.test_web_support import Web, web_env  # noqa: F401  (fixture)


async def test_alerts_by_territory(web_env: Web) -> None:
    severe = await web_env.add()
    minor = await web_env.add(title="Brouillard givrant", severity=Severity.MINOR)
    await web_env.add(title="Chartres", territories=("28",))
    await web_env.add(title="À valider", status=AlertStatus.PENDING_APPROVAL)
    response = await web_env.client.get("/api/v1/alerts", params={"territory": "41"})
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["count"] == 2
    assert [a["id"] for a in body["alerts"]] == [severe.id, minor.id]
    first = body["alerts"][0]
    assert first["roads"] == ["RD 957", "RN 10"]
    assert first["communes"] == ["Blois", "Vendôme"]
    assert first["severity"] == "Severe" and first["cap"] == f"/alertes/{severe.id}.cap.xml"
    everything = await (await web_env.client.get("/api/v1/alerts")).json()
    assert everything["count"] == 3


async def test_unknown_territory_is_a_json_404(web_env: Web) -> None:
    response = await web_env.client.get("/api/v1/alerts", params={"territory": "99"})
    assert response.status == 404
    assert "99" in (await response.json())["error"]


async def test_one_alert_and_hidden_ones(web_env: Web) -> None:
    alert = await web_env.add()
    pending = await web_env.add(status=AlertStatus.PENDING_APPROVAL)
    body = await (await web_env.client.get(f"/api/v1/alerts/{alert.id}")).json()
    assert body["id"] == alert.id and body["title"] == alert.title
    assert (await web_env.client.get(f"/api/v1/alerts/{pending.id}")).status == 404
    assert (await web_env.client.get("/api/v1/alerts/424242")).status == 404


async def test_etag_and_304(web_env: Web) -> None:
    await web_env.add()
    first = await web_env.client.get("/api/v1/alerts?territory=41")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public")
    cached = await web_env.client.get("/api/v1/alerts?territory=41", headers={"If-None-Match": etag})
    assert cached.status == 304
    await web_env.add(title="Nouvelle")
    fresh = await web_env.client.get("/api/v1/alerts?territory=41", headers={"If-None-Match": etag})
    assert fresh.status == 200 and (await fresh.json())["count"] == 2


async def test_sources(web_env: Web) -> None:
    await web_env.store.save_source_state(
        "prefecture-41",
        {
            "last_status": "error",
            "last_success": "2026-12-03T06:00:00+00:00",
            "last_attempt": "2026-12-03T06:30:00+00:00",
            "last_error": "ClientConnectorError: Cannot connect to host intranet.cg41.local:8443",
            "consecutive_failures": 7,
            "etag": '"abc"',
            "issues": ["x"],
        },
    )
    response = await web_env.client.get("/api/v1/sources")
    body = await response.json()
    assert body["sources"] == [
        {
            "name": "prefecture-41",
            "status": "error",
            "last_success": "2026-12-03T06:00:00+00:00",
            "last_attempt": "2026-12-03T06:30:00+00:00",
        }
    ]  # no raw error, no counters
    again = await web_env.client.get("/api/v1/sources", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_delivery_progress(web_env: Web) -> None:
    alert = await web_env.add()
    await web_env.store.enqueue(
        [
            NewDelivery(
                key=f"{alert.id}:sms:{n}", alert_id=alert.id, channel="sms", text="x", recipient=f"+3361234567{n}"
            )
            for n in range(3)
        ]
    )
    claimed = await web_env.store.claim("w", 1, 30.0)
    await web_env.store.outbox.mark_sent("w", [(claimed[0].id, "SM1", "sent")])
    body = await (await web_env.client.get("/api/v1/deliveries/progress", params={"alert": str(alert.id)})).json()
    assert body["alert"] == alert.id
    [row] = body["channels"]
    assert (row["channel"], row["total"], row["sent"], row["queued"]) == ("sms", 3, 1, 2)
    bad = await web_env.client.get("/api/v1/deliveries/progress", params={"alert": "abc"})
    assert bad.status == 400 and "alert" in (await bad.json())["error"]


async def test_openapi_document_describes_every_route(web_env: Web) -> None:
    doc = await (await web_env.client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/sources",
        "/api/v1/deliveries/progress",
        "/api/v1/episodes/{code}",
        "/api/v1/episodes/{code}/timeline",
    }
    refs = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for ref in refs:  # every reference resolves
        target = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    # the Alert schema names every field the API returns
    alert = await web_env.add()
    body = await (await web_env.client.get(f"/api/v1/alerts/{alert.id}")).json()
    assert set(body) <= set(doc["components"]["schemas"]["Alert"]["properties"])


async def test_api_answers_within_budget(web_env: Web) -> None:
    for n in range(50):
        await web_env.add(title=f"Alerte {n}")
    started = time.perf_counter()
    for _ in range(20):
        assert (await web_env.client.get("/api/v1/alerts?territory=41")).status == 200
    per_request = (time.perf_counter() - started) / 20
    print(f"GET /api/v1/alerts with 50 alerts: {per_request * 1000:.1f} ms")
    assert per_request < 0.25, per_request
