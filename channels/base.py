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

from alerts.errors import CrieurError


@dataclass(frozen=True, slots=True)
class Limits:
    """How a channel counts text, so rules can fit a message before it is sent.

    counting: "chars" (code points, Mastodon), "x" (X weighted count, URLs as 23), "graphemes"
    (Bluesky), "sms" (GSM-7 / UCS-2 segments), "none" (email, web).
    """

    counting: str = "none"
    max_length: int | None = None
    max_segments: int | None = None  # SMS only
    url_weight: int = 23  # "chars": what one link counts, whatever its length (Mastodon's characters_reserved_per_url)


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


class DeliveryError(CrieurError):
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


class ConfigurationError(CrieurError):
    """A channel is missing a setting or a secret; raised at start-up, naming the channel."""


OPTION_TYPES = ("text", "integer", "number", "boolean", "list", "url", "secret")


@dataclass(frozen=True, slots=True)
class Option:
    """One setting of a channel's section in crieur.yaml.

    `type`: "text", "integer", "number", "boolean", "list" (of texts), "url" (http or https) or "secret"
    (given as `<name>_env: VARIABLE`, the variable holding the value; `<name>` itself is accepted for
    tests and demos). A required secret is needed to send, not to dry-run.
    """

    name: str
    type: str
    required: bool = False
    default: Any = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise TypeError(f"option {self.name!r}: unknown type {self.type!r}")

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit this option, or None."""
        expected = {
            "text": (str,),
            "secret": (str,),
            "url": (str,),
            "list": (list,),
            "boolean": (bool,),
            "integer": (int,),
            "number": (int, float),
        }[self.type]
        if (isinstance(value, bool) and self.type != "boolean") or not isinstance(value, expected):
            shown = {
                "list": "a list of texts",
                "boolean": "true or false",
                "integer": "a whole number",
                "number": "a number",
                "url": "an http(s) URL",
            }.get(self.type, "a text")
            return f"expected {shown}, got {value!r}"
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            return f"expected a list of texts, got {value!r}"
        if self.type == "url" and not str(value).startswith(("http://", "https://")):
            return f"expected an http(s) URL, got {value!r}"
        return None


# Options several adapters share.
RATE = Option("rate", "number", description="messages per second at most (default: the provider's)")
TIMEOUT = Option("timeout", "number", default=15, description="seconds before a request is abandoned")
RECIPIENTS = Option("recipients", "list", description="who receives every alert on this channel")
API_BASE = Option("api_base", "url", description="the provider's API address (tests, proxies)")


class Channel:
    """Base class of every adapter.

    Subclasses set `kind`, `limits`, `per_recipient` (one delivery per subscriber, as SMS and email, or one
    per account, as a Mastodon post) and implement `send`. `options` comes from the service configuration
    (the channel's section); `secret(name)` reads a credential from the environment.
    """

    kind: ClassVar[str] = ""
    limits: ClassVar[Limits] = Limits()
    per_recipient: ClassVar[bool] = False
    # Recipients are the subscribers of the places an alert reaches who are reached by `medium` ("sms",
    # "email"), else options["recipients"], or the account itself when not per_recipient. An e-mail channel
    # has subscribers when its configuration says so.
    subscribers: bool = False
    medium: ClassVar[str] = "sms"
    idempotent: ClassVar[bool] = False  # the provider deduplicates a retried send by our key
    default_rate: ClassVar[float] = 10.0  # messages per second when the configuration says nothing
    # The settings this adapter reads from its section of crieur.yaml, besides `kind` and `rate`: checked
    # at load (alerts.config), listed by `crieur channels`, documented in the README.
    declared_options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def option_table(cls) -> tuple[Option, ...]:
        """Every option of this kind: `rate`, then the adapter's own."""
        return (RATE, *cls.declared_options)

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
            raise ConfigurationError(f"channel {self.name!r}: environment variable {variable} ({option}) is not set")
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


def options_markdown(cls: type[Channel]) -> str:
    """The options of a channel kind as a Markdown table (`crieur channels`, the README)."""
    lines = [
        f"`kind: {cls.kind}`",
        "",
        "| option | type | required | default | what it is |",
        "| --- | --- | --- | --- | --- |",
    ]
    for option in cls.option_table():
        name = f"{option.name}_env" if option.type == "secret" else option.name
        value = str(option.default).lower() if isinstance(option.default, bool) else option.default
        default = "" if option.default is None else f"`{value}`"
        required = "yes" if option.required else ""
        lines.append(f"| `{name}` | {option.type} | {required} | {default} | {option.description} |")
    return "\n".join(lines) + "\n"


REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Class decorator: make an adapter available to configuration under its `kind`."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    REGISTRY[cls.kind] = cls
    return cls
