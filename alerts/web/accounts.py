"""Console accounts: users with argon2 password hashes, server-side sessions, lockout and the audit log.

All SQL for the tables of migration 0002_web lives here; it runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from alerts.errors import CrieurError
from alerts.storage import Store

ROLES = ("cm", "approver", "admin")
MAX_FAILED_ATTEMPTS = 5
LOCKOUT_SECONDS = 15 * 60
SESSION_SECONDS = 12 * 3600  # one working shift during a snow episode
MIN_PASSWORD_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("crieur-no-such-user")


class AccountError(CrieurError, ValueError):
    """A refused account operation (bad username, weak password, unknown role, duplicate)."""


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    initials: str

    def can(self, permission: str) -> bool:
        """"approve" (approver, admin) or "admin" (admin only); every role may compose and end alerts."""
        if permission == "approve":
            return self.role in ("approver", "admin")
        if permission == "admin":
            return self.role == "admin"
        return self.role in ROLES


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the cookie value; only its hash is stored
    user: User
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class LoginResult:
    session: Session | None
    reason: str = ""  # "bad-credentials" or "locked" when session is None
    locked_until: float | None = None


def default_initials(username: str) -> str:
    """"jean.dupont" → "JD", "camille" → "CA"."""
    parts = [p for p in re.split(r"[._-]+", username) if p]
    if len(parts) >= 2:
        return (parts[0][0] + parts[-1][0]).upper()
    return username[:2].upper()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: dict[str, Any]) -> User:
    return User(username=row["username"], role=row["role"], initials=row["initials"])


async def add_user(store: Store, username: str, password: str, role: str, initials: str = "") -> User:
    """Create a console account (the CLI's `crieur users add`). Raises AccountError with the reason."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError(
            f"username {username!r}: 2 to 40 characters, lower-case letters, digits, '.', '_' or '-'"
        )
    if role not in ROLES:
        raise AccountError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if await store.db.fetchval("SELECT 1 FROM users WHERE username = $1", username) is not None:
        raise AccountError(f"user {username!r} already exists")
    initials = (initials or default_initials(username)).strip().upper()[:4]
    await store.db.execute(
        "INSERT INTO users (username, password_hash, role, initials, created_at) VALUES ($1, $2, $3, $4, $5)",
        username,
        _hasher.hash(password),
        role,
        initials,
        time.time(),
    )
    return User(username, role, initials)


async def set_password(store: Store, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    count = await store.db.execute(
        "UPDATE users SET password_hash = $2, failed_attempts = 0, locked_until = NULL WHERE username = $1",
        username,
        _hasher.hash(password),
    )
    if not count:
        raise AccountError(f"no user {username!r}")
    await store.db.execute("DELETE FROM web_sessions WHERE username = $1", username)


async def users(store: Store) -> list[dict[str, Any]]:
    return await store.db.fetch(
        "SELECT username, role, initials, active, failed_attempts, locked_until, created_at, last_login_at"
        " FROM users ORDER BY username"
    )


async def login(store: Store, username: str, password: str, *, now: float | None = None) -> LoginResult:
    """Check a password. Five wrong ones in a row lock the account for 15 minutes, during which even the
    right password is refused (and does not extend the lock)."""
    now = time.time() if now is None else now
    username = username.strip().lower()
    row = await store.db.fetchrow(
        "SELECT username, password_hash, role, initials, failed_attempts, locked_until, active"
        " FROM users WHERE username = $1",
        username,
    )
    if row is None or not row["active"]:
        _verify(_DUMMY_HASH, password)
        return LoginResult(None, "bad-credentials")
    if row["locked_until"] is not None and row["locked_until"] > now:
        return LoginResult(None, "locked", row["locked_until"])
    if not _verify(row["password_hash"], password):
        failed = (row["failed_attempts"] if row["locked_until"] is None else 0) + 1
        locked_until = now + LOCKOUT_SECONDS if failed >= MAX_FAILED_ATTEMPTS else None
        await store.db.execute(
            "UPDATE users SET failed_attempts = $2, locked_until = $3 WHERE username = $1",
            username,
            0 if locked_until else failed,
            locked_until,
        )
        if locked_until:
            return LoginResult(None, "locked", locked_until)
        return LoginResult(None, "bad-credentials")
    if _hasher.check_needs_rehash(row["password_hash"]):
        await store.db.execute(
            "UPDATE users SET password_hash = $2 WHERE username = $1", username, _hasher.hash(password)
        )
    await store.db.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = $2 WHERE username = $1",
        username,
        now,
    )
    return LoginResult(await create_session(store, _user(row), now=now))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def create_session(store: Store, user: User, *, now: float | None = None) -> Session:
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + SESSION_SECONDS
    await store.db.execute("DELETE FROM web_sessions WHERE expires_at < $1", now)
    await store.db.execute(
        "INSERT INTO web_sessions (token_hash, username, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        _hash_token(token),
        user.username,
        csrf,
        now,
        expires,
    )
    return Session(token, user, csrf, expires)


async def session(store: Store, token: str, *, now: float | None = None) -> Session | None:
    """The live session for a cookie value, or None (unknown, expired, or its user deactivated)."""
    if not token:
        return None
    now = time.time() if now is None else now
    row = await store.db.fetchrow(
        "SELECT s.csrf, s.expires_at, u.username, u.role, u.initials FROM web_sessions s"
        " JOIN users u ON u.username = s.username WHERE s.token_hash = $1 AND u.active = 1",
        _hash_token(token),
    )
    if row is None or row["expires_at"] <= now:
        return None
    return Session(token, _user(row), row["csrf"], row["expires_at"])


async def end_session(store: Store, token: str) -> None:
    await store.db.execute("DELETE FROM web_sessions WHERE token_hash = $1", _hash_token(token))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


async def audit(store: Store, username: str, action: str, target: str = "", detail: str = "",
                at: float | None = None) -> None:
    """Record who did what, when (`at`: the caller's clock, default now). Never raises on long text: detail
    is cut at 2000 characters."""
    await store.db.execute(
        "INSERT INTO audit_log (at, username, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        time.time() if at is None else at,
        username,
        action,
        target,
        detail[:2000],
    )


async def audit_log(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    return await store.db.fetch(
        "SELECT id, at, username, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1", limit
    )
