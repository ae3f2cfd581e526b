"""Acknowledgement links for webmasters: HMAC-signed, expiring tokens naming an escalation, so that a
webmaster acknowledges it without an account."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _secret(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < 16:
        raise ValueError("the acknowledgement secret must be at least 16 bytes")
    return key


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, b"crieur-ack:" + payload.encode("ascii"), hashlib.sha256).digest())


def sign_ack(
    escalation_id: int, secret: str | bytes, *, ttl: timedelta = timedelta(days=7), now: float | None = None
) -> str:
    """A URL-safe token "<id>.<expiry>.<HMAC-SHA256>" letting a webmaster acknowledge without an account."""
    if not isinstance(escalation_id, int) or isinstance(escalation_id, bool) or escalation_id < 0:
        raise ValueError("escalation_id must be a non-negative integer")
    issued = time.time() if now is None else now
    payload = f"{escalation_id}.{int(issued + ttl.total_seconds())}"
    return f"{payload}.{_signature(_secret(secret), payload)}"


def verify_ack(token: str, secret: str | bytes, *, now: float | None = None) -> int | None:
    """The escalation id of a valid, unexpired token; None for a forged, altered, expired or garbled one."""
    key = _secret(secret)  # a misconfigured secret is an error, not a silent rejection of every token
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split(".")
    if (
        len(parts) != 3
        or not parts[0].isascii()
        or not parts[0].isdigit()
        or not parts[1].isascii()
        or not parts[1].isdigit()
    ):
        return None
    payload = f"{parts[0]}.{parts[1]}"
    expected = _signature(key, payload)
    if not hmac.compare_digest(expected.encode("ascii"), parts[2].encode("ascii", "replace")):
        return None
    if int(parts[1]) <= (time.time() if now is None else now):
        return None
    return int(parts[0])
