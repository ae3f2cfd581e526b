"""The vocabulary every part of Crieur shares.

An *item* is what a source published, normalised (one RSS entry, one CAP alert, one DATEX II situation
record, one GeoJSON feature, one vigilance colour). Rules turn items into *alerts*: what the département
says, on which territories and channels. Each alert fans out into *deliveries*, one per channel and
recipient.

Severity, urgency and certainty use the CAP 1.2 vocabulary; the other formats map onto it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

WEB_SCHEMES = ("http", "https")


def web_link(url: str | None) -> str:
    """`url` if a citizen may safely follow it (an absolute http or https URL with a host), else "".

    Feeds are not trusted: a `javascript:` or `data:` link would run in a citizen's browser from the
    public page, and would be relayed by SMS, posts, Atom, CAP and the API. Items and alerts pass their
    link through this at construction (so at ingest and when read back from the database); every place
    that writes a link out checks it again with this same function."""
    text = str(url or "").strip()
    if not text or any(ord(c) < 0x21 or c == "\x7f" for c in text):
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        return ""
    return text


class Severity(enum.IntEnum):
    """CAP 1.2 severity, ordered so that rules can say "at least Moderate"."""

    UNKNOWN = 0
    MINOR = 1
    MODERATE = 2
    SEVERE = 3
    EXTREME = 4

    @classmethod
    def parse(cls, value: str | None) -> "Severity":
        """Read a CAP severity word ("Severe", "severe"); anything else is UNKNOWN."""
        if not value:
            return cls.UNKNOWN
        return cls.__members__.get(value.strip().upper(), cls.UNKNOWN)

    @property
    def cap(self) -> str:
        return self.name.capitalize()


class Urgency(str, enum.Enum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: str | None) -> "Urgency":
        for member in cls:
            if value and member.value.lower() == value.strip().lower():
                return member
        return cls.UNKNOWN


class Certainty(str, enum.Enum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: str | None) -> "Certainty":
        for member in cls:
            if value and member.value.lower() == value.strip().lower():
                return member
        return cls.UNKNOWN


class MsgType(str, enum.Enum):
    """CAP msgType: a new alert, a newer version of one, or its withdrawal."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


@dataclass(frozen=True, slots=True, order=True)
class Road:
    """A road reference normalised to (type, number): D for départementales, N nationales, A autoroutes,
    C/VC for voies communales. The number keeps letter suffixes ("957A")."""

    kind: str
    number: str

    def __str__(self) -> str:
        return f"{self.kind}{self.number}"

    @property
    def label(self) -> str:
        """How French road signs and bulletins write it: "RD 957", "RN 10", "A 10"."""
        prefix = {"D": "RD", "N": "RN"}.get(self.kind, self.kind)
        return f"{prefix} {self.number}"


@dataclass(frozen=True, slots=True, order=True)
class Area:
    """A place an item concerns.

    kind is one of: "departement" (code "41", "2A"), "commune" (INSEE code "41018"), "region" (INSEE
    region code), or a CAP geocode value name such as "NUTS3" (code "FRB05"). Rules resolve areas to
    territories.
    """

    kind: str
    code: str


@dataclass(slots=True)
class Item:
    """One normalised publication from a source."""

    source: str
    external_id: str
    version: str = ""
    msg_type: MsgType = MsgType.ALERT
    references: tuple[str, ...] = ()
    sent: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    title: str = ""
    text: str = ""
    language: str = "fr"
    category: str = ""
    event: str = ""
    severity: Severity = Severity.UNKNOWN
    urgency: Urgency = Urgency.UNKNOWN
    certainty: Certainty = Certainty.UNKNOWN
    areas: tuple[Area, ...] = ()
    roads: tuple[Road, ...] = ()
    geometry: dict[str, Any] | None = None
    link: str = ""
    raw: str = ""
    # Who issued it ("Préfecture de Loir-et-Cher", "Météo-France", a DiaLog arrêté's commune): citizens are
    # always told which authority a relayed message comes from.
    authority: str = ""
    # Free-form facts a format carries that rules may test (DATEX record type, vigilance colour...).
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.link = web_link(self.link)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def withdrawn(self) -> bool:
        return self.msg_type is MsgType.CANCEL

    def is_current(self, now: datetime) -> bool:
        """Neither withdrawn nor expired at `now`."""
        if self.withdrawn:
            return False
        return self.expires is None or self.expires > now


class AlertStatus(str, enum.Enum):
    PENDING_APPROVAL = "pending_approval"
    SCHEDULED = "scheduled"  # approved or composed, waits for its publish_at (alerts.schedule)
    PUBLISHED = "published"
    REJECTED = "rejected"
    ENDED = "ended"  # cancelled by its source or ended by a CM
    EXPIRED = "expired"


@dataclass(slots=True)
class Alert:
    """What the département says: produced by a rule from an item, or composed by a CM."""

    title: str
    text: str
    territories: tuple[str, ...]
    hashtags: tuple[str, ...]
    channels: tuple[str, ...]
    severity: Severity = Severity.UNKNOWN
    status: AlertStatus = AlertStatus.PUBLISHED
    msg_type: MsgType = MsgType.ALERT
    rule: str = ""
    item_key: str = ""
    link: str = ""
    roads: tuple[Road, ...] = ()
    areas: tuple[Area, ...] = ()
    # The item's GeoJSON geometry (a closure's point or line, a zone's polygon): reaches the communes it
    # touches (alerts/places.py).
    geometry: dict[str, Any] | None = None
    templates: dict[str, str] = field(default_factory=dict)  # channel name -> template name
    signature: str = ""
    sms_gsm7: bool = False  # render SMS in GSM-7 characters (one 160-character segment, not 70)
    # The authority whose publication this alert relays ("Préfecture de Loir-et-Cher"); "" for a message
    # the département writes itself. Every output names it.
    authority: str = ""
    expires: datetime | None = None
    supersedes: int | None = None  # id of the alert this one updates or ends
    exercise: bool = False  # an exercise (CAP status Exercise/Test): exercise channels only (alerts.exercise)
    publish_at: datetime | None = None  # scheduled: goes out then, not before (alerts.schedule)
    end_at: datetime | None = None  # its "fin d'alerte" goes out then
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self.link = web_link(self.link)
