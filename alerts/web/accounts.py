"""Console accounts: users with argon2 password hashes, server-side sessions, login throttling, the
account lifecycle (disable, enable, remove, unlock, change password) and the audit log.

Password hashing runs on worker threads, at most MAX_CONCURRENT_HASHES at a time (argon2 takes tens of
milliseconds and 64 MiB each: on the event loop a few logins would freeze every page); beyond
MAX_WAITING_LOGINS waiting, a login is answered "busy" at once.

Failed logins are throttled per (username, client address), counted atomically in SQL before the password
is checked (concurrent guesses cannot share one count): the first FREE_FAILURES are free, then each
failure doubles the wait before the next attempt from that address, up to MAX_DELAY. Someone else's
guesses cannot lock a user out, and an unknown username goes through exactly the same steps (a dummy
hash is verified, a throttle row is kept) so that it answers like a wrong password.

All SQL for the tables of migrations 0002_web and 0005_shared_limits (login_failures) lives here; it runs
unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from alerts.errors import CrieurError
from alerts.storage import Store

ROLES = ("cm", "approver", "admin")
FREE_FAILURES = 3  # wrong passwords from one address before any wait
MAX_DELAY = 15 * 60.0  # the wait doubles with each further failure (1 s, 2 s, 4 s...) up to this
FAILURE_MEMORY = 24 * 3600.0  # a (username, address) quiet for this long starts afresh
MAX_CONCURRENT_HASHES = 2  # argon2 computations at once (each 64 MiB, one core)
MAX_WAITING_LOGINS = 32  # logins waiting for a hashing slot before "busy" is answered
SESSION_SECONDS = 12 * 3600  # one working shift during a snow episode
MIN_PASSWORD_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that a wrong name costs as long as a wrong password
# (made with the hasher in force, so that its parameters, hence its cost, are the real users' ones).
_dummy_hashes: dict[int, str] = {}


class AccountError(CrieurError, ValueError):
    """A refused account operation (bad username, weak password, unknown role, duplicate)."""


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    initials: str

    def can(self, permission: str) -> bool:
        """ "approve" (approver, admin) or "admin" (admin only); every role may compose and end alerts."""
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
    # When session is None: "bad-credentials" (retry_at: when the next attempt from this address will be
    # heard, if a wait started), "throttled" (refused unheard until retry_at) or "busy" (too many logins).
    reason: str = ""
    retry_at: float | None = None


def default_initials(username: str) -> str:
    """ "jean.dupont" → "JD", "camille" → "CA"."""
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
        raise AccountError(f"username {username!r}: 2 to 40 characters, lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if await store.db.fetchval("SELECT 1 FROM users WHERE username = $1", username) is not None:
        raise AccountError(f"user {username!r} already exists")
    initials = (initials or default_initials(username)).strip().upper()[:4]
    password_hash = await _hash(password)
    await store.db.execute(
        "INSERT INTO users (username, password_hash, role, initials, created_at) VALUES ($1, $2, $3, $4, $5)",
        username,
        password_hash,
        role,
        initials,
        time.time(),
    )
    return User(username, role, initials)


async def set_password(store: Store, username: str, password: str) -> None:
    """Change a password (the user's own, or an admin's reset): every session of the user ends."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await _hash(password)
    count = await store.db.execute(
        "UPDATE users SET password_hash = $2, failed_attempts = 0, locked_until = NULL WHERE username = $1",
        username,
        password_hash,
    )
    if not count:
        raise AccountError(f"no user {username!r}")
    await end_sessions(store, username)


async def change_own_password(store: Store, username: str, current: str, new: str) -> None:
    """A signed-in user changing their password: the current one is checked first."""
    row = await store.db.fetchrow("SELECT password_hash FROM users WHERE username = $1 AND active = 1", username)
    try:
        verified = row is not None and await _verify(row["password_hash"], current)
    except _Busy:
        raise AccountError("server busy: try again in a moment") from None
    if not verified:
        raise AccountError("current password: incorrect")
    await set_password(store, username, new)


async def set_active(store: Store, username: str, active: bool) -> None:
    """Disable (a departed CM) or enable an account; disabling ends every session at once."""
    count = await store.db.execute("UPDATE users SET active = $2 WHERE username = $1", username, int(active))
    if not count:
        raise AccountError(f"no user {username!r}")
    await end_sessions(store, username)


async def remove_user(store: Store, username: str) -> None:
    """Delete an account and its sessions and throttling rows (the audit log keeps its name)."""
    async with store.db.transaction() as tx:
        count = await tx.execute("DELETE FROM users WHERE username = $1", username)
        if not count:
            raise AccountError(f"no user {username!r}")
        await tx.execute("DELETE FROM web_sessions WHERE username = $1", username)
        await tx.execute("DELETE FROM login_failures WHERE username = $1", username)


async def unlock_user(store: Store, username: str) -> None:
    """Forget the failed logins of a user from every address (an admin's unlock); sessions end too."""
    count = await store.db.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE username = $1", username
    )
    if not count:
        raise AccountError(f"no user {username!r}")
    await store.db.execute("DELETE FROM login_failures WHERE username = $1", username)
    await end_sessions(store, username)


async def end_sessions(store: Store, username: str) -> int:
    """End every session of a user; returns how many there were."""
    return await store.db.execute("DELETE FROM web_sessions WHERE username = $1", username)


