"""X (Twitter) API v2: POST /2/tweets as the département's account, OAuth 1.0a user context.

Signing uses oauthlib (RFC 5849, HMAC-SHA1). The JSON body is not part of the signature base string; only
the method, the URL with its query and the oauth_* parameters are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client

from ._http import Answer, DryRunnable, base_url_option, error_for_status, no_credentials, request, timeout_option
from ._media import x_media_id
from .base import (
    API_BASE,
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

RESET_HEADERS = ("x-rate-limit-reset",)
FORM = "application/x-www-form-urlencoded"
CONTENT_REFUSALS = {"duplicate": "duplicate", "too long": "too-long", "reply to a tweet": "reply-gone"}


def oauth1_authorization(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    form: Mapping[str, str] | None = None,
    nonce: str | None = None,
    timestamp: str | None = None,
) -> str:
    """The `Authorization: OAuth ...` header value for one request. Form parameters, when the body is
    form-encoded, are signed too (RFC 5849 §3.4.1.3); a JSON body is not. nonce/timestamp are for tests."""
    client = Client(
        consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=token,
        resource_owner_secret=token_secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        nonce=nonce,
        timestamp=timestamp,
    )
    if form:
        _, headers, _ = client.sign(url, http_method=method, body=dict(form), headers={"Content-Type": FORM})
    else:
        _, headers, _ = client.sign(url, http_method=method)
    return str(headers["Authorization"])


@register
class XChannel(DryRunnable, Channel):
    kind = "x"
    declared_options = (
        Option("consumer_key", "secret", required=True, description="the app's API key"),
        Option("consumer_secret", "secret", required=True, description="the app's API key secret"),
        Option("access_token", "secret", required=True, description="the account's access token"),
        Option("access_token_secret", "secret", required=True, description="the account's access token secret"),
        replace(API_BASE, default="https://api.x.com"),
        TIMEOUT,
    )
    limits = Limits(counting="x", max_length=280)
    per_recipient = False
    idempotent = False
    default_rate = 0.5  # user context: a few hundred posts per 3 hours at the paid tiers

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.api_base = base_url_option(self, "api_base", "https://api.x.com")
        self.timeout = timeout_option(self)
        names = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
        self._keys = {n: self.secret(n) for n in names} if credentials else {}

    def _authorization(self, method: str, url: str) -> str:
        if not self._keys:
            raise no_credentials(self)
        return oauth1_authorization(
            method,
            url,
            consumer_key=self._keys["consumer_key"],
            consumer_secret=self._keys["consumer_secret"],
            token=self._keys["access_token"],
            token_secret=self._keys["access_token_secret"],
        )

    def _error(self, answer: Answer) -> Exception:
        body = answer.json()
        body = body if isinstance(body, dict) else {}
        detail = str(body.get("detail") or body.get("title") or "")
        if answer.status == 403:
            # X refuses some posts with a 403 that says nothing about credentials: those fail this post only
            for marker, code in CONTENT_REFUSALS.items():
                if marker in detail.lower():
                    return PermanentError(f"{self.name}: {detail}", code=code)
            return AuthError(f"{self.name}: HTTP 403 {detail}", code=str(body.get("type") or 403))
        return error_for_status(self, answer, detail=detail, reset_headers=RESET_HEADERS)

    async def send(self, message: Message) -> Receipt:
        url = f"{self.api_base}/2/tweets"
        payload: dict[str, Any] = {"text": message.text}
        if message.reply_to:
            payload["reply"] = {"in_reply_to_tweet_id": message.reply_to}
        media_id = await x_media_id(self, message)
        if media_id:
            payload["media"] = {"media_ids": [media_id]}
        headers = {"Authorization": self._authorization("POST", url), "Content-Type": "application/json"}
        answer = await request(self, "POST", url, json=payload, headers=headers, timeout=self.timeout)
        if answer.status not in (200, 201):
            raise self._error(answer)
        body = answer.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise TransientError(f"{self.name}: post created but the answer has no data.id", code="bad-answer")
        return Receipt(provider_id=str(data["id"]), detail=f"https://x.com/i/web/status/{data['id']}")
