"""Webhooks: a JSON POST to each subscriber's URL, signed the Standard Webhooks way
(webhook-id, webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256>").

A subscriber's 401/403 or 404 is that subscriber's problem, not the channel's: they are PermanentError for
that delivery, never AuthError (which would stop the channel for everyone). 410 Gone unsubscribes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit

import aiohttp

from alerts.errors import CrieurError
from alerts.security import Allowlist, UnsafeURL, check_url_async, safe_session

from ._http import DryRunnable, error_for_status, no_credentials, request, retry_after, timeout_option
from .base import (
    RECIPIENTS,
    TIMEOUT,
    Channel,
    ConfigurationError,
    Limits,
    Message,
    Option,
    PermanentError,
    RateLimited,
    Receipt,
    register,
)


class WebhookVerificationError(CrieurError, ValueError):
    """A webhook whose signature, timestamp or headers do not check out."""


def _key(secret: str) -> bytes:
    """The HMAC key: "whsec_<base64>" is decoded, anything else is used as UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except binascii.Error:
            raise ValueError("webhook secret 'whsec_…' is not valid base64") from None
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes | str, tolerance: int = 300, *, now: float | None = None
) -> None:
    """Check a received webhook; raise WebhookVerificationError saying why it is refused.

    Header names are matched case-insensitively; several space-separated signatures are accepted (key rotation).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp {stamp!r} is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {current - timestamp:+.0f} s from now (tolerance {tolerance} s)"
        )
    raw = body.encode("utf-8") if isinstance(body, str) else body
    expected = sign(secret, msg_id, timestamp, raw)
    candidates = [c for c in signatures.split() if c.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookVerificationError("no webhook-signature matches the body")


@register
class WebhookChannel(DryRunnable, Channel):
    kind = "webhook"
    declared_options = (
        Option("secret", "secret", required=True, description="the HMAC key signing each request"),
        RECIPIENTS,
        Option("allow", "list", description="private or loopback hosts the URLs may reach"),
        TIMEOUT,
    )
    limits = Limits(counting="none")
    per_recipient = True
    idempotent = True  # receivers deduplicate by webhook-id, which is the delivery key
    default_rate = 20.0

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.timeout = timeout_option(self)
        self._secret = self.secret("secret") if credentials else ""
        # Subscribers' URLs may not reach internal addresses unless configuration allows them (SSRF).
        self.allow = Allowlist(self.options.get("allow") or ())
        if self._secret:
            try:
                _key(self._secret)
            except ValueError as exc:
                raise ConfigurationError(f"channel {name!r}: {exc}") from None

    @staticmethod
    def payload(message: Message) -> Any:
        """message.extra["payload"] when the rules gave one, else an event describing the alert."""
        if "payload" in message.extra:
            return message.extra["payload"]
        return {
            "type": f"alert.{message.kind.lower()}",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "data": {
                "alert_id": message.alert_id,
                "kind": message.kind,
                "subject": message.subject,
                "text": message.text,
                "link": message.link,
                "reply_to": message.reply_to,
            },
        }

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Its own session, guarded at connect time too (DNS rebinding, redirects)."""
        self.session = safe_session(self.allow)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def send(self, message: Message) -> Receipt:
        if not self._secret:
            raise no_credentials(self)
        if urlsplit(message.recipient).scheme not in ("http", "https"):
            raise PermanentError(
                f"{self.name}: recipient is not an http(s) URL", code="url", recipient_action="invalid"
            )
        try:
            await check_url_async(message.recipient, self.allow)
        except UnsafeURL as exc:
            raise PermanentError(f"{self.name}: {exc}", code="ssrf", recipient_action="invalid") from None
        body = json.dumps(self.payload(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, message.key, timestamp, body),
        }
        answer = await request(self, "POST", message.recipient, data=body, headers=headers, timeout=self.timeout)
        if 200 <= answer.status < 300:
            return Receipt(provider_id=message.key, detail=f"HTTP {answer.status}")
        if answer.status == 410:
            raise PermanentError(f"{self.name}: receiver answered 410 Gone", code="410", recipient_action="unsubscribe")
        if answer.status == 429:
            delay = retry_after(answer.headers)
            raise RateLimited(f"{self.name}: receiver answered 429", code="429", retry_after=delay)
        if 300 <= answer.status < 400 or answer.status in (401, 403):
            raise PermanentError(f"{self.name}: receiver answered HTTP {answer.status}", code=str(answer.status))
        raise error_for_status(self, answer)
