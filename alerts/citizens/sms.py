"""Twilio's webhooks: inbound SMS (POST /twilio/sms, answered in TwiML) and delivery status callbacks
(POST /twilio/status), both verified by their X-Twilio-Signature against the public URL."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import ConfigurationError
from channels.twilio import INVALID_RECIPIENT, UNSUBSCRIBED

from ..phones import InvalidPhone, mask, normalise_phone
from ..shared_limits import first_delivery, forget_delivery
from ..storage.outbox import UNDELIVERED_STATUSES
from .base import Part

if TYPE_CHECKING:
    from .desk import Citizens

log = logging.getLogger("crieur.citizens")

# Status callback error codes that say the number will never receive our SMS. Twilio's 30005 (unknown
# handset) and 30006 (landline or unreachable carrier) come only in callbacks, the others also at send time.
PERMANENT_CODES: Mapping[str, str] = {
    **{str(code): "unsubscribe" for code in UNSUBSCRIBED},
    **{str(code): "invalid" for code in (*INVALID_RECIPIENT, 30005, 30006)},
}


class TwilioWebhooks(Part):
    def __init__(self, desk: Citizens):
        super().__init__(desk.crieur)
        self.desk = desk

    def install_routes(self, app: web.Application) -> None:
        app.router.add_post("/twilio/sms", self._sms_route)
        app.router.add_post("/twilio/status", self._status_route)

    def _auth_token(self) -> str:
        """Twilio's auth token: the variable named by citizens.twilio_auth_token_env, else the SMS
        channel's own `auth_token` secret."""
        variable = self.config.twilio_auth_token_env
        if variable and os.environ.get(variable):
            return os.environ[variable]
        channel = self.channels.get(self.config.sms_channel) if self.config.sms_channel else None
        for candidate in (channel, getattr(channel, "inner", None)):
            if candidate is not None:
                try:
                    return candidate.secret("auth_token")
                except ConfigurationError:
                    continue
        return ""

    async def _verified_form(self, request: web.Request) -> dict[str, str] | None:
        """The form Twilio posted, or None when its X-Twilio-Signature does not match.

        The URL signed is the public one (configuration), never one built from the Host header, which a
        forger controls."""
        form = await request.post()
        params = {key: value for key, value in form.items() if isinstance(value, str)}
        if not self.config.verify_twilio_signature:
            return params
        token = self._auth_token()
        if not token:
            log.error(
                "Twilio webhook refused: no auth token (set %s or the SMS channel's auth_token)",
                self.config.twilio_auth_token_env or "citizens.twilio_auth_token_env",
            )
            return None
        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.config.public_url.rstrip("/") + request.raw_path
        if not signature or not RequestValidator(token).validate(url, params, signature):
            log.warning("Twilio webhook %s refused: bad or missing signature", request.path)
            return None
        return params

    async def _sms_route(self, request: web.Request) -> web.Response:
        params = await self._verified_form(request)
        if params is None:
            return web.Response(status=403, text="Signature Twilio invalide.")
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        # A retried webhook is handled once, by whichever process, even across a restart.
        if sid and not await first_delivery(self.store.db, f"twilio:{sid}"):
            return twiml("")
        try:
            return twiml(await self.desk.handle_sms(params.get("From", ""), params.get("Body", "")))
        except BaseException:
            if sid:  # not handled: Twilio's retry must be
                await forget_delivery(self.store.db, f"twilio:{sid}")
            raise

    async def _status_route(self, request: web.Request) -> web.Response:
        params = await self._verified_form(request)
        if params is None:
            return web.Response(status=403, text="Signature Twilio invalide.")
        key = query_value(request.raw_path.partition("?")[2], "d")
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        code = params.get("ErrorCode", "").strip()
        error = f"Twilio {code}" + (f": {params['ErrorMessage']}" if params.get("ErrorMessage") else "") if code else ""
        recipient = params.get("To", "")
        if key and status:
            if await self.store.set_provider_status(key, status, error):
                found = await self.store.delivery(key)
                recipient = found.recipient if found and found.recipient else recipient
            else:
                log.warning("status callback for unknown delivery %s", key)
        await judge_number(self, recipient, status, PERMANENT_CODES.get(code, ""), f"Twilio {code}")
        return web.Response(status=204)


async def judge_number(part: Part, recipient: str, status: str, permanent: str = "", why: str = "") -> None:
    """What a provider's receipt means for the number, whichever provider: `permanent` ("unsubscribe",
    "invalid") blocks it at once; otherwise, when its last `citizens.undelivered_limit` messages all came
    back undelivered, it is put aside ("undeliverable") until it texts us again."""
    if not recipient:
        return
    try:
        phone = normalise_phone(recipient)
    except InvalidPhone:
        phone = recipient
    if permanent:
        await part.store.opt_out(phone, reason=permanent)
        log.info("%s for %s: number marked %s", why, mask(phone), permanent)
        return
    limit = part.config.undelivered_limit
    if status not in UNDELIVERED_STATUSES or limit <= 0:
        return
    receipts = await part.store.outbox.latest_receipts(phone, limit)
    if len(receipts) == limit and all(r in UNDELIVERED_STATUSES for r in receipts):
        await part.store.opt_out(phone, reason="undeliverable")
        log.info("%s: the last %d messages came back undelivered: number put aside", mask(phone), limit)


def twiml(reply: str) -> web.Response:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return web.Response(text=str(response), content_type="text/xml", charset="utf-8")


def query_value(query_string: str, name: str) -> str:
    """A query parameter read literally: a "+" stays a "+" (delivery keys end with an E.164 number, and
    a status callback URL may carry the key without percent-encoding it)."""
    for part in query_string.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            return unquote(value)
    return ""
