"""The OVHcloud SMS adapter against the fake OVHcloud API (signed calls checked like the real service)."""

from __future__ import annotations

import hashlib

import pytest

from channels.base import AuthError, Message, PermanentError, TransientError
from channels.ovh import OvhChannel, signature
from tests.fakes.ovh import FakeOvh


@pytest.fixture
async def fake_ovh():
    async with FakeOvh() as fake:
        yield fake


def ovh_channel(fake: FakeOvh, **overrides) -> OvhChannel:
    options = {
        "application_key": "ak-test",
        "application_secret": "as-test",
        "consumer_key": "ck-test",
        "service_name": "sms-ab12345-1",
        "sender": "CD41",
        "endpoint": f"{fake.base_url}/1.0",
    }
    return OvhChannel("sms_ovh", options | overrides)


def message(recipient="+33612345678", text="D957 fermée à Vendôme.", key="7:sms:Alert:+33612345678") -> Message:
    return Message(key=key, alert_id=7, text=text, recipient=recipient)


def test_signature_is_sha1_of_the_parts_joined_by_plus():
    expected = hashlib.sha1(b"AS+CK+POST+https://eu.api.ovh.com/1.0/sms/x/jobs+{}+1700000000").hexdigest()
    assert signature("AS", "CK", "post", "https://eu.api.ovh.com/1.0/sms/x/jobs", "{}", 1700000000) == f"$1${expected}"


async def test_send_is_signed_tagged_and_found_again(fake_ovh, http_session):
    fake_ovh.clock_offset = 95  # the API's clock is ahead: the adapter learns it from /auth/time
    channel = ovh_channel(fake_ovh)
    await channel.start(http_session)
    receipt = await channel.send(message())
    assert receipt.provider_id.startswith("ovh:")
    [job] = fake_ovh.messages
    assert (job["receiver"], job["message"], job["tag"]) == (
        "+33612345678",
        "D957 fermée à Vendôme.",
        "7:sms:Alert:+33612345678",
    )
    post = fake_ovh.received("POST")[0]
    assert post.json["sender"] == "CD41" and post.json["noStopClause"] is True
    assert await channel.find_sent(message(), since=0) == type(receipt)(receipt.provider_id, "sent")
    assert await channel.find_sent(message(key="8:sms:Alert:+33612345678"), since=0) is None


async def test_refusals_are_translated(fake_ovh, http_session):
    channel = ovh_channel(fake_ovh, application_secret="wrong")
    await channel.start(http_session)
    with pytest.raises(AuthError, match="INVALID_SIGNATURE"):
        await channel.send(message())
    channel = ovh_channel(fake_ovh, consumer_key="revoked")
    await channel.start(http_session)
    with pytest.raises(AuthError, match="INVALID_CREDENTIAL"):
        await channel.send(message())
    channel = ovh_channel(fake_ovh)
    await channel.start(http_session)
    fake_ovh.reject("+33600000000", "invalid")
    with pytest.raises(PermanentError) as refused:
        await channel.send(message(recipient="+33600000000"))
    assert refused.value.recipient_action == "invalid"
    fake_ovh.fail_next(1)
    with pytest.raises(TransientError, match="500"):
        await channel.send(message())
    with pytest.raises(PermanentError, match="Message too long"):
        await channel.send(message(text="x" * 1601))
    assert fake_ovh.messages == []


async def test_a_clock_that_drifted_is_learnt_again(fake_ovh, http_session):
    channel = ovh_channel(fake_ovh)
    await channel.start(http_session)
    await channel.send(message())
    fake_ovh.clock_offset = 600  # the server's clock moved (or ours): "Query out of time", then learnt again
    with pytest.raises(TransientError, match="out of time"):
        await channel.send(message(key="9:sms:Alert:+33612345678"))
    await channel.send(message(key="9:sms:Alert:+33612345678"))
    assert len(fake_ovh.messages) == 2
