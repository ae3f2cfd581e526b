"""DATEX II situation publications, v2 (d2LogicalModel / payloadPublication xsi:type
SituationPublication) and v3 (situationPublication, namespace http://datex2.eu/schema/3/situation,
possibly inside a messageContainer). One Item per situationRecord.

Elements are found by local name anywhere inside a record, which covers the location variants
(Linear, tpeg, linearWithinLinearElement, SingleRoadLinearLocation...) of both versions.
A v3 TrafficRegulationPublication (DiaLog's arrêtés) is read by datex2_regulation.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from ..domain import Certainty, Item, MsgType, Road, Severity
from ..french import datetime_fr
from ..roads import normalise_road, parse_roads
from .common import dedupe, now_utc, origin
from .datex2_fr import (
    CAUSES,
    DETAILS,
    DIRECTIONS,
    RECORD_TYPES,
    TRANSIT_INFORMATION,
    TRANSIT_SERVICES,
    VEHICLE_TYPES,
    WEIGHT_COMPARISONS,
    phrase,
    tonnes,
)
from .datex2_regulation import is_regulation_publication, parse_regulations, record_date
from .errors import ParseError, RecordError, skip_record
from .xml import child, children, descendants, first_text, local, parse_xml, serialise, text, xsi_type

SEVERITIES = {
    "highest": Severity.EXTREME,
    "high": Severity.SEVERE,
    "medium": Severity.MODERATE,
    "low": Severity.MINOR,
    "lowest": Severity.MINOR,
}
_CERTAINTIES = {
    "certain": Certainty.OBSERVED,
    "probable": Certainty.LIKELY,
    "riskOf": Certainty.POSSIBLE,
    "improbable": Certainty.UNLIKELY,
}
_WEATHER_TYPES = {"PoorEnvironmentConditions", "WeatherRelatedRoadConditions", "NonWeatherRelatedRoadConditions"}
_WINTER_WORDS = re.compile(r"snow|ice|icy|frost|slush|freez|hail|blizzard|winter", re.IGNORECASE)
_CLOSED = re.compile(r"closed|closure|blocked", re.IGNORECASE)
_HGV_VEHICLES = {
    "lorry",
    "heavyLorry",
    "heavyGoodsVehicle",
    "articulatedVehicle",
    "trailer",
    "vehicleWithTrailer",
    "goodsVehicle",
    "largeGoodsVehicle",
}
# elements that name the situation's kind inside a record, tried in this order
_TYPE_FIELDS = (
    "roadOrCarriagewayOrLaneManagementType",
    "weatherRelatedRoadConditionType",
    "poorEnvironmentType",
    "winterEquipmentManagementType",
    "generalInstructionToRoadUsersType",
    "generalNetworkManagementType",
    "networkManagementType",
    "roadMaintenanceType",
    "obstructionType",
    "vehicleObstructionType",
    "environmentalObstructionType",
    "animalPresenceType",
    "infrastructureDamageType",
    "accidentType",
    "abnormalTrafficType",
    "speedManagementType",
    "reroutingManagementType",
    "constructionWorkType",
    "nonWeatherRelatedRoadConditionType",
    "roadSurfaceConditionMeasurements",
)
VALIDITY_STATUSES = ("active", "planned", "suspended", "definedByValidityTimeSpec")
ATTRIBUTES = ("record_type", "situation_id", "detail", "validity_status", "direction", "hgv")  # what rules may test
_DIRECTION_FIELDS = (
    "directionBoundOnLinearSection",
    "directionRelativeOnLinearSection",
    "directionBound",
    "directionRelative",
    "tpegDirection",
    "tpegDirectionRoad",
    "alertCDirectionCoded",
)


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    return parse_at(spec, body, now_utc())


def parse_at(spec: Any, body: bytes, now: datetime) -> list[Item]:
    """parse() with an explicit present: records whose end time is before `now` are CANCELs
    (replaying an archived episode needs the archive's present)."""
    root = parse_xml(body, spec.name, what="DATEX II")
    if is_regulation_publication(root):
        return parse_regulations(spec, root, now)
    publications = _situation_publications(root, spec.name)
    language = str(spec.options.get("language") or "fr")
    latest: dict[str, tuple[int, Item]] = {}
    for publication in publications:
        creator = first_text(child(publication, "publicationCreator") or publication, "nationalIdentifier")
        published_in = (publication.get("lang") or "").lower()
        for situation in descendants(publication, "situation"):
            overall = text(situation, "overallSeverity")
            for index, record in enumerate(children(situation, "situationRecord"), start=1):
                try:
                    item = _record_item(
                        spec, record, overall, situation.get("id", ""), now, language, creator, published_in
                    )
                except RecordError as exc:
                    where = f"situation {situation.get('id', '?')!r} record {record.get('id') or index!r}"
                    skip_record(spec.name, where, exc)
                    continue
                # a publication may hold several versions of a record (Digitraffic): keep the newest
                rank = int(item.version) if item.version.isdigit() else 0
                if item.external_id not in latest or rank > latest[item.external_id][0]:
                    latest[item.external_id] = (rank, item)
    return [item for _rank, item in latest.values()]


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
            raise ParseError(
                f"expected a SituationPublication, found {kinds}", source=source, field="payloadPublication"
            )
        return found
    # v3 message containers and other wrappers: any payload typed SituationPublication
    found = [
        node
        for node in root.iter()
        if local(node.tag) == "situationPublication" or xsi_type(node) == "SituationPublication"
    ]
    if not found:
        raise ParseError(f"not a DATEX II situation publication (root <{name or root.tag}>)", source=source)
    return found


def _comments(record: ET.Element, language: str) -> tuple[list[str], str]:
    """generalPublicComment texts, in `language` when the comment offers it, and the language chosen.
    A comment whose values carry no lang attribute is one text in several lines (Highways England)."""
    out: list[str] = []
    chosen_language = ""
    for comment in descendants(record, "generalPublicComment"):
        values = [v for v in descendants(comment, "value") if v.text and v.text.strip()]
        if not values:
            continue
        langs = [(v.get("lang") or "").lower() for v in values]
        if not any(langs):
            chosen = values
        else:
            chosen = [v for v, lang in zip(values, langs, strict=True) if lang.startswith(language)] or values[:1]
            chosen_language = chosen_language or (chosen[0].get("lang") or "").lower()
        out.extend(" ".join(line.strip() for line in v.text.strip().splitlines()) for v in chosen if v.text)
    return out, chosen_language


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
    return any(
        True
        for name in ("grossWeightCharacteristic", "heaviestAxleWeightCharacteristic", "grossVehicleWeight")
        for _ in descendants(record, name)
    )


def _classify(record_type: str, detail: str, hgv: bool) -> tuple[str, str]:
    """(event, category) in Crieur's wording for a record type and its *Type element value."""
    if hgv and record_type in {
        "RoadOrCarriagewayOrLaneManagement",
        "GeneralNetworkManagement",
        "NetworkManagement",
        "Restriction",
        "VehicleRestriction",
        "GeneralInstructionOrMessageToRoadUsers",
        "ReroutingManagement",
    }:
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


def _road_phrase(road: Road) -> str:
    """ "l'A 4", "la RD 957", "la RN 10", "la VC 12"."""
    label = road.label
    return f"l'{label}" if label[0] in "AEIOU" else f"la {label}"


def _places(record: ET.Element, language: str) -> list[str]:
    """Town and location names of the record's location (TPEG names, ALERT-C location names)."""
    names: list[str] = []
    for node in descendants(record, "name"):
        kind = text(node, "tpegOtherPointDescriptorType") or first_text(node, "tpegOtherPointDescriptorType")
        if kind in {"townName", "localityName", "placeName", "tpegJunctionName", "junctionName"}:
            texts = [v.text.strip() for v in descendants(node, "value") if v.text and v.text.strip()]
            names.extend(texts[:1])
    for node in descendants(record, "alertCLocationName"):
        values = [v for v in descendants(node, "value") if v.text and v.text.strip()]
        preferred = [v for v in values if (v.get("lang") or "").lower().startswith(language)] or values[:1]
        names.extend(v.text.strip() for v in preferred if v.text)
    return list(dict.fromkeys(names))


def _what(record: ET.Element, record_type: str, detail: str) -> str:
    """The subject of the sentence, in French: the detail value, else the record type, else generic."""
    if record_type == "TransitInformation":
        service = phrase(TRANSIT_SERVICES, first_text(record, "transitServiceType"), "Service de transport")
        info = first_text(record, "transitServiceInformation")
        state = TRANSIT_INFORMATION.get(info) or ("retardée" if info.startswith("delay") else "perturbée")
        return f"{service} {state}"
    if detail in DETAILS:
        return DETAILS[detail]
    return phrase(RECORD_TYPES, record_type, "Événement sur la route")


def _vehicles(record: ET.Element) -> str:
    """ "aux poids lourds de plus de 7,5 t" for a record that applies to some vehicles only."""
    phrases: list[str] = []
    for characteristics in descendants(record, "forVehiclesWithCharacteristicsOf"):
        types = [
            phrase(VEHICLE_TYPES, (n.text or "").strip(), "véhicules d'une catégorie particulière")
            for n in descendants(characteristics, "vehicleType")
            if (n.text or "").strip()
        ]
        weights = []
        for weight in descendants(characteristics, "grossWeightCharacteristic"):
            value = first_text(weight, "grossVehicleWeight")
            if value:
                pattern = WEIGHT_COMPARISONS.get(first_text(weight, "comparisonOperator"), "de {}")
                weights.append(pattern.format(tonnes(value)))
        words = " ou ".join(dict.fromkeys(types)) or ("véhicules" if weights else "")
        if words:
            phrases.append(" ".join([words, *weights]))
    return f"aux {' et aux '.join(dict.fromkeys(phrases))}" if phrases else ""


def _sentence(
    what: str,
    roads: tuple[Road, ...],
    direction: str,
    places: list[str],
    cause: str,
    expires: datetime | None,
    now: datetime,
) -> str:
    """ "Véhicule en panne sur l'A 4 en direction de l'ouest, à Charenton-le-Pont, en raison de..., jusqu'au..."""
    parts = [what]
    if roads:
        parts.append("sur " + ", ".join(_road_phrase(r) for r in roads[:3]))
    if direction in DIRECTIONS:
        parts.append(DIRECTIONS[direction])
    sentence = " ".join(parts)
    if places:
        sentence += f", à {places[0]}" + (f", près de {places[1]}" if len(places) > 1 else "")
    if cause:
        sentence += f", en raison {_de(phrase(CAUSES, cause, 'un incident'))}"
    if expires is not None and expires > now:
        sentence += f", jusqu'au {datetime_fr(expires)}"
    return sentence + "."


def _de(noun_phrase: str) -> str:
    """ "de" + article, contracted: "des travaux", "du verglas", "de la neige", "d'un accident"."""
    for article, contracted in (("les ", "des "), ("le ", "du "), ("des ", "de ")):
        if noun_phrase.startswith(article):
            return contracted + noun_phrase[len(article) :]
    return ("d'" if noun_phrase[:1] in "aeiouéèh" else "de ") + noun_phrase


# every (event, category) _classify gives, for rules to be checked against
CLASSES = frozenset(
    _classify(record_type, detail, hgv)
    for record_type in RECORD_TYPES
    for detail in ("", "closed", "snow")
    for hgv in (False, True)
)


def _record_item(
    spec: Any,
    record: ET.Element,
    overall: str,
    situation_id: str,
    now: datetime,
    language: str,
    creator: str,
    published_in: str = "",
) -> Item:
    """One situation record. `language` is the one preferred for comments; `published_in` the
    publication's lang attribute, which says the language of comments that carry none."""
    record_id = record.get("id", "").strip()
    if not record_id:
        raise RecordError("attribute 'id' is missing")
    version = record.get("version", "").strip()
    record_type = xsi_type(record)
    detail = first_text(record, *_TYPE_FIELDS)
    hgv = _is_hgv(record)
    event, category = _classify(record_type, detail, hgv)
    sent = record_date(record, "situationRecordVersionTime") or record_date(record, "situationRecordCreationTime")
    onset, expires = record_date(record, "overallStartTime"), record_date(record, "overallEndTime")
    status = first_text(record, "validityStatus")
    probability = first_text(record, "probabilityOfOccurrence")
    severity_word = text(record, "severity") or overall
    cancelled = any(first_text(record, name).lower() == "true" for name in ("cancel", "end"))
    ended = (
        cancelled or status == "suspended" or probability == "improbable" or (expires is not None and expires <= now)
    )
    if ended:
        msg_type = MsgType.CANCEL
    elif version.isdigit() and int(version) > 1:
        msg_type = MsgType.UPDATE
    else:
        msg_type = MsgType.ALERT
    comments, comment_language = _comments(record, language)
    comment_language = (comment_language or published_in or language)[:2]
    roads = _roads(record)
    attributes: dict[str, Any] = {"record_type": record_type, "situation_id": situation_id}
    if detail:
        attributes["detail"] = detail
    if status:
        attributes["validity_status"] = status
    direction = first_text(record, *_DIRECTION_FIELDS)
    if direction:
        attributes["direction"] = direction
    if hgv:
        attributes["hgv"] = True
    cause = first_text(record, "causeType")
    if cause:
        attributes["cause"] = cause
    places = _places(record, language)
    if places:
        attributes["places"] = places
    source_name = first_text(record, "sourceIdentification")
    if source_name:
        attributes["source_identification"] = source_name
    comment_text = "\n".join(comments)
    if comment_language == "fr":  # "A628" in an English comment is not a French autoroute
        roads = dedupe(list(roads) + list(parse_roads(comment_text)))
    what = _what(record, record_type, detail)
    if vehicles := _vehicles(record):  # "Route fermée aux poids lourds de plus de 7,5 t"
        what = f"{what} {vehicles}"
    title = what + (" sur " + ", ".join(_road_phrase(r) for r in roads[:3]) if roads else "")
    sentence = _sentence(what, roads, direction, places, cause, expires, now)
    return Item(
        source=spec.name,
        external_id=record_id,
        version=version or (sent.isoformat() if sent else ""),
        msg_type=msg_type,
        sent=sent,
        onset=onset,
        expires=expires,
        title=title,
        text="\n".join([sentence, comment_text]) if comment_text else sentence,
        language=comment_language if comments else language,
        category=category,
        event=event,
        severity=SEVERITIES.get(severity_word.strip(), Severity.UNKNOWN),
        certainty=_CERTAINTIES.get(probability, Certainty.UNKNOWN),
        roads=roads,
        raw=serialise(record),
        attributes=attributes,
        authority=origin(spec, _record_source(source_name), creator),
    )


def _record_source(source_name: str) -> str:
    """The authority a record's sourceIdentification names ("Direction interdépartementale des routes/DIR
    Île-de-France" -> "DIR Île-de-France"); "" for a machine name ("NTIS System")."""
    if source_name and not source_name.lower().endswith("system"):
        return source_name.rsplit("/", 1)[-1].strip()
    return ""
