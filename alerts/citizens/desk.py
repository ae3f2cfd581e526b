"""The citizens' desk: SMS commands and questions from every channel, routed to the authority that decides."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from channels.base import Channel
from rules.authorities import Reason, Routing
from rules.escalation import escalation_key

from .. import replies
from ..domain import Item
from ..keywords import CommandKind, PlaceRequest, parse_place_request, parse_sms, territory_command
from ..phones import InvalidPhone, mask, normalise_phone
from ..places import commune_key, departement_of, gazetteer_for, road_key, territory_of_key
from ..seams import CitizensHost
from ..shared_limits import SharedCounter
from .base import Part
from .escalations import Escalations
from .flood import FloodLimits
from .mentions import Mentions
from .ovh import OvhReceipts
from .sms import TwilioWebhooks
from .subscriptions import WebSubscriptions

log = logging.getLogger("crieur.citizens")

MAX_QUESTION = 2000  # characters kept of a question (an SMS is at most 1600)


@dataclass(frozen=True, slots=True)
class Places:
    """Place keys a citizen subscribes to (alerts.places) and how to say each."""

    keys: list[str]
    labels: list[str]


class Citizens(Part):
    """What citizens send to Crieur and what goes back to them and to the authorities' webmasters.

    `crieur` is the running service (alerts.service.Crieur) or any object of the shape
    `alerts.seams.CitizensHost`. Its parts are read at each call, so `Citizens` may be built before the
    store is opened. The desk answers SMS commands and questions; `escalations`, `mentions` and `twilio`
    are its other parts.
    """

    def __init__(
        self,
        crieur: CitizensHost,
        *,
        limits: FloodLimits | None = None,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        super().__init__(crieur)
        self.limits = limits or FloodLimits.from_mapping(crieur.config.citizen_limits)
        self._now = now
        # counted in the database: the limits hold for all web processes together (alerts.shared_limits)
        self._per_number = SharedCounter(
            lambda: self.store.db, "sms:number", self.limits.per_number, self.limits.per_number_window, clock
        )
        self._replies = SharedCounter(
            lambda: self.store.db, "sms:replies", self.limits.replies, self.limits.replies_window, clock
        )
        self.escalations = Escalations(crieur)
        self.mentions = Mentions(self)
        self.twilio = TwilioWebhooks(self)
        self.subscriptions = WebSubscriptions(self)
        self.ovh = OvhReceipts(crieur)

    def now(self) -> datetime:
        return self._now()

    def install_routes(self, app: web.Application) -> None:
        """POST /twilio/sms, POST /twilio/status, GET /ovh/status, GET and POST /escalations/ack."""
        self.twilio.install_routes(app)
        self.ovh.install_routes(app)
        # GET (and HEAD) only show the page: mail scanners open links; the webmaster's button POSTs.
        app.router.add_get("/escalations/ack", self.escalations.ack_route)
        app.router.add_post("/escalations/ack", self.escalations.ack_route)

    # the parts' entry points the service and the CLI use

    def ack_url(self, escalation_id: int) -> str:
        return self.escalations.ack_url(escalation_id)

    async def acknowledge(self, token: str) -> tuple[int, dict[str, Any] | None]:
        return await self.escalations.acknowledge(token)

    def mastodon_channel(self) -> Channel | None:
        return self.mentions.channel()

    async def poll_mentions(self) -> int:
        return await self.mentions.poll()

    async def run_mentions(self, interval: float = 60.0) -> None:
        await self.mentions.run(interval)

    def stop(self) -> None:
        self.mentions.stop()

    # ------------------------------------------------------------------------------ territories

    def territories(self) -> list[tuple[str, str, str]]:
        """(code, name, hashtag) of the territories citizens may subscribe to, in configuration order:
        the rules' territories file, else the départements of the competence directory (own first)."""
        rules = self.crieur.rules
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

    def codes_and_names(self) -> tuple[list[str], dict[str, str]]:
        known = self.territories()
        return [code for code, _, _ in known], {code: name for code, name, _ in known if name}

    def territories_in(self, text: str) -> list[str]:
        """Territories whose hashtag (#route28) a message carries."""
        lowered = f"{text.lower()} "
        return [
            code for code, _, tag in self.territories() if tag and re.search(re.escape(tag.lower()) + r"\b", lowered)
        ]

    # --------------------------------------------------------------------------------------- SMS

    async def handle_sms(self, sender: str, body: str) -> str:
        """Act on one inbound SMS and return the reply text ("" for no reply)."""
        try:
            phone = normalise_phone(sender)
        except InvalidPhone as exc:
            log.warning("inbound SMS from an unusable sender ignored: %s", mask(str(sender)), extra={"why": str(exc)})
            return ""
        oncall = getattr(self.crieur, "oncall", None)  # the on-call person answering a page (alerts.oncall)
        if oncall is not None and oncall.knows(phone):
            answer: str | None = await oncall.handle_sms(phone, body)
            if answer is not None:
                return answer
        codes, names = self.codes_and_names()
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
            await self._consent(phone, command.territories, body)
            log.info("subscription of %s to %s (new: %s)", mask(phone), command.territories, added)
            if added:
                return await self._reply(replies.subscribed(command.territories, names))
            return await self._reply(replies.already_subscribed(command.territories, names))
        if command.kind is CommandKind.HELP:
            return await self._reply(replies.help_text(codes, names))
        place = parse_place_request(body or "")
        if place is not None:
            answer = await self._subscribe_places(phone, place, codes, body)
            if answer is not None:
                return await self._reply(answer)
        subscribed = sorted({territory_of_key(key) for key in await self.store.subscriptions(phone)})
        result = await self.ask("sms", phone, command.text, territories=subscribed)
        return await self._reply(result["reply"])

    async def _consent(self, phone: str, places: Sequence[str], body: str) -> None:
        """A subscription SMS is its own opt-in: its words are the consent kept (RGPD)."""
        await self.store.record_consent(phone, "sms", "sms", places, "sms-keyword", body.strip()[:160])

    async def _subscribe_places(
        self, phone: str, place: PlaceRequest, codes: Sequence[str], body: str = ""
    ) -> str | None:
        """Subscribe to a commune or roads ("ROUTE41 BLOIS", "ABONNER D957"); None when the words name no
        commune we know, so that the message is handled as a question ("ROUTE 41 fermée ?")."""
        chosen = self.resolve_places(place, codes)
        if chosen is None or isinstance(chosen, str):
            return chosen
        added = await self.store.subscribe(phone, chosen.keys)
        await self._consent(phone, chosen.keys, body)
        log.info("subscription of %s to %s (new: %s)", mask(phone), chosen.keys, added)
        return replies.subscribed_places(chosen.labels, new=bool(added))

    def resolve_places(self, place: PlaceRequest, codes: Sequence[str]) -> Places | str | None:
        """The place keys a request names (alerts.places), with their labels; a reply explaining the
        problem (unknown territory, several communes of that name); None when its words name no commune
        we know. The one reading of a subscription, by SMS or on the web."""
        chosen: tuple[str, ...] = ()
        if place.codes:
            command = territory_command(place.codes, codes)
            if not command.ok:
                return replies.command_error(command, codes)
            chosen = command.territories
        found = Places([], [])
        territory = chosen[0] if len(chosen) == 1 else (codes[0] if len(codes) == 1 and not chosen else "")
        if place.commune:
            gazetteer = gazetteer_for(self.config.geo)
            if gazetteer is None:
                return None
            communes = [c for c in gazetteer.find(place.commune) if departement_of(c.code) in (chosen or codes)]
            if not communes:
                return None
            if len(communes) > 1:
                return replies.which_commune([f"{c.name} ({departement_of(c.code)})" for c in communes])
            commune = communes[0]
            territory = departement_of(commune.code)
            found.keys.append(commune_key(commune.code))
            found.labels.append(f"commune de {commune.name} ({territory})")
        if place.roads:
            road_territories = [territory] if territory else list(chosen)
            if not road_territories:
                return replies.command_error(territory_command([], codes), codes)
            for code in road_territories:
                for road in place.roads:
                    found.keys.append(road_key(code, road))
                    found.labels.append(f"route {road} ({code})")
        return found

    async def _reply(self, text: str) -> str:
        """`text`, unless the global reply limit is reached (then the citizen gets no SMS)."""
        if not await self._replies.allow("*"):
            log.warning(
                "global SMS reply limit reached (%d in %g s): reply withheld",
                self.limits.replies,
                self.limits.replies_window,
            )
            return ""
        return text

    # --------------------------------------------------------------------------------- questions

    async def ask(self, channel: str, sender: str, text: str, territories: Sequence[str] = ()) -> dict[str, Any]:
        """Route a citizen's question, store it, answer it, and warn the authority when it has published
        nothing on the subject. Returns {"reply", "routing", "question_id", "escalation_id", "status",
        "escalation_count"}; "routing" is a rules.authorities.Routing.

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
        metrics = self.crieur.metrics
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
                await self.escalations.warn_webmaster(row, routing, text, now)
        log.info("question %s (%s) → %s", question_id, channel, routing.authority.id if routing.authority else "team")
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
        directory = self.directory
        if directory is None:
            return None
        items = await self.store.items(sources=list(authority.feeds))
        return directory.latest_publication(authority, topic, items, now)
