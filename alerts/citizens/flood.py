"""Flood limits: SMS pumping, a script texting us.

A number that sent more than `per_number` messages in `per_number_window` seconds is ignored (nothing
stored, empty TwiML); beyond `replies` answers in `replies_window` seconds over all numbers, messages are
still handled (a subscription is made, a question stored and routed) but no reply is sent, since replies
are what cost money. A stop word is always honoured, even from a limited number. Counters live in this
process: with several web processes the limits apply to each of them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FloodLimits:
    per_number: int = 5
    per_number_window: float = 600.0
    replies: int = 200
    replies_window: float = 60.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, where: str = "citizens.limits") -> "FloodLimits":
        """Read {per_number, per_number_window, replies, replies_window}; a bad value raises ValueError
        naming the field."""
        values: dict[str, Any] = {}
        for name, value in (raw or {}).items():
            if name not in cls.__dataclass_fields__:
                raise ValueError(f"{where}.{name}: unknown setting (known: {', '.join(cls.__dataclass_fields__)})")
            kind = int if name in ("per_number", "replies") else float
            try:
                number = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}.{name}: expected a number, not {value!r}") from None
            if number <= 0:
                raise ValueError(f"{where}.{name}: must be positive, not {value!r}")
            values[name] = number
        return cls(**values)


class SlidingCounter:
    """Events in the last `span` seconds, per key, never more than `limit` kept per key."""

    def __init__(self, limit: int, span: float, clock: Callable[[], float], max_keys: int = 100_000):
        self.limit, self.span, self.clock, self.max_keys = limit, span, clock, max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Count one event for `key` if it is under its limit; False (and nothing counted) otherwise."""
        now = self.clock()
        events = self._events.get(key)
        if events is None:
            self._bound(now)  # before inserting, so the new key is never the one evicted
            events = self._events[key] = deque()
        while events and events[0] <= now - self.span:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        self._events.move_to_end(key)
        return True

    def _bound(self, now: float) -> None:
        """Make room for one more key: drop expired keys, then the least recently counted ones."""
        if len(self._events) < self.max_keys:
            return
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.span]:
            del self._events[key]
        while len(self._events) >= self.max_keys:
            self._events.popitem(last=False)


# ----------------------------------------------------------------------------------------- helpers
