"""SMS through OVHcloud's SMS API (many French collectivités hold an OVHcloud SMS account).

Every call is signed: headers X-Ovh-Application (application key), X-Ovh-Consumer (consumer key),
X-Ovh-Timestamp (the API's clock, learnt from GET /auth/time) and X-Ovh-Signature, "$1$" followed by the
SHA-1 hex digest of "AS+CK+METHOD+URL+BODY+TIMESTAMP" (application secret, consumer key, method, full URL,
body as sent, timestamp). A message is a job, POST /sms/{serviceName}/jobs, tagged with our delivery key so
that an in-doubt delivery is found again (GET /sms/{serviceName}/outgoing?tag=...).

Delivery receipts: OVHcloud calls the account's `callBack` URL (GET, with the job's `id` and its `dlr`
code) when a message's state changes. With `receipts: true` the adapter sets that URL at start
(PUT /sms/{serviceName}) to the one the service gives it in `status_callback` (alerts.citizens.ovh).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from yarl import URL

from ._http import Answer, base_url_option, parse_retry_after, request, timeout_option
from .base import (
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

ENDPOINT = "https://eu.api.ovh.com/1.0"
TAG_MAX = 128  # OVHcloud keeps tags up to this length


def signature(application_secret: str, consumer_key: str, method: str, url: str, body: str, timestamp: int) -> str:
    """OVHcloud's request signature ("$1$" + SHA-1 of the parts joined by "+")."""
    basis = "+".join((application_secret, consumer_key, method.upper(), url, body, str(timestamp)))
    return "$1$" + hashlib.sha1(basis.encode("utf-8")).hexdigest()


@register
class OvhChannel(Channel):
    kind = "ovh"
    declared_options = (
        Option("application_key", "secret", required=True, description="the OVHcloud application key (AK)"),
        Option("application_secret", "secret", required=True, description="the application secret (AS)"),
        Option("consumer_key", "secret", required=True, description="the consumer key (CK) allowed on /sms"),
        Option("service_name", "text", required=True, description="the SMS account, sms-ab12345-1"),
        Option(
            "sender",
            "text",
            description="a sender registered on the account (else a short number that accepts replies)",
        ),
        Option("endpoint", "url", default=ENDPOINT, description="the API base (tests, OVHcloud Canada...)"),
        Option("max_segments", "integer", default=10, description="longest SMS sent, in segments"),
        Option("receipts", "boolean", default=False, description="point the account's callBack at Crieur"),
        TIMEOUT,
    )
    limits = Limits(counting="sms", max_segments=10)
    per_recipient = True
    subscribers = True
    idempotent = False
    default_rate = 10.0

    def __init__(self, name: str, options: Mapping[str, Any] | None = None):
        super().__init__(name, options)
        self.timeout = timeout_option(self)
        self.endpoint = base_url_option(self, "endpoint", ENDPOINT)
        self.service = self.require("service_name")
        self.sender = str(self.options.get("sender") or "")
        try:
            segments = int(self.options.get("max_segments", 10))
        except (TypeError, ValueError):
            raise ConfigurationError(f"channel {name!r}: max_segments must be an integer") from None
        self.limits = Limits(counting="sms", max_segments=segments)  # type: ignore[misc]
        self._application_key = self.secret("application_key")
        self._application_secret = self.secret("application_secret")
        self._consumer_key = self.secret("consumer_key")
        self._clock_delta: float | None = None  # the API's clock minus ours
        self.receipts = self.options.get("receipts", False) is True
        self.status_callback = ""  # Crieur's receipt URL, set by the service when `receipts` is on

    async def start(self, session: Any) -> None:
        await super().start(session)
        if self.receipts and self.status_callback:
            answer = await self._call("PUT", f"/sms/{quote(self.service)}", {"callBack": self.status_callback})
            if answer.status != 200:
                raise self._error(answer)

    async def _timestamp(self) -> int:
        if self._clock_delta is None:
            answer = await request(self, "GET", f"{self.endpoint}/auth/time", timeout=self.timeout)
            if answer.status != 200 or not isinstance(answer.json(), int):
                raise self._error(answer)
            self._clock_delta = answer.json() - time.time()
        return int(time.time() + self._clock_delta)

    async def _call(
        self, method: str, path: str, payload: Any = None, query: Mapping[str, str] | None = None
    ) -> Answer:
        url = f"{self.endpoint}{path}" + (f"?{urlencode(query)}" if query else "")
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        timestamp = await self._timestamp()
        headers = {
            "X-Ovh-Application": self._application_key,
            "X-Ovh-Consumer": self._consumer_key,
            "X-Ovh-Timestamp": str(timestamp),
            "X-Ovh-Signature": signature(self._application_secret, self._consumer_key, method, url, body, timestamp),
            "Content-Type": "application/json",
        }
        # sent exactly as signed: aiohttp would otherwise normalise the query's escapes
        answer = await request(
            self,
            method,
            URL(url, encoded=True),
            timeout=self.timeout,
            headers=headers,
            data=body.encode("utf-8") if body else None,
        )
        if answer.status == 400 and "out of time" in answer.text.lower():  # our clock drifted: learn it again
            self._clock_delta = None
        return answer

    def _error(self, answer: Answer) -> DeliveryError:
        body = answer.json() if isinstance(answer.json(), dict) else {}
        code = str(body.get("errorCode") or answer.status)
        text = f"{self.name}: OVHcloud {answer.status} {code}: {body.get('message') or answer.text[:200]}"
        if answer.status == 429:
            return RateLimited(text, code=code, retry_after=parse_retry_after(answer.headers.get("Retry-After")))
        if answer.status >= 500 or "out of time" in text.lower():
            return TransientError(text, code=code)
        if answer.status in (401, 403) or code in ("INVALID_SIGNATURE", "INVALID_CREDENTIAL"):
            return AuthError(text, code=code)
        return PermanentError(text, code=code)

    async def send(self, message: Message) -> Receipt:
        if not message.recipient:
            raise PermanentError(f"{self.name}: message {message.key} has no recipient", recipient_action="invalid")
        payload: dict[str, Any] = {
            "message": message.text,
            "receivers": [message.recipient],
            "charset": "UTF-8",
            "priority": "high",
            "noStopClause": True,  # public-service information, not marketing; STOP is handled by Crieur
            "tag": message.key[:TAG_MAX],
        }
        if self.sender:
            payload["sender"] = self.sender
        else:
            payload["senderForResponse"] = True
        answer = await self._call("POST", f"/sms/{quote(self.service)}/jobs", payload)
        if answer.status != 200:
            raise self._error(answer)
        body = answer.json() or {}
        if message.recipient in (body.get("invalidReceivers") or []):
            raise PermanentError(
                f"{self.name}: OVHcloud refused the number as invalid",
                code="invalidReceivers",
                recipient_action="invalid",
            )
        ids = body.get("ids") or []
        if not ids:
            raise TransientError(f"{self.name}: OVHcloud accepted no message ({answer.text[:200]})", code="no-ids")
        return Receipt(provider_id=f"ovh:{ids[0]}", status="queued")

    async def find_sent(self, message: Message, since: float) -> Receipt | None:
        """The message sent under this delivery's tag to this number, if OVHcloud has one."""
        answer = await self._call(
            "GET",
            f"/sms/{quote(self.service)}/outgoing",
            query={"tag": message.key[:TAG_MAX], "receiver": message.recipient},
        )
        if answer.status != 200:
            raise self._error(answer)
        ids = answer.json() or []
        return Receipt(provider_id=f"ovh:{ids[0]}", status="sent") if ids else None
