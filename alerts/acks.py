"""Signed links: HMAC-signed, expiring tokens naming one thing (an escalation a webmaster acknowledges, a
subscription a citizen confirms, an address a citizen unsubscribes), so that a link works without an
account and cannot be forged or altered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import timedelta

_SUBJECT = re.compile(r"[A-Za-z0-9_-]{1,160}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _secret(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < 16:
        raise ValueError("the signing secret must be at least 16 bytes")
    return key


def _signature(key: bytes, purpose: str, payload: str) -> str:
    return _b64(hmac.new(key, f"crieur-{purpose}:{payload}".encode("ascii"), hashlib.sha256).digest())


def encode_text(text: str) -> str:
    """A text (an e-mail address) as a token subject: URL-safe base64 without padding."""
    return _b64(text.encode("utf-8"))


def decode_text(subject: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(subject + "=" * (-len(subject) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def sign_token(purpose: str, subject: str, secret: str | bytes, *, ttl: timedelta, now: float | None = None) -> str:
    """A URL-safe token "<subject>.<expiry>.<HMAC-SHA256>" valid for `purpose` only. `subject` is made of
    URL-safe base64 characters (an id, or `encode_text` of a text)."""
    if not _SUBJECT.fullmatch(subject):
        raise ValueError("a token subject is 1 to 160 URL-safe base64 characters")
    issued = time.time() if now is None else now
    payload = f"{subject}.{int(issued + ttl.total_seconds())}"
    return f"{payload}.{_signature(_secret(secret), purpose, payload)}"


def verify_token(purpose: str, token: str, secret: str | bytes, *, now: float | None = None) -> str | None:
    """The subject of a valid, unexpired token signed for `purpose`; None for a forged, altered, expired,
    garbled or other-purpose one."""
    key = _secret(secret)  # a misconfigured secret is an error, not a silent rejection of every token
    if not isinstance(token, str) or len(token) > 260:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not _SUBJECT.fullmatch(parts[0]) or not parts[1].isascii() or not parts[1].isdigit():
        return None
    payload = f"{parts[0]}.{parts[1]}"
    expected = _signature(key, purpose, payload)
    if not hmac.compare_digest(expected.encode("ascii"), parts[2].encode("ascii", "replace")):
        return None
    if int(parts[1]) <= (time.time() if now is None else now):
        return None
    return parts[0]


def sign_ack(
    escalation_id: int, secret: str | bytes, *, ttl: timedelta = timedelta(days=7), now: float | None = None
) -> str:
    """A token "<id>.<expiry>.<HMAC-SHA256>" letting a webmaster acknowledge an escalation without an account."""
    if not isinstance(escalation_id, int) or isinstance(escalation_id, bool) or escalation_id < 0:
        raise ValueError("escalation_id must be a non-negative integer")
    return sign_token("ack", str(escalation_id), secret, ttl=ttl, now=now)


def verify_ack(token: str, secret: str | bytes, *, now: float | None = None) -> int | None:
    """The escalation id of a valid, unexpired acknowledgement token, else None."""
    subject = verify_token("ack", token, secret, now=now)
    return int(subject) if subject is not None and subject.isascii() and subject.isdigit() else None
