"""Fake OVHcloud SMS API (/1.0): the server clock, SMS jobs and the outgoing list, with OVHcloud's
request signing checked like the real service.

A signed call carries X-Ovh-Application, X-Ovh-Consumer, X-Ovh-Timestamp and X-Ovh-Signature = "$1$" +
SHA-1("AS+CK+METHOD+URL+BODY+TIMESTAMP"); a wrong signature is 400 INVALID_SIGNATURE, an unknown key 403
INVALID_CREDENTIAL, a timestamp off the server clock by more than the window 400 "Query out of time".
Errors follow OVHcloud's body: {"errorCode": ..., "httpCode": "400 Bad Request", "message": ...}.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

from channels.ovh import signature

from .base import RECORDED, FakeProvider, Recorded, run_standalone

E164 = re.compile(r"^(\+|00)[1-9]\d{6,14}$")
TIME_WINDOW = 180  # seconds of clock difference the API tolerates
MAX_MESSAGE = 1600  # characters of one job's message
REASONS = {
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
}


class FakeOvh(FakeProvider):
    name = "ovh"

    def __init__(
        self,
        *,
        application_key: str = "ak-test",
        application_secret: str = "as-test",
        consumer_key: str = "ck-test",
        service_name: str = "sms-ab12345-1",
        seed: int = 0,
        clock_offset: float = 0.0,
    ):
        super().__init__(seed=seed)
        self.application_key = application_key
        self.application_secret = application_secret
        self.consumer_key = consumer_key
        self.service_name = service_name
        self.clock_offset = clock_offset  # the server's clock against ours (a client must learn it)
        self.messages: list[dict[str, Any]] = []
        self.callback = ""  # the account's callBack URL (PUT /sms/{serviceName})
        self._ids = itertools.count(100_000_001)

    def now(self) -> int:
        return int(time.time() + self.clock_offset)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/1.0/auth/time", self.server_time),
            web.post("/1.0/sms/{service}/jobs", self.create_job),
            web.get("/1.0/sms/{service}/outgoing", self.list_outgoing),
            web.put("/1.0/sms/{service}", self.update_account),
        ]

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        return True  # checked per route (auth/time is public), with OVHcloud's distinct errors

    def _check_signature(self, request: web.Request, recorded: Recorded) -> web.Response | None:
        if request.headers.get("X-Ovh-Application") != self.application_key:
            return self.error(403, "INVALID_KEY", "This application key is invalid")
        if request.headers.get("X-Ovh-Consumer") != self.consumer_key:
            return self.error(403, "INVALID_CREDENTIAL", "This credential does not exist")
        try:
            timestamp = int(request.headers.get("X-Ovh-Timestamp", ""))
        except ValueError:
            return self.error(400, "INVALID_TIMESTAMP", "Invalid timestamp")
        if abs(timestamp - self.now()) > TIME_WINDOW:
            return self.error(400, "QUERY_TIME_OUT", "Query out of time")
        url = f"{self.base_url}{request.raw_path}"  # as the client wrote it (query not re-encoded)
        expected = signature(
            self.application_secret, self.consumer_key, request.method, url, recorded.body.decode("utf-8"), timestamp
        )
        if request.headers.get("X-Ovh-Signature") != expected:
            return self.error(400, "INVALID_SIGNATURE", "Invalid signature")
        if request.match_info.get("service") != self.service_name:
            return self.error(
                404,
                "RESOURCE_NOT_FOUND",
                f"The requested object (serviceName = {request.match_info.get('service')}) does not exist",
            )
        return None

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        code = {500: "INTERNAL_ERROR", 429: "TOO_MANY_REQUESTS", 401: "NOT_AUTHENTICATED"}.get(code, code)  # type: ignore[call-overload]
        return web.json_response(
            {"errorCode": code, "httpCode": REASONS.get(status, str(status)), "message": message}, status=status
        )

    def recipient(self, recorded: Recorded) -> str:
        if recorded.method == "POST" and isinstance(recorded.json, dict):
            receivers = recorded.json.get("receivers") or [""]
            return str(receivers[0])
        return ""

    async def server_time(self, request: web.Request) -> web.Response:
        return web.json_response(self.now())

    async def create_job(self, request: web.Request) -> web.Response:
        recorded = request[RECORDED]
        refused = self._check_signature(request, recorded)
        if refused is not None:
            return refused
        try:
            body = json.loads(recorded.body)
        except ValueError:
            return self.error(400, "INVALID_BODY", "Invalid JSON received")
        if not isinstance(body, dict):
            return self.error(400, "INVALID_BODY", "Invalid JSON received")
        unknown = set(body) - {
            "message",
            "receivers",
            "sender",
            "senderForResponse",
            "noStopClause",
            "priority",
            "tag",
            "charset",
            "coding",
            "class",
            "differedPeriod",
            "validityPeriod",
            "receiversDocumentUrl",
            "receiversSlotId",
        }
        if unknown:
            return self.error(400, "INVALID_BODY", f"Unknown parameter(s): {', '.join(sorted(unknown))}")
        message = body.get("message")
        if not isinstance(message, str) or not message:
            return self.error(400, "INVALID_BODY", "Missing parameter(s) : message")
        if len(message) > MAX_MESSAGE:
            return self.error(400, "INVALID_BODY", "Message too long")
        receivers = body.get("receivers")
        if not isinstance(receivers, list) or not receivers:
            return self.error(400, "INVALID_BODY", "No receivers")
        if not body.get("sender") and not body.get("senderForResponse"):
            return self.error(400, "INVALID_BODY", "A sender is required unless senderForResponse is true")
        if body.get("priority", "high") not in ("high", "low", "medium", "veryLow"):
            return self.error(400, "INVALID_BODY", "Invalid priority")
        tag = body.get("tag", "")
        if not isinstance(tag, str) or len(tag) > 128:
            return self.error(400, "INVALID_BODY", "Invalid tag")
        valid = [r for r in receivers if isinstance(r, str) and E164.match(r)]
        invalid = [r for r in receivers if r not in valid]
        for receiver in [r for r in valid if r in self.rejections]:  # reject(): a number OVHcloud refuses
            valid.remove(receiver)
            invalid.append(receiver)
        ids = []
        for receiver in valid:
            job_id = next(self._ids)
            ids.append(job_id)
            self.messages.append(
                {"id": job_id, "receiver": receiver, "message": message, "tag": tag, "created": self.now()}
            )
        return web.json_response(
            {
                "ids": ids,
                "validReceivers": valid,
                "invalidReceivers": invalid,
                "totalCreditsRemoved": len(valid),
                "tag": tag,
            }
        )

    async def list_outgoing(self, request: web.Request) -> web.Response:
        refused = self._check_signature(request, request[RECORDED])
        if refused is not None:
            return refused
        tag = request.query.get("tag")
        receiver = request.query.get("receiver")
        return web.json_response(
            [
                m["id"]
                for m in self.messages
                if (tag is None or m["tag"] == tag) and (receiver is None or m["receiver"] == receiver)
            ]
        )

    async def update_account(self, request: web.Request) -> web.Response:
        """PUT /sms/{serviceName}: the account's settings; only callBack matters here (a URL or "")."""
        recorded = request[RECORDED]
        refused = self._check_signature(request, recorded)
        if refused is not None:
            return refused
        body = recorded.json
        allowed = {"callBack", "description", "stopCallBack", "automaticRecreditAmount", "smsResponse"}
        if not isinstance(body, dict) or set(body) - allowed:
            return self.error(400, "INVALID_BODY", "Invalid JSON received")
        callback = body.get("callBack", self.callback)
        if not isinstance(callback, str) or (callback and not callback.startswith(("http://", "https://"))):
            return self.error(400, "INVALID_BODY", "callBack must be an URL")
        self.callback = callback
        return web.json_response(None)

    async def send_receipt(self, job_id: int, dlr: int, description: str = "") -> int:
        """GET the account's callBack as OVHcloud reports a job's state: its `id` and `dlr` (1 delivered,
        2 not delivered, 4 buffered, 8 delivered to the SMSC, 16 not delivered to the SMSC). Returns the
        HTTP status the callback answered."""
        import aiohttp

        job = next(m for m in self.messages if m["id"] == job_id)
        params = {"id": str(job_id), "receiver": job["receiver"], "dlr": str(dlr), "description": description}
        async with aiohttp.ClientSession() as session:
            async with session.get(self.callback, params=params) as response:
                return response.status

    def sent_to(self, receiver: str) -> list[str]:
        return [m["message"] for m in self.messages if m["receiver"] == receiver]


if __name__ == "__main__":
    run_standalone(lambda args: FakeOvh(), "Fake OVHcloud SMS API")
