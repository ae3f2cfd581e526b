"""Dry runs: wrap any adapter, record what it would send and to whom, send nothing.

    channel = dry_run("twilio", "sms", options, log_path)   # no secrets needed
    channel = DryRunChannel(TwilioChannel.for_dry_run("sms", options), log_path)

Each send appends one JSON line {time, channel, kind, recipient, text, subject, key} to `log_path` (when
given) and to `records`, and returns Receipt("dry-run-<n>").
"""

from __future__ import annotations

import json
import pathlib
from datetime import datetime, timezone
from typing import Any, Mapping

import aiohttp

from . import channel_class
from .base import Channel, Message, Receipt


class DryRunChannel(Channel):
    """Not registered: it is a wrapper, built around an adapter, never named in configuration."""

    def __init__(self, inner: Channel, log_path: pathlib.Path | None = None):
        super().__init__(inner.name, {"rate": inner.rate})
        self.inner = inner
        self.kind = inner.kind  # type: ignore[misc]
        self.limits = inner.limits  # type: ignore[misc]
        self.per_recipient = inner.per_recipient  # type: ignore[misc]
        self.subscribers = inner.subscribers
        self.medium = inner.medium  # type: ignore[misc]
        self.idempotent = True  # type: ignore[misc]
        self.log_path = log_path
        self.records: list[dict[str, Any]] = []

    async def start(self, session: aiohttp.ClientSession) -> None:
        """The inner adapter is not started: a dry run opens no connection."""
        self.session = session

    async def send(self, message: Message) -> Receipt:
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "channel": self.name,
            "kind": self.kind,
            "recipient": message.recipient,
            "text": message.text,
            "subject": message.subject,
            "key": message.key,
        }
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.records.append(record)
        return Receipt(provider_id=f"dry-run-{len(self.records)}", status="dry-run")

    async def find_sent(self, message: Message, since: float) -> Receipt | None:
        for number, record in enumerate(self.records, start=1):
            if record["key"] == message.key:
                return Receipt(provider_id=f"dry-run-{number}", status="dry-run")
        return None

    def __repr__(self) -> str:
        return f"<DryRunChannel {self.inner!r}>"


def dry_run(
    kind: str, name: str, options: Mapping[str, Any] | None = None, log_path: pathlib.Path | None = None
) -> DryRunChannel:
    """A dry-run channel of `kind`, built from its options without reading any secret."""
    cls = channel_class(kind)
    factory = getattr(cls, "for_dry_run", None)
    inner = factory(name, options) if factory is not None else cls(name, options)
    return DryRunChannel(inner, log_path)
