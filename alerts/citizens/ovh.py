"""OVHcloud's delivery receipts: GET /ovh/status, the URL an OVHcloud SMS account calls (its `callBack`)
with a job's `id` and `dlr` code when the message's state changes.

OVHcloud does not sign its callbacks, so the URL Crieur gives the account carries a token signed with the
service's key (alerts.acks): a callback without it changes nothing. The job id is found again through the
delivery's provider_id ("ovh:<id>", migration 0015's index)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from channels.base import Channel
from channels.ovh import OvhChannel

from ..acks import encode_text, sign_token, verify_token
from .base import Part
from .sms import judge_number

if TYPE_CHECKING:
    from ..config import ServiceConfig

log = logging.getLogger("crieur.citizens")

PURPOSE = "ovh-receipts"
TOKEN_TTL = timedelta(days=3650)  # the URL stays in the account's settings
# OVHcloud's dlr codes: 1 delivered to the handset, 2 not delivered, 4 buffered, 8 delivered to the
# operator's SMSC, 16 not delivered to the SMSC. Buffered and SMSC-delivered are not a final word.
DLR_STATUS = {"1": "delivered", "2": "undelivered", "4": "sent", "8": "sent", "16": "failed"}


def receipt_url(config: ServiceConfig, channel: str) -> str:
    token = sign_token(PURPOSE, encode_text(channel), config.secret_key(), ttl=TOKEN_TTL)
    return f"{config.public_url.rstrip('/')}/ovh/status?c={token}"


def attach(config: ServiceConfig, channels: Mapping[str, Channel]) -> None:
    """Give every OVHcloud channel with `receipts: true` its callback URL (before the channels start: the
    adapter sets it on the account at start)."""
    for channel in channels.values():
        inner = getattr(channel, "inner", channel)
        if isinstance(inner, OvhChannel) and inner.receipts:
            inner.status_callback = receipt_url(config, inner.name)


class OvhReceipts(Part):
    def install_routes(self, app: web.Application) -> None:
        app.router.add_get("/ovh/status", self._status_route)

    async def _status_route(self, request: web.Request) -> web.Response:
        if verify_token(PURPOSE, request.query.get("c", ""), self.config.secret_key()) is None:
            log.warning("OVHcloud receipt refused: missing or bad token")
            return web.Response(status=403, text="Jeton invalide.")
        job, dlr = request.query.get("id", ""), request.query.get("dlr", "")
        status = DLR_STATUS.get(dlr)
        if not job.isdigit() or status is None:
            return web.Response(status=400, text="id et dlr attendus.")
        description = request.query.get("description", "").strip()[:200]
        error = (
            ""
            if status in ("delivered", "sent")
            else f"OVHcloud dlr {dlr}" + (f": {description}" if description else "")
        )
        recipient = await self.store.outbox.set_provider_status_by_id(f"ovh:{job}", status, error)
        if recipient is None:
            log.warning("OVHcloud receipt for unknown job %s", job)
            return web.Response(status=200, text="")
        await judge_number(self, recipient, status)
        return web.Response(status=200, text="")
