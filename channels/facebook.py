"""Facebook Page posts through the Graph API: POST /{version}/{page_id}/feed with a Page access token;
answers to citizens under their comment (POST /{comment-id}/comments) or in Messenger (the Send API,
POST /{page-id}/messages), chosen by the delivery's extra["reply"] ("comment" or "messenger").

Facebook publishes no machine-readable (OpenAPI) description of the Graph API. This adapter follows the
Graph API reference documentation for the Page feed edge (`/{page-id}/feed`, "Publishing" section): form
parameters `message` and `link`, the Page access token as `access_token`, the answer {"id":
"<page-id>_<post-id>"}, and Graph error objects; the test fake (tests/fakes/facebook.py) checks requests
against the same documented rules.

Graph API errors are classified by their `code`, not the HTTP status: 4/17/32/613 are rate limits, 190 an
invalid or expired token, 10 and 200-299 missing permissions, 1/2 temporary failures.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Mapping

from ._http import (
    Answer,
    DryRunnable,
    base_url_option,
    error_for_status,
    no_credentials,
    request,
    retry_after,
    timeout_option,
)
from ._media import facebook_photo_post
from .base import (
    API_BASE,
    TIMEOUT,
    AuthError,
    Channel,
    ConfigurationError,
    DeliveryError,
    Limits,
    Message,
    Option,
    PermanentError,
    RateLimited,
    Receipt,
    TransientError,
    register,
)

RATE_LIMIT_CODES = {4, 17, 32, 613}
AUTH_CODES = {102, 190}
TRANSIENT_CODES = {1, 2}
OUTSIDE_WINDOW = {2018278, 2018108}  # Send API: outside the 24-hour window / the person cannot be reached


@register
class FacebookChannel(DryRunnable, Channel):
    kind = "facebook"
    declared_options = (
        Option("page_id", "text", required=True, description="the Page's id (quoted: it is a long number)"),
        Option("page_token", "secret", required=True, description="a Page access token"),
        Option("version", "text", default="v21.0", description="the Graph API version"),
        replace(API_BASE, default="https://graph.facebook.com"),
        TIMEOUT,
    )
    limits = Limits(counting="chars", max_length=63206)
    per_recipient = False
    idempotent = False
    default_rate = 1.0

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.api_base = base_url_option(self, "api_base", "https://graph.facebook.com")
        self.version = str(self.options.get("version", "v21.0"))
        if not re.fullmatch(r"v\d+\.\d+", self.version):
            raise ConfigurationError(f"channel {name!r}: version must look like 'v21.0', not {self.version!r}")
        self.page_id = self.require("page_id")
        self.timeout = timeout_option(self)
        self._token = self.secret("page_token") if credentials else ""

    def _error(self, answer: Answer) -> DeliveryError:
        body = answer.json()
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return error_for_status(self, answer)
        code = int(error.get("code") or 0)
        subcode = error.get("error_subcode")
        label = f"{code}" + (f"/{subcode}" if subcode else "")
        text = f"{self.name}: Graph API error {label} ({error.get('type', '')}): {error.get('message', '')}"
        if code in RATE_LIMIT_CODES:
            return RateLimited(text, code=label, retry_after=retry_after(answer.headers))
        if subcode in OUTSIDE_WINDOW:  # this person only: Messenger's 24-hour window has passed
            return PermanentError(text, code=label)
        if code in AUTH_CODES or code == 10 or 200 <= code <= 299:
            return AuthError(text, code=label)
        if code in TRANSIENT_CODES or error.get("is_transient") or answer.status >= 500:
            return TransientError(text, code=label)
        return PermanentError(text, code=label)

    async def send(self, message: Message) -> Receipt:
        if not self._token:
            raise no_credentials(self)
        reply = message.extra.get("reply")
        if reply == "comment":
            return await self._comment_reply(message)
        if reply == "messenger":
            return await self._messenger_reply(message)
        photo = await facebook_photo_post(self, message)
        if photo is not None:
            return photo
        form = {"message": message.text, "access_token": self._token}
        if message.link:
            form["link"] = message.link
        url = f"{self.api_base}/{self.version}/{self.page_id}/feed"
        post_id = await self._created(url, "post", "id", data=form)
        return Receipt(provider_id=post_id, detail=f"https://www.facebook.com/{post_id}")

    async def _created(self, url: str, what: str, id_field: str, **body: Any) -> str:
        """POST to the Graph API and the id of what it created; an error answer raised as its DeliveryError."""
        answer = await request(self, "POST", url, timeout=self.timeout, **body)
        if answer.status != 200:
            raise self._error(answer)
        created = answer.json()
        if not isinstance(created, dict) or not created.get(id_field):
            raise TransientError(f"{self.name}: {what} created but the answer has no {id_field}", code="bad-answer")
        return str(created[id_field])

    async def _comment_reply(self, message: Message) -> Receipt:
        """A reply under a citizen's comment: POST /{comment-id}/comments (Graph API reference, Comments)."""
        if not message.reply_to:
            raise PermanentError(f"{self.name}: a comment reply needs the comment's id", code="reply_to")
        url = f"{self.api_base}/{self.version}/{message.reply_to}/comments"
        form = {"message": message.text, "access_token": self._token}
        comment_id = await self._created(url, "comment", "id", data=form)
        return Receipt(provider_id=comment_id, detail=f"comment on {message.reply_to}")

    async def _messenger_reply(self, message: Message) -> Receipt:
        """A Messenger answer to the person (page-scoped id) who wrote to the Page: the Send API, POST
        /{page-id}/messages with messaging_type RESPONSE (allowed within 24 hours of their message)."""
        if not message.recipient:
            raise PermanentError(f"{self.name}: a Messenger answer needs the sender's id", recipient_action="invalid")
        url = f"{self.api_base}/{self.version}/{self.page_id}/messages"
        payload = {
            "recipient": {"id": message.recipient},
            "messaging_type": "RESPONSE",
            "message": {"text": message.text},
        }
        message_id = await self._created(
            url, "message", "message_id", json=payload, params={"access_token": self._token}
        )
        return Receipt(provider_id=message_id, detail=f"Messenger to {message.recipient}")
