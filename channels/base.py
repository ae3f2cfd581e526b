"""One interface for every output, so the delivery engine never knows which provider it talks to.

Each adapter module defines one `Channel` subclass and registers it under its `kind` (the way Apprise
gives each service one plugin). The engine calls `send(message)` and reads back a `Receipt`, or one of the
`DeliveryError`s below, which tell it whether to retry, wait, or give up and act on the recipient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import aiohttp


@dataclass(frozen=True, slots=True)
class Limits:
    """How a channel counts text, so rules can fit a message before it is sent.

    counting: "chars" (code points, Mastodon), "x" (X weighted count, URLs as 23), "graphemes"
    (Bluesky), "sms" (GSM-7 / UCS-2 segments), "none" (email, web).
    """

    counting: str = "none"
    max_length: int | None = None
    max_segments: int | None = None  # SMS only


@dataclass(frozen=True, slots=True)
class Message:
    """What one recipient of one channel receives for one alert."""

    key: str  # the delivery's idempotency key, stable across retries and restarts
    alert_id: int
    text: str
    recipient: str = ""  # E.164 number, email address, webhook URL; "" for an account's own timeline
    subject: str = ""
    link: str = ""
    kind: str = "Alert"  # Alert / Update / Cancel (CAP msgType)
    reply_to: str = ""  # provider id of the post this one follows up (updates, ends)
    extra: Mapping[str, Any] = field(default_factory=dict)  # channel-specific payload (facets, JSON body)


@dataclass(frozen=True, slots=True)
class Receipt:
    provider_id: str
    status: str = "sent"
    detail: str = ""


class DeliveryError(Exception):
    """A send that did not succeed. `retryable` decides between a later attempt and the dead letter."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """Network failure, timeout, 5xx: try again with backoff."""

    retryable = True


class RateLimited(TransientError):
    """429 or a provider's own rate-limit answer; `retry_after` seconds when the provider said."""


class PermanentError(DeliveryError):
    """4xx the provider will answer the same way every time: the delivery fails at once.

    `recipient_action` tells the engine what to do with the recipient: "unsubscribe" (Twilio 21610),
    "invalid" (Twilio 21211), or "" for nothing.
    """

    def __init__(self, message: str, *, code: str = "", recipient_action: str = ""):
        super().__init__(message, code=code)
        self.recipient_action = recipient_action


class AuthError(PermanentError):
    """401/403: credentials are wrong or revoked. Every delivery on this channel will fail the same way."""


class ConfigurationError(Exception):
    """A channel is missing a setting or a secret; raised at start-up, naming the channel."""


class Channel:
    """Base class of every adapter.

    Subclasses set `kind`, `limits`, `per_recipient` (one delivery per subscriber, as SMS and email, or one
    per account, as a Mastodon post) and implement `send`. `options` comes from the service configuration
    (the channel's section); `secret(name)` reads a credential from the environment.
    """

    kind: ClassVar[str] = ""
    limits: ClassVar[Limits] = Limits()
    per_recipient: ClassVar[bool] = False
    # Recipients are the SMS subscribers of the alert's territories (else options["recipients"], or the
    # account itself when not per_recipient).
    subscribers: ClassVar[bool] = False
    idempotent: ClassVar[bool] = False  # the provider deduplicates a retried send by our key
    default_rate: ClassVar[float] = 10.0  # messages per second when the configuration says nothing

    def __init__(self, name: str, options: Mapping[str, Any] | None = None):
        self.name = name
        self.options = dict(options or {})
        self.rate = float(self.options.get("rate", self.default_rate))
        self.session: aiohttp.ClientSession | None = None

    def secret(self, option: str) -> str:
        """A credential named in configuration as `<option>_env: VARIABLE` (or given directly as
        `<option>`, for tests and the demo). Missing: a ConfigurationError naming channel and variable."""
        if option in self.options and self.options[option]:
            return str(self.options[option])
        variable = self.options.get(f"{option}_env")
        if variable:
            value = os.environ.get(str(variable), "")
            if value:
                return value
            raise ConfigurationError(
                f"channel {self.name!r}: environment variable {variable} ({option}) is not set"
            )
        raise ConfigurationError(f"channel {self.name!r}: missing {option!r} (or {option}_env)")

    def require(self, option: str) -> str:
        value = self.options.get(option)
        if value in (None, ""):
            raise ConfigurationError(f"channel {self.name!r}: missing option {option!r}")
        return str(value)

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Called once before the first send, with the service's shared HTTP session."""
        self.session = session

    async def close(self) -> None:
        """Release what `start` acquired."""

    async def send(self, message: Message) -> Receipt:
        raise NotImplementedError

    async def find_sent(self, message: Message, since: float) -> Receipt | None:
        """For a delivery whose outcome is unknown (its worker died mid-send): the provider's record of
        it if the provider has one, so the engine does not send it twice. None when unknown."""
        return None

    def __repr__(self) -> str:  # never show options: they may hold secrets
        return f"<{type(self).__name__} {self.name}>"


REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Class decorator: make an adapter available to configuration under its `kind`."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    REGISTRY[cls.kind] = cls
    return cls
