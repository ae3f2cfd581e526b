"""Fake Twilio Programmable Messaging API (2010-04-01): create and list messages, and status callbacks
signed with X-Twilio-Signature like the real service; Messaging v1: a Messaging Service and its pool of
sender numbers.

Every request is checked against Twilio's own OpenAPI descriptions (twilio-oai, 2010-04-01 and Messaging
v1, read from ../shared/api-specs/twilio) and every answer against their response schemas.
Errors follow Twilio's body: {"code": 21610, "message": ..., "more_info": ..., "status": 400}.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from .base import RECORDED, FakeProvider, Recorded, run_standalone
from .contract import Contracts, openapi

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGES = "/2010-04-01/Accounts/{sid}/Messages.json"


SENDERS = "/v1/Services/{service}/PhoneNumbers"
# Twilio's error code for a refused parameter, by parameter (the description says which parameter is bad)
PARAMETER_CODES = {"To": 21211, "From": 21212, "MessagingServiceSid": 21701, "StatusCallback": 21609}


class FakeTwilio(FakeProvider):
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",
        seed: int = 0,
        services: dict[str, list[str]] | None = None,
    ):
        super().__init__(seed=seed)
        self.contract = Contracts(
            openapi("twilio", "twilio_api_v2010.json"), openapi("twilio", "twilio_messaging_v1.json")
        )
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        # Twilio finds a number's messages through an index: a scan of 100,000 per lookup held the fake's
        # event loop, and the arrival times it records, for seconds after a worker's kill
        self._by_to: dict[str, list[dict[str, Any]]] = {}
        self.callbacks_sent: list[tuple[str, dict[str, str], int]] = []
        # Messaging Services: service SID -> the sender numbers of its pool
        self.services: dict[str, list[str]] = dict(services or {})

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(MESSAGES, self.create_message),
            web.get(MESSAGES, self.list_messages),
            web.get(SENDERS, self.list_senders),
        ]

    def refuse(self, recorded: Recorded, problems: list[str]) -> web.Response:
        """Twilio names the parameter: 21604 for a missing 'To', 21211 for a bad one, 20001 otherwise."""
        first = problems[0]
        if "no such operation" in first:
            return self.error(404, 20404, "The requested resource was not found")
        if "'To' is a required property" in first:
            return self.error(400, 21604, "A 'To' phone number is required.")
        for parameter, code in PARAMETER_CODES.items():
            if first.startswith(f"body/{parameter}:"):
                return self.error(400, code, f"Invalid '{parameter}' parameter: {first}")
        return self.error(400, 20001, f"Invalid parameter: {first}")

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        auth = request.headers.get("Authorization", "")
        try:
            basic = aiohttp.BasicAuth.decode(auth)
        except ValueError:
            return False
        return basic.login == self.account_sid and basic.password == self.auth_token

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        code = {401: 20003, 429: 20429, 500: 20500}.get(int(code), int(code)) if str(code).isdigit() else code
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )

    def unauthorized(self) -> web.Response:
        response = self.error(401, 20003, "Authenticate")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response

    def recipient(self, recorded: Recorded) -> str:
        return recorded.form.get("To", "") if recorded.method == "POST" else ""

    def _now(self) -> datetime:
        return datetime.now(timezone.utc).replace(microsecond=0)

    async def create_message(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid:
            return self.error(404, 20404, "The requested resource was not found")
        form = request[RECORDED].form
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From", ""), form.get("MessagingServiceSid", "")
        if not to:
            return self.error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return self.error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
        if not body:
            return self.error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return self.error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not E164.match(to):
            return self.error(400, 21211, f"Invalid 'To' Phone Number: {to[:4]}XXXX")
        if to in self.rejections:
            rejection = self.rejections[to]
            return self.error(rejection.status, rejection.code, rejection.message)
        now = self._now()
        message = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": format_datetime(now, usegmt=True),
            "date_sent": None,
            "date_updated": format_datetime(now, usegmt=True),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "EUR",
            "sid": "SM" + secrets.token_hex(16),
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {},
            "to": to,
            "uri": "",
        }
        message["uri"] = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message['sid']}.json"
        stored = dict(message)
        stored["_sent_at"] = None  # date_sent stays null until a status callback says sent/delivered
        stored["_callback"] = form.get("StatusCallback", "")
        if self.keep:
            self.messages.append(stored)
            self._by_to.setdefault(to, []).append(stored)
        return web.json_response(message, status=201)

    async def list_senders(self, request: web.Request) -> web.Response:
        """GET /v1/Services/{sid}/PhoneNumbers: the numbers of a Messaging Service's sender pool."""
        service = request.match_info["service"]
        if service not in self.services:
            return self.error(404, 20404, f"The requested resource /Services/{service} was not found")
        stamp = self._now().isoformat().replace("+00:00", "Z")
        url = f"{self.base_url}/v1/Services/{service}/PhoneNumbers"
        numbers = [
            {
                "sid": "PN" + hashlib.sha256(number.encode()).hexdigest()[:32],
                "account_sid": self.account_sid,
                "service_sid": service,
                "date_created": stamp,
                "date_updated": stamp,
                "phone_number": number,
                "country_code": "FR",
                "capabilities": ["SMS"],
                "url": f"{url}/{number}",
            }
            for number in self.services[service]
        ]
        page = f"{url}?PageSize=50&Page=0"
        return web.json_response(
            {
                "phone_numbers": numbers,
                "meta": {
                    "page": 0,
                    "page_size": 50,
                    "first_page_url": page,
                    "previous_page_url": None,
                    "next_page_url": None,
                    "key": "phone_numbers",
                    "url": page,
                },
            }
        )

    async def list_messages(self, request: web.Request) -> web.Response:
        to = request.query.get("To")
        after = request.query.get("DateSent>") or request.query.get("DateSent>=")
        since = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
        page_size = int(request.query.get("PageSize", "50"))
        found = [
            {k: v for k, v in m.items() if not k.startswith("_")}
            for m in reversed(self.messages if to is None else self._by_to.get(to, []))
            if (since is None or (m["_sent_at"] is not None and m["_sent_at"] >= since))
        ][:page_size]
        uri = request.path_qs
        return web.json_response(
            {
                "messages": found,
                "end": max(0, len(found) - 1),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def send_status_callback(self, sid: str, status: str, *, error_code: int | None = None) -> int:
        """POST the status callback Twilio would send for message `sid` (delivered, undelivered, failed),
        signed with X-Twilio-Signature. Returns the receiver's HTTP status."""
        message = next(m for m in self.messages if m["sid"] == sid)
        url = message["_callback"]
        if not url:
            raise ValueError(f"message {sid} has no StatusCallback")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"] or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message["to"],
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        message["status"] = status
        if status in ("sent", "delivered") and message["_sent_at"] is None:
            message["_sent_at"] = self._now()
            message["date_sent"] = format_datetime(message["_sent_at"], usegmt=True)
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=params, headers={"X-Twilio-Signature": signature}) as response:
                self.callbacks_sent.append((url, params, response.status))
                return response.status


def main() -> None:
    run_standalone(lambda args: FakeTwilio(auth_token=args.token, seed=args.seed), "Fake Twilio Messaging API")


if __name__ == "__main__":
    main()
