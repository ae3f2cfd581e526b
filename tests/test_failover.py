"""Failover between SMS providers behind a circuit breaker, on both backends, with the fake Twilio and the
fake OVHcloud: the first provider answering 500s for 30 s fails over and back, 0 lost, 0 doubled. The breaker
keeps its defaults (5 failures in 30 s, 60 s open) and the worker its own settings; only the breaker's clock
runs 20 times faster than the wall clock, so that the test's 30 s of 500s last 1.5 s."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest

from alerts.config import ServiceConfig
from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.service import build_channels
from channels.base import ConfigurationError, Message, Receipt, TransientError
from channels.failover import CircuitBreaker, FailoverChannel
from channels.ovh import OvhChannel
from channels.twilio import TwilioChannel
from tests.fakes.ovh import FakeOvh

SPEED = 20.0  # breaker seconds per wall-clock second


def accelerated_clock() -> Callable[[], float]:
    start = time.monotonic()
    return lambda: start + (time.monotonic() - start) * SPEED


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_breaker_opens_on_repeated_failures_not_on_one():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, window=10, open_for=30, clock=clock)
    breaker.failure()
    clock.now = 11
    breaker.failure()
    breaker.failure()  # two within the window: still closed
    assert breaker.state == "closed" and breaker.allows()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allows()
    clock.now = 41
    assert breaker.state == "half-open"
    assert breaker.allows() and not breaker.allows()  # one probe at a time
    breaker.failure()  # the probe failed: open again for 30 s
    assert breaker.state == "open"
    clock.now = 72
    assert breaker.allows()
    breaker.success()
    assert breaker.state == "closed" and breaker.allows()


def test_failover_configuration_names_existing_channels(tmp_path):
    config = ServiceConfig(path=tmp_path / "c.yaml")
    config.channels = {
        "sms_twilio": {"kind": "twilio", "account_sid": "AC1", "auth_token": "t", "from": "+33757000041"},
        "sms_ovh": {
            "kind": "ovh",
            "application_key": "a",
            "application_secret": "s",
            "consumer_key": "c",
            "service_name": "sms-ab12345-1",
            "sender": "CD41",
        },
        "sms": {"kind": "failover", "providers": ["sms_twilio", "sms_ovh"]},
    }
    channels = build_channels(config)
    failover = channels["sms"]
    assert isinstance(failover, FailoverChannel)
    assert [p.name for p in failover.providers] == ["sms_twilio", "sms_ovh"]
    assert (failover.breakers[0].failures, failover.breakers[0].window, failover.breakers[0].open_for) == (5, 30, 60)
    config.channels["sms"] = {"kind": "failover", "providers": ["sms_twilio", "sms_orange"]}
    with pytest.raises(ConfigurationError, match="sms_orange are not channels"):
        build_channels(config)


async def test_first_provider_down_fails_over_and_back_with_none_lost_or_doubled(store, fake_twilio, http_session):
    async with FakeOvh() as ovh:
        twilio = TwilioChannel(
            "sms_twilio",
            {
                "account_sid": fake_twilio.account_sid,
                "auth_token": fake_twilio.auth_token,
                "from": "+33757000041",
                "api_base": fake_twilio.base_url,
                "rate": 1000,
            },
        )
        second = OvhChannel(
            "sms_ovh",
            {
                "application_key": "ak-test",
                "application_secret": "as-test",
                "consumer_key": "ck-test",
                "service_name": "sms-ab12345-1",
                "sender": "CD41",
                "endpoint": f"{ovh.base_url}/1.0",
                "rate": 1000,
            },
        )
        sms = FailoverChannel("sms", {"providers": ["sms_twilio", "sms_ovh"], "rate": 60})
        sms.attach({"sms_twilio": twilio, "sms_ovh": second})
        clock = accelerated_clock()
        for breaker in sms.breakers:
            assert (breaker.failures, breaker.window, breaker.open_for) == (5, 30.0, 60.0)  # the defaults
            breaker.clock = clock
        await sms.start(http_session)
        numbers = [f"+336{i:08d}" for i in range(400)]
        for number in numbers:
            await store.subscribe(number, ["41"])
        await store.enqueue_subscribers(1, "sms", ["41"], "Alert", "Verglas : D957 fermée.")
        fake_twilio.fail_next(10**9)  # Twilio answers 500 to everything...
        worker = DeliveryWorker(store, {"sms": sms}, worker_id="w", settings=WorkerSettings())
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(30 / SPEED)
            fake_twilio.fail_next(0)  # ...for 30 s (breaker time), then is back
            recovered = time.time()
            async with asyncio.timeout(60):
                while await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'") < len(numbers):
                    await asyncio.sleep(0.05)
        finally:
            worker.stop()
            await task
    states = {d.state for d in await store.deliveries(limit=1000)}
    assert states == {"sent"}
    for number in numbers:  # exactly once, whichever provider took it
        assert fake_twilio.count_for(number) + len(ovh.sent_to(number)) == 1, number
    assert len(ovh.messages) > 20  # it failed over...
    back = [m for m in fake_twilio.messages if m["date_created"] and m["to"] in numbers]
    assert len(back) > 20  # ...and back
    assert any(r.answered == 500 for r in fake_twilio.requests)
    assert all(r.time >= recovered - 0.5 for r in fake_twilio.requests if 200 <= r.answered < 300)
    assert sms.breakers[0].state == "closed"


async def test_an_unanswered_send_is_looked_up_on_every_provider(http_session):
    """In doubt (no answer), the message may have gone through either provider: both are asked."""

    class Provider(TwilioChannel):
        def __init__(self, name, has):
            super().__init__(name, {"account_sid": "AC1", "auth_token": "t", "from": "+33757000041"})
            self.has = has

        async def send(self, message):
            raise TransientError("no answer", code="timeout")

        async def find_sent(self, message, since):
            return Receipt(f"{self.name}-1") if self.has else None

    sms = FailoverChannel("sms", {"providers": ["a", "b"]})
    sms.attach([Provider("a", False), Provider("b", True)])
    message = Message(key="1:sms:Alert:+33600000000", alert_id=1, text="x", recipient="+33600000000")
    assert (await sms.find_sent(message, 0)).provider_id == "b-1"
