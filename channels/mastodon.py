"""Mastodon: one status per alert on the département's account.

Mastodon deduplicates POST /api/v1/statuses by the Idempotency-Key header for an hour, so a retried send
with the delivery's key never posts twice.

The length limit is the server's own: `start` reads configuration.statuses.max_characters and
characters_reserved_per_url (what one link counts) from GET /api/v2/instance (many servers allow more than
500). Until then, or when the instance cannot be read, the `max_characters` and
`characters_reserved_per_url` options apply (default 500 and 23, Mastodon's defaults).

Held to the Mastodon OpenAPI description (abraham/mastodon-openapi, generated from Mastodon's
documentation) by the test fake.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Mapping
from urllib.parse import quote

import aiohttp

from ._http import (
    Answer,
    DryRunnable,
    base_url_option,
    error_for_status,
    no_credentials,
    positive_option,
    request,
    timeout_option,
)
from ._media import mastodon_media_id
from .base import (
    TIMEOUT,
    Channel,
    ConfigurationError,
    DeliveryError,
    Limits,
    Message,
    Option,
    Receipt,
    TransientError,
    register,
)

log = logging.getLogger("crieur.channels.mastodon")

VISIBILITIES = ("public", "unlisted", "private", "direct")
RESET_HEADERS = ("X-RateLimit-Reset",)
DEFAULT_MAX_CHARACTERS = 500


@register
class MastodonChannel(DryRunnable, Channel):
    kind = "mastodon"
    declared_options = (
        Option("base_url", "url", required=True, description="the instance, https://mastodon.example"),
        Option("access_token", "secret", required=True, description="the account's access token"),
        Option("visibility", "text", default="public", description="public, unlisted, private or direct"),
        Option(
            "max_characters",
            "integer",
            description="the status length used when the instance's own limit cannot be read (default 500)",
        ),
        Option(
            "characters_reserved_per_url",
            "integer",
            description="what one link counts when the instance's own figure cannot be read (default 23)",
        ),
        TIMEOUT,
    )
    limits = Limits(counting="chars", max_length=DEFAULT_MAX_CHARACTERS)  # until the instance says (start)
    per_recipient = False
    idempotent = True
    default_rate = 1.0  # 300 statuses per 3 hours per account; bursts are fine, floods are not

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.base_url = base_url_option(self, "base_url")
        self.timeout = timeout_option(self)
        self.visibility = str(self.options.get("visibility", "public"))
        if self.visibility not in VISIBILITIES:
            raise ConfigurationError(
                f"channel {name!r}: visibility must be one of {', '.join(VISIBILITIES)}, not {self.visibility!r}"
            )
        self._token = self.secret("access_token") if credentials else ""
        if "max_characters" in self.options:
            limit = positive_option(self, "max_characters", self.options["max_characters"])
            self.limits = Limits(counting="chars", max_length=int(limit))  # type: ignore[misc]
        if "characters_reserved_per_url" in self.options:
            weight = positive_option(self, "characters_reserved_per_url", self.options["characters_reserved_per_url"])
            self.limits = replace(self.limits, url_weight=int(weight))  # type: ignore[misc]

    async def start(self, session: aiohttp.ClientSession) -> None:
        await super().start(session)
        await self.read_instance_limit()

    async def read_instance_limit(self) -> int:
        """The server's max_characters and characters_reserved_per_url (GET /api/v2/instance, public), kept as
        this channel's limits. When the instance cannot be read the configured limits stay, and a warning says
        so: sends still work."""
        try:
            answer = await request(
                self,
                "GET",
                f"{self.base_url}/api/v2/instance",
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except DeliveryError as exc:
            log.warning(
                "%s: instance limits not read (%s); keeping %s characters", self.name, exc, self.limits.max_length
            )
            return int(self.limits.max_length or DEFAULT_MAX_CHARACTERS)
        body = answer.json() if answer.status == 200 else None
        try:
            statuses = body["configuration"]["statuses"]  # type: ignore[index]
            value = int(statuses["max_characters"])
            url_weight = int(statuses.get("characters_reserved_per_url", self.limits.url_weight))
        except (TypeError, KeyError, ValueError, AttributeError):
            log.warning(
                "%s: GET /api/v2/instance answered %s without configuration.statuses.max_characters;"
                " keeping %s characters",
                self.name,
                answer.status,
                self.limits.max_length,
            )
            return int(self.limits.max_length or DEFAULT_MAX_CHARACTERS)
        if value > 0 and value != self.limits.max_length:
            log.info("%s: the server allows %d characters per status", self.name, value)
            self.limits = replace(self.limits, max_length=value)  # type: ignore[misc]
        if url_weight > 0 and url_weight != self.limits.url_weight:
            log.info("%s: the server counts %d characters per link", self.name, url_weight)
            self.limits = replace(self.limits, url_weight=url_weight)  # type: ignore[misc]
        return value

    def _headers(self) -> dict[str, str]:
        if not self._token:
            raise no_credentials(self)
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def _error(self, answer: Answer) -> Exception:
        body = answer.json()
        detail = body.get("error", "") if isinstance(body, dict) else ""
        return error_for_status(self, answer, detail=str(detail), reset_headers=RESET_HEADERS)

    async def send(self, message: Message) -> Receipt:
        headers = self._headers() | {"Idempotency-Key": message.key}
        visibility = message.extra.get("visibility")  # "direct": the answer to a private mention
        if visibility not in VISIBILITIES:
            visibility = self.visibility
        payload: dict[str, Any] = {"status": message.text, "visibility": visibility, "language": "fr"}
        if message.reply_to:
            payload["in_reply_to_id"] = message.reply_to
        media_id = await mastodon_media_id(self, message)
        if media_id:
            payload["media_ids"] = [media_id]
        answer = await request(
            self, "POST", f"{self.base_url}/api/v1/statuses", json=payload, headers=headers, timeout=self.timeout
        )
        if answer.status != 200:
            raise self._error(answer)
        body = answer.json()
        if not isinstance(body, dict) or "id" not in body:
            raise TransientError(f"{self.name}: status created but the answer has no id", code="bad-answer")
        return Receipt(provider_id=str(body["id"]), detail=str(body.get("url") or body.get("uri") or ""))

    async def _get_list(self, path: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        answer = await request(
            self, "GET", f"{self.base_url}{path}", params=params, headers=self._headers(), timeout=self.timeout
        )
        if answer.status != 200:
            raise self._error(answer)
        body = answer.json()
        if not isinstance(body, list):
            raise TransientError(f"{self.name}: {path} did not answer a JSON list", code="bad-answer")
        return body

    async def notifications(self, since_id: str | None = None, limit: int = 40) -> list[dict[str, Any]]:
        """Mentions of the account newer than `since_id`, newest first (Mastodon's order)."""
        params = [("types[]", "mention"), ("limit", str(limit))]
        if since_id:
            params.append(("since_id", str(since_id)))
        return await self._get_list("/api/v1/notifications", params)

    async def tag_timeline(self, tag: str, limit: int = 20) -> list[dict[str, Any]]:
        """Public statuses with #tag (given with or without '#'), newest first."""
        return await self._get_list(f"/api/v1/timelines/tag/{quote(tag.lstrip('#'), safe='')}", [("limit", str(limit))])
