"""Twilio adapter, through the real `twilio` library, against the fake Twilio API."""

from __future__ import annotations

import time

import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from channels.base import AuthError, ConfigurationError, Message, PermanentError, RateLimited, TransientError
from channels.twilio import TwilioChannel
from tests.fakes.twilio import FakeTwilio

pytest_plugins = ["tests.fakes.fixtures"]

SID = "AC" + "0" * 32
TEXT = "Vigilance orange neige-verglas en Loir-et-Cher : transports scolaires suspendus demain."
TO = "+33612345678"


def options(fake, **extra):
    return {
        "account_sid": SID,
        "auth_token": "test-token",
        "from": "+33700000001",
        "api_base": fake.base_url,
        "timeout": 0.5,
    } | extra


@pytest.fixture
async def sms(fake_twilio, http_session):
    channel = TwilioChannel("sms41", options(fake_twilio, status_callback="https://crieur.example/twilio/status"))
    await channel.start(http_session)
    return channel


def message(to: str = TO, key: str = "d-1", text: str = TEXT) -> Message:
    return Message(key=key, alert_id=3, text=text, recipient=to)


async def test_create_message(sms, fake_twilio):
    receipt = await sms.send(message())
    [req] = fake_twilio.received("POST")
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.form == {
        "To": TO,
        "Body": TEXT,
        "From": "+33700000001",
        "StatusCallback": "https://crieur.example/twilio/status?d=d-1",
    }
    assert req.header("Authorization").startswith("Basic ")
    assert receipt.provider_id.startswith("SM") and len(receipt.provider_id) == 34
    assert receipt.status == "queued"
    assert fake_twilio.count_for(TO) == 1


async def test_messaging_service_sid_instead_of_from(fake_twilio, http_session):
    opts = options(fake_twilio, messaging_service_sid="MG" + "1" * 32)
    del opts["from"]
    channel = TwilioChannel("sms", opts | {"senders": 1})
    await channel.start(http_session)
    await channel.send(message())
    form = fake_twilio.requests[0].form
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form and "StatusCallback" not in form


SERVICE = "MG" + "2" * 32


async def test_messaging_service_pool_sets_the_throughput(http_session, caplog):
    """Three senders in the service's pool at 1 segment/s each (long codes): 3 messages per second, so 600
    two-segment SMS take 400 s; the pool is read from Twilio (Messaging v1) at start."""
    pool = ["+33700000001", "+33700000002", "+33700000003"]
    async with FakeTwilio(services={SERVICE: pool}) as fake:
        opts = options(fake, messaging_service_sid=SERVICE)
        del opts["from"]
        channel = TwilioChannel("sms", opts)
        assert (channel.senders, channel.rate) == (1, 1.0)
        await channel.start(http_session)
        [listing] = fake.received("GET", f"/v1/Services/{SERVICE}/PhoneNumbers")
        assert listing.answered == 200
        assert (channel.senders, channel.rate) == (3, 3.0)
        assert channel.seconds_for(600, segments=2) == 400
        assert channel.seconds_for(0) == 0
        faster = TwilioChannel("sms", opts | {"sender_rate": 10})
        await faster.start(http_session)
        assert faster.rate == 30 and faster.seconds_for(600) == 20
        unknown = TwilioChannel("sms", opts | {"messaging_service_sid": "MG" + "9" * 32})
        await unknown.start(http_session)
        assert unknown.senders == 1 and "sender pool of MG999" in caplog.text
        configured = TwilioChannel("sms", opts | {"senders": 5, "rate": 2})
        await configured.start(http_session)
        assert len(fake.received("GET")) == 3  # a configured pool is not read
        assert (configured.senders, configured.rate, configured.seconds_for(10)) == (5, 2.0, 5.0)
    with pytest.raises(ConfigurationError, match="sender_rate"):
        TwilioChannel("sms", opts | {"sender_rate": "vite"})


async def test_wrong_token_is_auth_error_without_secret(fake_twilio, http_session):
    channel = TwilioChannel("sms", options(fake_twilio, auth_token="bad-token"))
    await channel.start(http_session)
    with pytest.raises(AuthError) as err:
        await channel.send(message())
    assert err.value.code == "20003"
    assert "bad-token" not in str(err.value)


async def test_429_is_rate_limited_with_retry_after(sms, fake_twilio):
    fake_twilio.rate_limit_next(1, retry_after="12")
    with pytest.raises(RateLimited) as err:
        await sms.send(message())
    assert err.value.code == "20429" and err.value.retry_after == 12


async def test_500_is_transient(sms, fake_twilio):
    fake_twilio.fail_next(2)
    for _ in range(2):
        with pytest.raises(TransientError) as err:
            await sms.send(message())
        assert not isinstance(err.value, RateLimited)
    assert (await sms.send(message())).provider_id.startswith("SM")


