"""One SMS channel over several providers: the first while it works, the next when it is down.

A circuit breaker decides, not one error: `breaker_failures` provider failures (5xx, no answer) within
`breaker_window` seconds open the circuit, and the messages go through the next provider; after
`breaker_open` seconds one message tries the first provider again (half-open), and its success closes the
circuit. Exactly once holds across providers: a failure that says the provider did not take the message (a
5xx answer) is retried later by the engine, on whichever provider is then in use; a failure that leaves it
unknown (no answer) makes the delivery *in doubt*, and `find_sent` asks every provider before it is sent again.

    sms:
      kind: failover
      providers: [sms_twilio, sms_ovh]   # other channels of crieur.yaml, in order of preference
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Mapping, Sequence

import aiohttp

from .base import Channel, ConfigurationError, Message, Option, RateLimited, Receipt, TransientError, register

log = logging.getLogger("crieur.channels.failover")


class CircuitBreaker:
    """closed → (failures within the window) → open → (after `open_for`) → half-open → closed or open."""

    def __init__(
        self,
        failures: int = 5,
        window: float = 30.0,
        open_for: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if failures < 1 or window <= 0 or open_for <= 0:
            raise ValueError("breaker: failures >= 1, window and open time > 0")
        self.failures, self.window, self.open_for = failures, window, open_for
        self.clock = clock
        self._recent: deque[float] = deque()
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.open_for else "open"

    def allows(self) -> bool:
        """May a message go through this provider now? In half-open, one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._probing:
            self._probing = True
            return True
        return False

    def release(self) -> None:
        """The probe ended without saying anything about the provider (a refusal of that one message)."""
        self._probing = False

    def success(self) -> None:
        if self.opened_at is not None:
            log.info("provider back: circuit closed")
        self.opened_at = None
        self._probing = False
        self._recent.clear()

    def failure(self) -> None:
        now = self.clock()
        if self.opened_at is not None:  # the half-open probe failed: open again
            self.opened_at, self._probing = now, False
            return
        self._recent.append(now)
        while self._recent and now - self._recent[0] > self.window:
            self._recent.popleft()
        if len(self._recent) >= self.failures:
            self.opened_at = now
            self._recent.clear()


@register
class FailoverChannel(Channel):
    kind = "failover"
    declared_options = (
        Option("providers", "list", required=True, description="channels of this file, in order of preference"),
        Option("breaker_failures", "integer", default=5, description="failures that open the circuit"),
        Option("breaker_window", "number", default=30, description="seconds within which they count"),
        Option("breaker_open", "number", default=60, description="seconds before the first provider is tried again"),
    )
    per_recipient = True
    subscribers = True
    idempotent = False

    def __init__(self, name: str, options: Mapping[str, Any] | None = None):
        super().__init__(name, options)
        names = self.options.get("providers")
        if not isinstance(names, list) or len(names) < 2:
            raise ConfigurationError(f"channel {name!r}: providers must name at least two channels")
        self.provider_names: list[str] = [str(n) for n in names]
        self.settings = (
            int(self.options.get("breaker_failures", 5)),
            float(self.options.get("breaker_window", 30)),
            float(self.options.get("breaker_open", 60)),
        )
        self.providers: list[Channel] = []
        self.breakers: list[CircuitBreaker] = []

    def attach(self, channels: Mapping[str, Channel] | Sequence[Channel]) -> None:
        """Bind the named providers (build_channels calls this once every channel exists)."""
        if isinstance(channels, Mapping):
            missing = [n for n in self.provider_names if n not in channels]
            if missing:
                raise ConfigurationError(f"channel {self.name!r}: providers {', '.join(missing)} are not channels")
            providers = [channels[n] for n in self.provider_names]
        else:
            providers = list(channels)
        if any(not p.per_recipient for p in providers):
            raise ConfigurationError(f"channel {self.name!r}: every provider must send to recipients (SMS)")
        self.providers = providers
        self.breakers = [CircuitBreaker(*self.settings) for _ in providers]
        self.limits = providers[0].limits  # type: ignore[misc]
        if "rate" not in self.options:  # the engine's pace: within every provider's limit
            self.rate = min(p.rate for p in providers)

    async def start(self, session: aiohttp.ClientSession) -> None:
        await super().start(session)
        for provider in self.providers:
            if provider.session is None:
                await provider.start(session)

    def _choice(self) -> int:
        for index, breaker in enumerate(self.breakers):
            if breaker.allows():
                return index
        return len(self.providers) - 1  # every circuit open: the last one still tries

    async def send(self, message: Message) -> Receipt:
        if not self.providers:
            raise RuntimeError(f"channel {self.name!r} used before attach()")
        index = self._choice()
        provider, breaker = self.providers[index], self.breakers[index]
        try:
            receipt = await provider.send(message)
        except RateLimited:
            breaker.release()
            raise  # the provider works; it asks us to slow down
        except TransientError as exc:
            breaker.failure()
            if breaker.state != "closed":
                log.warning("channel %s: provider %s failing (%s): circuit open", self.name, provider.name, exc)
            raise
        except BaseException:
            breaker.release()  # a refusal of this message says nothing about the provider
            raise
        breaker.success()
        return receipt

    async def find_sent(self, message: Message, since: float) -> Receipt | None:
        """Ask every provider: the message may have gone through any of them."""
        for provider in self.providers:
            found = await provider.find_sent(message, since)
            if found is not None:
                return found
        return None
