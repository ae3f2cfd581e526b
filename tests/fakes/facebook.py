"""Fake Facebook Graph API: POST /{version}/{page_id}/feed with a Page access token.

Facebook publishes no machine-readable description of the Graph API (see ../shared/api-specs/SOURCES.md),
so `GraphFeedContract` below follows the Graph API reference for the Page feed edge (POST
/{page-id}/feed): a versioned path, form parameters among those documented (message, link, published,
scheduled_publish_time...), a message of at most 63,206 characters, an absolute http(s) link, booleans
as true/false; the answer is {"id": "<page-id>_<post-id>"}. What it refuses gets Graph's (#100) error.
Errors are Graph error objects {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
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

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/{version}/{page_id}/feed", self.post_feed),
            web.post("/{version}/{page_id}/photos", self.post_photo),
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
        return self.page_id if recorded.path.endswith(("/feed", "/photos")) else ""

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
