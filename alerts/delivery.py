"""The delivery engine: workers that drain the outbox, each channel at its provider's pace.

Exactly once per recipient rests on three things:
- the outbox key (alert × channel × recipient × kind) makes a second enqueue a no-op;
- a worker holds its deliveries under a lease; a worker that dies leaves them to expire and another takes
  them up, marked *in doubt*;
- an in-doubt delivery is never sent blindly: a provider that deduplicates by our key (Mastodon's
  Idempotency-Key) gets the same key again, and for the others the adapter asks the provider whether the
  message already went (`Channel.find_sent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Iterable, Mapping, Sequence, TypeVar

from tenacity import RetryCallState, wait_exponential_jitter

from channels.base import Channel, DeliveryError, Message, PermanentError, RateLimited, Receipt

from .errors import LeaseLost
from .shared_limits import SharedBucket, provider_bucket
from .storage import SETTLE, Delivery, DeliveryState, Store

log = logging.getLogger("crieur.delivery")
K = TypeVar("K")
V = TypeVar("V")


def backoff_delay(attempt: int, initial: float = 2.0, maximum: float = 600.0) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential with jitter (tenacity's strategy, so
    feeds and deliveries back off the same way)."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempt)
    return float(wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)(state))


class TokenBucket:
    """`rate` tokens a second, bursts up to `burst`; `pause(seconds)` honours a provider's Retry-After."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = max(rate, 0.001)
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def try_acquire(self) -> float:
        """Take a token without waiting: 0.0 when taken, else the seconds until one will be available
        (an HTTP rate limiter answers 429 with that as Retry-After)."""
        now = time.monotonic()
        if now < self.paused_until:
            return self.paused_until - now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class Gate(Generic[K, V]):
    """A question asked just before each send ("may this one still go?"), answered for many sends by one
    query (`ask` returns an answer for the subjects that have one; the others get None).

    A query asks about the subjects waiting for an answer and, when `freshness` is set, about the subjects
    `expect`ed soon (the rest of the batch being sent); its answers then serve later questions for
    `freshness` seconds from the moment it started. So a question is always answered by a query that started
    at most `freshness` before it was asked. A change that must be seen before the next send (an opt-out, a
    newer version of an alert) returns to its caller only `SETTLE` (twice the worker's freshness) after its
    commit: a question asked once the change has returned is answered by a query that started after the commit.
    With `freshness` 0, every question waits for a query that starts after it."""

    AHEAD_MAX = 448  # expected subjects asked about by one query at most (with those waiting: one statement)

    def __init__(self, ask: Callable[[list[K]], Awaitable[Mapping[K, V]]], freshness: float = 0.0, ahead: int = 64):
        self.ask = ask
        self.freshness = freshness
        # Expected subjects a query asks about, in the order they were expected: `ahead` (the sends that may
        # be waiting for a token) plus twice the answers given since the last query (the sends to come).
        self.ahead = ahead
        self._served = 0
        self._waiting: dict[K, asyncio.Future[V | None]] = {}
        self._expected: dict[K, None] = {}  # an ordered set
        self._known: dict[K, tuple[V | None, float]] = {}  # answer, and when the query that gave it started
        self._task: asyncio.Task[None] | None = None

    def expect(self, subjects: Iterable[K]) -> None:
        """These subjects will be asked about soon: the next query asks for them too."""
        if self.freshness:
            self._expected.update(dict.fromkeys(subjects))

    def forget(self, subjects: Iterable[K]) -> None:
        for subject in subjects:
            self._expected.pop(subject, None)
            self._known.pop(subject, None)

    async def answer(self, subject: K) -> V | None:
        """The answer for `subject` (`forget` it when no more questions about it will come)."""
        asked = time.monotonic()
        known = self._known.get(subject)
        if known is not None and known[1] >= asked - self.freshness:
            answer = known[0]
            if known[1] < asked - self.freshness / 2:  # asked again ahead, so the next sends find it fresh
                self._query()
        else:
            future = self._waiting.get(subject)
            if future is None:
                future = asyncio.get_running_loop().create_future()
                self._waiting[subject] = future
            self._query()
            answer = await asyncio.shield(future)
        self._served += 1
        return answer

    def _query(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._answer())

    async def _answer(self) -> None:
        while True:
            await asyncio.sleep(0)  # let the sends of this moment join the query
            asked, self._waiting = self._waiting, {}
            count = min(self.AHEAD_MAX, self.ahead + 2 * self._served)
            self._served = 0
            upcoming = itertools.islice((s for s in self._expected if s not in asked), count)
            subjects = [*asked, *upcoming]
            if not subjects:
                return
            started = time.monotonic()
            try:
                found = await self.ask(subjects)
            except Exception as exc:  # the caller treats it like any database failure
                for future in asked.values():
                    if not future.done():
                        future.set_exception(exc)
            else:
                if self.freshness:
                    for subject in subjects:
                        if subject in self._expected:
                            self._known[subject] = (found.get(subject), started)
                for subject, future in asked.items():
                    if not future.done():
                        future.set_result(found.get(subject))
            if not self._waiting:
                return


