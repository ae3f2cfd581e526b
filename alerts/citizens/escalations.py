"""Escalations to an authority's webmaster (email and/or webhook, through the outbox), and the signed link
by which the webmaster acknowledges one."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from rules.authorities import Authority, Routing, Topic
from rules.escalation import Escalation, EscalationKey

from .. import replies
from ..acks import sign_ack, verify_ack
from ..domain import Item
from ..storage import NewDelivery, escalation_delivery_key
from .base import NO_ALERT, Part, when

log = logging.getLogger("crieur.citizens")


class Escalations(Part):
    """Warn webmasters; take their acknowledgements."""

    def ack_url(self, escalation_id: int) -> str:
        token = sign_ack(escalation_id, self.config.secret_key())
        return f"{self.config.public_url.rstrip('/')}/escalations/ack?token={token}"

    async def warn_webmaster(self, row: Mapping[str, Any], routing: Routing, question: str, now: datetime) -> None:
        """Queue the escalation to the authority's webmaster (email and/or webhook) in the outbox.

        A failure here (no email channel, no secret key) is logged and leaves the escalation "open": the
        citizen still gets an answer, the count goes on, and the next question tries again. The delivery
        keys make a second attempt a no-op once one succeeded.
        """
        authority, topic, directory = routing.authority, routing.topic, self.directory
        assert authority is not None and topic is not None and authority.webmaster is not None
        assert directory is not None  # it routed the question
        escalation_id = int(row["id"])
        try:
            ack_url = self.ack_url(escalation_id)
            escalation = Escalation(
                EscalationKey(authority.id, topic.id, when(row["window_start"]) or now),
                count=int(row["question_count"]),
                samples=[" ".join(question.split())],
                first_at=when(row["created_at"]) or now,
                last_at=now,
                gap=True,
            )
            mail = replies.escalation_email(
                escalation,
                authority,
                topic,
                directory.own,
                ack_url=ack_url,
                our_publications=await self._own_publications(directory.own, topic, now),
            )
            deliveries: list[NewDelivery] = []
            contact = authority.webmaster
            if contact.email:
                name = self.config.email_channel
                if name and name in self.channels:
                    deliveries.append(
                        NewDelivery(
                            key=escalation_delivery_key(escalation_id, name, contact.email),
                            alert_id=NO_ALERT,
                            channel=name,
                            recipient=contact.email,
                            kind="Escalation",
                            text=mail.body,
                            subject=mail.subject,
                        )
                    )
                else:
                    log.error(
                        "escalation %s to %s: no email channel configured (citizens.email_channel)",
                        escalation_id,
                        authority.id,
                    )
            if contact.webhook:
                name = self.webhook_channel()
                if name:
                    payload = {
                        "type": "escalation.opened",
                        "timestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                        "data": {
                            "escalation_id": escalation_id,
                            "authority": authority.id,
                            "topic": topic.id,
                            "topic_label": topic.label,
                            "question_count": escalation.count,
                            "window_start": escalation.key.window_start.isoformat(),
                            "samples": escalation.samples,
                            "subject": mail.subject,
                            "text": mail.body,
                            "ack_url": ack_url,
                        },
                    }
                    deliveries.append(
                        NewDelivery(
                            key=escalation_delivery_key(escalation_id, name, contact.webhook),
                            alert_id=NO_ALERT,
                            channel=name,
                            recipient=contact.webhook,
                            kind="Escalation",
                            text=mail.body,
                            subject=mail.subject,
                            link=ack_url,
                            extra=json.dumps({"payload": payload}, ensure_ascii=False),
                        )
                    )
                else:
                    log.error("escalation %s to %s: no webhook channel configured", escalation_id, authority.id)
            if deliveries:
                await self.store.enqueue(deliveries)
                await self.store.set_escalation_state(escalation_id, "sent")
                log.info("escalation %s to %s (%s) queued", escalation_id, authority.id, topic.id)
        except Exception:
            log.exception("escalation %s to %s could not be queued; it stays open", escalation_id, authority.id)

    def webhook_channel(self) -> str:
        """The channel that carries webhook escalations: `citizens.webhook_channel`, else the first
        configured channel of kind "webhook"."""
        name = self.config.webhook_channel
        if name and name in self.channels:
            return name
        return next((n for n, ch in self.channels.items() if ch.kind == "webhook"), "")

    async def escalation_for(self, token: str) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, escalation row) for an acknowledgement token, changing nothing: 200 and the row,
        403 for a forged, altered or expired token, 404 for a valid token of an unknown escalation."""
        escalation_id = verify_ack(token, self.config.secret_key())
        if escalation_id is None:
            return 403, None
        row = await self.store.escalation(escalation_id)
        return (404, None) if row is None else (200, row)

    async def acknowledge(self, token: str) -> tuple[int, dict[str, Any] | None]:
        """escalation_for, and the escalation marked acknowledged (once: a second time changes nothing)."""
        status, row = await self.escalation_for(token)
        if row is not None and row["state"] != "acknowledged":
            await self.store.set_escalation_state(row["id"], "acknowledged")
            row = await self.store.escalation(row["id"])
            log.info("escalation %s acknowledged by its webmaster", row["id"] if row else "?")
        return status, row

    async def ack_route(self, request: web.Request) -> web.Response:
        """GET /escalations/ack?token=... shows a page whose button POSTs the token; the POST acknowledges
        (a webmaster needs no account; a mail scanner opening the link acknowledges nothing)."""
        posted = request.method == "POST"
        token = str((await request.post()).get("token", "")) if posted else request.query.get("token", "")
        try:
            status, row = await (self.acknowledge(token) if posted else self.escalation_for(token))
        except Exception:
            log.exception("acknowledgement failed")
            return page("Service indisponible", "<p>Veuillez réessayer dans quelques minutes.</p>", 503)
        if status == 403:
            return page(
                "Lien invalide ou expiré",
                "<p>Ce lien de confirmation n'est pas valide ou a expiré. Si vous pensez qu'il s'agit d'une "
                "erreur, répondez simplement au message que vous avez reçu.</p>",
                403,
            )
        if row is None:
            return page("Signalement introuvable", "<p>Ce signalement n'existe plus.</p>", 404)
        authority = self.directory.get(row["authority"]) if self.directory is not None else None
        topic = authority.topic(row["topic"]) if authority is not None else None
        subject = topic.label if topic is not None else row["topic"]
        count = int(row["question_count"])
        questions = "1 question" if count == 1 else f"{count} questions"
        about = f"<strong>{html.escape(questions)}</strong> de citoyens sur « {html.escape(subject)} »"
        if row["state"] != "acknowledged":
            body = (
                f"<p>Signalement : {about}.</p>\n"
                '<form method="post" action="/escalations/ack">'
                f'<input type="hidden" name="token" value="{html.escape(token)}">'
                '<button type="submit">Confirmer la réception</button></form>'
            )
            return page("Confirmer la réception du signalement", body, 200)
        body = (
            f"<p>Merci. Nous avons bien noté que vous avez pris connaissance du signalement : {about}.</p>\n"
            "<p>Une publication de votre part sur ce sujet permettra de leur répondre automatiquement.</p>"
        )
        return page("Signalement bien reçu", body, 200)

    async def _own_publications(self, own: Authority, topic: Topic, now: datetime, limit: int = 3) -> list[Item]:
        """What the operator itself published on the topic (quoted in the escalation email)."""
        if not own.feeds:
            return []
        items = await self.store.items(sources=list(own.feeds), limit=50)
        return [i for i in items if i.is_current(now) and topic.matches_item(i)][:limit]


def page(title: str, body: str, status: int) -> web.Response:
    """A small French HTML page; the token stays out of caches, referrers and search engines."""
    document = (
        '<!DOCTYPE html>\n<html lang="fr">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>\n"
        f"<body><main><h1>{html.escape(title)}</h1>\n{body}</main></body>\n</html>\n"
    )
    return web.Response(
        text=document,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"},
    )
