"""Facebook Page webhook: comments on the Page's posts and Messenger messages are questions, answered
under the comment or in Messenger.

GET /facebook/webhook answers Facebook's subscription check (hub.mode=subscribe, hub.verify_token,
hub.challenge); POST /facebook/webhook takes the events, each request signed with X-Hub-Signature-256:
"sha256=" and the HMAC-SHA256 of the raw body with the app secret. A missing or wrong signature gets 403
and nothing is read. Facebook delivers an event again when it gets no 200: each comment and message is
handled once (alerts.shared_limits.first_delivery), by whichever process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from channels.base import Channel

from ..shared_limits import first_delivery, forget_delivery
from .base import Part
from .conversations import Thread

if TYPE_CHECKING:
    from .desk import Citizens

log = logging.getLogger("crieur.citizens")

MAX_BODY = 1024 * 1024  # Facebook batches up to 1,000 events; far less than this


def hub_signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value Facebook sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FacebookWebhook(Part):
    def __init__(self, desk: Citizens):
        super().__init__(desk.crieur)
        self.desk = desk

    def install_routes(self, app: web.Application) -> None:
        app.router.add_get("/facebook/webhook", self._verify_route)
        app.router.add_post("/facebook/webhook", self._event_route)

    def channel(self) -> Channel | None:
        return self.desk.conversations.channel_of("facebook")

    def _secret(self, variable: str) -> str:
        return os.environ.get(variable, "") if variable else ""

    async def _verify_route(self, request: web.Request) -> web.Response:
        token = self._secret(self.config.facebook_verify_token_env)
        given = request.query.get("hub.verify_token", "")
        if request.query.get("hub.mode") != "subscribe" or not token or not hmac.compare_digest(given, token):
            return web.Response(status=403, text="Jeton de vérification invalide.")
        return web.Response(text=request.query.get("hub.challenge", ""))

    async def _event_route(self, request: web.Request) -> web.Response:
        secret = self._secret(self.config.facebook_app_secret_env)
        if not secret:
            log.error(
                "Facebook webhook refused: no app secret (set %s)",
                self.config.facebook_app_secret_env or "citizens.facebook_app_secret_env",
            )
            return web.Response(status=403, text="Signature Facebook invalide.")
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="Requête trop grande.")
        body = await request.read()
        given = request.headers.get("X-Hub-Signature-256", "")
        if not given or not hmac.compare_digest(given, hub_signature(secret, body)):
            log.warning("Facebook webhook refused: bad or missing X-Hub-Signature-256")
            return web.Response(status=403, text="Signature Facebook invalide.")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="Corps JSON invalide.")
        if not isinstance(payload, dict) or payload.get("object") != "page":
            return web.Response(status=200, text="EVENT_RECEIVED")
        channel = self.channel()
        for entry in payload.get("entry") or []:
            if not isinstance(entry, Mapping):
                continue
            for change in entry.get("changes") or []:
                if isinstance(change, Mapping) and change.get("field") == "feed":
                    await self._comment(channel, str(entry.get("id", "")), change.get("value"))
            for event in entry.get("messaging") or []:
                if isinstance(event, Mapping):
                    await self._message(channel, str(entry.get("id", "")), event)
        return web.Response(status=200, text="EVENT_RECEIVED")

    async def _once(self, key: str, thread: Thread, sender: str, text: str) -> None:
        if not await first_delivery(self.store.db, key):
            return
        try:
            await self.desk.conversations.receive(thread, sender, text, self.desk.territories_in(text))
        except BaseException:
            await forget_delivery(self.store.db, key)  # Facebook's retry must be handled
            raise

    async def _comment(self, channel: Channel | None, page_id: str, value: Any) -> None:
        """A new comment on one of the Page's posts (field "feed", item "comment", verb "add")."""
        if not isinstance(value, Mapping) or value.get("item") != "comment" or value.get("verb") != "add":
            return
        author = value.get("from") or {}
        comment_id, text = str(value.get("comment_id") or ""), " ".join(str(value.get("message") or "").split())
        if not comment_id or not text or not isinstance(author, Mapping) or str(author.get("id")) == page_id:
            return  # the Page's own comments (our answers) are no questions
        thread = Thread("facebook", channel=channel.name if channel else "", reply_to=comment_id)
        await self._once(f"facebook:{comment_id}", thread, str(author.get("name") or author.get("id") or ""), text)

    async def _message(self, channel: Channel | None, page_id: str, event: Mapping[str, Any]) -> None:
        """A Messenger message to the Page (echoes of the Page's own messages are skipped)."""
        message = event.get("message") or {}
        sender = str((event.get("sender") or {}).get("id") or "")
        if not isinstance(message, Mapping) or message.get("is_echo") or not sender or sender == page_id:
            return
        mid, text = str(message.get("mid") or ""), " ".join(str(message.get("text") or "").split())
        if not mid or not text:
            return
        thread = Thread("messenger", channel=channel.name if channel else "", recipient=sender)
        await self._once(f"messenger:{mid}", thread, sender, text)
