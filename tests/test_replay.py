"""`crieur replay` on the bundled recorded episode, on SQLite and PostgreSQL: the report counts exactly what a
live run of the same documents, at their own dates, queued on each channel (subscribers included), and a
proposed rule set changes it. Nothing is sent (dry-run) and the live database is not written."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

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
    today = datetime.now(ZoneInfo("Europe/Paris")).date()  # --from and --to are Paris dates
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


async def test_real_published_documents_replayed_as_the_live_run_sends_them(tmp_path, db_url):
    """The shared CAP samples (real documents published by others, read in place, never copied), years apart,
    are read as the episode's source and a rule relays the severe warnings; the replay's report is
    again exactly what a live run sends, and documents years apart replay at once (the clock jumps from one
    due moment to the next)."""
    from tests.conftest import SAMPLES

    assert SAMPLES.is_dir(), "the shared samples are missing"
    rules = tmp_path / "relayer.yaml"
    rules.write_text(
        textwrap.dedent("""\
        mode: first-match
        rules:
          - name: relayer-les-avertissements
            when: {source: [meteo-vigilance], msg_type: [Alert, Update], severity: Severe}
            then: {channels: [mastodon, sms], territories: ["41"]}
        """)
    )
    path = write_config(tmp_path, db_url)
    path.write_text(path.read_text().replace(str(EXAMPLES / "loir-et-cher" / "rules.yaml"), str(rules)))
    items, unread = recorded_items(SAMPLES / "cap", load_config(path).sources)  # CAP warnings from 2003 to 2023
    years = {i.sent.year for i in items if i.sent}
    assert len(items) >= 20 and max(years) - min(years) >= 10 and unread == []
    report = await replay(load_config(path), items, subscribers=SUBSCRIBERS)
    sent = await live_run(load_config(path), items)
    assert report.items == len(items) and report.alerts == 2  # the severe ones, of 2003 and 2012
    assert sent[("mastodon", "Alert")] == 2 and report.deliveries == sent
    assert report.sms_messages == sum(n for (c, _k), n in sent.items() if c == "sms") > 0


async def test_the_replay_pages_the_rota_at_the_episode_s_own_times(tmp_path, db_url, monkeypatch):
    """A rule holds the orange warning for approval, 20 minutes, then publishes: on that Saturday afternoon
    (19 January 2013, a weekend) the replay pages the CM on call (after 5 minutes) and the back-up (10 more),
    by SMS and e-mail, before the rule publishes at the deadline; the report counts the pages per person."""
    monkeypatch.setenv("CRIEUR_SECRET_KEY", "clé-de-signature-du-rejeu-41")
    rules = tmp_path / "approve.yaml"
    rules.write_text(
        textwrap.dedent("""\
        mode: first-match
        rules:
          - name: vigilance-a-valider
            when: {source: [meteo-vigilance], msg_type: [Alert]}
            then:
              channels: [mastodon]
              territories: ["41"]
              approve: {within: 20m, otherwise: publish}
        """)
    )
    rota = tmp_path / "astreinte.yaml"
    rota.write_text(
        (EXAMPLES / "loir-et-cher" / "astreinte.yaml").read_text(encoding="utf-8")
        + "channels: {sms: sms, email: email}\n"
    )
    path = write_config(tmp_path, db_url)
    text = path.read_text().replace(str(EXAMPLES / "loir-et-cher" / "rules.yaml"), str(rules))
    path.write_text(text.replace("  workers: 0\n", f"  workers: 0\n  oncall: {rota}\n", 1))
    items, _ = recorded_items(EPISODE, load_config(path).sources)
    report = await replay(load_config(path), items, subscribers=SUBSCRIBERS)
    assert report.pages == {"camille": 2, "yanis": 2}  # SMS and e-mail each; the head was never reached
    assert report.deliveries[("mastodon", "Alert")] == 1 and report.pending == 0