@dataclass
class WorkerSettings:
    batch: int = 500
    lease: float = 60.0
    max_attempts: int = 8
    concurrency: int = 64
    idle_wait: float = 2.0
    retry_initial: float = 2.0
    retry_max: float = 600.0
    flush_every: float = 0.25


# Errors after which the provider may have accepted the message: no answer in time, connection lost.
AMBIGUOUS_CODES = frozenset({"timeout", "connection"})


def message_of(delivery: Delivery) -> Message:
    """What a channel adapter is given to send."""
    return Message(
        key=delivery.key,
        alert_id=delivery.alert_id,
        text=delivery.text,
        recipient=delivery.recipient,
        subject=delivery.subject,
        link=delivery.link,
        kind=delivery.kind,
        reply_to=delivery.reply_to,
        extra=dict(delivery.extra),
    )


@dataclass
class _Held:
    """A claimed batch whose leases a task renews until `release()` (the batch has been processed).

    `valid_until` (monotonic clock) is how long the leases are known to hold: the claim's or the last
    renewal's start plus the lease. A worker whose renewals fall behind (a stalled process, a database too
    slow to answer) stops sending before that moment: past it another worker may have taken the delivery
    in doubt, found nothing at the provider, and sent it."""

    claimed: list[Delivery]
    done: asyncio.Event
    renewal: asyncio.Task[None] | None = None
    valid_until: float = math.inf
    margin: float = 0.0
    renewed: set[int] | None = None  # the ids the last renewal extended (None: all, none was needed yet)

    def holds(self, delivery_id: int) -> bool:
        """Whether a send of this delivery started now is still safely within its lease. A delivery the last
        renewal did not extend was taken by another worker while this one's lease had lapsed (a renewal held
        up by the database): the next renewal's success does not give it back."""
        if self.renewed is not None and delivery_id not in self.renewed:
            return False
        return time.monotonic() < self.valid_until - self.margin

    async def release(self) -> None:
        self.done.set()  # not cancel(): a renewal under way ends its query (asyncpg dislikes cancelled ones)
        if self.renewal is not None:
            await self.renewal


