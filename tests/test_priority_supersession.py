"""Priority and supersession of deliveries, on both backends: severe alerts are claimed before information,
and an update or an end queued while the older version's fan-out is running replaces what of it was not
sent yet, without anyone receiving the old text after the new one, and still exactly once per recipient."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.domain import Alert, MsgType, Severity
from alerts.fanout import Fanout, Text
from alerts.storage import NewDelivery
from channels.base import Channel, Limits, Message, Receipt

FAST = WorkerSettings(
    retry_initial=0.01, retry_max=0.05, max_attempts=3, idle_wait=0.02, batch=20, concurrency=8, flush_every=0.01
)


class SlowSms(Channel):
    """Records what each number received, in order; `hold` makes the first send to a number wait."""

    kind = "recorder"
    limits = Limits()
    per_recipient = True
    subscribers = True

    def __init__(self, rate: float = 1000.0, pause: float = 0.0):
        super().__init__("sms", {"rate": rate})
        self.pause = pause
        self.received: dict[str, list[str]] = defaultdict(list)
        self.hold: dict[str, asyncio.Event] = {}
        self.holding: dict[str, asyncio.Event] = {}
        self.count = 0

    async def send(self, message: Message) -> Receipt:
        if message.recipient in self.hold and not self.holding[message.recipient].is_set():  # its first send
            self.holding[message.recipient].set()
            await self.hold[message.recipient].wait()
        if self.pause:
            await asyncio.sleep(self.pause)
        self.received[message.recipient].append(message.text)
        self.count += 1
        return Receipt(f"P{self.count}")

    async def find_sent(self, message: Message, since: float):
        return None


def phones(n: int) -> list[str]:
    return [f"+336{i:08d}" for i in range(n)]


async def test_severe_deliveries_are_claimed_before_information(store):
    info = [
        NewDelivery(key=f"1:sms:Alert:{p}", alert_id=1, channel="sms", text="Info", recipient=p) for p in phones(30)
    ]
    severe = [
        NewDelivery(
            key=f"2:sms:Alert:{p}",
            alert_id=2,
            channel="sms",
            text="Verglas",
            recipient=p,
            priority=int(Severity.SEVERE),
        )
        for p in phones(10)
    ]
    await store.enqueue(info)
    await store.enqueue(severe)
    first = await store.claim("w", 10, 60)
    assert {d.alert_id for d in first} == {2}
    assert [d.recipient for d in first] == phones(10)  # oldest first within a priority
    second = await store.claim("w", 50, 60)
    assert {d.alert_id for d in second} == {1} and len(second) == 30


async def test_fanout_gives_an_end_the_priority_of_the_alert_it_ends(store):
    for p in phones(5):
        await store.subscribe(p, ["41"])
    channel = SlowSms()
    fanout = Fanout(store, {"sms": channel}, lambda alert, ch: Text(alert.text))
    info = await store.add_alert(
        Alert(
            title="Info",
            text="Déneigement en cours",
            territories=("41",),
            hashtags=(),
            channels=("sms",),
            severity=Severity.MINOR,
        )
    )
    severe = await store.add_alert(
        Alert(
            title="Fermée",
            text="D957 fermée",
            territories=("41",),
            hashtags=(),
            channels=("sms",),
            severity=Severity.SEVERE,
        )
    )
    await fanout.plan(info)
    await fanout.plan(severe)
    end = await store.add_alert(
        Alert(
            title="Rouverte",
            text="D957 rouverte",
            territories=("41",),
            hashtags=(),
            channels=("sms",),
            msg_type=MsgType.CANCEL,
            supersedes=severe.id,
        )
    )
    await fanout.plan(end)
    rows = {d.alert_id: d.priority for d in await store.deliveries(limit=100)}
    assert rows == {info.id: int(Severity.MINOR), severe.id: int(Severity.SEVERE), end.id: int(Severity.SEVERE)}
    claimed = await store.claim("w", 5, 60)
    assert {d.alert_id for d in claimed} == {end.id}  # the severe one was replaced by its end
    assert {d.state for d in await store.deliveries(alert_id=severe.id)} == {"cancelled"}


async def test_update_during_a_running_fanout_leaves_nobody_with_the_stale_text(store):
    numbers = phones(200)
    for p in numbers:
        await store.subscribe(p, ["41"])
    channel = SlowSms(rate=400, pause=0.002)
    # One number's send of the old version is under way when the update comes: the update must wait for it.
    straggler = numbers[3]
    channel.hold[straggler] = asyncio.Event()
    channel.holding[straggler] = asyncio.Event()
    await store.enqueue_subscribers(1, "sms", ["41"], "Alert", "D957 fermée", priority=3)
    workers = [DeliveryWorker(store, {"sms": channel}, worker_id=f"w{i}", settings=FAST) for i in range(2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(30):
            while channel.count < 60:
                await asyncio.sleep(0.005)
            await channel.holding[straggler].wait()
            await store.enqueue_subscribers(2, "sms", ["41"], "Update", "D957 rouverte", priority=3, supersedes=1)
            await asyncio.sleep(0.5)  # the others of the straggler's batch wait with it; the rest go on
            assert channel.received[straggler] == []
            channel.hold[straggler].set()
            while sum("D957 rouverte" in texts for texts in channel.received.values()) < len(numbers):
                await asyncio.sleep(0.01)
            assert channel.received[straggler] == ["D957 fermée", "D957 rouverte"]
    finally:
        for event in channel.hold.values():
            event.set()
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
    for p in numbers:
        texts = channel.received[p]
        assert texts.count("D957 rouverte") == 1, (p, texts)
        assert texts[-1] == "D957 rouverte", (p, texts)
        assert texts.count("D957 fermée") <= 1, (p, texts)
    got_old = sum("D957 fermée" in texts for texts in channel.received.values())
    assert 60 <= got_old < len(numbers)  # the update really came mid-way
    old = await store.deliveries(alert_id=1, limit=1000)
    assert sum(d.state == "sent" for d in old) == got_old
    assert sum(d.state == "cancelled" for d in old) == len(numbers) - got_old
    assert all("superseded" in d.last_error for d in old if d.state == "cancelled")
    assert {d.state for d in await store.deliveries(alert_id=2, limit=1000)} == {"sent"}


async def test_a_claimed_batch_of_the_old_version_is_not_sent_once_superseded(store):
    """Claimed before the update, sent after it: the worker asks just before sending, and cancels."""
    for p in phones(20):
        await store.subscribe(p, ["41"])
    await store.enqueue_subscribers(1, "sms", ["41"], "Alert", "D957 fermée")
    channel = SlowSms()
    worker = DeliveryWorker(store, {"sms": channel}, worker_id="w", settings=FAST)
    claimed = await store.claim("w", 20, 60)
    await store.enqueue_subscribers(2, "sms", ["41"], "Update", "D957 rouverte", supersedes=1)
    await worker._process("sms", claimed)
    assert channel.received == {}
    assert {d.state for d in await store.deliveries(alert_id=1, limit=100)} == {"cancelled"}
    await worker.drain()
    assert all(texts == ["D957 rouverte"] for texts in channel.received.values()) and len(channel.received) == 20
