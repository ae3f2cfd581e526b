"""Sliding-window limits for the public question form.

The form can make Crieur send an SMS to the number typed in it (the answer), so without a limit it would
let anyone run up the SMS bill or bombard a stranger's phone. Limits are per process and in memory:
enough for one web process; behind a reverse proxy, aiohttp must be told to trust X-Forwarded-For (or
`request.remote` is the proxy's address for everyone).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

MAX_KEYS = 50_000  # beyond this, the oldest keys are forgotten: memory stays bounded under a flood


class SlidingWindow:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one use of `key`; False (and not counted) when `limit` uses already fall in the window."""
        now = self.clock()
        hits = self._hits.pop(key, None) or deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        if hits:
            self._hits[key] = hits  # re-inserted last: dict order is least recently used first
        while len(self._hits) > MAX_KEYS:
            del self._hits[next(iter(self._hits))]
        return allowed