async def _first_of(*waits: Awaitable[Any]) -> None:
    """Until the first of `waits` is done; the others are cancelled, also when the caller is."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class _Batch:
    """A claimed batch handed to the senders: its sends still to finish, and their errors."""

    def __init__(self, claimed: list[Delivery], held: _Held | None):
        self.claimed = claimed
        self.held = held
        self.left = len(claimed)
        self.errors: list[Exception] = []
        self.finished = asyncio.Event()
        if not claimed:
            self.finished.set()

    def one_done(self, error: Exception | None) -> None:
        if error is not None:
            self.errors.append(error)
        self.left -= 1
        if self.left == 0:
            self.finished.set()


class _Senders:
    """`concurrency` tasks that send the deliveries of the batches handed to them, in order. A sender that
    has finished a send takes the next delivery in the same turn of the event loop: a task started per send
    once a slot was free left that slot idle for two turns, a tenth of the senders' time at full speed."""

    def __init__(self, deliver: Callable[[Delivery, _Held | None], Awaitable[None]], concurrency: int, low: int = 0):
        self._deliver = deliver
        self._queue: asyncio.Queue[tuple[_Batch, Delivery]] = asyncio.Queue()
        self._low = low
        self._low_reached = asyncio.Event()
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(max(1, concurrency))]
        self.interrupted: list[int] = []  # deliveries whose send was cancelled under way

    def hand(self, claimed: list[Delivery], held: _Held | None) -> _Batch:
        batch = _Batch(claimed, held)
        for delivery in claimed:
            self._queue.put_nowait((batch, delivery))
        return batch

    async def low(self, batch: _Batch) -> None:
        """Until no more than `low` deliveries wait for a sender, or `batch` is finished."""
        while self._queue.qsize() > self._low and not batch.finished.is_set():
            self._low_reached.clear()
            await _first_of(self._low_reached.wait(), batch.finished.wait())

    async def close(self) -> None:
        """Stop the senders. Normally they are idle by then; when the worker is cancelled, the sends under
        way are cancelled and the deliveries no sender took end their batch all the same, so that nothing
        waits for them (the worker gives their leases back)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            batch, _ = self._queue.get_nowait()
            batch.one_done(None)

    async def _sender(self) -> None:
        while True:
            batch, delivery = await self._queue.get()
            if self._queue.qsize() <= self._low:
                self._low_reached.set()
            error: Exception | None = None
            try:
                await self._deliver(delivery, batch.held)
            except LeaseLost as exc:  # another worker holds it now, and decides its fate
                log.warning("%s", exc)
            except Exception as exc:  # raised once the batch's other sends are done
                error = exc
            except asyncio.CancelledError:
                self.interrupted.append(delivery.id)
                raise
            finally:  # cancelled too: its batch must not wait for it
                batch.one_done(error)


class DeliveryWorker:
    """One worker process's share of the outbox: a task per channel, so a slow provider never holds up
    another."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        worker_id: str | None = None,
        settings: WorkerSettings | None = None,
        on_event: Callable[[str, Mapping[str, Any]], None] | None = None,
    ):
        self.store = store
        self.outbox = store.outbox
        self.channels = dict(channels)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.settings = settings or WorkerSettings()
        # one budget per channel and sender for all workers of all processes (alerts.shared_limits)
        self.buckets = {name: provider_bucket(store.db, ch) for name, ch in self.channels.items()}
        self.on_event = on_event or (lambda kind, data: None)
        self._stopping = asyncio.Event()
        self._sent: list[tuple[int, str, str]] = []
        self._last_flush = time.monotonic()
        self._flush_lock = asyncio.Lock()
        self._interrupted: list[int] = []  # sends cancelled under way (the worker was cancelled): in doubt
        # A batch is claimed before some of its numbers may send STOP, or before a newer version of its
        # alert comes: nothing goes to a number once `Store.opt_out` has returned, nor an old version once
        # the newer one is queued. One query a moment answers both questions for every send that asks.
        # Its answers serve for half of SETTLE: one query judges the sends of 50 ms (see Gate).
        self.withheld = Gate[int, str](
            self.outbox.withheld_among, freshness=SETTLE / 2, ahead=self.settings.concurrency
        )

    # -------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Until `stop()`: claim, send, record. On stop, in-flight sends finish and leases are released."""
        try:
            await asyncio.gather(*(self._channel_loop(name) for name in self.channels))
        finally:
            await asyncio.gather(*(bucket.idle() for bucket in self.buckets.values()))
            await self._give_back()

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self, timeout: float = 30.0) -> None:
        """Send everything due now, then return (CLI `crieur send`, tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worked = False
            for name in self.channels:
                worked |= await self.run_once(name)
            if not worked:
                return

    async def run_once(self, channel_name: str) -> bool:
        """Claim and process one batch for one channel; False when there was nothing to do. Cancelled (a
        `crieur send` interrupted), it gives the batch's leases back at once, as a stopping worker does."""
        held = await self._claim_held(channel_name)
        try:
            if held.claimed:
                await self._process(channel_name, held.claimed, held=held)
        except asyncio.CancelledError:
            await self._give_back([d.id for d in held.claimed])
            raise
        finally:
            await held.release()
        return bool(held.claimed)

    async def _give_back(self, ids: Sequence[int] | None = None) -> None:
        """Once no send is under way (stopped, or cancelled): record what went, mark the sends cut short *in
        doubt* (the provider may have them), and give back the leases of the rest, so that they go again
        without waiting for their leases to expire. `ids`: only these deliveries (a `drain` by a worker whose
        `run` holds other batches); None: every one this worker holds. Nothing is given back when what went
        could not be recorded (`flush` raises): those wait for their leases, and go again in doubt."""
        await self.flush()
        await self.outbox.mark_in_doubt(self.worker_id, self._interrupted)
        self._interrupted.clear()
        released = await self.outbox.release(self.worker_id, ids)
        if released:
            log.info("worker %s released %d leases", self.worker_id, released)

    # -------------------------------------------------------------- internals

    def _batch_size(self, channel_name: str) -> int:
        """No more than the channel can send within half a lease, so leases never expire under a live
        worker that is merely rate-limited."""
        rate = self.channels[channel_name].rate
        return max(1, min(self.settings.batch, math.floor(rate * self.settings.lease / 2)))

    async def _claim(self, channel_name: str) -> list[Delivery]:
        return await self.outbox.claim(
            self.worker_id, self._batch_size(channel_name), self.settings.lease, [channel_name]
        )

    async def _channel_loop(self, name: str) -> None:
        """Batch after batch, through `concurrency` senders shared by consecutive batches. The next batch is
        claimed once few deliveries of the current one still wait for a sender (`_low_water`), and its
        sends start as soon as senders free up: the provider never waits for the database, nor for the
        slowest send of a batch. Each batch's leases are renewed from its claim until its last send is
        recorded."""
        senders = _Senders(functools.partial(self._deliver, name), self.settings.concurrency, self._low_water(name))
        batches: set[asyncio.Task[None]] = set()
        ahead: asyncio.Task[_Held] | None = None
        try:
            while not self._stopping.is_set():
                try:
                    next_batch, ahead = ahead, None
                    held = await (next_batch if next_batch is not None else self._claim_held(name))
                    if held.claimed:
                        batch = self._hand(senders, held.claimed, held)
                        finishing = asyncio.create_task(self._finish_batch(name, batch))
                        batches.add(finishing)
                        finishing.add_done_callback(batches.discard)
                        await senders.low(batch)
                        if not self._stopping.is_set():
                            ahead = asyncio.create_task(self._claim_held(name))
                    else:
                        await held.release()
                    worked = bool(held.claimed)
                except Exception:  # a database hiccup (PostgreSQL restart): log, wait, go on
                    log.exception("worker %s: channel %s loop error", self.worker_id, name)
                    worked = False
                    await asyncio.sleep(1.0)
                if not worked and not self._stopping.is_set():
                    await _first_of(self.outbox.wait_for_work(self.settings.idle_wait), self._stopping.wait())
            await asyncio.gather(*batches, return_exceptions=True)  # the sends handed out finish
        finally:
            await senders.close()
            self._interrupted += senders.interrupted
        if ahead is not None:  # claimed but not sent: run() gives its leases back
            with contextlib.suppress(Exception):
                unsent = await ahead
                self.withheld.forget(d.id for d in unsent.claimed)
                await unsent.release()

    def _low_water(self, channel_name: str) -> int:
        """Deliveries still waiting for a sender when the next batch is claimed: enough to keep the senders
        busy while the claim runs, and at most half a batch, so that no more than about two batches are in
        hand (a slow channel's senders wait for its rate with a delivery each)."""
        return min(self.settings.concurrency, self._batch_size(channel_name) // 2)

    def _hand(self, senders: _Senders, claimed: list[Delivery], held: _Held | None) -> _Batch:
        self.withheld.expect(d.id for d in claimed)
        return senders.hand(claimed, held)

    async def _finish_batch(self, name: str, batch: _Batch) -> None:
        """Once a batch's sends are done: record them, and give its leases up; its errors are logged here."""
        try:
            await self._settle(batch)
        except Exception:  # a database hiccup while recording: what was not recorded is retried in doubt
            log.exception("worker %s: channel %s batch error", self.worker_id, name)
        finally:
            if batch.held is not None:
                await batch.held.release()

    async def _settle(self, batch: _Batch) -> None:
        """Wait for a batch's sends, record them, and raise the first error one of them raised."""
        try:
            await batch.finished.wait()
        finally:
            self.withheld.forget(d.id for d in batch.claimed)
        await self.flush()
        if batch.errors:
            raise batch.errors[0]

    async def _claim_held(self, name: str) -> "_Held":
        """Claim a batch, and keep renewing its leases until `release()`."""
        lease = self.settings.lease
        started = time.monotonic()
        claimed = await self._claim(name)
        # renewed every third of a lease: a send needs a third of a lease still ahead of it
        held = _Held(claimed, asyncio.Event(), valid_until=started + lease, margin=lease / 3)
        self.withheld.expect(d.id for d in claimed)  # asked about with the batch in hand, before its sends start
        if claimed:
            held.renewal = asyncio.create_task(self._renew_leases([d.id for d in claimed], held))
        return held

    async def _process(self, name: str, claimed: list[Delivery], held: _Held | None = None) -> None:
        """Send a claimed batch through senders of its own (a database error in one of the sends is raised
        after the others are done); its leases are renewed meanwhile (`_claim_held`), so a slow provider
        never lets another worker take a delivery this one is still sending."""
        senders = _Senders(functools.partial(self._deliver, name), self.settings.concurrency)
        try:
            await self._settle(self._hand(senders, claimed, held))
        finally:
            await senders.close()
            self._interrupted += senders.interrupted

    async def _renew_leases(self, ids: list[int], held: _Held) -> None:
        while not held.done.is_set():
            try:
                await asyncio.wait_for(held.done.wait(), self.settings.lease / 3)
                return
            except asyncio.TimeoutError:
                pass
            started = time.monotonic()
            try:
                renewed = await self.outbox.renew(self.worker_id, ids, self.settings.lease)
            except Exception as exc:  # the lease may lapse: the sends stop (`_Held.holds`), recovery takes over
                log.warning("worker %s could not renew its leases: %s", self.worker_id, exc)
            else:
                held.renewed = renewed
                held.valid_until = started + self.settings.lease
                ids = [i for i in ids if i in renewed]

    async def _deliver(self, name: str, delivery: Delivery, held: _Held | None = None) -> None:
        channel = self.channels[name]
        message = message_of(delivery)
        if delivery.extra.get("reply_after"):
            message = await self._under_parent(message, str(delivery.extra["reply_after"]))
        if delivery.in_doubt and not channel.idempotent:
            try:
                found = await channel.find_sent(message, since=(delivery.first_attempt_at or 0) - 5)
            except DeliveryError as exc:
                await self._failed_attempt(name, delivery, exc, in_doubt=True)  # still unknown
                return
            if found is not None:
                log.info("delivery %s was already accepted by the provider (%s)", delivery.key, found.provider_id)
                await self._record_sent(delivery, found)
                return
        bucket = self.buckets[name]
        if bucket.must_wait():  # no share of the send budget for a delivery that will not be sent
            if await self._withheld(name, delivery):
                return
        try:
            for last_try in (False, True):
                await bucket.acquire()
                taken = time.monotonic()
                if await self._withheld(name, delivery):  # asked after the token: a newer version may have come
                    return
                if last_try or time.monotonic() - taken <= SharedBucket.LATE_SLOT:
                    break
                # The answer needed a query that took long (a busy database or event loop): sent now, the
                # send would reach the provider with those of the next tokens, above the rate for that
                # second. The token is let go, as the budget drops a slot long gone, and a new one taken.
                self.on_event("late token", {"channel": name})
        finally:
            self.withheld.forget((delivery.id,))
        if held is not None and not held.holds(delivery.id):  # left as it is: whoever takes it next decides, in doubt
            raise LeaseLost(f"delivery {delivery.key}: the lease of worker {self.worker_id} may have lapsed")
        try:
            receipt = await channel.send(message)
        except DeliveryError as exc:
            await self._failed_attempt(name, delivery, exc, in_doubt=exc.code in AMBIGUOUS_CODES)
        except Exception as exc:  # an adapter bug must not kill the worker: count it as transient
            log.exception("channel %s raised unexpectedly for %s", name, delivery.key)
            await self._failed_attempt(
                name, delivery, DeliveryError(f"{type(exc).__name__}: {exc}"), transient=True, in_doubt=True
            )
        else:
            await self._record_sent(delivery, receipt)

    async def _under_parent(self, message: Message, parent_key: str) -> Message:
        """A post queued while the one it follows was still being sent (alerts.fanout: an update published
        seconds after its alert) goes in that one's thread, under it, if it went; else as it was queued
        (under the last post of the thread that had gone by then, or none)."""
        parent = await self.outbox.delivery(parent_key)
        if parent is None or parent.state is not DeliveryState.SENT or not parent.provider_id:
            return message
        root = str(message.extra.get("reply_root") or message.reply_to or parent.provider_id)
        extra = {k: v for k, v in message.extra.items() if k not in ("reply_after", "reply_root")}
        if root != parent.provider_id:
            extra["reply_root"] = root
        return dataclasses.replace(message, reply_to=parent.provider_id, extra=extra)

    async def _withheld(self, name: str, delivery: Delivery) -> bool:
        """Whether a newer version of its alert replaced the delivery, or its recipient opted out (on a
        channel that sends to people): then it ends *cancelled* and True is returned."""
        why = await self.withheld.answer(delivery.id)
        if why == "opt-out" and not (delivery.recipient and self.channels[name].per_recipient):
            why = None
        if why is None:
            return False
        reason = (
            "superseded: a newer version of the alert replaced it before sending"
            if why == "superseded"
            else "opt-out: the number opted out before sending"
        )
        await self.outbox.mark_ended(delivery, self.worker_id, DeliveryState.CANCELLED, reason)
        self.on_event("cancelled", {"channel": name})
        return True

    async def _record_sent(self, delivery: Delivery, receipt: Receipt) -> None:
        self._sent.append((delivery.id, receipt.provider_id, receipt.status))
        self.on_event("sent", {"channel": delivery.channel})
        if len(self._sent) >= 200 or time.monotonic() - self._last_flush > self.settings.flush_every:
            await self.flush()

    async def flush(self) -> None:
        async with self._flush_lock:
            batch, self._sent = self._sent, []
            self._last_flush = time.monotonic()
            if batch:
                try:
                    await self.outbox.mark_sent(self.worker_id, batch)
                except BaseException:  # keep them for the next flush rather than leave them in doubt
                    self._sent = batch + self._sent
                    raise

    async def _failed_attempt(
        self, name: str, delivery: Delivery, exc: DeliveryError, transient: bool = False, in_doubt: bool = False
    ) -> None:
        """Retry later (kept *in doubt* when the provider may have accepted it), or end the delivery."""
        error = f"{type(exc).__name__}: {exc}" + (f" (code {exc.code})" if exc.code else "")
        if isinstance(exc, RateLimited):
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else backoff_delay(delivery.attempts, self.settings.retry_initial, self.settings.retry_max)
            )
            self.buckets[name].pause(wait)
        else:
            wait = backoff_delay(delivery.attempts, self.settings.retry_initial, self.settings.retry_max)
        retryable = transient or exc.retryable
        if retryable and delivery.attempts < self.settings.max_attempts:
            await self.outbox.mark_retry(delivery, self.worker_id, error, time.time() + wait, in_doubt=in_doubt)
            self.on_event("retry", {"channel": name, "error": error})
            return
        state = DeliveryState.DEAD if retryable else DeliveryState.FAILED
        await self.outbox.mark_ended(delivery, self.worker_id, state, error)
        self.on_event(state.value, {"channel": name, "error": error})
        log.warning("delivery %s %s: %s", delivery.key, state.value, error)
        if isinstance(exc, PermanentError) and exc.recipient_action and delivery.recipient:
            await self.store.opt_out(delivery.recipient, reason=exc.recipient_action)
            log.info("recipient of %s marked %s", delivery.key, exc.recipient_action)
