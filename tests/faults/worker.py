"""A delivery worker as its own process, on one Twilio channel pointed at a fake Twilio.

    python -m tests.faults.worker --db URL --api-base http://127.0.0.1:PORT [--lease 3] [--until-drained]

Prints `worker ready` once the store is open (the kill test waits for it), then runs until SIGTERM/SIGINT,
or with --until-drained until no delivery is queued or in flight, printing
`drained sent=N seconds=T` (the benchmark reads it). A SIGKILL leaves its leases to expire: that is the
point of the kill test.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

import aiohttp

from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.storage import open_store
from channels.twilio import TwilioChannel

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-token"
SENDER = "+33700000000"


def twilio_channel(api_base: str, rate: float, name: str = "sms") -> TwilioChannel:
    return TwilioChannel(
        name,
        {
            "from": SENDER,
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "api_base": api_base,
            "rate": rate,
            "timeout": 10,
        },
    )


async def pending(store) -> int:
    """Deliveries still queued or in flight (due or not)."""
    return int(await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'sending')"))


async def run(args: argparse.Namespace) -> int:
    store = await open_store(args.db)
    channel = twilio_channel(args.api_base, args.rate)
    settings = WorkerSettings(
        batch=args.batch,
        lease=args.lease,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
        idle_wait=0.2,
        retry_initial=0.05,
        retry_max=1.0,
    )
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 10))
    async with aiohttp.ClientSession(connector=connector) as session:
        await channel.start(session)
        worker = DeliveryWorker(store, {"sms": channel}, worker_id=args.worker_id or None, settings=settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        print("worker ready", flush=True)
        started = time.monotonic()
        task = asyncio.create_task(worker.run())
        if args.until_drained:
            while not task.done():
                await asyncio.sleep(0.05)
                try:
                    if await pending(store) == 0:
                        break
                except Exception as exc:  # the database may be restarting: keep waiting
                    logging.getLogger("crieur.faults").warning("progress query failed: %s", exc)
            worker.stop()
        await task
        elapsed = time.monotonic() - started
        sent = int(await store.db.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'"))
        print(f"drained sent={sent} seconds={elapsed:.3f}", flush=True)
    await store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--api-base", required=True, help="base URL of the (fake) Twilio API")
    parser.add_argument("--rate", type=float, default=1_000_000.0, help="messages/s the channel may send")
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-attempts", type=int, default=8)
    parser.add_argument("--worker-id", default="")
    parser.add_argument("--until-drained", action="store_true")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
