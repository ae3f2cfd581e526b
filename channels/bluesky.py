"""Bluesky (AT Protocol): app.bsky.feed.post records on the département's account.

A session (createSession with an app password) is opened once and its accessJwt reused; when the PDS
answers 400 ExpiredToken, the session is refreshed with refreshSession (or reopened if that fails too)
and the post is tried once more within the same attempt.

`facets_for(text)` computes hashtag and link facets with UTF-8 *byte* offsets, as the protocol requires.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any, Mapping

from ._http import Answer, DryRunnable, base_url_option, error_for_status, no_credentials, request, timeout_option
from .base import (
    TIMEOUT,
    AuthError,
    Channel,
    Limits,
    Message,
    Option,
    PermanentError,
    Receipt,
    TransientError,
    register,
)

RESET_HEADERS = ("ratelimit-reset",)
XRPC = "/xrpc/"

# A tag starts after a space or the start, is not only digits, ends before a space; trailing punctuation
# is not part of it (Bluesky's own rule, simplified to the characters French posts use).
_TAG = re.compile(r"(?:^|(?<=\s))[#＃](?P<tag>[^\s#＃]*[^\d\s#＃][^\s#＃]*)")
_LINK = re.compile(r"(?:^|(?<=[\s(]))(?P<url>https?://[^\s<>\"]+)")
_TRAILING = ".,;:!?…»)\"'’"


def _byte_index(text: str, start: int, end: int) -> dict[str, int]:
    byte_start = len(text[:start].encode("utf-8"))
    return {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode("utf-8"))}


def facets_for(text: str) -> list[dict[str, Any]]:
    """Rich-text facets (app.bsky.richtext.facet) for the #hashtags and http(s) links in `text`, in order,
    with UTF-8 byte offsets. "#route41," gives the tag "route41" over the bytes of "#route41"."""
    facets: list[tuple[int, dict[str, Any]]] = []
    for match in _LINK.finditer(text):
        url = match.group("url").rstrip(_TRAILING)
        if url.count("(") < url.count(")") and url.endswith(")"):
            url = url[:-1]
        start = match.start("url")
        facets.append((start, {
            "index": _byte_index(text, start, start + len(url)),
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
        }))
    link_spans = [(f["index"]["byteStart"], f["index"]["byteEnd"]) for _, f in facets]
    for match in _TAG.finditer(text):
        tag = match.group("tag").rstrip(_TRAILING)
        if not tag or tag.isdigit() or len(tag) > 64:
            continue
        start = match.start("tag") - 1  # include the '#'
        index = _byte_index(text, start, match.start("tag") + len(tag))
        if any(s <= index["byteStart"] < e for s, e in link_spans):
            continue  # a '#fragment' inside a URL
        facets.append((start, {
            "index": index,
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
        }))
    return [facet for _, facet in sorted(facets, key=lambda pair: pair[0])]


@register
class BlueskyChannel(DryRunnable, Channel):
    kind = "bluesky"
    declared_options = (
        Option("identifier", "text", required=True, description="the account's handle, route41.bsky.social"),
        Option("app_password", "secret", required=True, description="an app password of the account"),
        Option("service", "url", default="https://bsky.social", description="the account's PDS"),
        TIMEOUT,
    )
    limits = Limits(counting="graphemes", max_length=300)
    per_recipient = False
    idempotent = False
    default_rate = 1.0  # createRecord: 5 000 points/hour, 3 per create

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.service = base_url_option(self, "service", "https://bsky.social")
        self.identifier = self.require("identifier")
        self.timeout = timeout_option(self)
        self._password = self.secret("app_password") if credentials else ""
        self._access = ""
        self._refresh = ""
        self.did = ""
        self._lock = asyncio.Lock()

    async def _xrpc(self, method: str, nsid: str, *, token: str = "", body: Any = None) -> Answer:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{self.service}{XRPC}{nsid}"
        return await request(self, method, url, json=body, headers=headers, timeout=self.timeout)

    def _error(self, answer: Answer) -> Exception:
        body = answer.json()
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        if answer.status == 400 and error in ("InvalidToken", "AccountTakedown", "AccountDeactivated"):
            return AuthError(f"{self.name}: {error}: {detail}", code=error)
        return error_for_status(
            self, answer, code=error, detail=f"{error}: {detail}".strip(": "), reset_headers=RESET_HEADERS
        )

    @staticmethod
    def _expired(answer: Answer) -> bool:
        body = answer.json()
        return answer.status == 400 and isinstance(body, dict) and body.get("error") == "ExpiredToken"

    def _keep(self, answer: Answer) -> None:
        body = answer.json()
        if not isinstance(body, dict) or not body.get("accessJwt") or not body.get("did"):
            raise TransientError(f"{self.name}: session answer without accessJwt/did", code="bad-answer")
        self._access, self._refresh, self.did = body["accessJwt"], body.get("refreshJwt", ""), body["did"]

    async def _login(self) -> None:
        answer = await self._xrpc(
            "POST", "com.atproto.server.createSession",
            body={"identifier": self.identifier, "password": self._password},
        )
        if answer.status != 200:
            raise self._error(answer)
        self._keep(answer)

    async def _renew(self, stale: str) -> None:
        """Refresh the session whose access token was `stale` (once, whoever of the senders gets here first)."""
        async with self._lock:
            if self._access != stale:
                return
            if self._refresh:
                answer = await self._xrpc("POST", "com.atproto.server.refreshSession", token=self._refresh)
                if answer.status == 200:
                    self._keep(answer)
                    return
                if not (self._expired(answer) or answer.status in (400, 401)):
                    raise self._error(answer)
            await self._login()

    async def _session(self) -> str:
        if not self._password:
            raise no_credentials(self)
        async with self._lock:
            if not self._access:
                await self._login()
            return self._access

    def _record(self, message: Message) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": message.text,
            "createdAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": ["fr"],
        }
        facets = message.extra.get("facets")
        facets = facets if facets is not None else facets_for(message.text)
        if facets:
            record["facets"] = list(facets)
        if message.reply_to:
            parent = _strong_ref(message.reply_to)
            root = _strong_ref(str(message.extra.get("reply_root") or message.reply_to))
            record["reply"] = {"root": root, "parent": parent}
        return record

    async def send(self, message: Message) -> Receipt:
        if message.reply_to and "|" not in message.reply_to:
            raise PermanentError(f"{self.name}: reply_to must be 'uri|cid', got {message.reply_to!r}", code="reply_to")
        token = await self._session()
        body = {"repo": self.did, "collection": "app.bsky.feed.post", "record": self._record(message)}
        answer = await self._xrpc("POST", "com.atproto.repo.createRecord", token=token, body=body)
        if self._expired(answer):
            await self._renew(token)
            answer = await self._xrpc("POST", "com.atproto.repo.createRecord", token=self._access, body=body)
        if answer.status != 200:
            raise self._error(answer)
        created = answer.json()
        if not isinstance(created, dict) or not created.get("uri") or not created.get("cid"):
            raise TransientError(f"{self.name}: record created but the answer has no uri/cid", code="bad-answer")
        return Receipt(provider_id=f"{created['uri']}|{created['cid']}", detail=str(created["uri"]))


def _strong_ref(value: str) -> dict[str, str]:
    uri, _, cid = value.partition("|")
    return {"uri": uri, "cid": cid}
