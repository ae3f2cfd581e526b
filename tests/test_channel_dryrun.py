"""Dry runs need no secret, send nothing, and record exactly what would have gone out; plus the web channel."""

from __future__ import annotations

import json

import pytest

from channels import channel_class
from channels.base import ConfigurationError, Message
from channels.dryrun import DryRunChannel, dry_run
from channels.twilio import TwilioChannel
from channels.web import WebChannel

pytest_plugins = ["tests.fakes.fixtures"]

CONFIGS = {
    "mastodon": {"base_url": "https://social.example", "access_token_env": "UNSET_CRIEUR_VAR"},
    "twilio": {
        "account_sid_env": "UNSET_CRIEUR_VAR",
        "auth_token_env": "UNSET_CRIEUR_VAR",
        "from": "+33700000001",
        "max_segments": 4,
    },
    "bluesky": {"identifier": "cd41.bsky.social", "app_password_env": "UNSET_CRIEUR_VAR"},
    "x": {"consumer_key_env": "UNSET_CRIEUR_VAR"},
    "facebook": {"page_id": "1", "page_token_env": "UNSET_CRIEUR_VAR"},
    "email": {"host": "smtp.example", "from": "a@b.fr", "username": "u", "password_env": "UNSET_CRIEUR_VAR"},
    "webhook": {"secret_env": "UNSET_CRIEUR_VAR"},
    "web": {},
}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_every_adapter_builds_for_dry_run_without_secrets(kind, monkeypatch):
    monkeypatch.delenv("UNSET_CRIEUR_VAR", raising=False)
    cls = channel_class(kind)
    if kind != "web":
        with pytest.raises(ConfigurationError, match=repr(f"{kind}41")):
            cls(f"{kind}41", CONFIGS[kind])  # the real thing does need them
    channel = dry_run(kind, f"{kind}41", CONFIGS[kind])
    assert channel.kind == kind
    if kind != "twilio":  # Twilio's limits follow its max_segments option
        assert channel.limits == cls.limits
    assert channel.per_recipient == cls.per_recipient


def test_dry_run_still_validates_options():
    with pytest.raises(ConfigurationError, match="page_id"):
        dry_run("facebook", "fb41", {})


async def test_records_to_file_and_memory(tmp_path, fake_twilio, http_session, monkeypatch):
    monkeypatch.delenv("UNSET_CRIEUR_VAR", raising=False)
    log = tmp_path / "dry.jsonl"
    channel = DryRunChannel(
        TwilioChannel.for_dry_run("sms41", CONFIGS["twilio"] | {"api_base": fake_twilio.base_url}), log
    )
    assert channel.limits.max_segments == 4 and channel.kind == "twilio" and channel.per_recipient
    await channel.start(http_session)
    first = await channel.send(Message(key="d-1", alert_id=1, text="Verglas sur la RD 924.", recipient="+33612345678"))
    second = await channel.send(Message(key="d-2", alert_id=1, text="Verglas sur la RD 924.", recipient="+33698765432"))
    assert (first.provider_id, second.provider_id) == ("dry-run-1", "dry-run-2")
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert lines == channel.records
    assert [(r["recipient"], r["key"], r["channel"], r["kind"]) for r in lines] == [
        ("+33612345678", "d-1", "sms41", "twilio"),
        ("+33698765432", "d-2", "sms41", "twilio"),
    ]
    assert lines[0]["text"] == "Verglas sur la RD 924." and "time" in lines[0] and lines[0]["subject"] == ""
    assert fake_twilio.requests == []
    found = await channel.find_sent(Message(key="d-2", alert_id=1, text="", recipient=""), 0)
    assert found is not None and found.provider_id == "dry-run-2"


async def test_inner_adapter_without_credentials_refuses_to_send(monkeypatch):
    monkeypatch.delenv("UNSET_CRIEUR_VAR", raising=False)
    inner = channel_class("mastodon").for_dry_run("m", CONFIGS["mastodon"])
    with pytest.raises(ConfigurationError, match="dry run"):
        await inner.send(Message(key="k", alert_id=1, text="t"))


async def test_web_channel_receipt():
    receipt = await WebChannel("web", {}).send(Message(key="k", alert_id=42, text="t"))
    assert receipt.provider_id == "web:42"
