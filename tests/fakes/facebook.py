"""Fake Facebook Graph API: POST /{version}/{page_id}/feed with a Page access token; replies under a
citizen's comment (POST /{comment-id}/comments) and Messenger answers (the Send API, POST
/{page-id}/messages); and the Page webhook's events as Facebook sends them (`comment_event`,
`message_event`, `signed` with the app secret).

Comments: the comment replied to must exist, a message is at most 8,000 characters. Messenger: the
recipient must have written to the Page, and a RESPONSE is refused (code 10, subcode 2018278) more than
24 hours after their last message; a text is at most 2,000 characters.

Facebook publishes no machine-readable description of the Graph API (see ../shared/api-specs/SOURCES.md),
so `GraphFeedContract` below follows the Graph API reference for the Page feed edge (POST
/{page-id}/feed): a versioned path, form parameters among those documented (message, link, published,
scheduled_publish_time...), a message of at most 63,206 characters, an absolute http(s) link, booleans
as true/false; the answer is {"id": "<page-id>_<post-id>"}. What it refuses gets Graph's (#100) error.
Errors are Graph error objects {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .base import RECORDED, FakeProvider, Recorded, multipart_parts, run_standalone

FEED = re.compile(r"^/v\d+\.\d+/[^/]+/feed$")
PHOTOS = re.compile(r"^/v\d+\.\d+/[^/]+/photos$")
# the documented parameters of POST /{page-id}/photos (Graph API reference, Page Photos), sent multipart
PHOTO_PARAMETERS = {
    "access_token",
    "source",
    "url",
    "caption",
    "message",
    "published",
    "alt_text_custom",
    "no_story",
    "scheduled_publish_time",
    "temporary",
    "appsecret_proof",
}
# the documented parameters of POST /{page-id}/feed (Graph API reference, Page Feed)
FEED_PARAMETERS = {
    "access_token",
    "message",
    "link",
    "published",
    "scheduled_publish_time",
    "place",
    "tags",
    "targeting",
    "feed_targeting",
    "backdated_time",
    "child_attachments",
    "multi_share_optimized",
    "multi_share_end_card",
    "object_attachment",
    "unpublished_content_type",
    "appsecret_proof",
}
MAX_MESSAGE = 63206
COMMENTS = re.compile(r"^/v\d+\.\d+/[^/]+/comments$")
MESSAGES = re.compile(r"^/v\d+\.\d+/[^/]+/messages$")
# the documented parameters of POST /{object-id}/comments (Graph API reference, Object Comments)
COMMENT_PARAMETERS = {
    "access_token",
    "message",
    "attachment_id",
    "attachment_share_url",
    "attachment_url",
    "source",
    "appsecret_proof",
}
MAX_COMMENT = 8000
MAX_MESSENGER_TEXT = 2000
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
STANDARD_WINDOW = 24 * 3600.0  # Messenger: answers within 24 hours of the person's last message
POST_ID = re.compile(r"^\d+_\d+$")


class GraphFeedContract:
    """POST /{version}/{page-id}/feed as the Graph API reference describes it (no OpenAPI exists)."""

    def check_request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
        form: dict[str, str],
        json_body: Any,
    ) -> tuple[Any, list[str]]:
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if method == "POST" and PHOTOS.match(path):
            return "photos", self._photo_problems(content_type, body, headers)
        if method == "POST" and COMMENTS.match(path):
            if not content_type.startswith("application/x-www-form-urlencoded"):
                return "comments", [f"parameters must be form-encoded, not {content_type or '(none)'}"]
            problems = [
                f"param {name}: not a parameter of the comments edge" for name in form if name not in COMMENT_PARAMETERS
            ]
            if len(form.get("message", "")) > MAX_COMMENT:
                problems.append(f"param message: longer than {MAX_COMMENT} characters")
            return "comments", problems
        if method == "POST" and MESSAGES.match(path):
            return "messages", self._send_api_problems(content_type, query, json_body)
        if method != "POST" or not FEED.match(path):
            return None, [f"{method} {path}: not the Page feed edge (POST /vX.Y/{{page-id}}/feed)"]
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return "feed", [f"parameters must be form-encoded, not {content_type or '(none)'}"]
        problems = [f"param {name}: not a parameter of the feed edge" for name in form if name not in FEED_PARAMETERS]
        message = form.get("message", "")
        if len(message) > MAX_MESSAGE:
            problems.append(f"param message: longer than {MAX_MESSAGE} characters")
        link = form.get("link")
        if link is not None and (urlsplit(link).scheme not in ("http", "https") or not urlsplit(link).netloc):
            problems.append(f"param link: {link!r} is not an absolute http(s) URL")
        if form.get("published", "true") not in ("true", "false"):
            problems.append("param published: must be true or false")
        return "feed", problems

    @staticmethod
    def _send_api_problems(content_type: str, query: list[tuple[str, str]], payload: Any) -> list[str]:
        """The Send API: a JSON body with recipient.id, a messaging_type and a message of text (at most
        2,000 characters); the Page token as the access_token query parameter."""
        if not content_type.startswith("application/json") or not isinstance(payload, dict):
            return [f"the Send API takes a JSON object, not {content_type or '(none)'}"]
        problems = []
        if not dict(query).get("access_token"):
            problems.append("query access_token: missing")
        recipient = payload.get("recipient")
        if not isinstance(recipient, dict) or not str(recipient.get("id", "")).isdigit():
            problems.append("recipient.id: a page-scoped id is required")
        if payload.get("messaging_type") not in MESSAGING_TYPES:
            problems.append(f"messaging_type: one of {', '.join(MESSAGING_TYPES)}")
        message = payload.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text:
            problems.append("message.text: required")
        elif len(text) > MAX_MESSENGER_TEXT:
            problems.append(f"message.text: longer than {MAX_MESSENGER_TEXT} characters")
        unknown = set(payload) - {"recipient", "messaging_type", "message", "tag", "notification_type"}
        problems += [f"{name}: not a field of the Send API" for name in sorted(unknown)]
        return problems

    @staticmethod
    def _photo_problems(content_type: str, body: bytes, headers: dict[str, str]) -> list[str]:
        """POST /{page-id}/photos: a file upload (multipart), documented parameters, a caption of at most
        63,206 characters."""
        if not content_type.startswith("multipart/form-data"):
            return [f"a photo upload is multipart/form-data, not {content_type or '(none)'}"]
        parts = multipart_parts(Recorded("POST", "", [], headers, body)) or {}
        problems = [
            f"param {name}: not a parameter of the photos edge" for name in parts if name not in PHOTO_PARAMETERS
        ]
        if len(parts.get("caption", (b"", ""))[0].decode("utf-8", "replace")) > MAX_MESSAGE:
            problems.append(f"param caption: longer than {MAX_MESSAGE} characters")
        return problems

    def check_response(self, operation: Any, status: int, content_type: str, body: bytes) -> list[str]:
        if operation == "messages" and status == 200:
            answer = json.loads(body) if body else None
            if not isinstance(answer, dict) or not answer.get("recipient_id") or not answer.get("message_id"):
                return ['answer 200 is not {"recipient_id": ..., "message_id": ...}']
            return []
        if operation == "comments" and status == 200:
            answer = json.loads(body) if body else None
            if not isinstance(answer, dict) or not POST_ID.match(str(answer.get("id", ""))):
                return ['answer 200 is not {"id": "<post-id>_<comment-id>"}']
            return []
        if operation == "photos" and status == 200:
            answer = json.loads(body) if body else None
            if not isinstance(answer, dict) or not POST_ID.match(str(answer.get("post_id", ""))):
                return ['answer 200 is not {"id": "<photo-id>", "post_id": "<page-id>_<post-id>"}']
            return []
        try:
            answer = json.loads(body) if body else None
        except ValueError:
            return [f"answer {status} is not JSON"]
        if status == 200:
            if not isinstance(answer, dict) or not POST_ID.match(str(answer.get("id", ""))):
                return ['answer 200 is not {"id": "<page-id>_<post-id>"}']
            return []
        error = answer.get("error") if isinstance(answer, dict) else None
        if not isinstance(error, dict) or not {"message", "type", "code"} <= set(error):
            return [f"error {status} is not a Graph error object"]
        return []


STATUS_FOR_CODE = {1: 500, 2: 503, 4: 400, 17: 400, 32: 400, 613: 400, 190: 400, 100: 400, 200: 403, 506: 400}


class FakeFacebook(FakeProvider):
    name = "facebook"

    def __init__(self, *, page_id: str = "100200300400500", token: str = "test-token", seed: int = 0):
        super().__init__(seed=seed)
        self.contract = GraphFeedContract()
        self.page_id = page_id
        self.token = token
        self.posts: list[dict[str, Any]] = []
        self._ids = itertools.count(900_000_000_000_001)
        self.next_error: list[tuple[int, int | None, str]] = []  # (code, subcode, message) answered in order
        self.app_secret = "fake-app-secret-" + secrets.token_hex(8)
        self.comments: dict[str, dict[str, Any]] = {}  # comment id -> {message, from, post_id, parent_id}
        self.last_inbound: dict[str, float] = {}  # Messenger: PSID -> time of the person's last message
        self.messages: list[dict[str, Any]] = []  # what the Page sent in Messenger

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/{version}/{page_id}/feed", self.post_feed),
            web.post("/{version}/{page_id}/photos", self.post_photo),
            web.post("/{version}/{object_id}/comments", self.post_comment),
            web.post("/{version}/{page_id}/messages", self.post_message),
        ]

    def _token(self, request: web.Request, recorded: Recorded) -> str:
        parts = multipart_parts(recorded) or {}
        from_parts = parts.get("access_token", (b"", ""))[0].decode()
        return recorded.form.get("access_token") or from_parts or request.query.get("access_token", "")

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        return self._token(request, recorded) == self.token

    def graph_error(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        status: int | None = None,
        error_type: str = "OAuthException",
    ) -> web.Response:
        error: dict[str, Any] = {
            "message": message,
            "type": error_type,
            "code": code,
            "fbtrace_id": secrets.token_urlsafe(8),
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        if code in (1, 2):
            error["is_transient"] = True
        return web.json_response({"error": error}, status=status or STATUS_FOR_CODE.get(code, 400))

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        if status == 429:
            return self.graph_error(32, "Page request limit reached", status=400)
        if status >= 500:
            return self.graph_error(
                2, "An unexpected error has occurred. Please retry your request later.", status=status
            )
        return self.graph_error(int(code) if str(code).isdigit() else 100, message, status=status)

    def refuse(self, recorded: Recorded, problems: list[str]) -> web.Response:
        if "not the Page feed edge" in problems[0]:
            return self.graph_error(100, "Unknown path components", status=400)
        return self.graph_error(100, f"(#100) {problems[0]}", error_type="OAuthException")

    def unauthorized(self) -> web.Response:
        return self.graph_error(190, "Error validating access token: Session has expired.", subcode=463)

    def fail_with(self, code: int, message: str = "error", subcode: int | None = None) -> None:
        """The next post answers this Graph error."""
        self.next_error.append((code, subcode, message))

    def recipient(self, recorded: Recorded) -> str:
        if recorded.path.endswith("/messages"):
            return str(((recorded.json or {}).get("recipient") or {}).get("id", ""))
        if recorded.path.endswith("/comments"):
            return recorded.path.split("/")[-2]  # the comment replied to
        return self.page_id if recorded.path.endswith(("/feed", "/photos")) else ""

    # ---- the Page webhook's events ----------------------------------------------------------------
    def comment_event(self, text: str, *, user_id: str, name: str = "Habitant", post_id: str = "") -> dict[str, Any]:
        """A citizen comments one of the Page's posts: the comment exists here, and the webhook payload
        Facebook sends for it (object "page", field "feed", item "comment", verb "add")."""
        post = post_id or (self.posts[-1]["id"] if self.posts else f"{self.page_id}_{next(self._ids)}")
        comment_id = f"{post.split('_')[-1]}_{next(self._ids)}"
        self.comments[comment_id] = {"message": text, "from": {"id": user_id, "name": name}, "post_id": post}
        return {
            "object": "page",
            "entry": [
                {
                    "id": self.page_id,
                    "time": int(time.time()),
                    "changes": [
                        {
                            "field": "feed",
                            "value": {
                                "from": {"id": user_id, "name": name},
                                "post_id": post,
                                "comment_id": comment_id,
                                "parent_id": post,
                                "created_time": int(time.time()),
                                "item": "comment",
                                "verb": "add",
                                "message": text,
                            },
                        }
                    ],
                }
            ],
        }

    def message_event(self, text: str, *, psid: str, at: float | None = None) -> dict[str, Any]:
        """A person writes to the Page in Messenger (at `at`, default now): the webhook payload."""
        moment = time.time() if at is None else at
        self.last_inbound[psid] = max(self.last_inbound.get(psid, 0.0), moment)
        return {
            "object": "page",
            "entry": [
                {
                    "id": self.page_id,
                    "time": int(moment * 1000),
                    "messaging": [
                        {
                            "sender": {"id": psid},
                            "recipient": {"id": self.page_id},
                            "timestamp": int(moment * 1000),
                            "message": {"mid": "m_" + secrets.token_urlsafe(16), "text": text},
                        }
                    ],
                }
            ],
        }

    def signed(self, payload: dict[str, Any], secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers Facebook posts: X-Hub-Signature-256 = sha256=HMAC-SHA256(app secret, body)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        digest = hmac.new((secret or self.app_secret).encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    def replies_to(self, comment_id: str) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c.get("parent_id") == comment_id]

    async def post_comment(self, request: web.Request) -> web.Response:
        parent = request.match_info["object_id"]
        if parent not in self.comments and not any(p["id"] == parent for p in self.posts):
            return self.graph_error(100, "Unsupported post request. Object does not exist", subcode=33)
        message = request[RECORDED].form.get("message", "")
        if not message:
            return self.graph_error(100, "(#100) Missing message or attachment")
        comment_id = f"{parent.split('_')[-1]}_{next(self._ids)}"
        self.comments[comment_id] = {"message": message, "from": {"id": self.page_id}, "parent_id": parent}
        return web.json_response({"id": comment_id})

    async def post_message(self, request: web.Request) -> web.Response:
        if request.match_info["page_id"] not in (self.page_id, "me"):
            return self.graph_error(100, "Unsupported post request. Object does not exist", subcode=33)
        payload = request[RECORDED].json or {}
        psid = str(payload["recipient"]["id"])
        last = self.last_inbound.get(psid)
        if last is None:
            return self.graph_error(100, "(#100) No matching user found", subcode=2018001)
        if payload.get("messaging_type") == "RESPONSE" and time.time() - last > STANDARD_WINDOW:
            return self.graph_error(
                10, "(#10) This message is sent outside of allowed window.", subcode=2018278, status=400
            )
        self.messages.append({"recipient": psid, "text": payload["message"]["text"]})
        return web.json_response({"recipient_id": psid, "message_id": "m_" + secrets.token_urlsafe(16)})

    async def post_feed(self, request: web.Request) -> web.Response:
        if self.next_error:
            code, subcode, message = self.next_error.pop(0)
            return self.graph_error(code, message, subcode=subcode)
        if request.match_info["page_id"] != self.page_id:
            return self.graph_error(100, "Unsupported post request. Object does not exist", subcode=33)
        form = request[RECORDED].form
        if not form.get("message") and not form.get("link"):
            return self.graph_error(100, "(#100) Either message or link must be specified")
        if any(p["message"] == form.get("message") for p in self.posts):
            return self.graph_error(506, "Duplicate status message", subcode=1455006)
        post = {
            "id": f"{self.page_id}_{next(self._ids)}",
            "message": form.get("message", ""),
            "link": form.get("link", ""),
        }
        self.posts.append(post)
        return web.json_response({"id": post["id"]})

    async def post_photo(self, request: web.Request) -> web.Response:
        """POST /{page_id}/photos, multipart: `source` (the image), `caption`, `alt_text_custom`, `published`.
        Answers {"id": photo id, "post_id": the Page post's id}."""
        if self.next_error:
            code, subcode, message = self.next_error.pop(0)
            return self.graph_error(code, message, subcode=subcode)
        if request.match_info["page_id"] != self.page_id:
            return self.graph_error(100, "Unsupported post request. Object does not exist", subcode=33)
        parts = multipart_parts(request[RECORDED]) or {}
        if "source" not in parts and "url" not in parts:
            return self.graph_error(324, "(#324) Requires upload file")
        data, media_type = parts.get("source", (b"", ""))
        if "source" in parts and not media_type.startswith("image/"):
            return self.graph_error(100, "(#100) Invalid image type")
        caption = parts.get("caption", parts.get("message", (b"", "")))[0].decode()
        if caption and any(p["message"] == caption for p in self.posts):
            return self.graph_error(506, "Duplicate status message", subcode=1455006)
        photo_id = str(next(self._ids))
        post = {
            "id": f"{self.page_id}_{next(self._ids)}",
            "message": caption,
            "link": "",
            "photo_id": photo_id,
            "photo": data,
            "alt_text_custom": parts.get("alt_text_custom", (b"", ""))[0].decode(),
        }
        self.posts.append(post)
        return web.json_response({"id": photo_id, "post_id": post["id"]})


def main() -> None:
    run_standalone(lambda args: FakeFacebook(token=args.token, seed=args.seed), "Fake Facebook Graph API")


if __name__ == "__main__":
    main()
