"""Prometheus metrics: counters from the hooks, outbox and source gauges read at scrape time, own registry."""

from __future__ import annotations

import pathlib
import time
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.metrics import Metrics
from alerts.storage import NewDelivery, open_store
from channels.base import Channel, Message, PermanentError, Receipt, TransientError


def service(**parts: object) -> SimpleNamespace:
    """A stand-in with the shape of alerts.seams.MetricsHost."""
    return SimpleNamespace(**{"store": None, "workers": [], "started_at": time.time(), "source_loop": None, **parts})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class Scripted(Channel):
    """Sends according to the recipient: "ok…" succeeds, "bad…" is refused, "flaky…" fails transiently."""

    kind = "scripted"

    async def send(self, message: Message) -> Receipt:
        if message.recipient.startswith("bad"):
            raise PermanentError("refused", code="21211")
        if message.recipient.startswith("flaky"):
            raise TransientError("HTTP 503")
        return Receipt(provider_id=f"id-{message.key}")


@pytest.fixture
async def sqlite_store(tmp_path: pathlib.Path):
    store = await open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield store
    await store.close()


async def client_for(metrics: Metrics) -> TestClient:
    app = web.Application()
    metrics.install_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_delivery_events_from_a_real_worker_are_counted(sqlite_store):
    metrics = Metrics(service(store=sqlite_store, workers=[1], started_at=time.time() - 5))
    await sqlite_store.enqueue(
        [
            NewDelivery(key=f"1:sms:{r}", alert_id=1, channel="sms", text="Neige RD 957", recipient=r)
            for r in ("ok1", "ok2", "ok3", "bad1", "flaky1")
        ]
    )
    worker = DeliveryWorker(
        sqlite_store,
        {"sms": Scripted("sms", {"rate": 1000})},
        worker_id="t",
        settings=WorkerSettings(retry_initial=60),
        on_event=metrics.delivery_event,
    )
    await worker.drain(5)
    await worker.flush()
    metrics.delivery_event("late token", {"channel": "sms"})  # as test_delivery's stalled check makes one
    metrics.delivery_event("cancelled", {"channel": "sms"})  # as a send withheld at the last moment (opt-out)

    client = await client_for(metrics)
    try:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        got = samples(await response.text())
    finally:
        await client.close()
    assert got[("crieur_deliveries_total", (("channel", "sms"), ("outcome", "sent")))] == 3
    assert got[("crieur_deliveries_total", (("channel", "sms"), ("outcome", "failed")))] == 1
    assert got[("crieur_deliveries_total", (("channel", "sms"), ("outcome", "retry")))] == 1
    assert got[("crieur_delivery_late_tokens_total", (("channel", "sms"),))] == 1
    assert got[("crieur_deliveries_total", (("channel", "sms"), ("outcome", "cancelled")))] == 1
    # the backlog as the database sees it: the flaky one waits for its retry; finished ones are not counted
    # there (their number grows with the history: crieur_deliveries_total counts them as they finish)
    assert got[("crieur_outbox_deliveries", (("channel", "sms"), ("state", "queued")))] == 1
    assert [key for key in got if key[0] == "crieur_outbox_deliveries"] == [
        ("crieur_outbox_deliveries", (("channel", "sms"), ("state", "queued")))
    ]
    assert got[("crieur_outbox_oldest_queued_seconds", ())] >= 0
    assert got[("crieur_store_up", ())] == 1
    assert got[("crieur_workers", ())] == 1
    assert got[("crieur_uptime_seconds", ())] >= 5


