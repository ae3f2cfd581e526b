"""PostgreSQL connections cut in the middle of a fan-out: the worker process reconnects and finishes,
nothing lost, nothing doubled.

The cut is `pg_terminate_backend` on every backend of the worker (found by its application_name), twice:
what a server restart does to a client, without restarting the server that other test runs share."""

from __future__ import annotations

import collections
import signal

import asyncpg
import pytest

from alerts.storage import open_store
from tests.conftest import PG_DSN
from tests.fakes.twilio import FakeTwilio
from tests.faults.procs import Proc
from tests.test_faults_kill import TEXT, phones, wait_until

SUBSCRIBERS = 5_000


async def terminate(application_name: str) -> int:
    conn = await asyncpg.connect(PG_DSN)
    try:
        return int(
            await conn.fetchval(
                "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
                application_name,
            )
        )
    finally:
        await conn.close()


@pytest.mark.slow
@pytest.mark.postgres
async def test_worker_survives_its_connections_being_cut(pg_url, tmp_path):
    numbers = phones(SUBSCRIBERS, "+337")
    store = await open_store(pg_url)
    fake = FakeTwilio()
    api_base = await fake.start()
    name = f"crieur-faults-{tmp_path.name[-20:]}"
    worker_url = f"{pg_url}&application_name={name}"
    proc: Proc | None = None
    try:
        await store.add_subscribers((n, "41") for n in numbers)
        assert await store.enqueue_subscribers(7, "sms", ["41"], "Alert", TEXT) == SUBSCRIBERS
        proc = await Proc.python_module(
            "tests.faults.worker",
            "--db",
            worker_url,
            "--api-base",
            api_base,
            "--lease",
            "3",
            "--until-drained",
            "--log-level",
            "ERROR",
            stderr_path=tmp_path / "worker.stderr",
        )
        await proc.wait_line("worker ready")
        cuts = []
        for threshold in (SUBSCRIBERS // 4 + 59, SUBSCRIBERS // 2 + 211):
            await wait_until(lambda threshold=threshold: len(fake.messages) >= threshold, 60, f"{threshold} SMS")
            cuts.append(await terminate(name))
        assert all(cut >= 1 for cut in cuts), cuts  # the worker's pool and listener connections were cut
        line = await proc.wait_line("drained", timeout=60)
        assert await proc.wait() == 0, proc.stderr()
        counts = collections.Counter(m["to"] for m in fake.messages)
        assert set(counts) == set(numbers), f"{len(set(numbers) - set(counts))} numbers lost"
        assert max(counts.values()) == 1, f"{sum(1 for c in counts.values() if c > 1)} numbers doubled"
        assert line.startswith(f"drained sent={SUBSCRIBERS} ")
        assert (await store.progress(7))[0]["sent"] == SUBSCRIBERS
    finally:
        if proc is not None:
            proc.signal(signal.SIGKILL)
            await proc.wait()
        await fake.stop()
        await store.close()