async def test_hang_is_transient_within_timeout(sms, fake_twilio):
    fake_twilio.hang_next(1)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await sms.send(message())
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("code, action", [(21610, "unsubscribe"), (21211, "invalid"), (21614, "invalid")])
async def test_recipient_errors(sms, fake_twilio, code, action):
    fake_twilio.reject(TO, code, "refused")
    with pytest.raises(PermanentError) as err:
        await sms.send(message())
    assert err.value.code == str(code) and err.value.recipient_action == action


async def test_malformed_number_rejected_by_provider(sms, fake_twilio):
    with pytest.raises(PermanentError) as err:
        await sms.send(message(to="0612345678"))
    assert err.value.recipient_action == "invalid" and err.value.code == "21211"
    [refused] = fake_twilio.take_refused()  # Twilio's description: To is a phone-number (E.164)
    assert refused.problems == ["body/To: '0612345678' is not a 'phone-number'"]


async def test_find_sent_after_crash(sms, fake_twilio):
    since = time.time() - 5
    assert await sms.find_sent(message(), since) is None
    sent = await sms.send(message())
    await sms.send(message(to="+33698765432"))
    found = await sms.find_sent(message(), since)
    assert found is not None and found.provider_id == sent.provider_id
    assert found.status == "queued"  # still queued at Twilio (date_sent null): found all the same
    listing = fake_twilio.received("GET")[-1]
    assert dict(listing.query)["To"] == TO
    assert await sms.find_sent(message(text="autre texte"), since) is None
    assert await sms.find_sent(message(), time.time() + 60) is None


async def test_signed_status_callback_reaches_receiver(fake_twilio, http_session):
    received = []

    async def status(request: web.Request) -> web.Response:
        params = dict(await request.post())
        url = str(request.url)
        ok = RequestValidator("test-token").validate(url, params, request.headers["X-Twilio-Signature"])
        received.append((request.query.get("d"), params["MessageStatus"], ok))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/twilio/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        channel = TwilioChannel("sms", options(fake_twilio, status_callback=f"http://127.0.0.1:{port}/twilio/status"))
        await channel.start(http_session)
        receipt = await channel.send(message(key="d-42"))
        assert await fake_twilio.send_status_callback(receipt.provider_id, "delivered") == 204
    finally:
        await runner.cleanup()
    assert received == [("d-42", "delivered", True)]


def test_rates_by_number_type_and_limits():
    base = {"account_sid": SID, "auth_token": "t", "from": "+33700000001"}
    assert TwilioChannel("a", base).rate == 1.0
    assert TwilioChannel("a", base | {"number_type": "toll_free"}).rate == 3.0
    assert TwilioChannel("a", base | {"number_type": "short_code"}).rate == 100.0
    assert TwilioChannel("a", base | {"number_type": "short_code", "rate": 30}).rate == 30.0
    assert TwilioChannel("a", base | {"max_segments": 3}).limits.max_segments == 3
    assert TwilioChannel("a", base).limits.max_segments == 10


def test_configuration_errors(monkeypatch):
    monkeypatch.delenv("TWILIO_TOKEN_41", raising=False)
    with pytest.raises(ConfigurationError, match="'sms41'.*TWILIO_TOKEN_41"):
        TwilioChannel("sms41", {"account_sid": SID, "auth_token_env": "TWILIO_TOKEN_41", "from": "+33700000001"})
    with pytest.raises(ConfigurationError, match="'sms41'.*from"):
        TwilioChannel("sms41", {"account_sid": SID, "auth_token": "t"})
    with pytest.raises(ConfigurationError, match="number_type"):
        TwilioChannel("sms41", {"account_sid": SID, "auth_token": "t", "from": "+3370", "number_type": "pigeon"})


async def test_a_pool_of_three_senders_at_10_per_second_sustains_30_per_second(store, http_session):
    """The send budget the delivery workers share (alerts.shared_limits.provider_bucket, in the database)
    paces a Messaging Service of 3 senders at 10 segments/s each at 30 messages/s: 900 sends take 30
    simulated seconds, 30 in each second, never more. Time is simulated (tests/fakes/clock.py): the
    limiter's arithmetic and its database budget are the real ones, nothing waits."""
    from alerts.shared_limits import provider_bucket
    from tests.fakes.clock import SimulatedClock

    pool = ["+33700000001", "+33700000002", "+33700000003"]
    async with FakeTwilio(services={SERVICE: pool}) as fake:
        opts = options(fake, messaging_service_sid=SERVICE, sender_rate=10)
        del opts["from"]
        channel = TwilioChannel("sms", opts)
        await channel.start(http_session)
        assert (channel.senders, channel.rate) == (3, 30.0)
        clock = SimulatedClock()
        bucket = provider_bucket(store.db, channel, clock=clock.time, sleep=clock.sleep)
        start = clock.time()
        times = []
        for _ in range(900):
            await bucket.acquire()
            times.append(clock.time() - start)
    per_second = [sum(1 for t in times if second <= t < second + 1) for second in range(30)]
    assert 29.9 <= times[-1] <= 30.0
    assert all(29 <= n <= 31 for n in per_second), per_second
    assert max(sum(1 for t in times if at <= t < at + 1) for at in times) <= 31  # no second holds more
