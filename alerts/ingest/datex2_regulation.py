"""DATEX II v3 traffic regulations (TrafficRegulationPublication), as DiaLog publishes the French
arrêtés de circulation: heavy-goods bans, weight limits, closures decided by a mayor, a président de
département or a préfet.

One Item per trafficRegulationOrder (one arrêté): what is restricted (regulation type, vehicle types,
weights, exemptions), where (road names, INSEE codes when given), when (validity, recurring days and
hours) and decided by whom (issuingAuthority). Its text is a French sentence per distinct restriction.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from ..domain import Area, Item, MsgType
from ..french import WEEKDAYS, clock_fr, date_fr
from ..roads import parse_roads
from .common import commune_area, dedupe, departement_area, origin, parse_datetime
from .datex2_fr import REGULATION_TYPES, VEHICLE_TYPES, VEHICLE_USAGES, phrase, tonnes
from .errors import RecordError, skip_record
from .xml import child, children, descendants, first_text, local, serialise, text, xsi_type

_ENDED_STATUSES = {"cancelled", "revoked", "suspended", "expired", "notApplicable", "withdrawn"}
_DAYS = {
    name: index
    for index, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
}
_INSEE_FIELDS = {"insee", "inseecode", "codeinsee", "citycode", "communecode", "cityinseecode"}
_HGV_TYPES = {"heavyGoodsVehicle", "lorry", "heavyLorry", "articulatedVehicle", "largeGoodsVehicle"}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})")


def is_regulation_publication(root: ET.Element) -> bool:
    return xsi_type(root) == "TrafficRegulationPublication" or any(
        True for _ in descendants(root, "trafficRegulationOrder")
    )


def parse_regulations(spec: Any, root: ET.Element, now: datetime) -> list[Item]:
    sent = record_date(root, "publicationTime")
    creator = first_text(child(root, "publicationCreator") or root, "nationalIdentifier")
    items: list[Item] = []
    for index, order in enumerate(descendants(root, "trafficRegulationOrder"), start=1):
        try:
            items.append(_order_item(spec, order, sent, creator, now))
        except RecordError as exc:
            skip_record(spec.name, f"trafficRegulationOrder {order.get('id') or index!r}", exc)
    return items


def record_date(element: ET.Element, name: str) -> datetime | None:
    """The first `name` element's date below `element` (None when absent); RecordError naming the field."""
    value = first_text(element, name)
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise RecordError(f"field {name!r}: {exc}") from None


def _values(element: ET.Element | None) -> list[str]:
    """The texts of a multilingual string (com:values/com:value), French first."""
    if element is None:
        return []
    nodes = [v for v in descendants(element, "value") if v.text and v.text.strip()]
    french = [v for v in nodes if (v.get("lang") or "fr").lower().startswith("fr")]
    return [v.text.strip() for v in (french or nodes) if v.text]


class _Restriction:
    """What one trafficRegulation says, ready to be written in French."""

    def __init__(self, regulation: ET.Element) -> None:
        kind = child(regulation, "typeOfRegulation")
        self.kind_type = xsi_type(kind) if kind is not None else ""
        self.kind_value = (
            first_text(kind, "accessRestrictionType", "speedLimitType", "restrictionType", "typeOfRegulation")
            if kind is not None
            else ""
        )
        self.vehicles: list[str] = []
        self.exempt: list[str] = []
        self.weights: list[str] = []
        self.places: list[str] = []
        self.insee: list[str] = []
        self.periods: list[str] = []
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.hgv = False
        for condition in regulation.iter():
            ctype = xsi_type(condition)
            if ctype == "VehicleCondition":
                self._vehicle(condition)
            elif ctype == "LocationCondition":
                self._location(condition)
            elif ctype == "ValidityCondition":
                self._validity(condition)

    def _vehicle(self, condition: ET.Element) -> None:
        negate = text(condition, "negate").lower() == "true"
        names: list[str] = []
        for node in descendants(condition, "vehicleType"):
            value = (node.text or "").strip()
            if value:
                names.append(phrase(VEHICLE_TYPES, value, "véhicules d'une catégorie particulière"))
                self.hgv = self.hgv or (value in _HGV_TYPES and not negate)
        for node in descendants(condition, "vehicleUsage"):
            value = (node.text or "").strip()
            if value:
                names.append(phrase(VEHICLE_USAGES, value, "véhicules d'un usage particulier"))
        for node in descendants(condition, "otherVehicleType"):
            if node.text and node.text.strip():
                names.append(node.text.strip())
        for weight in descendants(condition, "grossVehicleWeight"):
            if weight.text and weight.text.strip():
                # DiaLog writes "vehicles over 7.5 t" with comparisonOperator lessThanOrEqualTo: the operator
                # is not reliable, so the threshold is stated without a direction (the arrêté's own
                # description, the item's title, says which side is banned).
                self.weights.append(tonnes(weight.text.strip()))
        for name in names:
            (self.exempt if negate else self.vehicles).append(name)

    def _location(self, condition: ET.Element) -> None:
        for node in descendants(condition, "roadName"):
            values = _values(node) or ([node.text.strip()] if node.text and node.text.strip() else [])
            self.places.extend(values)
        for node in condition.iter():
            if local(node.tag).lower() in _INSEE_FIELDS and node.text and commune_area(node.text):
                self.insee.append(node.text.strip())

    def _validity(self, condition: ET.Element) -> None:
        self.start = self.start or record_date(condition, "overallStartTime")
        self.end = self.end or record_date(condition, "overallEndTime")
        for period in descendants(condition, "validPeriod"):
            self.periods.append(_period_fr(period))

    def what(self) -> str:
        base = phrase(REGULATION_TYPES, self.kind_value or self.kind_type, "Circulation réglementée")
        vehicles = ", ".join(dict.fromkeys(self.vehicles))
        if vehicles:
            base += f" aux {vehicles}" if not vehicles.startswith(("les ", "des ")) else f" {vehicles}"
            if self.weights:
                base += f" (seuil de poids : {', '.join(dict.fromkeys(self.weights))})"
        elif self.weights:
            base += f" aux véhicules selon leur poids (seuil : {', '.join(dict.fromkeys(self.weights))})"
        if self.exempt:
            base += f", sauf {', '.join(dict.fromkeys(self.exempt))}"
        return base

    def when(self) -> str:
        return " ; ".join(p for p in dict.fromkeys(self.periods) if p)


