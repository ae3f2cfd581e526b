"""What the HTTP adapters share: one attempt with a timeout, and the translation of a provider's answer
(status, rate-limit headers) into a DeliveryError. Each adapter adds its provider's error codes on top."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import aiohttp
from yarl import URL

from .base import (
    AuthError,
    Channel,
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)

DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer, read completely (the connection is back in the pool)."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (an HTML error page from a proxy...)."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


def positive_option(channel: Channel, option: str, raw: Any) -> float:
    """A positive number given for `option`, or a ConfigurationError naming the channel and the option."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise ConfigurationError(f"channel {channel.name!r}: option {option!r} must be a positive number, not {raw!r}")
    return value


def timeout_option(channel: Channel) -> float:
    """The `timeout` option in seconds (default 15), validated at construction."""
    return positive_option(channel, "timeout", channel.options.get("timeout", DEFAULT_TIMEOUT))


def base_url_option(channel: Channel, option: str, default: str | None = None) -> str:
    """An http(s) base URL option without its trailing slash."""
    value = str(channel.options.get(option) or default or "")
    if not value:
        raise ConfigurationError(f"channel {channel.name!r}: missing option {option!r}")
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"channel {channel.name!r}: option {option!r} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


async def request(
    channel: Channel,
    method: str,
    url: str | URL,
    *,
    timeout: float,
    **kwargs: Any,
) -> Answer:
    """One HTTP exchange on the channel's session. Connection errors and timeouts become TransientError;
    the caller interprets the status. The URL is not put in error messages (it may carry a token)."""
    if channel.session is None:
        raise RuntimeError(f"channel {channel.name!r} used before start()")
    try:
        async with asyncio.timeout(timeout):
            async with channel.session.request(method, url, allow_redirects=False, **kwargs) as response:
                text = await response.text(errors="replace")
                return Answer(response.status, response.headers, text)
    except TimeoutError:
        raise TransientError(f"{channel.name}: no answer within {timeout:g} s", code="timeout") from None
    except aiohttp.ClientError as exc:
        raise TransientError(f"{channel.name}: {type(exc).__name__}: {exc}", code="connection") from None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delay-seconds or HTTP-date (RFC 9110 §10.2.3), as seconds from now (>= 0)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """A rate-limit reset header as seconds from now: epoch seconds (X, Bluesky) or ISO 8601 (Mastodon).
    Small numbers (below ten years of seconds) are taken as a delay, as some gateways send."""
    if not value:
        return None
    value = value.strip()
    current = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return max(0.0, moment.timestamp() - current)
    if number < 315_360_000:
        return max(0.0, number)
    return max(0.0, number - current)


def retry_after(headers: Mapping[str, str], *reset_headers: str, now: float | None = None) -> float | None:
    """Retry-After first, then the provider's reset headers in the order given."""
    delay = parse_retry_after(headers.get("Retry-After"), now)
    if delay is not None:
        return delay
    for name in reset_headers:
        delay = parse_reset(headers.get(name), now)
        if delay is not None:
            return delay
    return None


def error_for_status(
    channel: Channel,
    answer: Answer,
    *,
    code: str = "",
    detail: str = "",
    reset_headers: tuple[str, ...] = (),
) -> DeliveryError:
    """The generic mapping: 401/403 AuthError, 408/429 RateLimited or TransientError, 5xx TransientError,
    other 4xx PermanentError. `code` and `detail` are the provider's own error code and message."""
    status = answer.status
    code = code or str(status)
    text = f"{channel.name}: HTTP {status}" + (f" {detail}" if detail else "")
    if status == 429:
        return RateLimited(text, code=code, retry_after=retry_after(answer.headers, *reset_headers))
    if status in (401, 403):
        return AuthError(text, code=code)
    if status >= 500 or status == 408:
        return TransientError(text, code=code, retry_after=parse_retry_after(answer.headers.get("Retry-After")))
    return PermanentError(text, code=code)


def no_credentials(channel: Channel) -> ConfigurationError:
    return ConfigurationError(f"channel {channel.name!r} was built for a dry run and has no credentials")


class DryRunnable:
    """Mixin for adapters whose `__init__` takes `credentials=False`: built that way, they validate their
    options but read no secret, so a dry run (or a configuration check) needs no credentials."""

    @classmethod
    def for_dry_run(cls, name: str, options: Mapping[str, Any] | None = None) -> Any:
        return cls(name, options, credentials=False)  # type: ignore[call-arg]
