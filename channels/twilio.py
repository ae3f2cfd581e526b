"""SMS through Twilio.

`send`, the hot path of a fan-out, posts the Messages create form itself on the service's aiohttp session.
`find_sent` (asked only for a delivery in doubt) uses the official `twilio` library's async client:
`_TwilioHttp` hands it the same session, bounds each exchange by the channel timeout, remembers the last
answer's headers (the library's exception drops Retry-After) and, when the `api_base` option is set (tests,
benchmarks), sends the requests to that base instead of https://api.twilio.com (or the edge/region host the
library picked). Both map Twilio's errors the same way (`_error`).

Sending through a Messaging Service (`messaging_service_sid`) lets Twilio spread messages over the
service's pool of sender numbers. Throughput is per sender: `sender_rate` segments per second (by default
Twilio's figure for the `number_type`), times the pool size (`senders`, else read from the service at
start: GET /v1/Services/{sid}/PhoneNumbers). `seconds_for(messages, segments)` says how long a fan-out
takes at that rate; the console shows it before sending.

Held to Twilio's own OpenAPI descriptions (twilio-oai: 2010-04-01 and Messaging v1) by the test fake.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ._http import DryRunnable, no_credentials, parse_retry_after, positive_option, request, timeout_option
from .base import (
    API_BASE,
    TIMEOUT,
    AuthError,
    Channel,
    ConfigurationError,
    DeliveryError,
    Limits,
    Message,
    Option,
    PermanentError,
    RateLimited,
    Receipt,
    TransientError,
    register,
)

log = logging.getLogger("crieur.channels.twilio")

# Segments per second one sender can push, by number type (Twilio's queueing limits for France/US senders).
RATES = {"long_code": 1.0, "toll_free": 3.0, "short_code": 100.0}
UNSUBSCRIBED = {21610}  # recipient replied STOP
INVALID_RECIPIENT = {21211, 21614, 21612, 21408}  # not a number / not mobile / unreachable / region off
FIND_SENT_WINDOW = 50  # newest messages to one number examined by find_sent
CLOCK_SKEW = timedelta(seconds=5)  # our clock against Twilio's (date_created has second precision)

_last_headers: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "twilio_last_headers", default=MappingProxyType({})
)


class _TwilioHttp(AsyncTwilioHttpClient):
    """The library's aiohttp client, on a session we own, with a timeout and an optional base rewrite."""

    def __init__(self, session: aiohttp.ClientSession, api_base: str | None, timeout: float):
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = session
        self._api_base = api_base
        self._timeout_s = timeout

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self._api_base:  # every Twilio host (edge/region variants too) goes to the configured base
            parts = urlsplit(url)
            url = self._api_base + parts.path + (f"?{parts.query}" if parts.query else "")
        kwargs["timeout"] = None  # bounded below: aiohttp wants a ClientTimeout, the library passes a float
        auth = kwargs.pop("auth", None)
        if auth is not None:  # aiohttp deprecates auth=BasicAuth(...); send the same header ourselves
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            kwargs["headers"] = dict(kwargs.get("headers") or {}) | {"Authorization": f"Basic {token}"}
        async with asyncio.timeout(self._timeout_s):
            response = await super().request(method, url, *args, **kwargs)
        _last_headers.set(response.headers or {})
        return response

    async def close(self) -> None:
        """The session belongs to the service; nothing to close."""