def _period_fr(period: ET.Element) -> str:
    days = sorted(
        {_DAYS[(d.text or "").strip()] for d in descendants(period, "applicableDay") if (d.text or "").strip() in _DAYS}
    )
    hours = ""
    start, end = first_text(period, "startTimeOfPeriod"), first_text(period, "endTimeOfPeriod")
    if (m1 := _TIME.match(start)) and (m2 := _TIME.match(end)):
        # times of day as the arrêté states them (DiaLog labels local hours "+00:00")
        hours = f"de {clock_fr(int(m1[1]), int(m1[2]))} à {clock_fr(int(m2[1]), int(m2[2]))}"
    if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        day_text = f"du {WEEKDAYS[days[0]]} au {WEEKDAYS[days[-1]]}"
    elif len(days) == 1:
        day_text = f"le {WEEKDAYS[days[0]]}"
    elif days:
        names = [WEEKDAYS[d] + "s" for d in days]
        day_text = "les " + ", ".join(names[:-1]) + " et " + names[-1]
    else:
        day_text = ""
    return " ".join(part for part in (day_text, hours) if part)


def _order_item(spec: Any, order: ET.Element, sent: datetime | None, creator: str, now: datetime) -> Item:
    order_id = (order.get("id") or "").strip()
    if not order_id:
        raise RecordError("attribute 'id' is missing")
    version = (order.get("version") or "").strip()
    description = " ".join(_values(child(order, "description")))
    authority = ", ".join(_values(child(order, "issuingAuthority")))
    validity = child(order, "validityByOrder")
    onset = record_date(validity, "overallStartTime") if validity is not None else None
    expires = record_date(validity, "overallEndTime") if validity is not None else None
    status = text(order, "status")
    restrictions = [
        _Restriction(r) for r in children(order, "trafficRegulation") if text(r, "status") not in _ENDED_STATUSES
    ]
    if not restrictions and not description:
        raise RecordError("neither a description nor an active trafficRegulation")
    # one sentence per distinct (what, when), listing every place it applies to
    grouped: dict[tuple[str, str], list[str]] = {}
    for restriction in restrictions:
        grouped.setdefault((restriction.what(), restriction.when()), []).extend(restriction.places)
    sentences = []
    for (what, when), places in grouped.items():
        sentence = what
        if places:
            sentence += " : " + ", ".join(dict.fromkeys(places))
        if when:
            sentence += f", {when}"
        sentences.append(sentence + ".")
    if onset and expires:
        sentences.append(f"Du {date_fr(onset)} au {date_fr(expires)}.")
    elif onset and onset > now:
        sentences.append(f"À partir du {date_fr(onset)}.")
    elif expires:
        sentences.append(f"Jusqu'au {date_fr(expires)}.")
    regulation_id = text(order, "regulationId")
    if authority:
        sentences.append(f"Arrêté pris par : {authority}.")
    ended = status in _ENDED_STATUSES or (expires is not None and expires <= now)
    if ended:
        msg_type = MsgType.CANCEL
    elif version.isdigit() and int(version) > 1:
        msg_type = MsgType.UPDATE
    else:
        msg_type = MsgType.ALERT
    places = [p for r in restrictions for p in r.places]
    insee = [c for r in restrictions for c in r.insee]
    areas: list[Area] = []
    for code in insee:
        if commune := commune_area(code):
            areas.append(commune)
            if dep := departement_area(code[:2] if not code.startswith("97") else code[:3]):
                areas.append(dep)
    if dep := departement_area(str(spec.options.get("departement") or "")):
        areas.append(dep)
    hgv = any(r.hgv for r in restrictions)
    public_url = first_text(order, "publicUrl")
    attributes: dict[str, Any] = {
        "record_type": "TrafficRegulationOrder",
        "regulation_id": regulation_id,
        "order_status": status,
        "regulation_types": list(dict.fromkeys(r.kind_value or r.kind_type for r in restrictions)),
        "vehicle_types": list(dict.fromkeys(v for r in restrictions for v in r.vehicles)),
        "exempt": list(dict.fromkeys(v for r in restrictions for v in r.exempt)),
        "weights": list(dict.fromkeys(w for r in restrictions for w in r.weights)),
        "places": list(dict.fromkeys(places)),
        "issuing_authority": authority,
    }
    if creator:
        attributes["publication_creator"] = creator
    if hgv:
        attributes["hgv"] = True
    first_sentence = sentences[0] if sentences else ""
    return Item(
        source=spec.name,
        external_id=order_id,
        version=version or (sent.isoformat() if sent else ""),
        msg_type=msg_type,
        sent=sent,
        onset=onset,
        expires=expires,
        title=description or first_sentence.rstrip("."),
        text="\n".join(sentences),
        language="fr",
        category="Transport",
        event="restriction-poids-lourds" if hgv else "restriction-circulation",
        areas=dedupe(areas),
        roads=dedupe(list(parse_roads(description)) + [r for p in places for r in parse_roads(p)]),
        link=public_url,
        raw=serialise(order),
        attributes=attributes,
        authority=origin(spec, authority, creator),
    )
