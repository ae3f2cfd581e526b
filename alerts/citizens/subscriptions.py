"""Subscribing on the web, with a double opt-in, and unsubscribing from an e-mail in one click.

A citizen chooses a territory, and optionally a commune and roads, read as the same words an SMS would
carry ("ROUTE41 VENDOME D957": `Citizens.resolve_places`), then gives:
- a mobile number: a 6-digit code goes out by SMS through the outbox; typed back on the page within
  CODE_TTL and MAX_ATTEMPTS tries, it confirms;
- or an e-mail address: a signed link goes out by e-mail; its page's button confirms (a GET confirms
  nothing: mail scanners open links).
Confirming subscribes the address and records the consent (time asked and given, text and its version,
medium, IP address) for RGPD. Every alert e-mail carries a signed, non-expiring one-click unsubscribe link
(RFC 8058): a POST to it unsubscribes without login or CSRF token, the token being the authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from channels.base import Channel

from .. import replies
from ..acks import decode_text, encode_text, sign_token, verify_token
from ..keywords import parse_place_request
from ..phones import InvalidPhone, mask, normalise_phone
from ..shared_limits import Rate, SharedRate
from ..storage import NewDelivery
from .base import NO_ALERT, Part

log = logging.getLogger("crieur.citizens")

CODE_TTL = timedelta(minutes=15)
LINK_TTL = timedelta(hours=48)
UNSUBSCRIBE_TTL = timedelta(days=3650)  # an unsubscribe link must work in any old mail
MAX_ATTEMPTS = 5
CONSENT_VERSION = "2026-12-web-1"
PER_ADDRESS = Rate.per(3, 3600.0)  # confirmations sent to one number or mailbox
PER_CLIENT = Rate.per(10, 3600.0)  # subscriptions asked from one client address
_EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+")
_ROAD_WORDS = re.compile(r"[\w ,;-]{0,80}")


def consent_text(authority: str) -> str:
    """What the citizen agrees to (its version is CONSENT_VERSION: change both together)."""
    return (
        f"J'accepte de recevoir les alertes routières de {authority} pour les lieux choisis. "
        "Mon numéro ou mon adresse ne sert qu'à cela ; je peux me désabonner à tout moment "
        "(STOP par SMS, lien dans chaque e-mail)."
    )


@dataclass
class Outcome:
    """What a step of the subscription did: `errors` by form field, or `message` and, for a pending
    phone subscription, the signed `token` of its code page."""

    ok: bool
    message: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    token: str = ""
    labels: list[str] = field(default_factory=list)
    medium: str = ""


class WebSubscriptions(Part):
    def __init__(self, desk: Any):
        super().__init__(desk.crieur)
        self.desk = desk

    def consent(self) -> str:
        return consent_text(self.config.name)

    # ------------------------------------------------------------------------------- links

    def _secret(self) -> bytes:
        return self.config.secret_key()

    def _url(self, path: str) -> str:
        return f"{self.config.public_url.rstrip('/')}{path}"

    def unsubscribe_url(self, address: str) -> str:
        token = sign_token("unsubscribe", encode_text(address), self._secret(), ttl=UNSUBSCRIBE_TTL)
        return self._url(f"/abonnement/desabonner?t={token}")

    def confirm_url(self, pending_id: int) -> str:
        return self._url(
            f"/abonnement/confirmer?t={sign_token('confirm', str(pending_id), self._secret(), ttl=LINK_TTL)}"
        )

    def attach(self, channels: Mapping[str, Channel]) -> None:
        """Give every e-mail channel with subscribers its unsubscribe links."""
        for channel in channels.values():
            inner = getattr(channel, "inner", channel)
            if getattr(inner, "medium", "") == "email" and hasattr(inner, "unsubscribe_link"):
                inner.unsubscribe_link = self.unsubscribe_url

    # ------------------------------------------------------------------------------ asking

    async def ask(
        self, territory: str, contact: str, commune: str = "", roads: str = "", *, consent: bool, client: str = ""
    ) -> Outcome:
        """A subscription asked on the form: checked, stored as pending, and its code or link sent."""
        errors: dict[str, str] = {}
        contact = contact.strip()
        medium, address = "", ""
        if "@" in contact:
            if len(contact) <= 254 and _EMAIL.fullmatch(contact):
                local, _, domain = contact.rpartition("@")
                medium, address = "email", f"{local}@{domain.lower()}"  # a domain has no case; a mailbox may
            else:
                errors["contact"] = "Adresse e-mail non reconnue (exemple : prenom.nom@exemple.fr)."
        elif contact:
            try:
                medium, address = "sms", normalise_phone(contact, mobile_only=True)
            except InvalidPhone:
                errors["contact"] = "Numéro de mobile non reconnu (exemple : 06 12 34 56 78)."
        else:
            errors["contact"] = "Indiquez un numéro de mobile ou une adresse e-mail."
        if medium and not (self.config.sms_channel if medium == "sms" else self.config.email_channel):
            errors["contact"] = (
                "L'abonnement par SMS n'est pas proposé."
                if medium == "sms"
                else "L'abonnement par e-mail n'est pas proposé."
            )
        if not consent:
            errors["consent"] = "Cochez la case pour accepter de recevoir les alertes."
        if not _ROAD_WORDS.fullmatch(roads) or not _ROAD_WORDS.fullmatch(commune):
            errors["places"] = "Lieux non reconnus : écrivez un nom de commune et des routes (exemple : D957 N10)."
        codes, _ = self.desk.codes_and_names()
        if territory not in codes:
            errors["territory"] = "Territoire inconnu."
        places = None
        if "places" not in errors and "territory" not in errors:
            places = self._places(territory, commune, roads)
            if isinstance(places, str):
                errors["places"] = places
        if errors or places is None or isinstance(places, str):
            return Outcome(False, errors=errors)
        if medium == "sms" and await self.store.opted_out(address):
            # the operator blocks what we send to a number that sent STOP: only its own SMS lifts it
            keyword = next(
                (tag.lstrip("#").upper() for code, _, tag in self.desk.territories() if code == territory and tag), ""
            )
            return Outcome(
                False,
                errors={
                    "contact": "Ce numéro ne reçoit plus nos SMS (STOP) : pour vous réabonner, "
                    f"envoyez {keyword or f'ROUTE{territory}'} par SMS à notre numéro."
                },
            )
        shared = SharedRate(self.store.db)
        if not await shared.allow(f"subscribe:client:{client}", PER_CLIENT) or not await shared.allow(
            f"subscribe:address:{address}", PER_ADDRESS
        ):
            return Outcome(False, errors={"contact": "Trop de demandes : merci de réessayer dans une heure."})
        now = time.time()
        await self.store.prune_pending(now - 86400.0)  # a day after expiry: a late second click says "expired"
        code = f"{secrets.randbelow(10**6):06d}"
        pending_id = await self.store.add_pending(
            medium=medium,
            address=address,
            places=places[0],
            labels=places[1],
            consent_version=CONSENT_VERSION,
            consent_text=consent_text(self.config.name),
            ip=client,
            code_hash=self._hash(address, code) if medium == "sms" else "",
            created_at=now,
            expires_at=now + (CODE_TTL if medium == "sms" else LINK_TTL).total_seconds(),
        )
        if medium == "sms":
            await self._send_code(pending_id, address, code)
            token = sign_token("code", str(pending_id), self._secret(), ttl=CODE_TTL)
            log.info("web subscription %s: code sent to %s", pending_id, mask(address))
            return Outcome(True, token=token, labels=places[1], medium=medium)
        await self._send_link(pending_id, address, places[1])
        log.info("web subscription %s: confirmation link sent by e-mail", pending_id)
        return Outcome(
            True,
            message=f"Un lien de confirmation a été envoyé à {address}. Il est valable 48 heures.",
            labels=places[1],
            medium=medium,
        )

    def _places(self, territory: str, commune: str, roads: str) -> tuple[list[str], list[str]] | str:
        """The place keys the form's choice names, read as the SMS "ROUTE41 <commune> <roads>" is."""
        codes, names = self.desk.codes_and_names()
        words = f"ROUTE{territory} {commune} {roads}".replace(",", " ").replace(";", " ")
        request = parse_place_request(words)
        if request is None:  # the whole territory
            name = names.get(territory, "")
            return [territory], [f"tout le territoire {name} ({territory})" if name else f"tout le {territory}"]
        found = self.desk.resolve_places(request, codes)
        if found is None:
            return f"Commune « {commune.strip()} » introuvable dans le territoire {territory}."
        if isinstance(found, str):
            return found
        return found.keys, found.labels

    def _hash(self, address: str, code: str) -> str:
        """The code as kept: keyed with the secret, so that the table alone does not give it away."""
        return hmac.new(self._secret(), f"code:{address}:{code}".encode(), hashlib.sha256).hexdigest()

    async def _send_code(self, pending_id: int, phone: str, code: str) -> None:
        channel = self.config.sms_channel
        text = (
            f"{self.config.name} : votre code de confirmation est {code}. Il expire dans "
            f"{int(CODE_TTL.total_seconds() // 60)} minutes. Si vous n'avez rien demandé, ignorez ce message."
        )
        await self.store.enqueue(
            [
                NewDelivery(
                    key=f"subscription:{pending_id}:{channel}:{phone}",
                    alert_id=NO_ALERT,
                    channel=channel,
                    recipient=phone,
                    kind="Confirmation",
                    text=text,
                    priority=4,  # a citizen is waiting on the page
                )
            ]
        )

    async def _send_link(self, pending_id: int, address: str, labels: list[str]) -> None:
        channel = self.config.email_channel
        body = (
            f"Bonjour,\n\nVous avez demandé à recevoir par e-mail les alertes routières de {self.config.name} "
            f"pour : {', '.join(labels)}.\n\nPour confirmer, ouvrez ce lien et validez (valable 48 heures) :\n"
            f"{self.confirm_url(pending_id)}\n\nSi vous n'avez rien demandé, ignorez ce message : "
            "vous ne recevrez rien.\n\n" + self.config.name
        )
        await self.store.enqueue(
            [
                NewDelivery(
                    key=f"subscription:{pending_id}:{channel}:{address}",
                    alert_id=NO_ALERT,
                    channel=channel,
                    recipient=address,
                    kind="Confirmation",
                    subject=f"Confirmez votre abonnement aux alertes routières — {self.config.name}",
                    text=body,
                    priority=4,
                )
            ]
        )

    # ---------------------------------------------------------------------------- confirming

    async def code_page(self, token: str) -> dict[str, Any] | None:
        """The pending phone subscription a code page's token names, or None (forged, expired)."""
        subject = verify_token("code", token, self._secret())
        if subject is None:
            return None
        return await self.store.pending(int(subject))

    async def confirm_code(self, token: str, code: str) -> Outcome:
        pending = await self.code_page(token)
        if pending is None or pending["medium"] != "sms":
            return Outcome(False, errors={"code": "Ce lien a expiré : recommencez l'abonnement."})
        if pending["confirmed_at"] is not None:
            return self._confirmed(pending, new=False)
        if pending["attempts"] >= MAX_ATTEMPTS or pending["expires_at"] <= time.time():
            return Outcome(False, errors={"code": "Ce code a expiré ou a été trop souvent mal saisi : recommencez."})
        code = "".join(code.split())
        if not hmac.compare_digest(self._hash(str(pending["address"]), code), str(pending["code_hash"])):
            attempts = await self.store.wrong_code(int(pending["id"]))
            left = MAX_ATTEMPTS - attempts
            if left <= 0:
                return Outcome(False, errors={"code": "Code erroné, trop d'essais : recommencez l'abonnement."})
            return Outcome(False, errors={"code": f"Code erroné : encore {left} essai{'s' if left > 1 else ''}."})
        return await self._confirm(pending)

    async def link_page(self, token: str) -> dict[str, Any] | None:
        subject = verify_token("confirm", token, self._secret())
        if subject is None:
            return None
        pending = await self.store.pending(int(subject))
        return pending if pending is not None and pending["medium"] == "email" else None

    async def confirm_link(self, token: str) -> Outcome:
        pending = await self.link_page(token)
        if pending is None:
            return Outcome(False, errors={"link": "Ce lien de confirmation est invalide ou a expiré : recommencez."})
        if pending["confirmed_at"] is not None:
            return self._confirmed(pending, new=False)
        return await self._confirm(pending)

    async def _confirm(self, pending: Mapping[str, Any]) -> Outcome:
        added = await self.store.confirm_pending(int(pending["id"]), time.time())
        log.info("web subscription %s confirmed (%s)", pending["id"], pending["medium"])
        return self._confirmed(pending, new=added is not None)

    @staticmethod
    def _confirmed(pending: Mapping[str, Any], new: bool) -> Outcome:
        lead = "Abonnement confirmé" if new else "Cet abonnement était déjà confirmé"
        whole = all(":" not in key for key in pending["places"])
        return Outcome(
            True,
            message=f"{lead} : {replies.audience_sentence(pending['labels'], whole)}",
            labels=list(pending["labels"]),
            medium=str(pending["medium"]),
        )

    # ------------------------------------------------------------------------- unsubscribing

    def unsubscribe_address(self, token: str) -> str | None:
        subject = verify_token("unsubscribe", token, self._secret())
        return decode_text(subject) if subject is not None else None

    async def unsubscribe(self, token: str) -> str | None:
        """Unsubscribe the address a valid token names (idempotent); None for a bad token."""
        address = self.unsubscribe_address(token)
        if address is None:
            return None
        removed = await self.store.unsubscribe(address)
        log.info("one-click unsubscribe: %d subscriptions removed", removed)
        return address
