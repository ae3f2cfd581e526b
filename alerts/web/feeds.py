"""Atom feeds and CAP 1.2 messages for the published alerts.

A CAP Update or Cancel names the message it replaces in `references` as "sender,identifier,sent", so the
identifiers and sent times here must be stable: they derive from the alert's id and creation time only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from alerts.domain import Alert, AlertStatus, Certainty, Item, MsgType, Urgency, web_link
from alerts.ingest.cap import CATEGORIES as CAP_CATEGORIES

from .site import TerritoryInfo, paris_iso

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
DEFAULT_EVENT = "Conditions de circulation"
GEOCODE_NAMES = {"departement": "INSEE_DEPARTEMENT", "commune": "INSEE_COMMUNE", "region": "INSEE_REGION"}


# Elements carry plain names under a root that declares the default namespace (xmlns="..."), which keeps
# the output free of ns0: prefixes that some CAP consumers reject.
def _a(tag: str) -> str:
    return tag


_c = _a


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = _xml_safe(text)
    return element


def _xml_safe(text: str) -> str:
    """Drop the control characters XML 1.0 cannot carry (a feed copied from elsewhere may hold some)."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)


def _utc(value: datetime | None) -> str:
    value = value or datetime.now(timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class FeedContext:
    """The facts every feed needs about this deployment."""

    def __init__(self, base_url: str, publisher: str, territories: Sequence[TerritoryInfo]):
        self.base_url = base_url.rstrip("/")
        self.publisher = publisher
        self.territories = {t.code: t for t in territories}
        host = urlsplit(self.base_url).hostname or "localhost"
        # CAP forbids spaces, commas and "<" / "&" in sender and identifier.
        self.sender = f"crieur@{host}"
        self.identifier_prefix = f"{host}.crieur.alerte."

    def source(self, alert: Alert) -> str:
        """Who issued the alert: the relayed authority, or the publisher for its own messages."""
        return alert.authority or self.publisher

    def sender_name(self, alert: Alert) -> str:
        """CAP senderName: the issuing authority, and who relays it ("Préfecture de Loir-et-Cher, relayé
        par Département de Loir-et-Cher")."""
        if alert.authority and alert.authority != self.publisher:
            return f"{alert.authority}, relayé par {self.publisher}"
        return self.publisher

    def identifier(self, alert_id: int) -> str:
        return f"{self.identifier_prefix}{alert_id}"

    def alert_page(self, alert: Alert) -> str:
        codes = alert.territories
        return f"{self.base_url}/t/{codes[0]}" if len(codes) == 1 else f"{self.base_url}/"

    def cap_url(self, alert_id: int) -> str:
        return f"{self.base_url}/alertes/{alert_id}.cap.xml"

    def names(self, codes: Iterable[str]) -> list[str]:
        return [self.territories[c].name if c in self.territories else f"Département {c}" for c in codes]


def atom_feed(
    context: FeedContext, alerts: Sequence[Alert], *, path: str, title: str, cap_index: bool = False
) -> bytes:
    """An Atom feed of alerts; with cap_index, each entry links to its CAP message (the "CAP index" that
    aggregators such as Google Public Alerts poll)."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "fr"})
    _sub(feed, _a("id"), f"{context.base_url}{path}")
    _sub(feed, _a("title"), title)
    newest = max((a.updated_at for a in alerts if a.updated_at), default=None)
    _sub(feed, _a("updated"), _utc(newest))
    _sub(feed, _a("link"), rel="self", href=f"{context.base_url}{path}", type=ATOM_MEDIA_TYPE)
    _sub(feed, _a("link"), rel="alternate", href=f"{context.base_url}/", type="text/html")
    author = _sub(feed, _a("author"))
    _sub(author, _a("name"), context.publisher)
    _sub(feed, _a("generator"), "Crieur")
    for alert in alerts:
        assert alert.id is not None
        entry = _sub(feed, _a("entry"))
        _sub(entry, _a("id"), f"{context.base_url}/alertes/{alert.id}")
        _sub(entry, _a("title"), _entry_title(alert))
        _sub(entry, _a("updated"), _utc(alert.updated_at))
        _sub(entry, _a("published"), _utc(alert.created_at))
        entry_author = _sub(entry, _a("author"))
        _sub(entry_author, _a("name"), context.source(alert))
        _sub(entry, _a("summary"), _summary(alert), type="text")
        _sub(entry, _a("category"), term=alert.severity.cap, label=f"Sévérité {alert.severity.cap}")
        for code in alert.territories:
            _sub(entry, _a("category"), term=f"territoire-{code}", label=context.names([code])[0])
        if cap_index:
            _sub(entry, _a("link"), rel="alternate", href=context.cap_url(alert.id), type=CAP_MEDIA_TYPE)
        else:
            _sub(
                entry,
                _a("link"),
                rel="alternate",
                href=web_link(alert.link) or context.alert_page(alert),
                type="text/html",
            )
            _sub(entry, _a("link"), rel="related", href=context.cap_url(alert.id), type=CAP_MEDIA_TYPE)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode").encode()


def _entry_title(alert: Alert) -> str:
    prefix = {MsgType.UPDATE: "Mise à jour : ", MsgType.CANCEL: ""}.get(alert.msg_type, "")
    return prefix + (alert.title or alert.text[:80])


def _summary(alert: Alert) -> str:
    lines = [alert.text]
    if alert.roads:
        lines.append("Routes : " + ", ".join(r.label for r in alert.roads))
    if alert.status is AlertStatus.ENDED and alert.msg_type is not MsgType.CANCEL:
        lines.append("Alerte terminée.")
    return "\n".join(line for line in lines if line)


def cap_alert(context: FeedContext, alert: Alert, superseded: Alert | None = None, item: Item | None = None) -> bytes:
    """One CAP 1.2 <alert> for an alert. `superseded` is the alert it updates or ends (alert.supersedes),
    `item` the source item it came from, whose urgency, certainty, category and event it keeps."""
    assert alert.id is not None and alert.created_at is not None
    root = ET.Element("alert", {"xmlns": CAP_NS})
    _sub(root, _c("identifier"), context.identifier(alert.id))
    _sub(root, _c("sender"), context.sender)
    _sub(root, _c("sent"), paris_iso(alert.created_at))
    _sub(root, _c("status"), "Exercise" if alert.exercise else "Actual")  # an exercise stays one (alerts.exercise)
    _sub(root, _c("msgType"), alert.msg_type.value)
    _sub(root, _c("scope"), "Public")
    if superseded is not None and superseded.id is not None and superseded.created_at is not None:
        reference = ",".join((context.sender, context.identifier(superseded.id), paris_iso(superseded.created_at)))
        _sub(root, _c("references"), reference)
    info = _sub(root, _c("info"))
    _sub(info, _c("language"), "fr-FR")
    category = item.category if item is not None and item.category in CAP_CATEGORIES else "Transport"
    _sub(info, _c("category"), category)
    _sub(info, _c("event"), (item.event if item is not None and item.event else DEFAULT_EVENT))
    if alert.msg_type is MsgType.CANCEL:
        _sub(info, _c("responseType"), "AllClear")
    urgency = item.urgency if item is not None else Urgency.UNKNOWN
    certainty = item.certainty if item is not None else Certainty.UNKNOWN
    if alert.msg_type is MsgType.CANCEL:
        urgency = Urgency.PAST
    _sub(info, _c("urgency"), urgency.value)
    _sub(info, _c("severity"), alert.severity.cap)
    _sub(info, _c("certainty"), certainty.value)
    if item is not None and item.onset is not None:
        _sub(info, _c("onset"), paris_iso(item.onset))
    if alert.expires is not None:
        _sub(info, _c("expires"), paris_iso(alert.expires))
    _sub(info, _c("senderName"), context.sender_name(alert))
    _sub(info, _c("headline"), (alert.title or alert.text)[:160])
    _sub(info, _c("description"), _summary(alert))
    _sub(info, _c("web"), web_link(alert.link) or context.alert_page(alert))
    area = _sub(info, _c("area"))
    description = ", ".join(context.names(alert.territories))
    if alert.roads:
        description += " — " + ", ".join(r.label for r in alert.roads)
    _sub(area, _c("areaDesc"), description or "France")
    for code in alert.territories:
        _geocode(area, "INSEE_DEPARTEMENT", code)
    for place in alert.areas:
        name = GEOCODE_NAMES.get(place.kind, place.kind)
        if not (name == "INSEE_DEPARTEMENT" and place.code in alert.territories):
            _geocode(area, name, place.code)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode").encode()


def _geocode(area: ET.Element, name: str, value: str) -> None:
    geocode = _sub(area, _c("geocode"))
    _sub(geocode, _c("valueName"), name)
    _sub(geocode, _c("value"), value)


async def source_item(crieur: Any, alert: Alert) -> Item | None:
    """The item an alert was made from, if it came from a source and is still stored."""
    if not alert.item_key or ":" not in alert.item_key:
        return None
    source, external_id = alert.item_key.split(":", 1)
    try:
        return await crieur.store.item(source, external_id)
    except Exception:  # a damaged stored item must not take the CAP message down with it
        return None
