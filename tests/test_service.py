"""The service's decisions between items and deliveries: updates and ends threaded on the channels,
approvals, duplicate suppression, snow episodes started and ended by rules, start-up errors, reloads.
Channels run in dry-run (they record what they would send); storage is real (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import pathlib
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import load_config
from alerts.domain import AlertStatus, Item, MsgType, Road, Severity
from alerts.ingest import SourceSpec, parse
from alerts.service import Crieur
from channels.base import ConfigurationError
from rules.yamlcheck import ValidationFailed
from tests.conftest import EXAMPLES, ROOT

EXAMPLE = EXAMPLES / "loir-et-cher"
CAP = ROOT / "tests" / "data" / "ingest"


def config_text(
    tmp_path: pathlib.Path,
    database: str,
    *,
    dry_run: bool = True,
    rules: str | None = None,
    channels: str | None = None,
) -> str:
    return textwrap.dedent(f"""
        service:
          data_dir: {tmp_path / "data"}
          database: {database}
          dry_run: {"true" if dry_run else "false"}
          territories: {EXAMPLE / "territories.yaml"}
          rules: [{rules or EXAMPLE / "rules.yaml"}]
          templates: {EXAMPLE / "templates"}
          authorities: {EXAMPLE / "authorities.yaml"}
          workers: 0
        channels:
    """) + textwrap.indent(
        channels
        or textwrap.dedent("""\
          mastodon: {kind: mastodon, base_url: "https://mastodon.example", access_token_env: NOT_SET_ANYWHERE}
          x: {kind: x, consumer_key: a, consumer_secret: b, access_token: c, access_token_secret: d}
          bluesky: {kind: bluesky, identifier: route41.test, app_password: p}
          facebook: {kind: facebook, page_id: "41", page_token: t}
          sms: {kind: twilio, account_sid: AC1, auth_token: t, from: "+33757000041"}
          email: {kind: email, host: 127.0.0.1, from: "route41@departement-41.example"}
          web: {kind: web}
        """),
        "  ",
    )


@pytest.fixture
async def crieur(tmp_path, db_url):
    path = tmp_path / "crieur.yaml"
    path.write_text(config_text(tmp_path, db_url))
    service = Crieur(load_config(path))
    await service.open()
    yield service
    await service.stop()


def sent(crieur: Crieur, channel: str) -> list[dict]:
    return crieur.channels[channel].records  # type: ignore[attr-defined]


def cap_items(name: str) -> list[Item]:
    spec = SourceSpec(name="meteo-vigilance", kind="cap", url="file:x")
    return parse(spec, (CAP / name).read_bytes(), "application/xml")


async def test_cap_alert_update_cancel_reach_the_channels_threaded(crieur):
    await crieur.on_items(None, cap_items("cap_41_alert.xml"))
    await crieur.drain()
    assert await crieur.store.active_episodes() == frozenset({"41"})  # the rule starts the snow episode
    [first] = sent(crieur, "mastodon")
    assert "#route41" in first["text"] and not first["text"].startswith("MISE")
    assert {r["recipient"] for r in sent(crieur, "sms")} == set()  # nobody subscribed yet

    await crieur.store.subscribe("+33600000001", ["41"])
    await crieur.on_items(None, cap_items("cap_41_update.xml"))
    await crieur.drain()
    update = sent(crieur, "mastodon")[1]
    assert update["text"].startswith("MISE À JOUR")
    [sms] = sent(crieur, "sms")
    assert sms["recipient"] == "+33600000001" and sms["text"].startswith("MISE A JOUR")  # GSM-7 rendering
    rows = await crieur.store.deliveries(state="sent", limit=100)
    first_post = next(r for r in rows if r.channel == "mastodon" and r.kind == "Alert")
    update_post = next(r for r in rows if r.channel == "mastodon" and r.kind == "Update")
    assert update_post.reply_to == first_post.provider_id
    published = await crieur.store.alerts()
    assert [a.msg_type for a in published] == [MsgType.UPDATE]

    await crieur.on_items(None, cap_items("cap_41_cancel.xml"))
    await crieur.drain()
    end = sent(crieur, "mastodon")[2]
    assert end["text"].startswith("FIN D'ALERTE")
    assert await crieur.store.alerts() == []
    assert await crieur.store.active_episodes() == frozenset()
    end_post = next(
        r
        for r in await crieur.store.deliveries(state="sent", limit=100)
        if r.channel == "mastodon" and r.kind == "Cancel"
    )
    assert end_post.reply_to == update_post.provider_id


def snow_item(guid: str, text: str = "Neige et verglas sur la RD 957 près de Blois.") -> Item:
    return Item(
        source="prefecture-41",
        external_id=guid,
        title="Neige sur la RD 957",
        text=text,
        severity=Severity.MODERATE,
        roads=(Road("D", "957"),),
        sent=datetime.now(timezone.utc),
        expires=datetime.now(timezone.utc) + timedelta(hours=6),
    )


async def test_outside_an_episode_snow_news_waits_for_approval(crieur):
    [alert] = [a for a in await crieur.process_items([snow_item("a")])]
    assert alert.status is AlertStatus.PENDING_APPROVAL
    assert await crieur.store.deliveries() == []
    approved = await crieur.approve(alert.id, by="jd")
    assert approved.status is AlertStatus.PUBLISHED
    await crieur.drain()
    assert len(sent(crieur, "mastodon")) == 1
    with pytest.raises(ValueError):
        await crieur.approve(alert.id, by="jd")


async def test_two_cms_approving_at_once_publish_once(crieur):
    """Approval is one conditional UPDATE: one of two simultaneous approvals wins, the other is told."""
    from alerts.errors import NotAwaitingApproval

    [alert] = await crieur.process_items([snow_item("twice")])
    outcomes = await asyncio.gather(
        crieur.approve(alert.id, by="jd"), crieur.approve(alert.id, by="mk"), return_exceptions=True
    )
    assert sum(isinstance(o, NotAwaitingApproval) for o in outcomes) == 1
    with pytest.raises(NotAwaitingApproval, match="published, not waiting for approval"):
        await crieur.reject(alert.id, by="mk")


async def test_rejected_alert_is_never_sent(crieur):
    [alert] = await crieur.process_items([snow_item("b")])
    await crieur.reject(alert.id, by="jd")
    await crieur.drain()
    assert sent(crieur, "mastodon") == [] and (await crieur.store.alert(alert.id)).status is AlertStatus.REJECTED


async def test_duplicates_within_the_window_are_suppressed(crieur):
    await crieur.start_episode("41", by="jd")
    first = await crieur.process_items([snow_item("c")])
    again = await crieur.process_items([snow_item("d")])  # another guid, same words: the same news
    other = await crieur.process_items([snow_item("e", "Congères sur la RD 957 vers Vendôme.")])
    assert len(first) == 1 and again == [] and len(other) == 1


async def test_a_missing_secret_stops_start_up_naming_the_channel(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = tmp_path / "crieur.yaml"
    path.write_text(config_text(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", dry_run=False))
    service = Crieur(load_config(path))
    with pytest.raises(ConfigurationError, match="mastodon.*NOT_SET_ANYWHERE"):
        await service.open()
    await service.stop()


async def test_config_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent("""\
        service:
          port: quatre-vingt
        sources:
          - name: pref
            kind: rss2
            url: https://prefecture.example/rss
        channels:
          pager: {kind: pager}
        citizens:
          sms_channel: sms
    """)
    )
    with pytest.raises(ValidationFailed) as failure:
        load_config(path)
    errors = [str(e) for e in failure.value.errors]
    assert any(e.startswith(f"{path}:8:10: channels.pager.kind") and "twilio" in e for e in errors), errors
    assert any(e.startswith(f"{path}:2:9: service.port") for e in errors), errors
    assert any(e.startswith(f"{path}:5:11: sources[0].kind") and "rss" in e for e in errors), errors
    assert any(e.startswith(f"{path}:10:16: citizens.sms_channel") for e in errors), errors


def test_citizens_channel_settings_are_read_and_checked(tmp_path):
    """`citizens.webhook_channel` and `citizens.mastodon_channel` name a configured channel of their kind."""
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent("""\
        channels:
          hooks: {kind: webhook, secret_env: HOOK_SECRET}
          toots: {kind: mastodon, base_url: "https://mastodon.example", access_token_env: TOKEN}
        citizens:
          webhook_channel: hooks
          mastodon_channel: toots
    """)
    )
    config = load_config(path)
    assert (config.webhook_channel, config.mastodon_channel) == ("hooks", "toots")
    path.write_text(
        textwrap.dedent("""\
        channels:
          hooks: {kind: webhook, secret_env: HOOK_SECRET}
        citizens:
          webhook_channel: nowhere
          mastodon_channel: hooks
    """)
    )
    with pytest.raises(ValidationFailed) as failure:
        load_config(path)
    errors = [str(e) for e in failure.value.errors]
    assert any(e.startswith(f"{path}:4:20: citizens.webhook_channel: no channel named 'nowhere'") for e in errors)
    assert any(
        e.startswith(f"{path}:5:21: citizens.mastodon_channel: channel 'hooks' is of kind 'webhook'") for e in errors
    ), errors


async def test_reload_keeps_the_rules_in_force_when_the_new_file_is_broken(tmp_path, db_url):
    rules = tmp_path / "rules.yaml"
    rules.write_text((EXAMPLE / "rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "crieur.yaml"
    path.write_text(config_text(tmp_path, db_url, rules=str(rules)))
    service = Crieur(load_config(path))
    await service.open()
    try:
        before = service.rules.engine
        rules.write_text(
            "mode: first-match\nrules:\n  - name: x\n    when: {severity: Big}\n    then: {channels: [sms]}\n"
        )
        errors = await service.reload_rules()
        assert errors and "rules.yaml:4" in errors[0]
        assert service.rules.engine is before
    finally:
        await service.stop()


async def test_options_yaml_cannot_build_are_errors_at_their_line(tmp_path):
    """Found by fuzzing: a list used as a key inside a channel's options."""
    path = tmp_path / "crieur.yaml"
    path.write_text("channels:\n  sms:\n    kind: twilio\n    ? [a, b]\n    : 1\n")
    with pytest.raises(ValidationFailed) as failure:
        load_config(path)
    assert any(
        str(e).startswith(f"{path}:3:5: channels.sms") and "unhashable" in str(e) for e in failure.value.errors
    ), [str(e) for e in failure.value.errors]
