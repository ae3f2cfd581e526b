"""Webhook adapter: Standard Webhooks signatures, verify(), and the fake receiver."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime

import pytest

from channels.base import AuthError, ConfigurationError, Message, PermanentError, RateLimited, TransientError
from channels.webhook import WebhookChannel, WebhookVerificationError, sign, verify
from tests.shared_files import shared_json, shared_path

pytest_plugins = ["tests.fakes.fixtures"]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


VECTORS = shared_json("api-specs", "standard-webhooks", "signature-vectors.derived.json")["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["msg_id"] for v in VECTORS])
def test_standard_webhooks_reference_vectors(vector):
    """The signing vectors of the Standard Webhooks reference libraries (read from ../shared/api-specs)."""
    body = vector["payload"].encode("utf-8")
    assert sign(vector["secret"], vector["msg_id"], vector["timestamp"], body) == vector["signature"]
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": vector["signature"],
    }
    verify(vector["secret"], headers, body, now=vector["timestamp"] + 10)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify(vector["secret"], headers, body + b" ", now=vector["timestamp"])
    with pytest.raises(WebhookVerificationError, match="from now"):
        verify(vector["secret"], headers, body, now=vector["timestamp"] + 301)


def test_default_payload_has_the_structure_the_specification_recommends():
    """Standard Webhooks, "Payload structure": `type` (full-stop delimited), `timestamp` (ISO 8601), `data`."""
    assert "`type`: a full-stop delimited type" in shared_path(
        "api-specs", "standard-webhooks", "standard-webhooks.md"
    ).read_text("utf-8")
    payload = WebhookChannel.payload(Message(key="k", alert_id=3, text="Neige", kind="Update"))
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "alert.update"
    assert datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).tzinfo is not None


def test_verify_accepts_good_and_refuses_tampered_old_or_missing():
    body = b'{"a":1}'
    now = int(time.time())
    headers = {
        "Webhook-Id": "k1",
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": "v1,bogus " + sign(SECRET, "k1", now, body),
    }
    verify(SECRET, headers, body)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify(SECRET, headers, b'{"a":2}')
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, headers, body, now=now + 301)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(SECRET, {"webhook-id": "k1"}, body)
    raw = "plain-secret"
    verify(
        raw, {"webhook-id": "k", "webhook-timestamp": str(now), "webhook-signature": sign(raw, "k", now, body)}, body
    )


@pytest.fixture
async def hook(http_session):
    channel = WebhookChannel("hooks", {"secret": SECRET, "timeout": 0.5, "allow": ["127.0.0.1"]})
    await channel.start(http_session)
    yield channel
    await channel.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.8/hook",
        "http://[::1]/x",
        "http://2130706433/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
async def test_internal_addresses_are_refused_unless_allowed(http_session, url):
    channel = WebhookChannel("hooks", {"secret": SECRET})
    await channel.start(http_session)
    try:
        with pytest.raises(PermanentError) as refused:
            await channel.send(message(url))
        assert refused.value.code == "ssrf" and refused.value.recipient_action == "invalid"
    finally:
        await channel.close()


def message(url: str, key: str = "d-1", **kw) -> Message:
    return Message(key=key, alert_id=11, text="RD 957 fermée à Vendôme.", recipient=url, subject="Route fermée", **kw)


async def test_signed_post_verified_by_receiver(hook, fake_webhook):
    url = f"{fake_webhook.base_url}/crieur/alerts"
    receipt = await hook.send(message(url))
    [req] = fake_webhook.verified
    assert req.answered == 204 and receipt.provider_id == "d-1"
    assert req.header("webhook-id") == "d-1"
    assert abs(int(req.header("webhook-timestamp")) - time.time()) < 5
    payload = json.loads(req.body)
    assert payload["type"] == "alert.alert" and payload["data"]["alert_id"] == 11
    assert payload["data"]["text"] == "RD 957 fermée à Vendôme."
    assert fake_webhook.count_for(url) == 1


async def test_custom_payload(hook, fake_webhook):
    await hook.send(message(f"{fake_webhook.base_url}/x", extra={"payload": {"custom": ["é", 1]}}))
    assert json.loads(fake_webhook.verified[0].body) == {"custom": ["é", 1]}


async def test_wrong_secret_refused_by_receiver_is_permanent_for_that_recipient(fake_webhook, http_session):
    other = "whsec_" + base64.b64encode(b"another secret key").decode()
    channel = WebhookChannel("hooks", {"secret": other, "allow": ["127.0.0.1"]})
    await channel.start(http_session)
    with pytest.raises(PermanentError) as err:
        await channel.send(message(f"{fake_webhook.base_url}/a"))
    assert not isinstance(err.value, AuthError)
    assert fake_webhook.refusals == ["no webhook-signature matches the body"]


async def test_receiver_errors(hook, fake_webhook):
    url = f"{fake_webhook.base_url}/gone"
    fake_webhook.reject(url, 410, "gone", status=410)
    with pytest.raises(PermanentError) as err:
        await hook.send(message(url))
    assert err.value.recipient_action == "unsubscribe"
    fake_webhook.rate_limit_next(1, retry_after="4")
    with pytest.raises(RateLimited) as err:
        await hook.send(message(f"{fake_webhook.base_url}/ok"))
    assert err.value.retry_after == 4
    fake_webhook.fail_next(1)
    with pytest.raises(TransientError):
        await hook.send(message(f"{fake_webhook.base_url}/ok"))
    fake_webhook.hang_next(1)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await hook.send(message(f"{fake_webhook.base_url}/ok"))
    assert time.monotonic() - started < 2


async def test_connection_refused_is_transient_and_bad_url_permanent(hook):
    with pytest.raises(TransientError):
        await hook.send(message("http://127.0.0.1:9/nothing-listens"))
    with pytest.raises(PermanentError) as err:
        await hook.send(message("ftp://example.org/"))
    assert err.value.recipient_action == "invalid"


def test_configuration():
    with pytest.raises(ConfigurationError, match="'hooks'.*secret"):
        WebhookChannel("hooks", {})
    with pytest.raises(ConfigurationError, match="'hooks'.*base64"):
        WebhookChannel("hooks", {"secret": "whsec_not base64!"})
