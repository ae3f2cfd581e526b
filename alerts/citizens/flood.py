"""Flood limits: SMS pumping, a script texting us.

A number that sent more than `per_number` messages in `per_number_window` seconds is ignored (nothing
stored, empty TwiML); beyond `replies` answers in `replies_window` seconds over all numbers, messages are
still handled (a subscription is made, a question stored and routed) but no reply is sent, since replies
are what cost money. A stop word is always honoured, even from a limited number. Counters live in the
database (alerts.shared_limits), so the limits hold for all web processes together: `per_number` messages
at once, then one every `per_number_window / per_number` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
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
