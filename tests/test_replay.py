"""`crieur replay` on the bundled recorded episode, on SQLite and PostgreSQL: the report counts exactly what a
live run of the same documents, at their own dates, queued on each channel (subscribers included), and a
proposed rule set changes it. Nothing is sent (dry-run) and the live database is not written."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from datetime import datetime, timedelta, timezone

from alerts.cli import main as cli_main
from alerts.config import load_config
from alerts.replay import recorded_items, replay
from alerts.service import Crieur
from tests.conftest import EXAMPLES
from tests.test_service import config_text

EPISODE = EXAMPLES / "episode-2013-01-neige-41"
SUBSCRIBERS = [("+33698765401", "41"), ("+33698765402", "41"), ("+33698765403", "28")]


async def live_run(config, items) -> Counter:
    crieur = Crieur(config)
    await crieur.open()
    try:
        await crieur.store.add_subscribers(SUBSCRIBERS)
        for item in items:  # hours apart in the episode: each version is sent before the next one comes
            crieur.now = lambda: item.sent or datetime.now(timezone.utc)  # noqa: B023
            await crieur.process_items([item])
            await crieur.drain()
        rows = await crieur.store.db.fetch("SELECT channel, kind FROM deliveries WHERE state = 'sent'")
        return Counter((r["channel"], r["kind"]) for r in rows)
    finally:
        await crieur.stop()


def write_config(tmp_path, database: str):
    """The example's rules and channels (dry-run), with the episode's source."""
    path = tmp_path / "crieur.yaml"
    source = f'sources:\n  - {{name: meteo-vigilance, kind: cap, url: "file:{EPISODE}/meteo-vigilance/1-vigilance-orange.xml"}}\n'
    path.write_text(config_text(tmp_path, database).replace("\nchannels:", "\n" + source + "channels:", 1))
    return path


async def test_the_replay_reports_what_the_live_run_sent(tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    config = load_config(path)
    items, unread = recorded_items(EPISODE, config.sources)
    assert unread == [] and [i.msg_type.value for i in items] == ["Alert", "Update", "Cancel"]
    assert all(i.source == "meteo-vigilance" for i in items)

    report = await replay(load_config(path), items, subscribers=SUBSCRIBERS)
    sent = await live_run(load_config(path), items)
    assert sent and report.deliveries == sent
    assert report.deliveries[("sms", "Alert")] == 2  # the two subscribers of 41, not the one of 28
    assert report.territories["41"]["sms"] == sum(n for (c, _k), n in sent.items() if c == "sms")
    assert report.sms_segments >= report.sms_messages > 0 and report.sms_cost > 0

    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(
        textwrap.dedent("""\
        mode: first-match
        rules:
          - name: vigilance-mastodon-seulement
            when: {source: [meteo-vigilance], msg_type: [Alert, Update]}
            then: {channels: [mastodon], territories: ["41"]}
        """)
    )
    other = await replay(load_config(path), items, rules=[proposed], subscribers=SUBSCRIBERS)
    assert set(c for c, _k in other.deliveries) == {"mastodon"} and other.sms_messages == 0


def test_the_command_prints_a_json_report(tmp_path, capsys):
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'live.db'}")
    assert cli_main(["replay", str(EPISODE), "--config", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 3 and report["alerts"] >= 2
    assert {d["channel"] for d in report["deliveries"]} >= {"mastodon", "web"}


def test_stored_items_between_two_dates_are_replayed(tmp_path, capsys):
    import asyncio

    from alerts.storage import open_store

    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'live.db'}")
    items, _ = recorded_items(EPISODE, load_config(path).sources)

    async def store_them() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 'live.db'}")
        try:
            await store.ingest(items[:2])  # the alert and its update; the cancel never came
        finally:
            await store.close()

    asyncio.run(store_them())
    today = datetime.now(timezone.utc).date()
    assert (
        cli_main(
            [
                "replay",
                "--config",
                str(path),
                "--from",
                str(today - timedelta(days=1)),
                "--to",
                f"{today + timedelta(days=1)}T00:00",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 2 and report["alerts"] == 2  # the alert, then its update
    assert ("mastodon", "Update") in {(d["channel"], d["kind"]) for d in report["deliveries"]}
    assert cli_main(["replay", "--config", str(path), "--from", "2000-01-01", "--to", "2000-01-02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 0
