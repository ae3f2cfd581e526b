"""Run an in-process DeliveryWorker until the outbox is drained (or a deadline passes)."""

from __future__ import annotations

import asyncio
import time

from alerts.delivery import DeliveryWorker
from alerts.storage import Store

from .worker import pending


async def run_until_drained(worker: DeliveryWorker, store: Store, timeout: float) -> float:
    """Seconds it took; AssertionError (with the outbox state) when still not drained after `timeout`."""
    started = time.monotonic()
    task = asyncio.create_task(worker.run())
    try:
        while await pending(store):
            if task.done():
                task.result()
                raise AssertionError("the worker stopped before the outbox was drained")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"outbox not drained after {timeout} s: {await store.queue_stats()}")
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 15)
    return time.monotonic() - started
