"""Fake Bluesky PDS: createSession, refreshSession, createRecord, uploadBlob, listNotifications (XRPC).

Citizens' posts that mention the account or reply to its posts (`add_mention`) are records of other
repositories the fake knows, so that a reply to them is checked like any reply (its root and parent
must exist), and notifications (reason "mention" or "reply") the account lists, newest first.

Every call is checked against the AT Protocol lexicons (../shared/api-specs/bluesky/lexicons, converted
to JSON Schema by tests/fakes/lexicon.py), records against their collection's lexicon (app.bsky.feed.post:
text of at most 300 graphemes and 3000 bytes, facets inside the text, tags of at most 64 graphemes, at
most 3 languages, an RFC 3339 createdAt, embeds and reply refs as described); answers against the
methods' output schemas. A refused record gets the PDS's answer: 400 InvalidRequest "Invalid
app.bsky.feed.post record: ...".

Errors are XRPC bodies {"error": "ExpiredToken", "message": "..."}; rate limits carry ratelimit-limit,
ratelimit-remaining, ratelimit-reset (epoch seconds) and ratelimit-policy.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .base import RECORDED, FakeProvider, Recorded, run_standalone
from .lexicon import LexiconContract

_S32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid(counter: int) -> str:
    """A record key as a PDS makes it: a TID, 13 base32-sortable characters of (microseconds << 10 | clock)."""
    value = ((int(time.time() * 1_000_000) + counter) << 10) | 1
    return "".join(_S32[(value >> shift) & 31] for shift in range(60, -1, -5))


class FakeBluesky(FakeProvider):
    name = "bluesky"

    def __init__(self, *, identifier: str = "cd41.bsky.social", password: str = "test-token", seed: int = 0):
        super().__init__(seed=seed)
        self.contract = LexiconContract()
        self.identifier = identifier
        self.password = password
        self.did = "did:plc:" + hashlib.sha256(identifier.encode()).hexdigest()[:24]
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.records: list[dict[str, Any]] = []
        self.blobs: dict[str, tuple[bytes, str]] = {}  # cid -> (bytes, MIME type)
        self.sessions_created = 0
        self.notifications: list[dict[str, Any]] = []
        self._rkeys = itertools.count(1)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/xrpc/com.atproto.server.createSession", self.create_session),
            web.post("/xrpc/com.atproto.server.refreshSession", self.refresh_session),
            web.post("/xrpc/com.atproto.repo.createRecord", self.create_record),
            web.post("/xrpc/com.atproto.repo.uploadBlob", self.upload_blob),
            web.get("/xrpc/app.bsky.notification.listNotifications", self.list_notifications),
        ]

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        name = {401: "AuthenticationRequired", 429: "RateLimitExceeded", 500: "InternalServerError"}.get(
            code if isinstance(code, int) else 0, str(code)
        )
        return web.json_response({"error": name, "message": message}, status=status)

    def refuse(self, recorded: Recorded, problems: list[str]) -> web.Response:
        if "no lexicon" in problems[0] or "not an XRPC method" in problems[0]:
            return self.error(501, "MethodNotImplemented", "Method Not Implemented")
        if problems[0].startswith("record"):
            collection = (recorded.json or {}).get("collection", "")
            return self.error(400, "InvalidRequest", f"Invalid {collection} record: " + "; ".join(problems))
        return self.error(400, "InvalidRequest", "Input " + "; ".join(problems))

    def too_many(self, headers: dict[str, str]) -> web.Response:
        response = self.error(429, 429, "Rate Limit Exceeded")
        response.headers.update(
            {
                "ratelimit-limit": "5000",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(int(time.time()) + 60),
                "ratelimit-policy": "5000;w=3600",
            }
        )
        response.headers.update(headers)
        return response

    def recipient(self, recorded: Recorded) -> str:
        return self.identifier if recorded.path.endswith("createRecord") else ""

    def expire_tokens(self) -> None:
        """Every access token issued so far now answers 400 ExpiredToken."""
        self.access_tokens.clear()

    def _bearer(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else ""

    def _session(self) -> dict[str, Any]:
        access, refresh = "acc-" + secrets.token_hex(8), "ref-" + secrets.token_hex(8)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {"did": self.did, "handle": self.identifier, "accessJwt": access, "refreshJwt": refresh, "active": True}

    async def create_session(self, request: web.Request) -> web.Response:
        data = request[RECORDED].json or {}
        if data.get("identifier") != self.identifier or data.get("password") != self.password:
            return self.error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.sessions_created += 1
        return web.json_response(self._session())

    async def refresh_session(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        if token not in self.refresh_tokens:
            return self.error(400, "ExpiredToken", "Token has expired")
        self.refresh_tokens.discard(token)
        return web.json_response(self._session())

    async def create_record(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        if not token:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        if token not in self.access_tokens:
            return self.error(400, "ExpiredToken", "Token has expired")
        data = request[RECORDED].json or {}
        record = data.get("record") or {}
        if data.get("repo") not in (self.did, self.identifier):
            return self.error(400, "InvalidRequest", "Could not find repo")
        reply = record.get("reply") or {}
        for role in ("root", "parent"):
            ref = reply.get(role) if isinstance(reply, dict) else None
            if ref and not any(r["uri"] == ref.get("uri") and r["cid"] == ref.get("cid") for r in self.records):
                return self.error(400, "InvalidRequest", f"Invalid reply: {role} {ref.get('uri')} not found")
        problem = self._embed_problem(record.get("embed"))
        if problem:
            return self.error(400, "InvalidRequest", problem)
        rkey = tid(next(self._rkeys))
        uri = f"at://{self.did}/app.bsky.feed.post/{rkey}"
        cid = "bafyrei" + hashlib.sha256(repr(record).encode()).hexdigest()[:52]
        self.records.append({"uri": uri, "cid": cid, "record": record})
        return web.json_response(
            {"uri": uri, "cid": cid, "commit": {"cid": cid, "rev": rkey}, "validationStatus": "valid"}
        )

    def add_mention(
        self, text: str, *, handle: str = "habitant.bsky.social", reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A citizen's post mentioning the account (or, with `reply_to`, one of the records here, replying
        to it): the post is stored and a notification made. Returns the notification."""
        if len(text.encode()) > 3000:
            raise ValueError("a post's text is at most 3000 bytes")
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": ["fr"],
        }
        reason = "mention"
        if reply_to is not None:
            parent = {"uri": reply_to["uri"], "cid": reply_to["cid"]}
            root = (reply_to.get("record") or {}).get("reply", {}).get("root") or parent
            record["reply"] = {"root": root, "parent": parent}
            reason = "reply"
        rkey = tid(next(self._rkeys))
        uri = f"at://{did}/app.bsky.feed.post/{rkey}"
        cid = "bafyrei" + hashlib.sha256((uri + text).encode()).hexdigest()[:52]
        self.records.append({"uri": uri, "cid": cid, "record": record})
        indexed = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        notification = {
            "uri": uri,
            "cid": cid,
            "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0]},
            "reason": reason,
            "record": record,
            "isRead": False,
            "indexedAt": indexed,
        }
        self.notifications.append(notification)
        return notification

    async def list_notifications(self, request: web.Request) -> web.Response:
        """app.bsky.notification.listNotifications: newest first, filtered by `reasons`, at most `limit`
        (1..100, checked by the lexicon) with a cursor when more remain."""
        token = self._bearer(request)
        if not token:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        if token not in self.access_tokens:
            return self.error(400, "ExpiredToken", "Token has expired")
        reasons = request.query.getall("reasons", [])
        limit = int(request.query.get("limit", "50"))
        cursor = request.query.get("cursor", "")
        found = [n for n in reversed(self.notifications) if not reasons or n["reason"] in reasons]
        if cursor:
            found = [n for n in found if n["indexedAt"] < cursor]
        page = found[:limit]
        answer: dict[str, Any] = {"notifications": page}
        if len(found) > limit:
            answer["cursor"] = page[-1]["indexedAt"]
        return web.json_response(answer)

    async def upload_blob(self, request: web.Request) -> web.Response:
        """com.atproto.repo.uploadBlob: the raw bytes as the body, their MIME type as Content-Type."""
        token = self._bearer(request)
        if not token:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        if token not in self.access_tokens:
            return self.error(400, "ExpiredToken", "Token has expired")
        recorded: Recorded = request[RECORDED]
        media_type = recorded.header("Content-Type").split(";")[0].strip()
        if not recorded.body or not media_type or media_type == "application/json":
            return self.error(400, "InvalidRequest", "Expected a blob with its Content-Type")
        cid = "bafkrei" + hashlib.sha256(recorded.body).hexdigest()[:52]
        self.blobs[cid] = (recorded.body, media_type)
        return web.json_response(
            {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": media_type, "size": len(recorded.body)}}
        )

    def _embed_problem(self, embed: Any) -> str:
        """What app.bsky.embed.images refuses: more than 4 images, a missing alt, an unknown or non-image
        blob, one over 2 MB. Other embed types are not checked by this fake."""
        if not isinstance(embed, dict) or embed.get("$type") != "app.bsky.embed.images":
            return ""
        images = embed.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= 4:
            return "embed.images: 1 to 4 images"
        for image in images:
            if not isinstance(image, dict) or not isinstance(image.get("alt"), str):
                return "embed.images: each image needs an alt string"
            blob = image.get("image") or {}
            cid = (blob.get("ref") or {}).get("$link") if isinstance(blob, dict) else None
            if cid not in self.blobs:
                return "embed.images: blob not found"
            data, media_type = self.blobs[cid]
            if not media_type.startswith("image/") or len(data) > 2_000_000:
                return "embed.images: an image/* blob of at most 2 MB"
        return ""


def main() -> None:
    run_standalone(lambda args: FakeBluesky(password=args.token, seed=args.seed), "Fake Bluesky PDS")


if __name__ == "__main__":
    main()
