"""Fake Mastodon server: statuses (with Idempotency-Key), notifications, tag timelines, instance (v2).

Requests and answers are checked against the Mastodon OpenAPI description (abraham/mastodon-openapi,
generated from Mastodon's documentation; ../shared/api-specs/mastodon). The status length is counted as
the server does (StatusLengthValidator: grapheme clusters, every URL as 23 characters) against the
instance's own `max_characters` (500 unless the test sets another), and `content` is the server's HTML
(text escaped, paragraphs, line breaks, links and hashtag links).
Errors are `{"error": "..."}`; rate limits carry X-RateLimit-Limit/Remaining/Reset (Reset is ISO 8601,
as Mastodon sends it).
"""

from __future__ import annotations

import copy
import html
import itertools
import re
import time
from datetime import datetime, timezone
from typing import Any

import grapheme
from aiohttp import web

from .base import RECORDED, FakeProvider, Recorded, multipart_parts, run_standalone
from .contract import openapi

IDEMPOTENCY_WINDOW = 3600.0
URL_LENGTH = 23  # configuration.statuses.characters_reserved_per_url, Mastodon's default
_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)]", re.IGNORECASE)
_TAG = re.compile(r"(?<![\w/])#(\w*[^\W\d_]\w*)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def status_length(text: str, url_length: int = URL_LENGTH) -> int:
    """Mastodon's count: grapheme clusters, each URL replaced by the instance's characters_reserved_per_url."""
    return sum(grapheme.length(piece) for piece in _URL.split(text)) + url_length * len(_URL.findall(text))


def status_html(text: str, base_url: str) -> str:
    """The HTML Mastodon makes of a plain-text status (its TextFormatter, simplified to links and tags)."""

    def inline(line: str) -> str:
        out, last = [], 0
        for match in re.finditer(f"{_URL.pattern}|{_TAG.pattern}", line, re.IGNORECASE):
            out.append(html.escape(line[last : match.start()], quote=False))
            token = match.group(0)
            if token.startswith("#"):
                name = token[1:]
                out.append(
                    f'<a href="{base_url}/tags/{name.lower()}" class="mention hashtag" rel="tag">'
                    f"#<span>{html.escape(name)}</span></a>"
                )
            else:
                out.append(
                    f'<a href="{html.escape(token)}" rel="nofollow noopener" target="_blank">'
                    f"{html.escape(token, quote=False)}</a>"
                )
            last = match.end()
        out.append(html.escape(line[last:], quote=False))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n{2,}", text.strip()) if p]
    return "".join("<p>" + "<br />".join(inline(line) for line in p.split("\n")) + "</p>" for p in paragraphs)


class FakeMastodon(FakeProvider):
    name = "mastodon"

    def __init__(
        self,
        *,
        token: str = "test-token",
        seed: int = 0,
        account: str = "cd41",
        max_characters: int = 500,
        url_length: int = URL_LENGTH,
    ) -> None:
        super().__init__(seed=seed)
        self.contract = openapi("mastodon", "schema.json")
        self.token = token
        self.account = account
        self.max_characters = max_characters
        self.url_length = url_length
        self.statuses: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self._ids = itertools.count(110_000_000_000_000_001)
        self._idempotency: dict[str, tuple[float, dict[str, Any]]] = {}
        self.media: dict[str, dict[str, Any]] = {}  # id -> MediaAttachment (with the uploaded bytes in "_data")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/statuses", self.post_status),
            web.post("/api/v2/media", self.post_media),
            web.get("/api/v1/notifications", self.get_notifications),
            web.get("/api/v1/timelines/tag/{tag}", self.get_tag),
            web.get("/api/v2/instance", self.get_instance),
        ]

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        if request.path.startswith("/api/v1/timelines/tag/") or request.path == "/api/v2/instance":
            return True  # public
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

    def refuse(self, recorded: Recorded, problems: list[str]) -> web.Response:
        if "no such operation" in problems[0]:
            return self.error(404, 404, "Record not found")
        if problems[0].startswith("body"):
            return self.error(422, 422, f"Validation failed: {problems[0]}")
        return self.error(400, 400, problems[0])

    def recipient(self, recorded: Recorded) -> str:
        return self.account if recorded.path == "/api/v1/statuses" else ""

    def _account(self, acct: str) -> dict[str, Any]:
        username = acct.split("@")[0]
        return {
            "id": str(abs(hash(acct)) % 10**9),
            "username": username,
            "acct": acct,
            "display_name": username,
            "locked": False,
            "bot": False,
            "group": False,
            "indexable": True,
            "discoverable": True,
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "",
            "url": f"{self.base_url}/@{username}",
            "uri": f"{self.base_url}/users/{username}",
            "avatar": f"{self.base_url}/avatars/original/missing.png",
            "avatar_static": f"{self.base_url}/avatars/original/missing.png",
            "header": f"{self.base_url}/headers/original/missing.png",
            "header_static": f"{self.base_url}/headers/original/missing.png",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": 0,
            "emojis": [],
            "fields": [],
        }

    async def get_instance(self, request: web.Request) -> web.Response:
        """The v2 instance document: the description's own example, with this server's domain and limit."""
        example = openapi("mastodon", "schema.json").spec["components"]["examples"]["Instance200Example"]
        instance = copy.deepcopy(example["value"])
        instance["domain"] = request.host
        instance["configuration"]["statuses"]["max_characters"] = self.max_characters
        instance["configuration"]["statuses"]["characters_reserved_per_url"] = self.url_length
        return web.json_response(instance)

    def add_status(
        self,
        text: str,
        *,
        tags: tuple[str, ...] = (),
        account: str | None = None,
        in_reply_to_id: str | None = None,
        visibility: str = "public",
        content: str | None = None,
    ) -> dict[str, Any]:
        """A status on the server. Its `content` is given, or made from `text`: kept as it is when `text` is
        already HTML (a post from another server, as tests inject them), else rendered as Mastodon does."""
        if content is None:
            content = text if _HTML_TAG.search(text) else status_html(text, self.base_url)
        status_id = str(next(self._ids))
        acct = account or self.account
        parent = next((s for s in self.statuses if s["id"] == in_reply_to_id), None)
        status = {
            "id": status_id,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "in_reply_to_id": in_reply_to_id,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None,
            "visibility": visibility,
            "language": "fr",
            "uri": f"{self.base_url}/users/{acct}/statuses/{status_id}",
            "url": f"{self.base_url}/@{acct}/{status_id}",
            "content": content,
            "text": None,
            "spoiler_text": "",
            "sensitive": False,
            "account": self._account(acct),
            "media_attachments": [],
            "mentions": [],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": 0,
            "tags": [
                {
                    "id": str(abs(hash(t.lower())) % 10**6),
                    "name": t.lower(),
                    "history": [],
                    "url": f"{self.base_url}/tags/{t.lower()}",
                }
                for t in tags
            ],
        }
        self.statuses.append(status)
        return status

    def add_mention(self, text: str, *, sender: str = "habitant@example.org") -> dict[str, Any]:
        """A citizen mentions the account: a status by `sender` and a mention notification."""
        status = self.add_status(text, account=sender)
        notification_id = str(len(self.notifications) + 1)
        notification = {
            "id": notification_id,
            "group_key": f"ungrouped-{notification_id}",
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
        if status_length(text, self.url_length) > self.max_characters:
            return self.error(422, 422, f"Validation failed: Text character limit of {self.max_characters} exceeded")
        reply_to = data.get("in_reply_to_id")
        if reply_to and not any(s["id"] == reply_to for s in self.statuses):
            return self.error(404, 404, "Record not found")
        media_ids = data.get("media_ids") or []
        if not isinstance(media_ids, list) or len(media_ids) > 4:
            return self.error(422, 422, "Validation failed: Media attachments: at most 4")
        if any(str(m) not in self.media for m in media_ids):
            return self.error(422, 422, "Validation failed: media_ids are not yours or do not exist")
        tags = tuple(_TAG.findall(text))
        status = self.add_status(
            text,
            tags=tags,
            in_reply_to_id=reply_to,
            visibility=str(data.get("visibility", "public")),
            content=status_html(text, self.base_url),
        )
        status["media_attachments"] = [
            {k: v for k, v in self.media[str(m)].items() if not k.startswith("_")} for m in media_ids
        ]
        if key:
            self._idempotency[key] = (now, status)
        return web.json_response(status)

    async def post_media(self, request: web.Request) -> web.Response:
        """POST /api/v2/media: multipart form with a `file` (its own MIME type) and an optional `description`
        (at most 1,500 characters); 202 with the MediaAttachment while it is processed."""
        recorded: Recorded = request[RECORDED]
        parts = multipart_parts(recorded)
        if parts is None or "file" not in parts:
            return self.error(422, 422, "Validation failed: File can't be blank")
        data, media_type = parts["file"]
        if not media_type.startswith(("image/", "video/", "audio/")):
            return self.error(422, 422, f"Validation failed: File content type {media_type!r} is invalid")
        description = parts.get("description", (b"", ""))[0].decode("utf-8")
        if len(description) > 1500:
            return self.error(422, 422, "Validation failed: Description is too long (maximum is 1500 characters)")
        media_id = str(next(self._ids))
        self.media[media_id] = {
            "id": media_id,
            "type": media_type.split("/")[0],
            "url": None,
            "preview_url": f"{self.base_url}/media/{media_id}/small",
            "description": description or None,
            "_data": data,
            "_type": media_type,
        }
        return web.json_response({k: v for k, v in self.media[media_id].items() if not k.startswith("_")}, status=202)

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
