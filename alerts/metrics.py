"""Prometheus metrics: GET /metrics in the text exposition format.

Counters are bumped by hooks the service calls (`delivery_event` is a DeliveryWorker's on_event,
`fetch`, `question`, `escalation`); gauges that describe shared state (the outbox by channel and state,
the age of the oldest queued delivery, each source's health) are read from the store at scrape time, so
any one web process reports them for the whole deployment. Counters are per process: a `crieur worker`
process exposes its own with `serve()` and Prometheus adds them up.

The registry is Metrics' own, never prometheus_client's global one, so tests and several services in
one process do not collide.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from datetime import datetime
from typing import Any, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .seams import MetricsHost

log = logging.getLogger("crieur.metrics")

DELIVERY_OUTCOMES = ("sent", "retry", "failed", "dead", "cancelled")
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class Metrics:
    """One service's metrics. `crieur` is the Crieur (its store, source loop, workers); it may be None
    in a process that only counts (then only the counters are exposed).

    If the environment variable named by `token_env` is set, /metrics wants `Authorization: Bearer <it>`;
    if not, /metrics answers only requests from this machine (loopback).
    """

    def __init__(self, crieur: MetricsHost | None = None, *, token_env: str = "CRIEUR_METRICS_TOKEN") -> None:
        self.crieur = crieur
        self.token_env = token_env
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "crieur_deliveries",
            "Delivery attempts by outcome (sent, retry, failed, dead, cancelled)",
            ["channel", "outcome"],
            registry=r,
        )
        self.late_tokens = Counter(
            "crieur_delivery_late_tokens",
            "Send-budget tokens let go because the last check before the send came too late to use them"
            " (a busy database or event loop); a new token was taken",
            ["channel"],
            registry=r,
        )
        self.fetches = Counter(
            "crieur_source_fetches", "Source polls by outcome (ok, error)", ["source", "outcome"], registry=r
        )
        self.fetch_seconds = Histogram(
            "crieur_source_fetch_seconds",
            "Time to fetch and parse one source",
            ["source"],
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.questions = Counter("crieur_citizen_questions", "Questions received from citizens", registry=r)
        self.escalations = Counter("crieur_escalations", "Questions escalated to an authority", registry=r)
        self.queue = Gauge(
            "crieur_outbox_deliveries",
            "Deliveries not finished (queued, sending) by channel and state; finished ones are counted by"
            " crieur_deliveries_total as the workers finish them",
            ["channel", "state"],
            registry=r,
        )
        self.oldest = Gauge("crieur_outbox_oldest_queued_seconds", "Age of the oldest queued delivery", registry=r)
        self.source_failures = Gauge(
            "crieur_source_consecutive_failures", "Failed polls in a row", ["source"], registry=r
        )
        self.source_success = Gauge(
            "crieur_source_last_success_timestamp_seconds",
            "Unix time of the source's last successful poll",
            ["source"],
            registry=r,
        )
        self.first_answer = Gauge(
            "crieur_question_first_answer_seconds",
            "Mean seconds from a question for the team to its first answer, by channel or group",
            ["by", "name"],
            registry=r,
        )
        self.first_answer_max = Gauge(
            "crieur_question_first_answer_max_seconds",
            "Longest seconds from a question for the team to its first answer, by channel or group",
            ["by", "name"],
            registry=r,
        )
        self.questions_unanswered = Gauge(
            "crieur_questions_unanswered",
            "Questions for the team not answered yet, by channel or group",
            ["by", "name"],
            registry=r,
        )
        self.store_up = Gauge("crieur_store_up", "1 when the database answered the last scrape", registry=r)
        self.workers = Gauge("crieur_workers", "Delivery workers in this process", registry=r)
        self.uptime = Gauge("crieur_uptime_seconds", "Seconds since this process started", registry=r)
        self.started = time.time()

    # ------------------------------------------------------------------ hooks

    def delivery_event(self, kind: str, data: Mapping[str, Any]) -> None:
        """DeliveryWorker's on_event: kind is sent / retry / failed / dead / cancelled / late token; data["channel"]."""
        if kind in DELIVERY_OUTCOMES:
            self.deliveries.labels(str(data.get("channel", "")), kind).inc()
        elif kind == "late token":
            self.late_tokens.labels(str(data.get("channel", ""))).inc()

    def fetch(self, source: str, seconds: float, ok: bool) -> None:
        self.fetches.labels(source, "ok" if ok else "error").inc()
        self.fetch_seconds.labels(source).observe(max(0.0, seconds))

    def question(self) -> None:
        self.questions.inc()

    def escalation(self) -> None:
        self.escalations.inc()

    # ------------------------------------------------------------------ scrape

    async def refresh(self) -> None:
        """Read the gauges' current values; a database that does not answer sets crieur_store_up 0 and the
        rest is still served."""
        crieur = self.crieur
        if crieur is None:
            self.uptime.set(time.time() - self.started)
            return
        self.uptime.set(time.time() - crieur.started_at)
        self.workers.set(len(crieur.workers))
        store = crieur.store
        if store is not None:
            try:
                stats = await store.queue_stats()
            except Exception as exc:  # the metrics page must answer while the database is down
                log.warning("metrics: queue statistics unavailable: %s", type(exc).__name__)
                self.store_up.set(0)
            else:
                self.store_up.set(1)
                self.queue.clear()
                for channel, state, count in stats["by_channel_state"]:
                    self.queue.labels(channel, state).set(count)
                self.oldest.set(stats["oldest_queued_age"])
                await self._responsiveness(store)
        loop = crieur.source_loop
        if loop is not None:
            self.source_failures.clear()
            self.source_success.clear()
            for health in loop.health():
                name = health["name"]
                self.source_failures.labels(name).set(health.get("consecutive_failures") or 0)
                success = health.get("last_success")
                if success:
                    self.source_success.labels(name).set(datetime.fromisoformat(success).timestamp())

    async def _responsiveness(self, store: Any) -> None:
        """Time to first answer per channel and per group (alerts.storage.inbox)."""
        for gauge in (self.first_answer, self.first_answer_max, self.questions_unanswered):
            gauge.clear()
        for by, column in (("channel", "channel"), ("group", "group_key")):
            for row in await store.inbox.first_answer_times(column):
                name = str(row["name"])
                self.questions_unanswered.labels(by, name).set(row["questions"] - row["answered"])
                if row["mean_seconds"] is not None:
                    self.first_answer.labels(by, name).set(row["mean_seconds"])
                    self.first_answer_max.labels(by, name).set(row["max_seconds"])

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _authorized(self, request: web.Request) -> bool:
        """With a token configured, the bearer of it; without, only this machine (loopback, the client
        behind trusted proxies counting, so a local reverse proxy does not open it to everyone)."""
        from .security import client_address_of, is_loopback

        token = os.environ.get(self.token_env, "") if self.token_env else ""
        if not token:
            return is_loopback(client_address_of(request))
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            if not (self.token_env and os.environ.get(self.token_env)):
                return web.Response(status=403, text="403: /metrics answers this machine only (or set a token)\n")
            return web.Response(status=401, text="401: Unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        await self.refresh()
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ------------------------------------------------------------------ serving

    def install_routes(self, app: web.Application) -> None:
        """A Crieur route installer: GET /metrics on the service's web app."""
        app.router.add_get("/metrics", self.handle)

    async def serve(self, host: str, port: int) -> web.AppRunner:
        """A separate small server with only /metrics (worker processes, which have no web app).
        The caller cleans the returned runner up."""
        app = web.Application()
        self.install_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner
