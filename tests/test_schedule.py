"""Scheduled messages, on SQLite and PostgreSQL: a rule's `publish_at: onset` holds the alert until the item's
onset (approved early, it still waits), `end_after` sends its "fin d'alerte" on time, once; a scheduled alert
is not on the public page. Channels in dry-run record what they send; the scheduler's clock is injected."""

from __future__ import annotations

import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import load_config
from alerts.domain import AlertStatus, Item, MsgType, Road, Severity
from alerts.schedule import Scheduler
from alerts.service import Crieur
from alerts.web import site
from rules.loader import load_rules
from rules.yamlcheck import ValidationFailed
from tests.test_service import config_text, sent

RULES = """\
mode: first-match
rules:
  - name: arrete-neige
    when: {{keywords: [neige]}}
    then:
      channels: [mastodon]
      publish_at: onset
      end_after: 3h{extra}
"""


def rules_file(tmp_path, extra: str = ""):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(extra=extra))
    return path


async def open_crieur(tmp_path, db_url, extra: str = "") -> Crieur:
    path = tmp_path / "crieur.yaml"
    path.write_text(config_text(tmp_path, db_url, rules=str(rules_file(tmp_path, extra))))
    service = Crieur(load_config(path))
    await service.open()
    return service


def arrete(onset: datetime) -> Item:
    now = datetime.now(timezone.utc)
    return Item(
        source="prefecture-41",
        external_id="arrete-1",
        title="Arrêté : neige sur la RD 957",
        text="Circulation interdite aux poids lourds à partir de l'heure indiquée.",
        msg_type=MsgType.ALERT,
        severity=Severity.MODERATE,
        roads=(Road("D", "957"),),
        sent=now,
        onset=onset,
        expires=onset + timedelta(hours=12),
    )


@pytest.fixture
def clock():
    return [time.time()]


async def test_published_at_onset_and_ended_after_three_hours(tmp_path, db_url, clock):
    crieur = await open_crieur(tmp_path, db_url)
    try:
        scheduler = Scheduler(crieur, clock=lambda: clock[0])
        onset = datetime.now(timezone.utc) + timedelta(hours=2)
        [alert] = await crieur.process_items([arrete(onset)])
        assert alert.status is AlertStatus.SCHEDULED and alert.publish_at == onset
        assert alert.end_at == onset + timedelta(hours=3)
        await crieur.drain()
        assert sent(crieur, "mastodon") == [] and await site.current_alerts(crieur) == []
        clock[0] = onset.timestamp() - 60
        assert await scheduler.tick() == ([], [])
        clock[0] = onset.timestamp() + 1
        assert await scheduler.tick() == ([alert.id], [])
        assert await scheduler.tick() == ([], [])  # once
        await crieur.drain()
        assert len(sent(crieur, "mastodon")) == 1
        clock[0] = onset.timestamp() + 3 * 3600 + 1
        assert await scheduler.tick() == ([], [alert.id])
        assert await scheduler.tick() == ([], [])
        await crieur.drain()
        posts = sent(crieur, "mastodon")
        assert len(posts) == 2 and "FIN" in str(posts[1]).upper()
        assert (await crieur.store.alert(alert.id)).status is AlertStatus.ENDED
    finally:
        await crieur.stop()


async def test_approved_ahead_of_its_time_it_still_waits(tmp_path, db_url, clock):
    crieur = await open_crieur(tmp_path, db_url, extra="\n      approve: true")
    try:
        scheduler = Scheduler(crieur, clock=lambda: clock[0])
        onset = datetime.now(timezone.utc) + timedelta(hours=1)
        [alert] = await crieur.process_items([arrete(onset)])
        assert alert.status is AlertStatus.PENDING_APPROVAL
        approved = await crieur.approve(alert.id, by="jd")
        assert approved.status is AlertStatus.SCHEDULED
        await crieur.drain()
        assert sent(crieur, "mastodon") == []
        clock[0] = onset.timestamp() + 5
        assert await scheduler.tick() == ([alert.id], [])
        await crieur.drain()
        assert len(sent(crieur, "mastodon")) == 1
    finally:
        await crieur.stop()


