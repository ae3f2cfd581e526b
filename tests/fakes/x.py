"""Fake X API v2: POST /2/tweets with OAuth 1.0a user-context signatures checked (an independent,
stdlib implementation of RFC 5849 §3.4, so the adapter's signing is really verified).

Requests and answers are checked against X's own OpenAPI description (../shared/api-specs/x, the
snapshot X's XDK is generated from). The text is measured as X measures it (twitter-text's weighted
length, configuration v3): over 280 is refused with a 403, as X does.
Errors are problem JSON {"title", "detail", "type", "status"}; rate limits carry x-rate-limit-limit,
x-rate-limit-remaining, x-rate-limit-reset (epoch seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import time
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from twitter_text import parse_tweet
from twitter_text.config import config as twitter_text_config

from .base import RECORDED, FakeProvider, Recorded, multipart_parts, run_standalone
from .contract import openapi

MAX_WEIGHTED_LENGTH = 280
TOO_LONG = (
    "Your Tweet text is too long. For more information on how Twitter determines text length see"
    " https://github.com/twitter/twitter-text."
)
TITLES = {
    400: "Invalid Request",
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _enc(value: str) -> str:
    return quote(value, safe="~-._")


def oauth_signature(
    method: str, url: str, params: list[tuple[str, str]], consumer_secret: str, token_secret: str
) -> str:
    """RFC 5849 HMAC-SHA1 signature of a request: `url` without query, `params` = query + form + oauth_*."""
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in params))
    base = "&".join([method.upper(), _enc(url), _enc(normalized)])
    key = f"{_enc(consumer_secret)}&{_enc(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()


def parse_oauth_header(value: str) -> dict[str, str]:
    if not value.startswith("OAuth "):
        return {}
    return {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', value[6:])}


class FakeX(FakeProvider):
    name = "x"

    def __init__(
        self,
        *,
        consumer_key: str = "ck",
        consumer_secret: str = "cs",
        token: str = "at",
        token_secret: str = "ats",
        seed: int = 0,
    ):
        super().__init__(seed=seed)
        self.contract = openapi("x", "openapi.json")
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.token, self.token_secret = token, token_secret
        self.tweets: list[dict[str, Any]] = []
        self._ids = itertools.count(1_850_000_000_000_000_001)
        self._nonces: set[str] = set()
        self.media: dict[str, dict[str, Any]] = {}  # id -> {"data", "type", "category", "alt_text"}
        self._media_ids = itertools.count(1_900_000_000_000_000_001)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/2/tweets", self.create_tweet),
            web.post("/2/media/upload", self.upload_media),
            web.post("/2/media/metadata", self.media_metadata),
        ]

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        oauth = parse_oauth_header(request.headers.get("Authorization", ""))
        if oauth.get("oauth_consumer_key") != self.consumer_key or oauth.get("oauth_token") != self.token:
            return False
        if (
            oauth.get("oauth_signature_method") != "HMAC-SHA1"
            or abs(time.time() - int(oauth.get("oauth_timestamp", "0"))) > 300
        ):
            return False
        nonce = oauth.get("oauth_nonce", "")
        if not nonce or nonce in self._nonces:
            return False
        signed = [(k, v) for k, v in oauth.items() if k.startswith("oauth_") and k != "oauth_signature"]
        signed += list(request.query.items()) + list(recorded.form.items())
        url = f"{request.scheme}://{request.host}{request.path}"
        expected = oauth_signature(request.method, url, signed, self.consumer_secret, self.token_secret)
        if not hmac.compare_digest(expected, oauth.get("oauth_signature", "")):
            return False
        self._nonces.add(nonce)
        return True

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        title = TITLES.get(status, "Error")
        return web.json_response(
            {"title": title, "detail": message if message != title else title, "type": "about:blank", "status": status},
            status=status,
            content_type="application/problem+json",
        )

    def refuse(self, recorded: Recorded, problems: list[str]) -> web.Response:
        if "no such operation" in problems[0]:
            return self.error(404, 404, "Not Found")
        return web.json_response(
            {
                "errors": [{"message": problem} for problem in problems],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            },
            status=400,
            content_type="application/problem+json",
        )

    def too_many(self, headers: dict[str, str]) -> web.Response:
        response = self.error(429, 429, "Too Many Requests")
        response.headers.update(
            {
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(time.time()) + 900),
            }
        )
        response.headers.update(headers)
        return response

    def recipient(self, recorded: Recorded) -> str:
        return "account" if recorded.path == "/2/tweets" else ""

    async def create_tweet(self, request: web.Request) -> web.Response:
        data = request[RECORDED].json
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"]:
            return self.error(400, 400, "One or more parameters to your request was invalid.")
        text = data["text"]
        if parse_tweet(text, twitter_text_config["version3"]).weightedLength > MAX_WEIGHTED_LENGTH:
            return self.error(403, 403, TOO_LONG)
        if any(t["text"] == text for t in self.tweets):
            return self.error(403, 403, "You are not allowed to create a Tweet with duplicate content.")
        media = data.get("media")
        if media is not None:
            ids = media.get("media_ids") if isinstance(media, dict) else None
            if not isinstance(ids, list) or not 1 <= len(ids) <= 4 or any(str(i) not in self.media for i in ids):
                return self.error(400, 400, "Your media IDs are invalid.")
        reply = (data.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply and not any(t["id"] == reply for t in self.tweets):
            return self.error(403, 403, "You attempted to reply to a Tweet that is deleted or not visible to you.")
        tweet = {"id": str(next(self._ids)), "text": text, "in_reply_to": reply}
        tweet["media_ids"] = [str(i) for i in (media or {}).get("media_ids", [])]
        self.tweets.append(tweet)
        return web.json_response(
            {"data": {"id": tweet["id"], "text": text, "edit_history_post_ids": [tweet["id"]]}}, status=201
        )

    async def upload_media(self, request: web.Request) -> web.Response:
        """POST /2/media/upload, multipart: `media` (raw bytes) and `media_category` (tweet_image...)."""
        parts = multipart_parts(request[RECORDED])
        if parts is None or "media" not in parts or "media_category" not in parts:
            return self.error(400, 400, "The media and media_category fields are required.")
        category = parts["media_category"][0].decode()
        if category not in ("tweet_image", "tweet_video", "tweet_gif", "dm_image", "dm_video", "dm_gif", "subtitles"):
            return self.error(400, 400, f"Invalid media_category {category!r}.")
        data, media_type = parts["media"]
        if category == "tweet_image" and (len(data) > 5 * 1024 * 1024 or not media_type.startswith("image/")):
            return self.error(400, 400, "Images must be image files of at most 5 MB.")
        media_id = str(next(self._media_ids))
        self.media[media_id] = {"data": data, "type": media_type, "category": category, "alt_text": None}
        return web.json_response(
            {"data": {"id": media_id, "media_key": f"3_{media_id}", "size": len(data), "expires_after_secs": 86400}}
        )

    async def media_metadata(self, request: web.Request) -> web.Response:
        """POST /2/media/metadata: {"id", "metadata": {"alt_text": {"text" (at most 1,000 characters)}}}."""
        data = request[RECORDED].json
        media_id = str(data.get("id", "")) if isinstance(data, dict) else ""
        if media_id not in self.media:
            return self.error(400, 400, "Unknown media id.")
        alt = ((data.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or len(alt) > 1000:
            return self.error(400, 400, "alt_text.text must be a string of at most 1000 characters.")
        self.media[media_id]["alt_text"] = alt
        return web.json_response({"data": {"id": media_id, "associated_metadata": {"alt_text": {"text": alt}}}})


def main() -> None:
    run_standalone(lambda args: FakeX(seed=args.seed), "Fake X API v2")


if __name__ == "__main__":
    main()