@register
class TwilioChannel(DryRunnable, Channel):
    kind = "twilio"
    declared_options = (
        Option("account_sid", "secret", required=True, description="the Twilio account SID"),
        Option("auth_token", "secret", required=True, description="the account's auth token"),
        Option("from", "text", description="the sending number, +33757000041 (or messaging_service_sid)"),
        Option("from_", "text", description="the same as from"),
        Option("messaging_service_sid", "text", description="a Messaging Service, instead of from"),
        Option(
            "number_type",
            "text",
            default="long_code",
            description="long_code, toll_free or short_code: sets the default rate",
        ),
        Option(
            "senders",
            "integer",
            default=1,
            description="senders in the Messaging Service's pool (read from Twilio at start when not set)",
        ),
        Option(
            "sender_rate", "number", description="segments per second one sender may send (default: by number_type)"
        ),
        Option("max_segments", "integer", default=10, description="longest SMS sent, in segments"),
        Option("price_per_segment", "number", description="euros per SMS segment: the console shows the cost"),
        Option("gsm7", "boolean", default=False, description="transliterate every text to the GSM-7 alphabet"),
        Option("status_callback", "url", description="where Twilio reports delivery (…/twilio/status)"),
        API_BASE,
        TIMEOUT,
    )
    limits = Limits(counting="sms", max_segments=10)
    per_recipient = True
    subscribers = True
    idempotent = False
    default_rate = 1.0

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.timeout = timeout_option(self)
        number_type = str(self.options.get("number_type", "long_code"))
        if number_type not in RATES:
            raise ConfigurationError(
                f"channel {name!r}: number_type must be one of {', '.join(RATES)}, not {number_type!r}"
            )
        self.sender_rate = positive_option(self, "sender_rate", self.options.get("sender_rate", RATES[number_type]))
        self._pool_configured = "senders" in self.options
        self.senders = int(positive_option(self, "senders", self.options.get("senders", 1)))
        self._rate_configured = "rate" in self.options
        if not self._rate_configured:
            self.rate = self.sender_rate * self.senders
        try:
            segments = int(self.options.get("max_segments", 10))
        except (TypeError, ValueError):
            raise ConfigurationError(f"channel {name!r}: max_segments must be an integer") from None
        self.limits = Limits(counting="sms", max_segments=segments)  # type: ignore[misc]
        self.sender = str(self.options.get("from") or self.options.get("from_") or "")
        self.service_sid = str(self.options.get("messaging_service_sid") or "")
        if not self.sender and not self.service_sid:
            raise ConfigurationError(f"channel {name!r}: set 'from' (a number) or 'messaging_service_sid'")
        self.status_callback = str(self.options.get("status_callback") or "")
        api_base = str(self.options.get("api_base") or "").rstrip("/")
        if api_base and urlsplit(api_base).scheme not in ("http", "https"):
            raise ConfigurationError(f"channel {name!r}: api_base must be an http(s) URL")
        self.api_base = api_base or None
        self._sid = self.secret("account_sid") if credentials else ""
        self._token = self.secret("auth_token") if credentials else ""
        self._client: Client | None = None
        base = self.api_base or "https://api.twilio.com"
        self._messages_url = f"{base}/2010-04-01/Accounts/{quote(self._sid, safe='')}/Messages.json"
        token = base64.b64encode(f"{self._sid}:{self._token}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        sender = {"MessagingServiceSid": self.service_sid} if self.service_sid else {"From": self.sender}
        self._sender_field = urlencode(sender)
        self._body_field = ("", "")  # the last text sent and its encoding: a fan-out sends one text N times

    async def start(self, session: aiohttp.ClientSession) -> None:
        await super().start(session)
        if self._sid:
            http = _TwilioHttp(session, self.api_base, self.timeout)
            self._client = Client(self._sid, self._token, http_client=http, environment={})
            if self.service_sid and not self._pool_configured:
                await self.read_sender_pool()

    async def read_sender_pool(self) -> int:
        """The number of senders in the Messaging Service's pool, kept as `senders` (and the rate follows,
        unless configured). When the pool cannot be read, the configured figure stays and a warning says so."""
        try:
            numbers = await self._api().messaging.v1.services(self.service_sid).phone_numbers.list_async()
        except (TwilioException, TimeoutError, aiohttp.ClientError) as exc:
            log.warning(
                "%s: sender pool of %s not read (%s); counting %d sender(s)",
                self.name,
                self.service_sid,
                _safe(exc),
                self.senders,
            )
            return self.senders
        self.senders = max(1, len(numbers))
        if not self._rate_configured:
            self.rate = self.sender_rate * self.senders
        log.info(
            "%s: %d sender(s) in %s, %.1f segments/s",
            self.name,
            self.senders,
            self.service_sid,
            self.sender_rate * self.senders,
        )
        return self.senders

    def seconds_for(self, messages: int, segments: int = 1) -> float:
        """How long sending `messages` messages of `segments` segments takes at the pool's throughput."""
        per_second = self.rate if self._rate_configured else self.sender_rate * self.senders
        return messages * max(1, segments) / per_second if messages else 0.0

    def _api(self) -> Client:
        if not self._sid:
            raise no_credentials(self)
        if self._client is None:
            raise RuntimeError(f"channel {self.name!r} used before start()")
        return self._client

    def _callback_for(self, message: Message) -> str | None:
        if not self.status_callback:
            return None
        separator = "&" if "?" in self.status_callback else "?"
        return f"{self.status_callback}{separator}d={quote(message.key, safe=':')}"

    async def send(self, message: Message) -> Receipt:
        """POST the Messages create form ourselves: the hot path of a fan-out. A profile of the worker
        put the library's own request building and response parsing at about 14 % of its time, and then
        aiohttp's form encoding (FormData, three fields quoted each time) at about a fifth of the rest: the
        form is encoded here, the text once for the whole fan-out. The library still serves `find_sent`
        (paging, dates)."""
        if not message.recipient:
            raise PermanentError(f"{self.name}: message {message.key} has no recipient", recipient_action="invalid")
        if not self._sid:
            raise no_credentials(self)
        answer = await request(
            self, "POST", self._messages_url, timeout=self.timeout, data=self._form(message), headers=self._headers
        )
        body = answer.json()
        if answer.status != 201 or not isinstance(body, dict) or not body.get("sid"):
            error = body if isinstance(body, dict) else {}
            raise self._error(
                answer.status, error.get("code"), str(error.get("message") or answer.text[:200]), answer.headers
            )
        return Receipt(provider_id=str(body["sid"]), status=str(body.get("status") or "queued"))

    def _form(self, message: Message) -> bytes:
        """The Messages create form, application/x-www-form-urlencoded."""
        text, encoded = self._body_field
        if text != message.text:
            text, encoded = self._body_field = (message.text, quote_plus(message.text))
        form = f"To={quote_plus(message.recipient or '')}&{self._sender_field}&Body={encoded}"
        callback = self._callback_for(message)
        if callback:
            form += f"&StatusCallback={quote_plus(callback)}"
        return form.encode("ascii")

    def _translate(self, exc: TwilioRestException) -> DeliveryError:
        return self._error(exc.status, exc.code, exc.msg, _last_headers.get())

    def _error(self, status: int, code: Any, detail: str, headers: Mapping[str, str]) -> DeliveryError:
        """An error answer (status, Twilio's error code and message) as a DeliveryError."""
        try:
            code = int(code) if code else 0
        except (TypeError, ValueError):
            code = 0
        text = f"{self.name}: Twilio {status} error {code or '-'}: {detail}"
        if status == 429 or code == 20429:
            return RateLimited(text, code=str(code or 429), retry_after=parse_retry_after(headers.get("Retry-After")))
        if status >= 500:
            return TransientError(text, code=str(code or status))
        if status in (401, 403) or code == 20003:
            return AuthError(text, code=str(code or status))
        if code in UNSUBSCRIBED:
            return PermanentError(text, code=str(code), recipient_action="unsubscribe")
        if code in INVALID_RECIPIENT:
            return PermanentError(text, code=str(code), recipient_action="invalid")
        return PermanentError(text, code=str(code or status))

    async def find_sent(self, message: Message, since: float) -> Receipt | None:
        """The message to the same number with the same body created since `since` (epoch seconds), if any.

        Lists the number's newest messages (GET Messages.json?To=...) and filters on date_created here:
        Twilio's DateSent filter has day granularity and skips messages still queued (date_sent null),
        which is exactly the state of a message whose worker died just after creating it."""
        client = self._api()
        after = datetime.fromtimestamp(since, timezone.utc)
        try:
            found = await client.messages.list_async(to=message.recipient, limit=FIND_SENT_WINDOW)
        except TwilioRestException as exc:
            raise self._translate(exc) from None
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            raise TransientError(f"{self.name}: {type(exc).__name__}: {_safe(exc)}", code="connection") from None
        for record in found:
            created = record.date_created
            if created is not None and created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)
            recent = created is None or created >= after - CLOCK_SKEW
            if recent and record.to == message.recipient and record.body == message.text:
                return Receipt(provider_id=str(record.sid), status=str(record.status or "queued"))
        return None


def _safe(exc: BaseException) -> str:
    """An exception text without URLs (they name the account SID)."""
    return str(exc).split(" http", 1)[0][:200]
