"""Limits and memories that every Crieur process shares through the database.

A deployment runs several web and worker processes (PostgreSQL), or one process on SQLite; anything kept
in a process's memory would be multiplied by the number of processes (N workers sending N times a
provider's allowed rate) or lost on restart (a Twilio retry after a restart handled twice). What must be
shared lives in the tables of migration 0005_shared_limits:

- `rate_budgets`: rate limits by the generic cell rate algorithm (GCRA). One row per budget holds its
  *theoretical arrival time* (TAT); taking a token is one atomic UPDATE, so concurrent processes never
  share a token and no lock is held. `SharedRate.try_take` refuses when the budget is spent (HTTP limits:
  the answer is 429), `SharedRate.reserve` always takes the next free slot and says how long to wait for
  it (deliveries: the send waits). The clock is the wall clock (time.time), the one all processes share.
- `webhook_replays`: ids of webhook deliveries already handled (Twilio's MessageSid), and of the on-call
  signed links already used (alerts.oncall.links), for a day.

Everything here is one statement per call, the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger("crieur.limits")

REPLAY_TTL = 24 * 3600.0  # Twilio retries a webhook for minutes, never a day later
PRUNE_EVERY = 500  # one call in this many also deletes expired rows


def _later(a: str, b: str) -> str:
    """SQL for the later of two times (GREATEST in PostgreSQL, MAX(a, b) in SQLite), as a CASE both read."""
    return f"(CASE WHEN {a} > {b} THEN {a} ELSE {b} END)"


_NOW = "CAST($2 AS DOUBLE PRECISION)"
_TAT = _later("rate_budgets.tat", _NOW)
# $1 name, $2 now, $3 interval between tokens, $4 tolerance (burst - 1 intervals).
_TRY_TAKE = f"""
INSERT INTO rate_budgets (name, tat) VALUES ($1, {_NOW} + CAST($3 AS DOUBLE PRECISION))
ON CONFLICT (name) DO UPDATE SET tat = {_TAT} + $3
WHERE {_TAT} - $2 <= $4
RETURNING tat
"""
_RESERVE = f"""
INSERT INTO rate_budgets (name, tat) VALUES ($1, {_NOW} + CAST($3 AS DOUBLE PRECISION) * $4)
ON CONFLICT (name) DO UPDATE SET tat = {_TAT} + $3 * $4
RETURNING tat
"""
_PUSH = f"""
INSERT INTO rate_budgets (name, tat) VALUES ($1, CAST($2 AS DOUBLE PRECISION))
ON CONFLICT (name) DO UPDATE SET tat = {_later("rate_budgets.tat", "CAST($2 AS DOUBLE PRECISION)")}
"""


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` tokens a second on average, at most `burst` at once."""

    per_second: float
    burst: float = 1.0

    @classmethod
    def per(cls, count: int, seconds: float) -> "Rate":
        """`count` uses in any `seconds` window, all of them allowed at once (a form's allowance)."""
        return cls(count / seconds, float(count))

    @property
    def interval(self) -> float:
        return 1.0 / max(self.per_second, 1e-9)

    @property
    def tolerance(self) -> float:
        return (max(self.burst, 1.0) - 1.0) * self.interval


