"""Conversations benchmark: a snow night's burst of questions about one road, and one CM answer to them all.

    python bench/conversations.py [--questions 2000]

On SQLite and on PostgreSQL (CRIEUR_TEST_PG_DSN, default the local `test` database, in a schema made and
dropped here), `--questions` questions about the D957 arrive on five channels (SMS, Mastodon, Bluesky,
Facebook, e-mail), each routed by the competence directory, grouped and stored with its thread; then one
answer to the group is fitted to each channel and queued for every asker in one transaction. Prints:
  ask           questions routed, grouped and stored per second (Citizens.ask, one after the other)
  inbox         milliseconds to list the groups (the console's Questions page query)
  answer        milliseconds for Conversations.answer_group over the whole group, and per asker
Goals are printed next to the figures, not asserted: the desk should take a burst of hundreds of questions
a minute with room to spare, and a CM's answer to 2,000 askers should be queued within a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import tempfile
import time
from types import SimpleNamespace

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.citizens import Citizens, FloodLimits, Thread  # noqa: E402
from alerts.config import ServiceConfig  # noqa: E402
from alerts.storage import open_store  # noqa: E402
from channels.bluesky import BlueskyChannel  # noqa: E402
from channels.email import EmailChannel  # noqa: E402
from channels.facebook import FacebookChannel  # noqa: E402
from channels.mastodon import MastodonChannel  # noqa: E402
from channels.twilio import TwilioChannel  # noqa: E402
from rules.competence import Directory  # noqa: E402

DATA = ROOT / "tests" / "data" / "citizens"


def channels() -> dict[str, object]:
    return {
        "sms": TwilioChannel.for_dry_run("sms", {"from": "+33757000041"}),
        "mastodon": MastodonChannel.for_dry_run("mastodon", {"base_url": "https://mastodon.example"}),
        "bluesky": BlueskyChannel.for_dry_run("bluesky", {"identifier": "cd41.bsky.social"}),
        "facebook": FacebookChannel.for_dry_run("facebook", {"page_id": "41"}),
        "email": EmailChannel.for_dry_run("email", {"host": "127.0.0.1", "from": "route41@departement-41.example"}),
    }


def thread(i: int) -> tuple[Thread, str]:
    kind = i % 5
    if kind == 0:
        return Thread("sms", channel="sms", recipient=f"+3361{i:07d}"), f"+3361{i:07d}"
    if kind == 1:
        return Thread("mastodon", channel="mastodon", reply_to=str(110_000_000 + i)), f"h{i}@mastodon.example"
    if kind == 2:
        ref = f"at://did:plc:h{i}/app.bsky.feed.post/3k{i}|bafyrei{i:052d}"
        return Thread("bluesky", channel="bluesky", reply_to=ref, root=ref), f"h{i}.bsky.social"
    if kind == 3:
        return Thread("facebook", channel="facebook", reply_to=f"41_{i}"), f"Habitant {i}"
    return Thread("email", channel="email", recipient=f"h{i}@example.org", reply_to=f"<{i}@example.org>"), (
        f"h{i}@example.org"
    )


async def scenario(label: str, url: str, count: int) -> None:
    store = await open_store(url)
    with tempfile.TemporaryDirectory() as folder:
        config = ServiceConfig(path=pathlib.Path(folder) / "crieur.yaml", name="Département de Loir-et-Cher")
        host = SimpleNamespace(
            config=config,
            store=store,
            channels=channels(),
            directory=Directory.load(DATA / "authorities.yaml"),
            rules=None,
            metrics=None,
        )
        citizens = Citizens(host, limits=FloodLimits(per_number=10**6, replies=10**6))  # type: ignore[arg-type]
        started = time.perf_counter()
        for i in range(count):
            way, sender = thread(i)
            await citizens.ask(way.medium, sender, "La D957 est-elle ouverte vers Vendôme ?", thread=way)
        asked = time.perf_counter() - started
        started = time.perf_counter()
        groups = await store.inbox.groups()
        listed = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        answer = "La D957 est rouverte entre Blois et Vendôme, chaussée glissante : prudence. " * 6
        _, answered = await citizens.conversations.answer_group("road:D957", answer, author="bench", initials="JD")
        answering = (time.perf_counter() - started) * 1000
    await store.close()
    assert answered == count and groups[0]["total"] == count, (answered, groups[:3])
    print(
        f"{label:10} ask {count / asked:7.0f} questions/s   inbox {listed:6.1f} ms   "
        f"answer {answering:7.0f} ms for {count} askers ({answering / count:.2f} ms each)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=2000)
    args = parser.parse_args()
    print(f"{args.questions} questions about the D957 on five channels, then one answer to all")
    print("goals: ask well above 10 questions/s (a burst of hundreds a minute); answer within a few seconds")
    with tempfile.TemporaryDirectory() as folder:
        await scenario("sqlite", f"sqlite:///{folder}/bench.db", args.questions)
    from tests.conftest import drop_pg_schema, make_pg_schema

    dsn = await make_pg_schema()
    try:
        await scenario("postgresql", dsn, args.questions)
    finally:
        await drop_pg_schema(dsn)


if __name__ == "__main__":
    asyncio.run(main())