async def test_queue_gauges_follow_the_store_and_drop_vanished_states(sqlite_store):
    metrics = Metrics(service(store=sqlite_store))
    await sqlite_store.enqueue([NewDelivery(key=f"k{i}", alert_id=1, channel="mastodon", text="x") for i in range(4)])
    await metrics.refresh()
    got = samples(metrics.render().decode())
    assert got[("crieur_outbox_deliveries", (("channel", "mastodon"), ("state", "queued")))] == 4
    rows = await sqlite_store.claim("w", 3, 60)
    await metrics.refresh()
    got = samples(metrics.render().decode())
    assert got[("crieur_outbox_deliveries", (("channel", "mastodon"), ("state", "queued")))] == 1
    assert got[("crieur_outbox_deliveries", (("channel", "mastodon"), ("state", "sending")))] == 3
    await sqlite_store.outbox.mark_sent("w", [(r.id, "p", "sent") for r in rows])
    await sqlite_store.outbox.mark_sent("w", [(r.id, "p", "sent") for r in await sqlite_store.claim("w", 3, 60)])
    await metrics.refresh()
    got = samples(metrics.render().decode())
    assert not [key for key in got if key[0] == "crieur_outbox_deliveries"]  # all finished: no backlog
    assert got[("crieur_outbox_oldest_queued_seconds", ())] == 0


async def test_fetch_question_escalation_hooks_and_source_health():
    health = [
        {"name": "prefecture-41", "consecutive_failures": 3, "last_success": "2026-01-18T06:00:00+00:00"},
        {"name": "meteo", "consecutive_failures": 0, "last_success": None},
    ]
    metrics = Metrics(service(source_loop=SimpleNamespace(health=lambda: health)))
    metrics.fetch("prefecture-41", 0.3, True)
    metrics.fetch("prefecture-41", 25.0, False)
    metrics.question()
    metrics.question()
    metrics.escalation()
    metrics.delivery_event("unknown-kind", {"channel": "x"})  # ignored, not a new label set
    await metrics.refresh()
    got = samples(metrics.render().decode())
    assert got[("crieur_source_fetches_total", (("outcome", "ok"), ("source", "prefecture-41")))] == 1
    assert got[("crieur_source_fetches_total", (("outcome", "error"), ("source", "prefecture-41")))] == 1
    assert got[("crieur_source_fetch_seconds_count", (("source", "prefecture-41"),))] == 2
    assert got[("crieur_source_fetch_seconds_bucket", (("le", "0.5"), ("source", "prefecture-41")))] == 1
    assert got[("crieur_citizen_questions_total", ())] == 2
    assert got[("crieur_escalations_total", ())] == 1
    assert got[("crieur_source_consecutive_failures", (("source", "prefecture-41"),))] == 3
    assert got[("crieur_source_last_success_timestamp_seconds", (("source", "prefecture-41"),))] == 1768716000
    assert ("crieur_source_last_success_timestamp_seconds", (("source", "meteo"),)) not in got
    assert not any(name == "crieur_deliveries_total" for name, _ in got)


async def test_database_down_still_answers(sqlite_store):
    class Broken:
        async def queue_stats(self):
            raise ConnectionRefusedError("postgresql://crieur:hunter2@db/crieur")

    metrics = Metrics(service(store=Broken()))
    client = await client_for(metrics)
    try:
        response = await client.get("/metrics")
        body = await response.text()
    finally:
        await client.close()
    assert response.status == 200
    assert samples(body)[("crieur_store_up", ())] == 0
    assert "hunter2" not in body


async def test_two_services_do_not_share_a_registry_nor_use_the_global_one():
    a, b = Metrics(), Metrics()
    a.question()
    assert samples(a.render().decode())[("crieur_citizen_questions_total", ())] == 1
    assert samples(b.render().decode())[("crieur_citizen_questions_total", ())] == 0
    assert REGISTRY.get_sample_value("crieur_citizen_questions_total") is None


async def test_bearer_token_when_configured(monkeypatch):
    monkeypatch.setenv("CRIEUR_METRICS_TOKEN", "s3cret-scrape")
    client = await client_for(Metrics())
    try:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status == 200 and "crieur_uptime_seconds" in await ok.text()
    finally:
        await client.close()


async def test_standalone_server_for_worker_processes():
    import aiohttp

    metrics = Metrics()
    metrics.delivery_event("sent", {"channel": "sms"})
    runner = await metrics.serve("127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                got = samples(await response.text())
    finally:
        await runner.cleanup()
    assert got[("crieur_deliveries_total", (("channel", "sms"), ("outcome", "sent")))] == 1
