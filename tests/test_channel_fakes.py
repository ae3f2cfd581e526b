"""The fakes themselves: standalone process mode, seeded fault injection, and — across adapters — no secret
in logs or error texts."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import signal
import sys

from channels.base import DeliveryError, Message, RateLimited, TransientError
from channels.bluesky import BlueskyChannel
from channels.facebook import FacebookChannel
from channels.mastodon import MastodonChannel
from channels.twilio import TwilioChannel
from channels.webhook import WebhookChannel
from channels.x import XChannel
from tests.fakes.mastodon import FakeMastodon

pytest_plugins = ["tests.fakes.fixtures"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
SID = "AC" + "0" * 32


async def test_standalone_fake_twilio_process(http_session):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.twilio",
        "--port",
        "0",
        "--token",
        "proc-token",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line.startswith("listening on http://127.0.0.1:"), line
        base = line.split()[-1]
        sms = TwilioChannel(
            "sms", {"account_sid": SID, "auth_token": "proc-token", "from": "+33700000001", "api_base": base}
        )
        await sms.start(http_session)
        receipt = await sms.send(Message(key="k", alert_id=1, text="Test", recipient="+33612345678"))
        assert receipt.provider_id.startswith("SM")
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    assert "stopping: 1 requests, 1 accepted" in out.decode()


async def _deliver_all(channel, messages, attempts=20) -> list[str]:
    """What the delivery engine does, minus the waiting: retry each message until it goes through."""
    outcomes = []
    for message in messages:
        for _ in range(attempts):
            try:
                await channel.send(message)
                outcomes.append("ok")
                break
            except RateLimited:
                outcomes.append("429")
            except TransientError:
                outcomes.append("500")
        else:
            raise AssertionError(f"{message.key} never delivered")
    return outcomes


async def test_seeded_failure_ratio_is_reproducible_and_loses_nothing(http_session):
    runs = []
    for _ in range(2):
        async with FakeMastodon() as fake:
            fake.failure_ratio(0.3, seed=41)
            channel = MastodonChannel("m", {"base_url": fake.base_url, "access_token": "test-token"})
            await channel.start(http_session)
            messages = [Message(key=f"d-{n}", alert_id=n, text=f"Alerte {n} #route41") for n in range(60)]
            runs.append(await _deliver_all(channel, messages))
            assert len(fake.statuses) == 60  # every alert posted exactly once
    assert runs[0] == runs[1]
    failures = len(runs[0]) - 60
    assert 0.15 < failures / len(runs[0]) < 0.45
    assert {"429", "500"} <= set(runs[0])


async def test_fault_injection_counts_per_recipient(fake_twilio, http_session):
    fake_twilio.failure_ratio(0.3, seed=28)
    sms = TwilioChannel(
        "sms",
        {"account_sid": SID, "auth_token": "test-token", "from": "+33700000001", "api_base": fake_twilio.base_url},
    )
    await sms.start(http_session)
    numbers = [f"+3361234{n:04d}" for n in range(30)]
    await _deliver_all(
        sms, [Message(key=f"k{n}", alert_id=1, text="Neige", recipient=to) for n, to in enumerate(numbers)]
    )
    assert [fake_twilio.count_for(to) for to in numbers] == [1] * 30
    assert len(fake_twilio.requests) > 30


async def test_no_secret_in_logs_or_errors(
    caplog, http_session, fake_mastodon, fake_twilio, fake_bluesky, fake_x, fake_facebook, fake_webhook
):
    caplog.set_level(logging.DEBUG)
    secret = "S3CRET-do-not-log"
    channels = [
        (MastodonChannel("m", {"base_url": fake_mastodon.base_url, "access_token": secret}), ""),
        (
            TwilioChannel(
                "t",
                {"account_sid": SID, "auth_token": secret, "from": "+33700000001", "api_base": fake_twilio.base_url},
            ),
            "+33612345678",
        ),
        (
            BlueskyChannel(
                "b", {"service": fake_bluesky.base_url, "identifier": "cd41.bsky.social", "app_password": secret}
            ),
            "",
        ),
        (
            XChannel(
                "x",
                {
                    "api_base": fake_x.base_url,
                    "consumer_key": "ck",
                    "consumer_secret": secret,
                    "access_token": "at",
                    "access_token_secret": secret,
                },
            ),
            "",
        ),
        (
            FacebookChannel(
                "f", {"api_base": fake_facebook.base_url, "page_id": "100200300400500", "page_token": secret}
            ),
            "",
        ),
        (WebhookChannel("w", {"secret": secret, "allow": ["127.0.0.1"]}), f"{fake_webhook.base_url}/hook"),
    ]
    errors = []
    for channel, recipient in channels:
        await channel.start(http_session)
        assert secret not in repr(channel)
        try:
            await channel.send(Message(key="k", alert_id=1, text="Texte", recipient=recipient))
        except DeliveryError as exc:  # every fake refuses this credential
            errors.append(exc)
    assert len(errors) == len(channels)
    assert all(secret not in f"{e!r} {e}" for e in errors)
    assert secret not in caplog.text
