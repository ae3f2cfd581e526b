"""Shared fixtures of the web tests (imported by tests/test_web_*.py and tests/browser/): a Crieur on a
fresh SQLite database, with the territories of tests/data/web, served by aiohttp's TestServer."""

from __future__ import annotations

import pathlib
import re
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts.config import ServiceConfig
from alerts.domain import Alert, Area, Road, Severity
from alerts.service import Crieur
from alerts.storage import open_store
from alerts.web import make_app
from alerts.web.accounts import add_user

DATA = pathlib.Path(__file__).resolve().parent / "data" / "web"
PASSWORD = "neige-sur-la-RD957"


def make_config(tmp_path: pathlib.Path, **overrides: Any) -> ServiceConfig:
    config = ServiceConfig(
        path=tmp_path / "crieur.yaml",
        name="Département de Loir-et-Cher",
        public_url="http://127.0.0.1:8041",
        data_dir=tmp_path,
        database=f"sqlite:///{tmp_path / 'crieur.db'}",
        territories=DATA / "territories.yaml",
        channels={
            "mastodon": {"kind": "mastodon", "base_url": "http://127.0.0.1:9", "access_token": "t"},
            "sms": {"kind": "twilio", "from": "+33757000041"},
            "web": {"kind": "web"},
        },
        sms_channel="sms",
        partners=["@mairie_blois@mastodon.example"],
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


class FakeFanout:
    """Stands in for the fan-out planner: records what would be fanned out."""

    def __init__(self) -> None:
        self.planned: list[Alert] = []

    async def plan(self, alert: Alert) -> None:
        self.planned.append(alert)


async def make_crieur(tmp_path: pathlib.Path, **overrides: Any) -> Crieur:
    config = make_config(tmp_path, **overrides)
    crieur = Crieur(config, store=await open_store(config.database))
    crieur.fanout = FakeFanout()  # type: ignore[assignment]
    return crieur


def snow_alert(**fields: Any) -> Alert:
    values: dict[str, Any] = dict(
        title="Neige : RD 957 coupée entre Blois et Vendôme",
        text="Chaussée enneigée, circulation interdite aux poids lourds. Prudence, #route41",
        territories=("41",),
        hashtags=("#route41",),
        channels=("mastodon", "sms"),
        severity=Severity.SEVERE,
        roads=(Road("D", "957"), Road("N", "10")),
        areas=(Area("commune", "41018"), Area("commune", "41269")),
        signature="JD",
    )
    values.update(fields)
    return Alert(**values)


class Web:
    """A running test server around make_app(crieur), with a client and a few helpers."""

    def __init__(self, crieur: Crieur, client: TestClient):
        self.crieur = crieur
        self.client = client

    @property
    def store(self):  # noqa: ANN201
        return self.crieur.store

    async def add(self, **fields: Any) -> Alert:
        return await self.store.add_alert(snow_alert(**fields))

    async def login(self, username: str = "camille", password: str = PASSWORD) -> str:
        """Log in through the form; returns the session's CSRF token read from the dashboard."""
        page = await self.client.get("/console/login")
        token = csrf_of(await page.text())
        response = await self.client.post(
            "/console/login",
            data={"username": username, "password": password, "csrf": token},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        dashboard = await self.client.get("/console")
        assert dashboard.status == 200
        return csrf_of(await dashboard.text())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper argon2 parameters in tests (same algorithm and code path; production keeps the defaults)."""
    from argon2 import PasswordHasher

    from alerts.web import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def web_env(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> AsyncIterator[Web]:
    """Runs each test on SQLite and on PostgreSQL (tests/conftest.py's db_url)."""
    quick_argon2(monkeypatch)
    crieur = await make_crieur(tmp_path, database=db_url)
    await add_user(crieur.store, "camille", PASSWORD, "cm")
    await add_user(crieur.store, "alex.martin", PASSWORD, "approver")
    await add_user(crieur.store, "admin", PASSWORD, "admin")
    client = TestClient(TestServer(make_app(crieur)))
    await client.start_server()
    try:
        yield Web(crieur, client)
    finally:
        await client.close()
        await crieur.store.close()


__all__ = ["DATA", "PASSWORD", "Web", "csrf_of", "make_crieur", "quick_argon2", "snow_alert", "web_env"]
