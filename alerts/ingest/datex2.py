"""DATEX II situation publications, v2 (d2LogicalModel / payloadPublication xsi:type
SituationPublication) and v3 (situationPublication, namespace http://datex2.eu/schema/3/situation,
possibly inside a messageContainer). One Item per situationRecord.

Elements are found by local name anywhere inside a record, which covers the location variants
(Linear, tpeg, linearWithinLinearElement, SingleRoadLinearLocation...) of both versions.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from ..domain import Certainty, Item, MsgType, Road, Severity
from ..roads import normalise_road, parse_roads
from .common import dedupe, now_utc, parse_datetime
from .errors import ParseError, RecordError, skip_record
from .xml import children, descendants, first_text, local, parse_xml, serialise, text, xsi_type

SEVERITIES = {"highest": Severity.EXTREME, "high": Severity.SEVERE, "medium": Severity.MODERATE,
              "low": Severity.MINOR, "lowest": Severity.MINOR}
_CERTAINTIES = {"certain": Certainty.OBSERVED, "probable": Certainty.LIKELY, "riskOf": Certainty.POSSIBLE,
                "improbable": Certainty.UNLIKELY}
_WEATHER_TYPES = {"PoorEnvironmentConditions", "WeatherRelatedRoadConditions", "NonWeatherRelatedRoadConditions"}
_WINTER_WORDS = re.compile(r"snow|ice|icy|frost|slush|freez|hail|blizzard|winter", re.IGNORECASE)
_CLOSED = re.compile(r"closed|closure|blocked", re.IGNORECASE)
_HGV_VEHICLES = {"lorry", "heavyLorry", "heavyGoodsVehicle", "articulatedVehicle", "trailer",
                 "vehicleWithTrailer", "goodsVehicle", "largeGoodsVehicle"}
# elements that name the situation's kind inside a record, tried in this order
_TYPE_FIELDS = ("roadOrCarriagewayOrLaneManagementType", "weatherRelatedRoadConditionType",
                "poorEnvironmentType", "winterEquipmentManagementType", "generalInstructionToRoadUsersType",
                "generalNetworkManagementType", "networkManagementType", "roadMaintenanceType",
                "obstructionType", "accidentType", "nonWeatherRelatedRoadConditionType")
# situationRecord xsi:types of DATEX II v2.x and v3 (concrete classes), as attributes["record_type"] carries them
RECORD_TYPES = (
    "AbnormalTraffic", "Accident", "AnimalPresenceObstruction", "AuthorityOperation", "ConstructionWorks",
    "DisturbanceActivity", "EnvironmentalObstruction", "EquipmentOrSystemFault",
    "GeneralInstructionOrMessageToRoadUsers", "GeneralNetworkManagement", "GeneralObstruction",
    "InfrastructureDamageObstruction", "MaintenanceWorks", "NonWeatherRelatedRoadConditions",
    "PoorEnvironmentConditions", "PublicEvent", "ReroutingManagement", "RoadOperatorServiceDisruption",
    "RoadOrCarriagewayOrLaneManagement", "RoadsideAssistance", "RoadsideServiceDisruption", "SpeedManagement",
    "TransitInformation", "VehicleObstruction", "WeatherRelatedRoadConditions", "WinterDrivingManagement",
)
VALIDITY_STATUSES = ("active", "planned", "suspended", "definedByValidityTimeSpec")
ATTRIBUTES = ("record_type", "situation_id", "detail", "validity_status", "direction", "hgv")  # what rules may test
_DIRECTION_FIELDS = ("directionBoundOnLinearSection", "directionRelativeOnLinearSection", "directionBound",
                     "directionRelative", "tpegDirection", "tpegDirectionRoad", "alertCDirectionCoded")


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    return parse_at(spec, body, now_utc())


def parse_at(spec: Any, body: bytes, now: datetime) -> list[Item]:
    """parse() with an explicit present: records whose end time is before `now` are CANCELs
    (replaying an archived episode needs the archive's present)."""
    root = parse_xml(body, spec.name, what="DATEX II")
    publications = _situation_publications(root, spec.name)
    language = str(spec.options.get("language") or "fr")
    items: list[Item] = []
    for publication in publications:
        for situation in descendants(publication, "situation"):
            overall = text(situation, "overallSeverity")
            for index, record in enumerate(children(situation, "situationRecord"), start=1):
                try:
                    items.append(_record_item(spec, record, overall, situation.get("id", ""), now, language))
                except RecordError as exc:
                    where = f"situation {situation.get('id', '?')!r} record {record.get('id') or index!r}"
                    skip_record(spec.name, where, exc)
    return items


def _situation_publications(root: ET.Element, source: str) -> list[ET.Element]:
    name = local(root.tag)
    if name == "situationPublication":
        return [root]
    if name == "d2LogicalModel":
        payloads = list(children(root, "payloadPublication"))
        if not payloads:
            raise ParseError("d2LogicalModel without payloadPublication", source=source)
        found = [p for p in payloads if xsi_type(p) == "SituationPublication"]
        if not found:
            kinds = ", ".join(sorted({xsi_type(p) or "?" for p in payloads}))
            raise ParseError(f"expected a SituationPublication, found {kinds}", source=source,
                             field="payloadPublication")
        return found
    # v3 message containers and other wrappers: any payload typed SituationPublication
    found = [node for node in root.iter()
             if local(node.tag) == "situationPublication" or xsi_type(node) == "SituationPublication"]
    if not found:
        raise ParseError(f"not a DATEX II situation publication (root <{name or root.tag}>)", source=source)
    return found


def _date(record: ET.Element, name: str) -> datetime | None:
    value = first_text(record, name)
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise RecordError(f"field {name!r}: {exc}") from None


def _comments(record: ET.Element, language: str) -> list[str]:
    """generalPublicComment texts, in `language` when the comment offers it."""
    out: list[str] = []
    for comment in descendants(record, "generalPublicComment"):
        values = [v for v in descendants(comment, "value") if v.text and v.text.strip()]
        preferred = [v for v in values if (v.get("lang") or "").lower().startswith(language)]
        chosen = preferred or values[:1]
        out.extend(v.text.strip() for v in chosen if v.text)
    return out


def _roads(record: ET.Element) -> tuple[Road, ...]:
    roads: list[Road] = []
    for node in descendants(record, "roadNumber"):
        value = (node.text or "").strip()
        road = normalise_road(value)
        roads.extend([road] if road else parse_roads(value))
    for node in descendants(record, "roadName"):
        values = [v.text for v in descendants(node, "value") if v.text] or ([node.text] if node.text else [])
        for value in values:
            roads.extend(parse_roads(value))
    return dedupe(roads)


def _is_hgv(record: ET.Element) -> bool:
    for node in descendants(record, "vehicleType"):
        if (node.text or "").strip() in _HGV_VEHICLES:
            return True
    return any(True for name in ("grossWeightCharacteristic", "heaviestAxleWeightCharacteristic",
                                 "grossVehicleWeight") for _ in descendants(record, name))


def _classify(record_type: str, detail: str, hgv: bool) -> tuple[str, str]:
    """(event, category) in Crieur's wording for a record type and its *Type element value."""
    if hgv and record_type in {"RoadOrCarriagewayOrLaneManagement", "GeneralNetworkManagement",
                               "NetworkManagement", "Restriction", "VehicleRestriction",
                               "GeneralInstructionOrMessageToRoadUsers", "ReroutingManagement"}:
        return "restriction-poids-lourds", "Transport"
    if _CLOSED.search(detail) or record_type == "RoadClosure":
        return "fermeture", "Transport"
    if record_type == "WinterDrivingManagement" or _WINTER_WORDS.search(detail):
        return "neige-verglas", "Met"
    if record_type in _WEATHER_TYPES:
        return "conditions-difficiles", "Met"
    if record_type == "GeneralInstructionOrMessageToRoadUsers":
        return "consigne", "Transport"
    return record_type, "Transport"


# every (event, category) _classify gives, for rules to be checked against
CLASSES = frozenset(_classify(record_type, detail, hgv) for record_type in RECORD_TYPES
                    for detail in ("", "closed", "snow") for hgv in (False, True))


def _record_item(spec: Any, record: ET.Element, overall: str, situation_id: str, now: datetime,
                 language: str) -> Item:
    record_id = record.get("id", "").strip()
    if not record_id:
        raise RecordError("attribute 'id' is missing")
    version = record.get("version", "").strip()
    record_type = xsi_type(record)
    detail = first_text(record, *_TYPE_FIELDS)
    hgv = _is_hgv(record)
    event, category = _classify(record_type, detail, hgv)
    sent = _date(record, "situationRecordVersionTime") or _date(record, "situationRecordCreationTime")
    onset, expires = _date(record, "overallStartTime"), _date(record, "overallEndTime")
    status = first_text(record, "validityStatus")
    probability = first_text(record, "probabilityOfOccurrence")
    severity_word = text(record, "severity") or overall
    ended = status == "suspended" or probability == "improbable" or (expires is not None and expires <= now)
    if ended:
        msg_type = MsgType.CANCEL
    elif version.isdigit() and int(version) > 1:
        msg_type = MsgType.UPDATE
    else:
        msg_type = MsgType.ALERT
    comments = _comments(record, language)
    roads = _roads(record)
    attributes: dict[str, Any] = {"record_type": record_type, "situation_id": situation_id}
    if detail:
        attributes["detail"] = detail
    if status:
        attributes["validity_status"] = status
    if direction := first_text(record, *_DIRECTION_FIELDS):
        attributes["direction"] = direction
    if hgv:
        attributes["hgv"] = True
    text_body = "\n".join(comments)
    roads = dedupe(list(roads) + list(parse_roads(text_body)))
    title = f"{event} {', '.join(r.label for r in roads)}".strip() if roads else event
    return Item(
        source=spec.name,
        external_id=record_id,
        version=version or (sent.isoformat() if sent else ""),
        msg_type=msg_type,
        sent=sent,
        onset=onset,
        expires=expires,
        title=title,
        text=text_body,
        language=language,
        category=category,
        event=event,
        severity=SEVERITIES.get(severity_word.strip(), Severity.UNKNOWN),
        certainty=_CERTAINTIES.get(probability, Certainty.UNKNOWN),
        roads=roads,
        raw=serialise(record),
        attributes=attributes,
    )
