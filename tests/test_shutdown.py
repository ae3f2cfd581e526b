"""SIGTERM during a fan-out: `crieur worker` / `crieur run` (real processes) finish what they are sending,
record it, give back every lease and exit 0; what was not started stays queued for the next worker."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import socket
import sys
import textwrap

import pytest
from aiohttp import web

from alerts.storage import NewDelivery, open_store

ROOT = pathlib.Path(__file__).resolve().parent.parent
DELIVERIES = 1500
SECRET = "whsec_" + "c2h1dGRvd24tdGVzdC1zZWNyZXQ="  # base64 of "shutdown-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlowReceiver:
    """A webhook receiver that takes `delay` seconds per request and records what it accepted."""

    def __init__(self, delay: float):
        self.delay = delay
        self.started: list[str] = []
        self.answered: list[str] = []
        self.first = asyncio.Event()
        self.enough = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers["webhook-id"]
        self.started.append(key)
        self.first.set()
        if len(self.started) >= 100:
            self.enough.set()
        await asyncio.sleep(self.delay)
        self.answered.append(key)
        return web.Response(status=204)

    async def __aenter__(self) -> "SlowReceiver":
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.mark.parametrize("argv", [["worker"], ["run", "--no-ingest", "--workers", "1"]], ids=["worker", "run"])
async def test_sigterm_mid_fanout_finishes_in_flight_and_releases_leases(tmp_path, argv):
    database = f"sqlite:///{tmp_path / 'crieur.db'}"
    port = free_port()
    config = tmp_path / "crieur.yaml"
    config.write_text(
        textwrap.dedent(f"""
        service:
          name: Test arrêt propre
          host: 127.0.0.1
          port: {port}
          data_dir: {tmp_path / "data"}
          database: {database}
          workers: 1
        channels:
          hooks: {{kind: webhook, secret_env: CRIEUR_TEST_HOOK_SECRET, rate: 1000, allow: ["127.0.0.1"]}}
    """),
        encoding="utf-8",
    )
    async with SlowReceiver(delay=0.05) as receiver:
        store = await open_store(database)
        try:
            await store.enqueue(
                [
                    NewDelivery(
                        key=f"1:hooks:Alert:{i}",
                        alert_id=1,
                        channel="hooks",
                        text="Neige sur la RD 957",
                        recipient=f"{receiver.url}/abonne{i}",
                    )
                    for i in range(DELIVERIES)
                ]
            )
        finally:
            await store.close()

        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
        env.update(CRIEUR_TEST_HOOK_SECRET=SECRET, PYTHONUNBUFFERED="1")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alerts.cli",
            "--log-json",
            "--log-level",
            "DEBUG",
            *argv,
            "--config",
            str(config),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.wait_for(receiver.enough.wait(), 30)
            in_flight_at_signal = len(receiver.started) - len(receiver.answered)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert any("finishing in-flight sends" in entry["message"] for entry in logs)
    assert in_flight_at_signal > 0  # the signal did arrive mid-send

    store = await open_store(database)
    try:
        rows = await store.db.fetch("SELECT key, state, lease_until FROM deliveries")
    finally:
        await store.close()
    states = {}
    for row in rows:
        states.setdefault(row["state"], set()).add(row["key"])
    assert "sending" not in states, "a lease was left behind"
    assert all(row["lease_until"] is None for row in rows)
    # every request the receiver started was answered, and every answered one is recorded as sent
    assert sorted(receiver.started) == sorted(receiver.answered)
    assert states.get("sent", set()) == set(receiver.answered)
    assert len(receiver.answered) == len(set(receiver.answered))  # nobody got it twice
    # the stop did not wait for the whole fan-out: the rest is queued for the next worker
    assert states.get("queued") and len(states["queued"]) + len(states["sent"]) == DELIVERIES
