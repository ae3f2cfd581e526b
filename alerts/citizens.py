"""Citizens end to end: inbound SMS (Twilio webhook), questions from SMS, the web form and Mastodon
mentions, routed to the authority that decides, and escalations to that authority's webmaster.

    crieur.citizens = Citizens(crieur)                       # in Crieur.open()
    crieur.route_installers.append(crieur.citizens.install_routes)

Routes: POST /twilio/sms (inbound SMS, answered in TwiML), POST /twilio/status (delivery status
callbacks), GET /escalations/ack?token=... (a page whose button POSTs the token: a webmaster
acknowledges an escalation without an account; a mail scanner opening the link acknowledges nothing).

Flood policy (SMS pumping, a script texting us): a number that sent more than `per_number` messages in
`per_number_window` seconds is ignored (nothing stored, empty TwiML); beyond `replies` answers in
`replies_window` seconds over all numbers, messages are still handled (a subscription is made, a question
stored and routed) but no reply is sent, since replies are what cost money. A stop word is always honoured,
even from a limited number. Counters live in the database, so the limits hold for all web processes
together: `per_number` messages at once, then one every `per_number_window / per_number` seconds.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import unquote

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import Channel, ConfigurationError, RateLimited
from channels.twilio import INVALID_RECIPIENT, UNSUBSCRIBED
from rules.competence import (
    Authority,
    Escalation,
    EscalationKey,
    Reason,
    Routing,
    Topic,
    escalation_key,
    sign_ack,
    verify_ack,
)

from . import replies
from .domain import Item
from .ingest.common import html_to_text
from .keywords import CommandKind, parse_sms
from .phones import InvalidPhone, mask, normalise_phone
from .shared_limits import SharedCounter, first_delivery, forget_delivery
from .storage import NewDelivery

__all__ = ["Citizens", "FloodLimits", "mention_text", "MENTIONS_STATE", "NO_ALERT"]

log = logging.getLogger("crieur.citizens")

MENTIONS_STATE = "mastodon-mentions"  # row of the sources table that remembers the last mention handled
NO_ALERT = 0  # deliveries.alert_id of replies and escalations, which belong to no alert
MAX_QUESTION = 2000  # characters kept of a question (an SMS is at most 1600)
MAX_MENTION_AGE = 24 * 3600.0  # older mentions (before the service started) are not answered
# Status callback error codes that say the number will never receive our SMS. Twilio's 30005 (unknown
# handset) and 30006 (landline or unreachable carrier) come only in callbacks, the others also at send time.
PERMANENT_CODES: Mapping[str, str] = {
    **{str(code): "unsubscribe" for code in UNSUBSCRIBED},
    **{str(code): "invalid" for code in (*INVALID_RECIPIENT, 30005, 30006)},
}
_MENTION = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]+(?:@[A-Za-z0-9.\-]+[A-Za-z0-9])?")


# --------------------------------------------------------------------------------------- flood limits


@dataclass(frozen=True, slots=True)
class FloodLimits:
    per_number: int = 5
    per_number_window: float = 600.0
    replies: int = 200
    replies_window: float = 60.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, where: str = "citizens.limits") -> "FloodLimits":
        """Read {per_number, per_number_window, replies, replies_window}; a bad value raises ValueError
        naming the field."""
        values: dict[str, Any] = {}
        for name, value in (raw or {}).items():
            if name not in cls.__dataclass_fields__:
                raise ValueError(f"{where}.{name}: unknown setting (known: {', '.join(cls.__dataclass_fields__)})")
            kind = int if name in ("per_number", "replies") else float
            try:
                number = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}.{name}: expected a number, not {value!r}") from None
            if number <= 0:
                raise ValueError(f"{where}.{name}: must be positive, not {value!r}")
            values[name] = number
        return cls(**values)


# ----------------------------------------------------------------------------------------- helpers


def mention_text(content: str) -> str:
    """A Mastodon status's HTML as the citizen's question: tags, entities and @mentions removed."""
    text = _MENTION.sub(" ", html_to_text(content))
    return " ".join(text.split())


def _page(title: str, body: str, status: int) -> web.Response:
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


def _twiml(reply: str) -> web.Response:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return web.Response(text=str(response), content_type="text/xml", charset="utf-8")


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch else None


# ----------------------------------------------------------------------------------------- citizens


class Citizens:
    """What citizens send to Crieur and what goes back to them and to the authorities' webmasters.

    `crieur` is the running service (alerts.service.Crieur) or any object with its attributes `config`,
    `store`, `channels`, `directory` (rules.competence.Directory or None) and `rules` (whose
    `territories` lists the known territories). They are read at each call, so `Citizens` may be built
    before the store is opened.
    """

    def __init__(
        self,
        crieur: Any,
        *,
        limits: FloodLimits | None = None,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.crieur = crieur
        self.limits = limits or FloodLimits.from_mapping(getattr(crieur.config, "citizen_limits", None))
        self._now = now
        # counted in the database: the limits hold for all web processes together (alerts.shared_limits)
        self._per_number = SharedCounter(lambda: self.store.db, "sms:number", self.limits.per_number,
                                         self.limits.per_number_window, clock)
        self._replies = SharedCounter(lambda: self.store.db, "sms:replies", self.limits.replies,
                                      self.limits.replies_window, clock)
        self._stopping = asyncio.Event()

    # the service's parts, read when used
    @property
    def config(self) -> Any:
        return self.crieur.config

    @property
    def store(self) -> Any:
        return self.crieur.store

    @property
    def directory(self) -> Any:
        return getattr(self.crieur, "directory", None)

    @property
    def channels(self) -> Mapping[str, Channel]:
        return getattr(self.crieur, "channels", None) or {}

    # ------------------------------------------------------------------------------ territories

    def territories(self) -> list[tuple[str, str, str]]:
        """(code, name, hashtag) of the territories citizens may subscribe to, in configuration order:
        the rules' territories file, else the départements of the competence directory (own first)."""
        rules = getattr(self.crieur, "rules", None)
        found = None
        if rules is not None:
            try:
                found = rules.territories
            except RuntimeError:  # the rule book failed its first load
                found = None
        if found is not None and len(found):
            return [(t.code, t.name, t.hashtag) for t in found.items]
        directory = self.directory
        if directory is None:
            return []
        codes = list(directory.own.territories)
        for authority in directory:
            if authority.kind == "departement":
                codes += [c for c in authority.territories if c not in codes]
        return [(code, "", "") for code in codes]

    def _codes_and_names(self) -> tuple[list[str], dict[str, str]]:
        known = self.territories()
        return [code for code, _, _ in known], {code: name for code, name, _ in known if name}

    def _territories_in(self, text: str) -> list[str]:
        """Territories whose hashtag (#route28) a message carries."""
        lowered = f"{text.lower()} "
        return [code for code, _, tag in self.territories() if tag and re.search(re.escape(tag.lower()) + r"\b", lowered)]

    # --------------------------------------------------------------------------------------- SMS

    async def handle_sms(self, sender: str, body: str) -> str:
        """Act on one inbound SMS and return the reply text ("" for no reply)."""
        try:
            phone = normalise_phone(sender)
        except InvalidPhone as exc:
            log.warning("inbound SMS from an unusable sender ignored: %s", mask(str(sender)), extra={"why": str(exc)})
            return ""
        codes, names = self._codes_and_names()
        command = parse_sms(body or "", codes)

        if command.kind is CommandKind.UNSUBSCRIBE:
            cancelled = await self.store.opt_out(phone, reason="stop")
            log.info("STOP from %s: %d queued deliveries cancelled", mask(phone), cancelled)
            # Honoured whatever the limits; the confirmation costs an SMS, so it obeys them.
            if not await self._per_number.allow(phone):
                return ""
            return await self._reply(replies.unsubscribed(codes[0] if codes else ""))

        if not await self._per_number.allow(phone):
            log.warning("inbound SMS from %s over the per-number limit: ignored", mask(phone))
            return ""

        if command.kind is CommandKind.SUBSCRIBE:
            if not command.ok:
                return await self._reply(replies.command_error(command, codes))
            added = await self.store.subscribe(phone, command.territories)
            log.info("subscription of %s to %s (new: %s)", mask(phone), command.territories, added)
            if added:
                return await self._reply(replies.subscribed(command.territories, names))
            return await self._reply(replies.already_subscribed(command.territories, names))
        if command.kind is CommandKind.HELP:
            return await self._reply(replies.help_text(codes, names))
        subscribed = await self.store.subscriptions(phone)
        result = await self.ask("sms", phone, command.text, territories=subscribed)
        return await self._reply(result["reply"])

    async def _reply(self, text: str) -> str:
        """`text`, unless the global reply limit is reached (then the citizen gets no SMS)."""
        if not await self._replies.allow("*"):
            log.warning("global SMS reply limit reached (%d in %g s): reply withheld",
                        self.limits.replies, self.limits.replies_window)
            return ""
        return text

    # --------------------------------------------------------------------------------- questions

    async def ask(self, channel: str, sender: str, text: str, territories: Sequence[str] = ()) -> dict[str, Any]:
        """Route a citizen's question, store it, answer it, and warn the authority when it has published
        nothing on the subject. Returns {"reply", "routing", "question_id", "escalation_id", "status",
        "escalation_count"}; "routing" is a rules.competence.Routing.

        Status of the stored question: "queued" (the département's team answers), "answered" (answered
        automatically with the authority's publication or where to ask) or "escalated" (the authority
        has published nothing; its webmaster is warned).
        """
        text = (text or "").strip()[:MAX_QUESTION]
        if not text:
            raise ValueError("empty question")
        now = self._now()
        directory = self.directory
        routing: Routing = (
            directory.route(text, territories) if directory is not None else Routing(None, None, True, Reason.NONE)
        )
        publication = await self._latest_publication(routing, now)
        reply = replies.citizen_answer(routing, publication)
        key = None
        if publication is None and not routing.in_scope:
            key = escalation_key(routing, now, timedelta(seconds=self.config.escalation_window))
        if routing.in_scope or routing.authority is None:
            status = "queued"
        else:
            status = "escalated" if key is not None else "answered"
        question_id = await self.store.add_question(
            channel=channel,
            sender=sender,
            text=text,
            territories=list(territories),
            authority=routing.authority.id if routing.authority else "",
            topic=routing.topic.id if routing.topic else "",
            in_scope=int(routing.in_scope),
            status=status,
            answer=reply,
        )
        metrics = getattr(self.crieur, "metrics", None)
        if metrics is not None:
            metrics.question()
        escalation_id = None
        count = 0
        if key is not None:
            row, opened = await self.store.count_escalation(key.authority_id, key.topic, key.window_start.timestamp())
            escalation_id, count = int(row["id"]), int(row["question_count"])
            await self.store.set_question(question_id, escalation_id=escalation_id)
            if opened and metrics is not None:
                metrics.escalation()
            if opened or row["state"] == "open":  # "open": a previous attempt to warn did not get through
                await self._warn_webmaster(row, routing, text, now)
        log.info("question %s (%s) → %s", question_id, channel,
                 routing.authority.id if routing.authority else "team")
        return {
            "reply": reply,
            "routing": routing,
            "question_id": question_id,
            "escalation_id": escalation_id,
            "status": status,
            "escalation_count": count,
        }

    async def _latest_publication(self, routing: Routing, now: datetime) -> Item | None:
        authority, topic = routing.authority, routing.topic
        if authority is None or topic is None or not authority.feeds:
            return None
        items = await self.store.items(sources=list(authority.feeds))
        return self.directory.latest_publication(authority, topic, items, now)

    async def _own_publications(self, topic: Topic, now: datetime, limit: int = 3) -> list[Item]:
        """What the operator itself published on the topic (quoted in the escalation email)."""
        own: Authority = self.directory.own
        if not own.feeds:
            return []
        items = await self.store.items(sources=list(own.feeds), limit=50)
        return [i for i in items if i.is_current(now) and topic.matches_item(i)][:limit]

    # ------------------------------------------------------------------------------- escalations

    def ack_url(self, escalation_id: int) -> str:
        token = sign_ack(escalation_id, self.config.secret_key())
        return f"{self.config.public_url.rstrip('/')}/escalations/ack?token={token}"

    async def _warn_webmaster(self, row: Mapping[str, Any], routing: Routing, question: str, now: datetime) -> None:
        """Queue the escalation to the authority's webmaster (email and/or webhook) in the outbox.

        A failure here (no email channel, no secret key) is logged and leaves the escalation "open": the
        citizen still gets an answer, the count goes on, and the next question tries again. The delivery
        keys make a second attempt a no-op once one succeeded.
        """
        authority, topic = routing.authority, routing.topic
        assert authority is not None and topic is not None and authority.webmaster is not None
        escalation_id = int(row["id"])
        try:
            ack_url = self.ack_url(escalation_id)
            escalation = Escalation(
                EscalationKey(authority.id, topic.id, _when(row["window_start"]) or now),
                count=int(row["question_count"]),
                samples=[" ".join(question.split())],
                first_at=_when(row["created_at"]) or now,
                last_at=now,
                gap=True,
            )
            mail = replies.escalation_email(
                escalation, authority, topic, self.directory.own,
                ack_url=ack_url, our_publications=await self._own_publications(topic, now),
            )
            deliveries: list[NewDelivery] = []
            contact = authority.webmaster
            if contact.email:
                name = self.config.email_channel
                if name and name in self.channels:
                    deliveries.append(NewDelivery(
                        key=f"escalation:{escalation_id}:{name}:{contact.email}", alert_id=NO_ALERT,
                        channel=name, recipient=contact.email, kind="Escalation",
                        text=mail.body, subject=mail.subject,
                    ))
                else:
                    log.error("escalation %s to %s: no email channel configured (citizens.email_channel)",
                              escalation_id, authority.id)
            if contact.webhook:
                name = self._webhook_channel()
                if name:
                    payload = {
                        "type": "escalation.opened",
                        "timestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                        "data": {
                            "escalation_id": escalation_id, "authority": authority.id, "topic": topic.id,
                            "topic_label": topic.label, "question_count": escalation.count,
                            "window_start": escalation.key.window_start.isoformat(),
                            "samples": escalation.samples, "subject": mail.subject, "text": mail.body,
                            "ack_url": ack_url,
                        },
                    }
                    deliveries.append(NewDelivery(
                        key=f"escalation:{escalation_id}:{name}:{contact.webhook}", alert_id=NO_ALERT,
                        channel=name, recipient=contact.webhook, kind="Escalation", text=mail.body,
                        subject=mail.subject, link=ack_url,
                        extra=json.dumps({"payload": payload}, ensure_ascii=False),
                    ))
                else:
                    log.error("escalation %s to %s: no webhook channel configured", escalation_id, authority.id)
            if deliveries:
                await self.store.enqueue(deliveries)
                await self.store.set_escalation_state(escalation_id, "sent")
                log.info("escalation %s to %s (%s) queued", escalation_id, authority.id, topic.id)
        except Exception:
            log.exception("escalation %s to %s could not be queued; it stays open", escalation_id, authority.id)

    def _webhook_channel(self) -> str:
        """The channel that carries webhook escalations: `config.webhook_channel`, else the first
        configured channel of kind "webhook"."""
        name = getattr(self.config, "webhook_channel", "")
        if name and name in self.channels:
            return name
        return next((n for n, ch in self.channels.items() if ch.kind == "webhook"), "")

    async def escalation_for(self, token: str) -> tuple[int, dict | None]:
        """(HTTP status, escalation row) for an acknowledgement token, changing nothing: 200 and the row,
        403 for a forged, altered or expired token, 404 for a valid token of an unknown escalation."""
        escalation_id = verify_ack(token, self.config.secret_key())
        if escalation_id is None:
            return 403, None
        row = await self.store.escalation(escalation_id)
        return (404, None) if row is None else (200, row)

    async def acknowledge(self, token: str) -> tuple[int, dict | None]:
        """escalation_for, and the escalation marked acknowledged (once: a second time changes nothing)."""
        status, row = await self.escalation_for(token)
        if row is not None and row["state"] != "acknowledged":
            await self.store.set_escalation_state(row["id"], "acknowledged")
            row = await self.store.escalation(row["id"])
            log.info("escalation %s acknowledged by its webmaster", row["id"] if row else "?")
        return status, row

    # ---------------------------------------------------------------------------------- Mastodon

    def mastodon_channel(self) -> Channel | None:
        """The account whose mentions are questions: `config.mastodon_channel`, else the first channel of
        kind "mastodon" able to read notifications (a dry-run wrapper cannot)."""
        name = getattr(self.config, "mastodon_channel", "")
        candidates = [self.channels[name]] if name and name in self.channels else list(self.channels.values())
        return next((ch for ch in candidates if ch.kind == "mastodon" and hasattr(ch, "notifications")), None)

    async def poll_mentions(self) -> int:
        """Answer the mentions received since the last poll, in the thread; returns how many were taken."""
        channel = self.mastodon_channel()
        if channel is None:
            return 0
        state = await self.store.load_source_state(MENTIONS_STATE) or {}
        notifications = await channel.notifications(since_id=state.get("since_id"))  # type: ignore[attr-defined]
        handled = 0
        for note in sorted(notifications, key=lambda n: (len(str(n.get("id", ""))), str(n.get("id", "")))):
            if note.get("type", "mention") == "mention" and await self._answer_mention(channel, note):
                handled += 1
            state = {"since_id": str(note.get("id")), "updated": time.time()}
            await self.store.save_source_state(MENTIONS_STATE, state)
        return handled

    async def _answer_mention(self, channel: Channel, note: Mapping[str, Any]) -> bool:
        status = note.get("status") or {}
        account = note.get("account") or status.get("account") or {}
        acct, status_id = str(account.get("acct") or ""), str(status.get("id") or "")
        if not acct or not status_id:
            return False
        created = str(status.get("created_at") or note.get("created_at") or "")
        try:
            age = (self._now() - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()
        except ValueError:
            age = 0.0
        if age > MAX_MENTION_AGE:
            log.info("mention %s by %s is %.0f h old: not answered", status_id, acct, age / 3600)
            return False
        text = mention_text(str(status.get("content") or ""))
        if not text:
            return False
        result = await self.ask("mastodon", acct, text, territories=self._territories_in(text))
        if status.get("visibility") == "direct":
            # The channel posts with its own visibility: a public answer to a private message would
            # expose the exchange. The question waits in the team's queue instead.
            await self.store.set_question(result["question_id"], status="queued")
            log.info("direct mention %s by %s queued for the team, not answered publicly", status_id, acct)
            return True
        limit = channel.limits.max_length or 500
        reply = f"@{acct} {result['reply']}"
        if len(reply) > limit:
            reply = reply[: limit - 1].rstrip() + "…"
        await self.store.enqueue([NewDelivery(
            key=f"q{result['question_id']}:{channel.name}", alert_id=NO_ALERT, channel=channel.name,
            text=reply, kind="Reply", reply_to=status_id,
        )])
        return True

    async def run_mentions(self, interval: float = 60.0) -> None:
        """Poll mentions every `interval` seconds until `stop()`; a failing poll is logged and retried."""
        self._stopping.clear()
        while not self._stopping.is_set():
            wait = interval
            try:
                await self.poll_mentions()
            except RateLimited as exc:
                wait = max(interval, exc.retry_after or 0.0)
                log.warning("mentions: rate limited, next poll in %.0f s", wait)
            except Exception as exc:  # a provider or database outage must not end the loop
                log.warning("mentions: poll failed: %s: %s", type(exc).__name__, exc)
            try:
                await asyncio.wait_for(self._stopping.wait(), wait)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()

    # ----------------------------------------------------------------------------------- routes

    def install_routes(self, app: web.Application) -> None:
        app.router.add_post("/twilio/sms", self._sms_route)
        app.router.add_post("/twilio/status", self._status_route)
        # GET (and HEAD) only show the page: mail scanners open links; the webmaster's button POSTs.
        app.router.add_get("/escalations/ack", self._ack_route)
        app.router.add_post("/escalations/ack", self._ack_route)

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
            log.error("Twilio webhook refused: no auth token (set %s or the SMS channel's auth_token)",
                      self.config.twilio_auth_token_env or "citizens.twilio_auth_token_env")
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
            return _twiml("")
        try:
            return _twiml(await self.handle_sms(params.get("From", ""), params.get("Body", "")))
        except BaseException:
            if sid:  # not handled: Twilio's retry must be
                await forget_delivery(self.store.db, f"twilio:{sid}")
            raise

    async def _status_route(self, request: web.Request) -> web.Response:
        params = await self._verified_form(request)
        if params is None:
            return web.Response(status=403, text="Signature Twilio invalide.")
        key = _query_value(request.raw_path.partition("?")[2], "d")
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        code = params.get("ErrorCode", "").strip()
        error = f"Twilio {code}" + (f": {params['ErrorMessage']}" if params.get("ErrorMessage") else "") if code else ""
        recipient = params.get("To", "")
        if key and status:
            if await self.store.set_provider_status(key, status, error):
                row = await self.store.delivery(key)
                recipient = row["recipient"] if row and row["recipient"] else recipient
            else:
                log.warning("status callback for unknown delivery %s", key)
        if code in PERMANENT_CODES and recipient:
            try:
                phone = normalise_phone(recipient)
            except InvalidPhone:
                phone = recipient
            await self.store.opt_out(phone, reason=PERMANENT_CODES[code])
            log.info("Twilio %s for %s: number marked %s", code, mask(phone), PERMANENT_CODES[code])
        return web.Response(status=204)

    async def _ack_route(self, request: web.Request) -> web.Response:
        posted = request.method == "POST"
        token = str((await request.post()).get("token", "")) if posted else request.query.get("token", "")
        try:
            status, row = await (self.acknowledge(token) if posted else self.escalation_for(token))
        except Exception:
            log.exception("acknowledgement failed")
            return _page("Service indisponible", "<p>Veuillez réessayer dans quelques minutes.</p>", 503)
        if status == 403:
            return _page(
                "Lien invalide ou expiré",
                "<p>Ce lien de confirmation n'est pas valide ou a expiré. Si vous pensez qu'il s'agit d'une "
                "erreur, répondez simplement au message que vous avez reçu.</p>",
                403,
            )
        if row is None:
            return _page("Signalement introuvable", "<p>Ce signalement n'existe plus.</p>", 404)
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
                "<button type=\"submit\">Confirmer la réception</button></form>"
            )
            return _page("Confirmer la réception du signalement", body, 200)
        body = (
            f"<p>Merci. Nous avons bien noté que vous avez pris connaissance du signalement : {about}.</p>\n"
            "<p>Une publication de votre part sur ce sujet permettra de leur répondre automatiquement.</p>"
        )
        return _page("Signalement bien reçu", body, 200)


def _query_value(query_string: str, name: str) -> str:
    """A query parameter read literally: a "+" stays a "+" (delivery keys end with an E.164 number, and
    a status callback URL may carry the key without percent-encoding it)."""
    for part in query_string.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            return unquote(value)
    return ""
