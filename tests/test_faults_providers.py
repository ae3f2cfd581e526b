"""A provider answering 30 % of requests with 500 or 429 (Retry-After): everything is delivered in the
end, within the configured attempts; numbers the provider always refuses end as dead letters, visible in
`store.deliveries(state="dead")` and `progress()`."""

from __future__ import annotations

import collections

import aiohttp
import pytest

from alerts.delivery import DeliveryWorker, WorkerSettings
from tests.fakes.twilio import FakeTwilio
from tests.faults.engine import run_until_drained
from tests.faults.worker import twilio_channel
from tests.test_faults_kill import TEXT, phones

MAX_ATTEMPTS = 12  # 0.3^12: a healthy number exhausting its attempts by chance is a one in 2 million event


@pytest.mark.slow
async def test_flaky_provider_delivers_everything_and_dead_letters_the_hopeless(store):
    numbers = phones(200, "+338")
    hopeless = numbers[:5]
    async with FakeTwilio() as fake, aiohttp.ClientSession() as session:
        fake.failure_ratio(0.3, seed=41)
        for number in hopeless:
            fake.reject(number, 20500, "Internal Server Error", status=500)
        channel = twilio_channel(fake.base_url, rate=1000)
        await channel.start(session)
        await store.add_subscribers((n, "41") for n in numbers)
        await store.enqueue_subscribers(9, "sms", ["41"], "Alert", TEXT)
        settings = WorkerSettings(
            max_attempts=MAX_ATTEMPTS, retry_initial=0.05, retry_max=0.4, concurrency=32, idle_wait=0.1
        )
        await run_until_drained(DeliveryWorker(store, {"sms": channel}, settings=settings), store, 60)

    statuses = collections.Counter(r.answered for r in fake.received("POST"))
    assert statuses[500] > 20 and statuses[429] > 20, statuses  # the faults really happened
    delivered = collections.Counter(m["to"] for m in fake.messages)
    assert set(delivered) == set(numbers) - set(hopeless) and max(delivered.values()) == 1

    rows = await store.deliveries(alert_id=9, limit=500)
    sent = [r for r in rows if r.state == "sent"]
    assert len(sent) == len(numbers) - len(hopeless)
    assert all(1 <= r.attempts <= MAX_ATTEMPTS for r in sent)
    assert any(r.attempts > 1 for r in sent)

    dead = await store.deliveries(state="dead", limit=50)
    assert sorted(r.recipient for r in dead) == hopeless
    # every attempt failed; the last one with the number's own 500, or with one of the random 429s that come
    # first in the fake (which one depends on how the concurrent sends interleave)
    assert all(r.attempts == MAX_ATTEMPTS and ("500" in r.last_error or "429" in r.last_error) for r in dead)
    for number in hopeless:  # one request per attempt (a 429 counts as an attempt too), never accepted
        requests = [r for r in fake.received("POST") if r.form.get("To") == number]
        assert len(requests) == MAX_ATTEMPTS and fake.count_for(number) == 0
    [progress] = await store.progress(9)
    assert progress["sent"] == len(numbers) - len(hopeless)
    assert progress["failed"] == len(hopeless) and progress["queued"] == 0
