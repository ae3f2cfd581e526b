"""Pytest plugin: fake provider servers on 127.0.0.1 and an HTTP session, one per test.

Enable with `pytest_plugins = ["tests.fakes.fixtures"]` (root conftest or a test module).
"""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp
import pytest

from .bluesky import FakeBluesky
from .facebook import FakeFacebook
from .mastodon import FakeMastodon
from .twilio import FakeTwilio
from .webhook import FakeWebhookReceiver
from .x import FakeX


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake_mastodon() -> AsyncIterator[FakeMastodon]:
    async with FakeMastodon() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
async def fake_bluesky() -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
async def fake_x() -> AsyncIterator[FakeX]:
    async with FakeX() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
async def fake_facebook() -> AsyncIterator[FakeFacebook]:
    async with FakeFacebook() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
async def fake_webhook() -> AsyncIterator[FakeWebhookReceiver]:
    async with FakeWebhookReceiver() as fake:
        yield fake  # type: ignore[misc]
