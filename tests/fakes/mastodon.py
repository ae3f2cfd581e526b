"""Fake Mastodon server: statuses (with Idempotency-Key), notifications, tag timelines.

Errors are `{"error": "..."}`; rate limits carry X-RateLimit-Limit/Remaining/Reset (Reset is ISO 8601,
as Mastodon sends it).
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .base import RECORDED, FakeProvider, Recorded, run_standalone

IDEMPOTENCY_WINDOW = 3600.0


class FakeMastodon(FakeProvider):
    name = "mastodon"

    def __init__(self, *, token: str = "test-token", seed: int = 0, account: str = "cd41") -> None:
        super().__init__(seed=seed)
        self.token = token
        self.account = account
        self.statuses: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self._ids = itertools.count(110_000_000_000_000_001)
        self._idempotency: dict[str, tuple[float, dict[str, Any]]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/statuses", self.post_status),
            web.get("/api/v1/notifications", self.get_notifications),
            web.get("/api/v1/timelines/tag/{tag}", self.get_tag),
        ]

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        if request.path.startswith("/api/v1/timelines/tag/"):
            return True  # public timeline
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> web.Response:
        return self.error(401, 401, "The access token is invalid")

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    def too_many(self, headers: dict[str, str]) -> web.Response:
        reset = datetime.fromtimestamp(time.time() + 30, timezone.utc).isoformat(timespec="milliseconds")
        response = self.error(429, 429, "Too many requests")
        response.headers.update({"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
        response.headers.update(headers)
        return response

    def recipient(self, recorded: Recorded) -> str:
        return self.account if recorded.path == "/api/v1/statuses" else ""

    def add_status(self, text: str, *, tags: tuple[str, ...] = (), account: str | None = None,
                   in_reply_to_id: str | None = None, visibility: str = "public") -> dict[str, Any]:
        status_id = str(next(self._ids))
        acct = account or self.account
        status = {
            "id": status_id,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "in_reply_to_id": in_reply_to_id,
            "visibility": visibility,
            "language": "fr",
            "uri": f"{self.base_url}/users/{acct}/statuses/{status_id}",
            "url": f"{self.base_url}/@{acct}/{status_id}",
            "content": f"<p>{text}</p>",
            "account": {"id": "1", "username": acct, "acct": acct},
            "tags": [{"name": t.lower(), "url": f"{self.base_url}/tags/{t.lower()}"} for t in tags],
        }
        self.statuses.append(status)
        return status

    def add_mention(self, text: str, *, sender: str = "habitant@example.org") -> dict[str, Any]:
        """A citizen mentions the account: a status by `sender` and a mention notification."""
        status = self.add_status(text, account=sender)
        notification = {
            "id": str(len(self.notifications) + 1),
            "type": "mention",
            "created_at": status["created_at"],
            "account": status["account"],
            "status": status,
        }
        self.notifications.append(notification)
        return notification

    async def post_status(self, request: web.Request) -> web.Response:
        recorded: Recorded = request[RECORDED]
        data: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else dict(recorded.form)
        key = request.headers.get("Idempotency-Key", "")
        now = time.time()
        if key and key in self._idempotency and now - self._idempotency[key][0] < IDEMPOTENCY_WINDOW:
            return web.json_response(self._idempotency[key][1])
        text = str(data.get("status") or "").strip()
        if not text:
            return self.error(422, 422, "Validation failed: Text can't be blank")
        if len(text) > 500:
            return self.error(422, 422, "Validation failed: Text character limit of 500 exceeded")
        reply_to = data.get("in_reply_to_id")
        if reply_to and not any(s["id"] == reply_to for s in self.statuses):
            return self.error(404, 404, "Record not found")
        tags = tuple(re.findall(r"#(\w+)", text))
        status = self.add_status(
            text, tags=tags, in_reply_to_id=reply_to, visibility=str(data.get("visibility", "public"))
        )
        if key:
            self._idempotency[key] = (now, status)
        return web.json_response(status)

    async def get_notifications(self, request: web.Request) -> web.Response:
        types = request.query.getall("types[]", [])
        since = int(request.query.get("since_id", "0") or 0)
        limit = int(request.query.get("limit", "40"))
        found = [n for n in self.notifications if int(n["id"]) > since and (not types or n["type"] in types)]
        return web.json_response(list(reversed(found))[:limit])

    async def get_tag(self, request: web.Request) -> web.Response:
        tag = request.match_info["tag"].lower()
        limit = int(request.query.get("limit", "20"))
        found = [s for s in self.statuses if any(t["name"] == tag for t in s["tags"])]
        return web.json_response(list(reversed(found))[:limit])


def main() -> None:
    run_standalone(lambda args: FakeMastodon(token=args.token, seed=args.seed), "Fake Mastodon API")


if __name__ == "__main__":
    main()
