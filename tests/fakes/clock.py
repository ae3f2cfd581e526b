"""A simulated clock for the rate limiters: `sleep` moves time on at once, so an hour of paced sending is
played in a moment (the limiter's arithmetic and its database budget are the real ones)."""

from __future__ import annotations

import asyncio


class SimulatedClock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