def test_schedule_keys_are_checked(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent("""\
        mode: first-match
        rules:
          - name: r
            then:
              channels: [mastodon]
              publish_at: demain
              end_after: longtemps
        """)
    )
    with pytest.raises(ValidationFailed) as failed:
        load_rules([path])
    text = "\n".join(str(e) for e in failed.value.errors)
    assert "rules.yaml:6:19: then.publish_at: expected one of onset" in text
    assert "rules.yaml:7:18: then.end_after: expected a duration" in text


async def test_scheduled_from_the_console_in_paris_time(tmp_path, db_url, clock, monkeypatch):
    """The compose form's "Publier le" / "Fin d'alerte le" (Paris time): held as scheduled, listed on the
    dashboard, out at its time, ended at its end, audited; a time already past or an end before the start
    is refused with the field named."""
    from zoneinfo import ZoneInfo

    from tests.test_exercise import console

    paris = ZoneInfo("Europe/Paris")
    crieur = await open_crieur(tmp_path, db_url)
    client, csrf = await console(crieur, monkeypatch)
    try:
        scheduler = Scheduler(crieur, clock=lambda: clock[0])
        start = (datetime.now(paris) + timedelta(hours=2)).replace(second=0, microsecond=0)
        end = start + timedelta(hours=3)
        form = [
            ("csrf", csrf),
            ("text", "Déneigement de nuit sur la RD 957\nCirculation alternée entre Blois et Vendôme."),
            ("territories", "41"),
            ("channels", "mastodon"),
            ("severity", "2"),
        ]
        at = {"publish_at": start.strftime("%Y-%m-%dT%H:%M"), "end_at": end.strftime("%Y-%m-%dT%H:%M")}

        past = (datetime.now(paris) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        refused = await client.post("/console/compose", data=[*form, ("action", "send"), ("publish_at", past)])
        assert refused.status == 400 and "L&#39;heure de publication est passée" in await refused.text()
        backwards = [("publish_at", at["publish_at"]), ("end_at", at["publish_at"])]
        refused = await client.post("/console/compose", data=[*form, ("action", "send"), *backwards])
        assert refused.status == 400 and 'href="#end_at-field"' in await refused.text()
        garbled = await client.post("/console/compose", data=[*form, ("action", "send"), ("publish_at", "demain")])
        assert garbled.status == 400 and "Heure de publication illisible" in await garbled.text()
        assert await crieur.store.alerts(tuple(AlertStatus), limit=5) == []

        sent_form = await client.post(
            "/console/compose", data=[*form, ("action", "send"), *at.items()], allow_redirects=False
        )
        assert sent_form.headers["Location"] == "/console?msg=scheduled"
        [alert] = await crieur.store.alerts(tuple(AlertStatus), limit=5)
        assert alert.status is AlertStatus.SCHEDULED
        assert alert.publish_at == start.astimezone(timezone.utc) and alert.end_at == end.astimezone(timezone.utc)
        dashboard = await (await client.get("/console")).text()
        assert "Programmées (1)" in dashboard and f"{start.hour} h" in dashboard.split("Programmées")[1]
        await crieur.drain()
        assert sent(crieur, "mastodon") == [] and await site.current_alerts(crieur) == []

        clock[0] = start.timestamp() + 1
        assert await scheduler.tick() == ([alert.id], [])
        await crieur.drain()
        assert len(sent(crieur, "mastodon")) == 1
        clock[0] = end.timestamp() + 1
        assert await scheduler.tick() == ([], [alert.id])
        await crieur.drain()
        assert len(sent(crieur, "mastodon")) == 2
        from alerts.web import accounts

        [entry] = [r for r in await accounts.audit_log(crieur.store) if r["action"] == "publish"]
        assert entry["username"] == "camille" and "programmée le" in entry["detail"] and "fin le" in entry["detail"]
    finally:
        await client.close()
        await crieur.stop()
