"""Shared fixtures.

`store` runs a test once on SQLite and once on PostgreSQL (a fresh schema of the server named by
CRIEUR_TEST_PG_DSN, default the local `test` database). PostgreSQL is not optional: if it cannot be
reached the PostgreSQL half of the suite fails, it is never skipped. Fake provider servers live in
tests/fakes/.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from typing import AsyncIterator

import pytest

from alerts.storage import Store, open_store

pytest_plugins = ["tests.fakes.fixtures"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
EXAMPLES = ROOT / "examples"
PG_DSN = os.environ.get("CRIEUR_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def samples_dir() -> pathlib.Path:
    return SAMPLES


async def make_pg_schema() -> str:
    """A new empty schema; returns a DSN whose search_path points at it."""
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    sep = "&" if "?" in PG_DSN else "?"
    return f"{PG_DSN}{sep}search_path={schema}"


async def drop_pg_schema(dsn: str) -> None:
    import asyncpg

    schema = dsn.rsplit("search_path=", 1)[1]
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    dsn = await make_pg_schema()
    yield dsn
    await drop_pg_schema(dsn)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crieur.db'}"
    else:
        dsn = await make_pg_schema()
        yield dsn
        await drop_pg_schema(dsn)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await open_store(db_url)
    yield s
    await s.close()


_LEAKED: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A thread left running (a SQLite store never closed, an SMTP server never stopped) is a bug,
    and it would keep the test process from exiting: CI would hang instead of failing. Report it as a
    failure, and end the process in pytest_unconfigure."""
    import threading

    leaked = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if leaked:
        _LEAKED.extend(leaked)
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus: int, config) -> None:  # type: ignore[no-untyped-def]
    if _LEAKED:
        terminalreporter.write_line(f"FAILED: threads left running after the tests: {', '.join(_LEAKED)}", red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _LEAKED:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
