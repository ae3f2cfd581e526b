"""Bluesky (AT Protocol): app.bsky.feed.post records on the département's account.

A session (createSession with an app password) is opened once and its accessJwt reused; when the PDS
answers 400 ExpiredToken, the session is refreshed with refreshSession (or reopened if that fails too)
and the post is tried once more within the same attempt.

Each post carries a link card (app.bsky.embed.external) for the alert's page, see `link_card` — or, when the
service gives the channel a picture (the alert's map card, channels._media), that picture as an image embed
with its alt text instead: a post has a single embed.

`facets_for(text)` computes hashtag and link facets with UTF-8 *byte* offsets, as the protocol requires; it
is the only facet detection in Crieur (rules.fitting renders with it too).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Mapping

import regex

from ._http import Answer, DryRunnable, base_url_option, error_for_status, no_credentials, request, timeout_option
from ._media import bluesky_images_embed
from ._twitter_text import valid_cctld, valid_gtld
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

# The rules of atproto's rich-text detection (its @atproto/api package), so that the facets are the ones
# the Bluesky app computes for the same text; tests/test_peer_vectors.py runs atproto's own detection
# tests against them. Mentions and cashtags are not detected: Crieur's posts name no accounts and quote no
# stock symbols.
_LINK = regex.compile(r"(^|\s|\()((https?://\S+)|(?P<domain>[a-z][a-z0-9]*(?:\.[a-z0-9]+)+)\S*)", regex.IGNORECASE)
_TAG_STOP = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"  # soft hyphen, word joiner, zero widths, U+20E2
_TAG = regex.compile(rf"(^|\s)[#\uff03]((?!\ufe0f)[^\s{_TAG_STOP}]*[^\d\s\p{{P}}{_TAG_STOP}]+[^\s{_TAG_STOP}]*)?")
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")
MAX_TAG_UNITS = 64  # atproto drops longer tags (UTF-16 units); the lexicon allows 64 graphemes


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _is_tld(label: str) -> bool:
    """A top-level domain in IANA's list (the list twitter-text carries; atproto checks the same list)."""
    label = label.lower()
    return bool(valid_gtld.fullmatch(label) or valid_cctld.fullmatch(label))


def _byte_index(text: str, start: int, end: int) -> dict[str, int]:
    byte_start = len(text[:start].encode("utf-8"))
    return {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode("utf-8"))}


def facets_for(text: str) -> list[dict[str, Any]]:
    """Rich-text facets (app.bsky.richtext.facet) for the http(s) links, bare domains ("cg41.fr/routes")
    and #hashtags of `text`, in order, indexed in UTF-8 bytes as the protocol requires.

    Links: one trailing . , ; : ! ? is left out, and a trailing ")" unless the link has a "(" (so
    ".../Blois_(Loir-et-Cher)" keeps its parenthesis). Tags: trailing punctuation is left out
    ("#route41," tags "route41"), punctuation inside is kept ("#with,punctuation"), a tag of only
    digits or longer than 64 is no tag, and zero-width characters end a tag."""
    found: list[tuple[int, dict[str, Any]]] = []
    for match in _LINK.finditer(text):
        uri = match.group(2)
        if not uri.lower().startswith("http"):
            domain = match.group("domain")
            if not domain or not _is_tld(domain.rsplit(".", 1)[-1]):
                continue
            uri = f"https://{uri}"
        start = match.start(2)
        end = match.end(2)
        if uri[-1] in ".,;:!?":
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        found.append(
            (
                start,
                {
                    "index": _byte_index(text, start, end),
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
                },
            )
        )
    for match in _TAG.finditer(text):
        tag = match.group(2)
        if not tag:
            continue
        tag = _TRAILING_PUNCTUATION.sub("", tag.strip())
        if not tag or _utf16_length(tag) > MAX_TAG_UNITS:
            continue
        start = match.start(2) - 1  # the '#'
        found.append(
            (
                start,
                {
                    "index": _byte_index(text, start, start + 1 + len(tag)),
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
                },
            )
        )
    return [facet for _, facet in sorted(found, key=lambda pair: pair[0])]


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

    async def _xrpc(self, method: str, nsid: str, *, token: str = "", body: Any = None, params: Any = None) -> Answer:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{self.service}{XRPC}{nsid}"
        return await request(self, method, url, json=body, params=params, headers=headers, timeout=self.timeout)

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
            "POST",
            "com.atproto.server.createSession",
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
        card = link_card(message)
        if card is not None:
            record["embed"] = card
        return record

    async def send(self, message: Message) -> Receipt:
        if message.reply_to and "|" not in message.reply_to:
            raise PermanentError(f"{self.name}: reply_to must be 'uri|cid', got {message.reply_to!r}", code="reply_to")
        token = await self._session()
        record = self._record(message)
        embed = await bluesky_images_embed(self, token, message)
        if embed:
            record["embed"] = embed
        body = {"repo": self.did, "collection": "app.bsky.feed.post", "record": record}
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

    async def notifications(self, since: str = "", limit: int = 50, pages: int = 10) -> list[dict[str, Any]]:
        """The account's mentions and replies (app.bsky.notification.listNotifications) indexed after
        `since` (an indexedAt; "" for the latest page), newest first, following the cursor for at most
        `pages` pages: citizens' questions (alerts.citizens.bluesky)."""
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(pages):
            params = [("reasons", "mention"), ("reasons", "reply"), ("limit", str(limit))]
            if cursor:
                params.append(("cursor", cursor))
            body = await self._query("app.bsky.notification.listNotifications", params)
            page = body.get("notifications")
            if not isinstance(page, list):
                raise TransientError(
                    f"{self.name}: listNotifications answered without notifications", code="bad-answer"
                )
            found += [n for n in page if isinstance(n, dict)]
            cursor = str(body.get("cursor") or "")
            oldest = str(found[-1].get("indexedAt") or "") if found else ""
            if not since or not cursor or oldest <= since:
                break
        return found

    async def _query(self, nsid: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        token = await self._session()
        answer = await self._xrpc("GET", nsid, token=token, params=params)
        if self._expired(answer):
            await self._renew(token)
            answer = await self._xrpc("GET", nsid, token=self._access, params=params)
        if answer.status != 200:
            raise self._error(answer)
        body = answer.json()
        if not isinstance(body, dict):
            raise TransientError(f"{self.name}: {nsid} did not answer a JSON object", code="bad-answer")
        return body


CARD_DESCRIPTION = 300  # characters of the alert's text shown on the card


def link_card(message: Message) -> dict[str, Any] | None:
    """An app.bsky.embed.external card for the alert's page: message.extra["card"] (uri, title,
    description, as the service renders it for the alert's page on the public site), else message.link.
    None when there is no http(s) page to show."""
    card = message.extra.get("card") or ({"uri": message.link} if message.link else None)
    if not isinstance(card, Mapping) or not str(card.get("uri", "")).startswith(("https://", "http://")):
        return None
    description = str(card.get("description") or "")
    if len(description) > CARD_DESCRIPTION:
        description = description[: CARD_DESCRIPTION - 1].rstrip() + "…"
    return {
        "$type": "app.bsky.embed.external",
        "external": {
            "uri": str(card["uri"]),
            "title": str(card.get("title") or message.subject or card["uri"]),
            "description": description,
        },
    }


def _strong_ref(value: str) -> dict[str, str]:
    uri, _, cid = value.partition("|")
    return {"uri": uri, "cid": cid}
