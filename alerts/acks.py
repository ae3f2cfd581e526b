"""Signed links: HMAC-signed, expiring URL-safe tokens that let someone act without an account.

Every kind shares one format, "<field>.<field>...<expiry>.<HMAC-SHA256>", each kind signing under its own
purpose (a token of one kind never passes for another):
- "ack": a webmaster acknowledges an escalation (`sign_ack`, `verify_ack`; alerts.citizens.escalations);
- "oncall": the on-call person decides on an alert from a phone (alerts.oncall.links);
- "code", "confirm", "unsubscribe": a citizen confirms or ends a web or e-mail subscription
  (alerts.citizens.subscriptions);
- the OVHcloud receipts callback names its channel (alerts.citizens.ovh).
Texts (an e-mail address) travel as a field through `encode_text` / `decode_text`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

_FIELD = re.compile(r"^[A-Za-z0-9_-]{1,160}$")  # URL-safe and without the separator "."
_DIGITS = re.compile(r"^[0-9]{1,19}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _secret(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < 16:
        raise ValueError("the signing secret must be at least 16 bytes")
    return key


def _signature(key: bytes, purpose: str, payload: str) -> str:
    return _b64(hmac.new(key, f"crieur-{purpose}:{payload}".encode("ascii"), hashlib.sha256).digest())


@dataclass(frozen=True, slots=True)
class Opened:
    """A token whose signature is right: its fields, its expiry, and whether it has passed."""

    fields: tuple[str, ...]
    expires: int
    expired: bool


def sign(purpose: str, fields: Sequence[str], secret: str | bytes, *, ttl: timedelta, now: float | None = None) -> str:
    """A token carrying `fields` (each 1-160 of A-Z a-z 0-9 _ -) until now + ttl."""
    for value in fields:
        if not isinstance(value, str) or not _FIELD.match(value):
            raise ValueError(f"token field {value!r}: 1-160 characters among A-Z a-z 0-9 _ -")
    issued = time.time() if now is None else now
    payload = ".".join((*fields, str(int(issued + ttl.total_seconds()))))
    return f"{payload}.{_signature(_secret(secret), purpose, payload)}"


def open_token(purpose: str, token: str, secret: str | bytes, count: int, *, now: float | None = None) -> Opened | None:
    """The token's `count` fields if `purpose` signed it with `secret`, expired or not; None for a forged,
    altered or garbled one."""
    key = _secret(secret)  # a misconfigured secret is an error, not a silent rejection of every token
    if not isinstance(token, str) or len(token) > 600:
        return None
    parts = token.split(".")
    if len(parts) != count + 2 or not all(_FIELD.match(p) for p in parts[:count]) or not _DIGITS.match(parts[-2]):
        return None
    payload = token.rsplit(".", 1)[0]
    expected = _signature(key, purpose, payload)
    if not hmac.compare_digest(expected.encode("ascii"), parts[-1].encode("ascii", "replace")):
        return None
    expires = int(parts[-2])
    return Opened(tuple(parts[:count]), expires, expires <= (time.time() if now is None else now))


def encode_text(text: str) -> str:
    """A text (an e-mail address, a channel name) as a token field: URL-safe base64 without padding."""
    return _b64(text.encode("utf-8"))


def decode_text(field: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(field + "=" * (-len(field) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def sign_token(purpose: str, subject: str, secret: str | bytes, *, ttl: timedelta, now: float | None = None) -> str:
    """A one-field token "<subject>.<expiry>.<HMAC-SHA256>" (`sign` with a single field)."""
    return sign(purpose, [subject], secret, ttl=ttl, now=now)


def verify_token(purpose: str, token: str, secret: str | bytes, *, now: float | None = None) -> str | None:
    """The subject of a valid, unexpired one-field token signed for `purpose`; None for a forged, altered,
    expired, garbled or other-purpose one."""
    opened = open_token(purpose, token, secret, 1, now=now)
    return None if opened is None or opened.expired else opened.fields[0]


def sign_ack(
    escalation_id: int, secret: str | bytes, *, ttl: timedelta = timedelta(days=7), now: float | None = None
) -> str:
    """A token "<id>.<expiry>.<HMAC-SHA256>" letting a webmaster acknowledge an escalation without an account."""
    if not isinstance(escalation_id, int) or isinstance(escalation_id, bool) or escalation_id < 0:
        raise ValueError("escalation_id must be a non-negative integer")
    return sign("ack", [str(escalation_id)], secret, ttl=ttl, now=now)


def verify_ack(token: str, secret: str | bytes, *, now: float | None = None) -> int | None:
    """The escalation id of a valid, unexpired token; None for a forged, altered, expired or garbled one."""
    opened = open_token("ack", token, secret, 1, now=now)
    if opened is None or opened.expired or not _DIGITS.match(opened.fields[0]):
        return None
    return int(opened.fields[0])