class SharedRate:
    """Rate budgets in the `rate_budgets` table of `db` (an alerts.storage Database)."""

    def __init__(self, db: Any, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    async def try_take(self, name: str, rate: Rate) -> float:
        """Take one token of budget `name`: 0.0 when taken, else the seconds until one is free (nothing
        is taken then, so a refused client does not push its own wait further)."""
        now = self.clock()
        await self._maybe_prune(now)
        taken = await self.db.fetchval(_TRY_TAKE, name, float(now), rate.interval, rate.tolerance)
        if taken is not None:
            return 0.0
        tat = await self.db.fetchval("SELECT tat FROM rate_budgets WHERE name = $1", name)
        return max(0.0, float(tat or now) - rate.tolerance - now) or rate.interval

    async def allow(self, name: str, rate: Rate) -> bool:
        return await self.try_take(name, rate) == 0.0

    async def wait(self, name: str, rate: Rate) -> float:
        """The seconds until budget `name` has a token, taking none (0.0: one is free now)."""
        now = self.clock()
        tat = await self.db.fetchval("SELECT tat FROM rate_budgets WHERE name = $1", name)
        return max(0.0, float(tat if tat is not None else now) - rate.tolerance - now)

    async def reserve(self, name: str, rate: Rate, count: int = 1, at: float | None = None) -> float:
        """Take the next `count` tokens of budget `name` whatever the wait, none before wall-clock time `at`
        (default: now); returns the wall-clock time from which the first may be used (each next one
        `rate.interval` later). Tokens of a process that dies after reserving are simply lost: the budget is
        never exceeded, at worst under-used."""
        now = self.clock()
        await self._maybe_prune(now)
        start = now if at is None else max(now, at)
        tat = float(await self.db.fetchval(_RESERVE, name, float(start), rate.interval, float(count)))
        return max(start, tat - count * rate.interval - rate.tolerance)

    async def push_back(self, name: str, until: float) -> None:
        """No token of budget `name` before wall-clock time `until` (a provider's Retry-After)."""
        await self.db.execute(_PUSH, name, float(until))

    async def _maybe_prune(self, now: float) -> None:
        # by chance rather than by count: limiters are often made per request
        if random.random() < 1 / PRUNE_EVERY:  # budgets whose TAT is long past are full: their row is useless
            await self.db.execute("DELETE FROM rate_budgets WHERE tat < $1", now - 3600.0)


class SharedBucket:
    """A provider's rate for one channel and sender, shared by every delivery worker of every process:
    the interface of alerts.delivery.TokenBucket (acquire, pause) backed by SharedRate, without burst.

    Each process reserves a few slots at a time (about `batch_seconds` worth, one statement) and uses
    each at its time; a slot it lets pass by more than LATE_SLOT seconds (a busy event loop) is dropped,
    never used later, so that in any second the provider receives at most its rate plus LATE_SLOT's worth
    (2 %) from all processes together. While other sends wait for a slot, the next reservation is asked for
    before the current one runs out, so that a busy worker's sends do not wait for the database; a lone send
    reserves only what it uses (a slot reserved ahead and not used is lost to every process)."""

    LATE_SLOT = 0.02

    def __init__(
        self,
        db: Any,
        name: str,
        per_second: float,
        *,
        batch_seconds: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.name = name
        self.rate = Rate(max(per_second, 0.001), 1.0)
        self.shared = SharedRate(db, clock)
        self.clock = clock
        self.sleep = sleep  # with `clock`, a simulated time (bench/pool.py plays hours in seconds)
        self.batch = max(1, min(1000, int(self.rate.per_second * batch_seconds)))
        self._next = 0.0  # time of the next reserved slot
        self._left = 0  # reserved slots not used yet
        self._ahead: asyncio.Task[float] | None = None  # the next reservation, asked for in advance
        self._wanting = 0  # sends waiting in acquire()
        self._last_taken = 0.0  # when the last slot was taken
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Future[Any]] = set()  # shared pauses, reservations given up

    def must_wait(self) -> bool:
        """Whether `acquire` may not return at once: paused, other sends queued for a slot, no slot held
        (one is reserved: a statement, and perhaps a wait), or the next slot still to come."""
        return self.clock() < self._paused_until or self._lock.locked() or not self._left or self._next > self.clock()

    async def acquire(self) -> None:
        interval = self.rate.interval
        late = max(interval, self.LATE_SLOT)
        if not self._lock.locked() and self._take_due(late):  # no wait: no lock either (see _take_due)
            return
        self._wanting += 1
        try:
            async with self._lock:
                while True:
                    if self._take_due(late):
                        return
                    now = self.clock()
                    if now < self._paused_until:
                        await self.sleep(self._paused_until - now)
                    elif self._left:
                        await self.sleep(self._next - now)
                    else:
                        ahead, self._ahead = self._ahead, None
                        self._next = await (ahead if ahead is not None else self._reserve())
                        self._left = self.batch
        finally:
            self._wanting -= 1

    def _take_due(self, late: float) -> bool:
        """Take a reserved slot whose time has come, if there is one (dropping those long gone). It never
        waits, so sends that find a slot due take it without queueing for the lock one after the other (a
        lock passes to its next waiter once per turn of the event loop: 64 sends queued behind it each waited
        a turn)."""
        now = self.clock()
        if now < self._paused_until:
            return False
        if self._left and now > self._next + late:  # slots long gone: dropped, not used late
            missed = min(self._left, int((now - self._next - late) / self.rate.interval) + 1)
            self._left -= missed
            self._next += missed * self.rate.interval
        if not self._left or self._next > now:
            return False
        self._left -= 1
        self._next += self.rate.interval
        self._reserve_ahead(late)
        return True

    def _reserve_ahead(self, late: float) -> None:
        """While sends follow each other (one waits, or the last slot was taken less than `late` ago), ask for
        the next reservation before this one runs out: on time, once half of it is used; behind it (the rate
        is more than this process sends), at once, for slots from the moment this one's grow late."""
        now = self.clock()
        streaming, self._last_taken = now - self._last_taken < late, now
        if self._ahead is not None or not (streaming or self._wanting):
            return
        last_slot = self._next + (self._left - 1) * self.rate.interval
        if self._next < now:  # behind its slots (the rate is more than this process sends): they run out
            # by growing late, so the next ones are wanted from then on
            self._ahead = asyncio.ensure_future(self._reserve(at=last_slot + late))
        elif self._left <= self.batch // 2:  # on time: they run out by being used, the next follow them
            self._ahead = asyncio.ensure_future(self._reserve())

    async def _reserve(self, at: float | None = None) -> float:
        return await self.shared.reserve(self.name, self.rate, self.batch, at)

    async def idle(self) -> None:
        """Wait for the statements under way (a reservation in advance, a shared pause): before closing the
        database."""
        waiting = [task for task in (self._ahead, *self._background) if task is not None]
        await asyncio.gather(*waiting, return_exceptions=True)

    def pause(self, seconds: float) -> None:
        """Every worker waits `seconds` (a 429's Retry-After): this one at once, the others through the
        shared budget, pushed forward; the slots this process holds, or has asked for, are given up."""
        until = self.clock() + seconds
        self._paused_until = max(self._paused_until, until)
        self._left = 0
        if self._ahead is not None:  # reserved before the push: its slots may fall within the pause
            self._keep(self._ahead)
            self._ahead = None
        task = asyncio.ensure_future(self._push(until))
        self._keep(task)

    def _keep(self, task: asyncio.Future[Any]) -> None:
        """Hold a statement that nobody awaits until it ends (`idle` waits for it)."""
        self._background.add(task)

        def done(task: asyncio.Future[Any]) -> None:
            self._background.discard(task)
            if not task.cancelled():
                task.exception()  # retrieved: a reservation given up may fail unseen

        task.add_done_callback(done)

    async def _push(self, until: float) -> None:
        try:
            await self.shared.push_back(self.name, until)
        except Exception as exc:  # the next reservation still waits for the provider's own answer
            log.warning("rate budget %s: pause not shared: %s", self.name, exc)


def provider_bucket(db: Any, channel: Any, **timing: Any) -> SharedBucket:
    """The shared send budget of a channel (alerts.delivery's hook); `timing`: SharedBucket's clock and
    sleep, for a simulated time."""
    return SharedBucket(db, send_budget(channel), float(getattr(channel, "rate", 1.0) or 1.0), **timing)


def sender_of(channel: Any) -> str:
    """Who a channel sends as, for its rate budget: two channels posting as the same account share one
    (the provider counts per account). Falls back to the channel's name."""
    options = getattr(channel, "options", None) or {}
    for key in ("from", "account_sid", "handle", "identifier", "page_id", "account", "username"):
        value = options.get(key)
        if value:
            return f"{getattr(channel, 'kind', '')}:{value}"
    base = options.get("base_url") or options.get("api_base") or ""
    return f"{getattr(channel, 'kind', '')}:{base}:{getattr(channel, 'name', '')}"


def send_budget(channel: Any) -> str:
    return f"send:{sender_of(channel)}"


# ------------------------------------------------------------------------------------- webhook replays


async def first_delivery(db: Any, key: str, ttl: float = REPLAY_TTL, now: float | None = None) -> bool:
    """True the first time `key` (e.g. "twilio:SM…") is seen within `ttl` seconds, by any process."""
    now = time.time() if now is None else now
    if random.random() < 1 / PRUNE_EVERY:
        await db.execute("DELETE FROM webhook_replays WHERE seen_at < $1", now - ttl)
    inserted = await db.fetchval(
        "INSERT INTO webhook_replays (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET seen_at = $2"
        " WHERE webhook_replays.seen_at < $3 RETURNING seen_at",
        key,
        float(now),
        float(now - ttl),
    )
    return inserted is not None


async def forget_delivery(db: Any, key: str) -> None:
    """Undo first_delivery (the handling failed: the provider's retry must be handled)."""
    await db.execute("DELETE FROM webhook_replays WHERE id = $1", key)


# ---------------------------------------------------------------------------------------- shared cache


async def cached_value(db: Any, name: str) -> tuple[float, str] | None:
    """(time stored, value) of a shared cache entry, or None."""
    row = await db.fetchrow("SELECT at, value FROM shared_cache WHERE name = $1", name)
    return (float(row["at"]), str(row["value"])) if row else None


async def claim_refresh(db: Any, name: str, max_age: float, now: float) -> bool:
    """True for the one process that should recompute entry `name` (absent, or older than `max_age`);
    the entry's time is moved to `now` at once, so the others keep serving the value they have."""
    claimed = await db.fetchval(
        "INSERT INTO shared_cache (name, at, value) VALUES ($1, $2, '') ON CONFLICT (name) DO UPDATE SET at = $2"
        " WHERE shared_cache.at <= $3 RETURNING name",
        name,
        float(now),
        float(now - max_age),
    )
    return claimed is not None


async def store_value(db: Any, name: str, value: str, now: float) -> None:
    await db.execute(
        "INSERT INTO shared_cache (name, at, value) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET at = $2, value = $3",
        name,
        float(now),
        value,
    )


class SharedCounter:
    """`limit` uses per `window` seconds for each key, whichever process counts them: all of them at
    once, then one every `window / limit` seconds (GCRA). `db_of` gives the database when counting (the
    owner may be built before its store is open)."""

    def __init__(
        self, db_of: Callable[[], Any], prefix: str, limit: int, window: float, clock: Callable[[], float] = time.time
    ):
        self.db_of, self.prefix, self.clock = db_of, prefix, clock
        self.rate = Rate.per(limit, window)

    async def allow(self, key: str) -> bool:
        """Count one use of `key`; False (nothing counted) when its allowance is spent."""
        return await SharedRate(self.db_of(), self.clock).allow(f"{self.prefix}:{key}", self.rate)