async def users(store: Store, *, now: float | None = None) -> list[dict[str, Any]]:
    """Accounts with, in `throttled_until`, the end of the longest wait one of their addresses is under."""
    now = time.time() if now is None else now
    rows = await store.db.fetch(
        "SELECT username, role, initials, active, failed_attempts, locked_until, created_at, last_login_at"
        " FROM users ORDER BY username"
    )
    waits = {
        r["username"]: r["until"]
        for r in await store.db.fetch(
            "SELECT username, MAX(next_at) AS until FROM login_failures WHERE next_at > $1 GROUP BY username", now
        )
    }
    for row in rows:
        row["throttled_until"] = waits.get(row["username"])
    return rows


def throttle_delay(failures: int) -> float:
    """The wait after `failures` failed logins in a row from one address."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY, 2.0 ** (failures - FREE_FAILURES))


# One statement: count the attempt and set the next allowed time, unless a wait is still running (then
# nothing changes and no row comes back). The doubling is written with CASE so SQLite and PostgreSQL agree.
_CLAIM_ATTEMPT = """
INSERT INTO login_failures (username, address, failures, delay, next_at, last_failure_at)
VALUES ($1, $2, 1, $5, CAST($3 AS DOUBLE PRECISION) + CAST($5 AS DOUBLE PRECISION), $3)
ON CONFLICT (username, address) DO UPDATE SET
    failures = login_failures.failures + 1,
    delay = CASE WHEN login_failures.failures + 1 < $4 THEN 0
                 WHEN login_failures.delay = 0 THEN 1
                 WHEN login_failures.delay * 2 > $6 THEN $6
                 ELSE login_failures.delay * 2 END,
    next_at = $3 + CASE WHEN login_failures.failures + 1 < $4 THEN 0
                        WHEN login_failures.delay = 0 THEN 1
                        WHEN login_failures.delay * 2 > $6 THEN $6
                        ELSE login_failures.delay * 2 END,
    last_failure_at = $3
WHERE login_failures.next_at <= $3
RETURNING failures
"""


async def login(
    store: Store, username: str, password: str, *, address: str = "", now: float | None = None
) -> LoginResult:
    """Check a password from a client `address`. The attempt counts as a failure before the password is
    checked (and is forgiven when it was right), so concurrent attempts cannot slip under the throttle."""
    now = time.time() if now is None else now
    username = username.strip().lower()[:100]
    address = address[:100]
    db = store.db
    await db.execute("DELETE FROM login_failures WHERE last_failure_at < $1", now - FAILURE_MEMORY)
    counted = await db.fetchval(
        _CLAIM_ATTEMPT, username, address, float(now), FREE_FAILURES, throttle_delay(1), MAX_DELAY
    )
    if counted is None:
        wait_until = await db.fetchval(
            "SELECT next_at FROM login_failures WHERE username = $1 AND address = $2", username, address
        )
        return LoginResult(None, "throttled", wait_until)
    row = await db.fetchrow(
        "SELECT username, password_hash, role, initials, active FROM users WHERE username = $1", username
    )
    known = row is not None and bool(row["active"])
    try:
        verified = await _verify(row["password_hash"] if known else await _dummy_hash(), password)  # type: ignore[index]
    except _Busy:
        return LoginResult(None, "busy")
    if not (known and verified):
        if known:
            await db.execute("UPDATE users SET failed_attempts = failed_attempts + 1 WHERE username = $1", username)
        wait = throttle_delay(int(counted))
        return LoginResult(None, "bad-credentials", now + wait if wait else None)
    assert row is not None
    await db.execute("DELETE FROM login_failures WHERE username = $1 AND address = $2", username, address)
    if _hasher.check_needs_rehash(row["password_hash"]):
        await db.execute("UPDATE users SET password_hash = $2 WHERE username = $1", username, await _hash(password))
    await db.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = $2 WHERE username = $1",
        username,
        now,
    )
    return LoginResult(await create_session(store, _user(row), now=now))


# ------------------------------------------------------------------------------------------ hashing


class _Busy(CrieurError):
    """Too many logins are already waiting for a hashing slot."""


class _HashSlots:
    """Per event loop: a semaphore of MAX_CONCURRENT_HASHES and the count of logins waiting for it."""

    def __init__(self) -> None:
        self.semaphore = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self.waiting = 0


_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HashSlots]" = weakref.WeakKeyDictionary()


T = TypeVar("T")


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run an argon2 call on the loop's executor, at most MAX_CONCURRENT_HASHES at a time."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = _HashSlots()
    if slots.waiting >= MAX_WAITING_LOGINS:
        raise _Busy()
    slots.waiting += 1
    try:
        async with slots.semaphore:
            return await loop.run_in_executor(None, function, *args)
    finally:
        slots.waiting -= 1


async def _hash(password: str) -> str:
    try:
        return await _off_loop(_hasher.hash, password)
    except _Busy:
        raise AccountError("server busy: try again in a moment") from None


async def _verify(password_hash: str, password: str) -> bool:
    """Raises _Busy when too many logins already wait."""
    return bool(await _off_loop(_verify_now, _hasher, password_hash, password))


def _verify_now(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def _dummy_hash() -> str:
    found = _dummy_hashes.get(id(_hasher))
    if found is None:
        found = _dummy_hashes[id(_hasher)] = await _off_loop(_hasher.hash, "crieur-no-such-user")
    return found


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


async def audit(
    store: Store,
    username: str,
    action: str,
    target: str = "",
    detail: str = "",
    *,
    initials: str = "",
    at: float | None = None,
) -> None:
    """Record who (account and initials) did what, when (`at`: the caller's clock, default now). Never raises
    on long text: detail is cut at 2000 characters."""
    await store.db.execute(
        "INSERT INTO audit_log (at, username, initials, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        time.time() if at is None else at,
        username,
        initials[:20],
        action,
        target,
        detail[:2000],
    )


async def audit_log(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    return await store.db.fetch(
        "SELECT id, at, username, initials, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        limit,
    )
