"""Signed links to decide on a held alert from a phone, without the console's login.

A page about an alert carries `/astreinte/<token>`: the alert's id and the paged person's id, signed with
the service's secret key (alerts.acks, purpose "oncall"), valid LINK_TTL_MINUTES. The page it opens (phone
sized, alerts.oncall.console) shows the alert and two buttons; a decision is taken once per link (the
link's alert, person and expiry go into the shared replay table, so a second POST from any process is refused), only
while the person is still in the rota, and is audited as theirs, "par lien signé". Opening the link (GET)
changes nothing: a mail scanner following it decides nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from alerts.acks import Opened, decode_text, encode_text, open_token, sign
from alerts.errors import CrieurError

log = logging.getLogger("crieur.oncall")

PURPOSE = "oncall"
LINK_TTL_MINUTES = 60
LINK_TTL = timedelta(minutes=LINK_TTL_MINUTES)
PATH = "/astreinte/"


def link_token(alert_id: int, person_id: str, secret: bytes, now: float) -> str:
    return sign(PURPOSE, [str(alert_id), encode_text(person_id)], secret, ttl=LINK_TTL, now=now)


def link_url(config: Any, alert_id: int, person_id: str, now: float) -> str:
    """The person's link for the alert, or "" when it cannot be made (no secret key: pages still go)."""
    try:
        token = link_token(alert_id, person_id, config.secret_key(), now)
    except (CrieurError, ValueError) as exc:
        log.warning("on-call page without a signed link: %s", exc)
        return ""
    return f"{str(config.public_url).rstrip('/')}{PATH}{token}"


@dataclass(frozen=True, slots=True)
class Link:
    """A token whose signature is right."""

    alert_id: int
    person_id: str
    opened: Opened

    @property
    def once_key(self) -> str:
        """What marks the link used: its alert, person and expiry (one link per page sent)."""
        return f"oncall-link:{self.opened.fields[0]}:{self.opened.expires}:{self.opened.fields[1]}"


def read_link(token: str, secret: bytes, now: float) -> Link | None:
    """The link a token stands for (expired or not: the page says which), or None for a forged one."""
    opened = open_token(PURPOSE, token, secret, 2, now=now)
    if opened is None or not opened.fields[0].isdigit() or len(opened.fields[0]) > 18:
        return None
    person = decode_text(opened.fields[1])
    if not person or int(opened.fields[0]) <= 0:
        return None
    return Link(int(opened.fields[0]), person, opened)
