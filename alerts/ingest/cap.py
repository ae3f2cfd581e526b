"""CAP 1.2: a standalone <alert>, an Atom feed embedding <alert>s, or a MeteoAlarm CAP-in-Atom feed
whose entries carry cap:* summary elements and link to the full CAP document.

Colours are given in French (vert, jaune, orange, rouge) so that rules test the same words as for
Météo-France vigilance; the published MeteoAlarm parameter stays in attributes["awareness_level"].
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from ..domain import Area, Certainty, Item, MsgType, Severity, Urgency
from ..roads import parse_roads
from .common import commune_area, dedupe, departement_area, parse_datetime
from .errors import ParseError, RecordError, skip_record
from .xml import children, local, parse_xml, serialise, text

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"

# MeteoAlarm awareness levels: 1 green Minor, 2 yellow Moderate, 3 orange Severe, 4 red Extreme.
_COLOURS = {"green": "vert", "yellow": "jaune", "orange": "orange", "red": "rouge",
            "vert": "vert", "jaune": "jaune", "rouge": "rouge"}
_LEVEL_COLOURS = {1: "vert", 2: "jaune", 3: "orange", 4: "rouge"}
COLOURS = tuple(_LEVEL_COLOURS.values())  # the colour words items carry (attributes["colour"])
# <category> values CAP 1.2 allows (the spec's enumeration)
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE",
              "Other")
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")  # <status>, kept in attributes["status"]
# attributes an item may carry, for rules to test
ATTRIBUTES = ("sender", "status", "colour", "awareness_level", "awareness_type", "phenomenon", "instruction",
              "area_desc")
_SEVERITY_COLOURS = {Severity.MINOR: "vert", Severity.MODERATE: "jaune", Severity.SEVERE: "orange",
                     Severity.EXTREME: "rouge"}
_EMMA_FR = re.compile(r"^FR(?:0(\d\d)|0?(2[AB])|(97[1-6]))$")
_COMMUNE_GEOCODES = {"INSEE", "CODE_INSEE", "INSEE_COM", "INSEE_COMMUNE", "COMMUNE"}
_DEPARTEMENT_GEOCODES = {"DEPARTEMENT", "INSEE_DEP", "CODE_DEPARTEMENT", "DEP"}


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    root = parse_xml(body, spec.name, what="CAP")
    name = local(root.tag)
    if name == "alert":
        try:
            return [alert_item(spec, root)]
        except RecordError as exc:
            raise ParseError(str(exc), source=spec.name) from None
    if name == "feed":
        return _atom(spec, root)
    raise ParseError(f"expected a CAP <alert> or an Atom <feed>, found <{name or root.tag}>", source=spec.name)


def _atom(spec: Any, feed: ET.Element) -> list[Item]:
    items: list[Item] = []
    for index, entry in enumerate(children(feed, "entry"), start=1):
        embedded = next((node for node in entry.iter() if local(node.tag) == "alert"), None)
        try:
            if embedded is not None:
                items.append(alert_item(spec, embedded))
            else:
                items.append(_meteoalarm_entry(spec, entry))
        except RecordError as exc:
            skip_record(spec.name, f"entry {index}", exc)
    return items


def _date(element: ET.Element | None, name: str) -> datetime | None:
    value = text(element, name)
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise RecordError(f"field {name!r}: {exc}") from None


def _msg_type(value: str) -> MsgType:
    for member in MsgType:
        if member.value.lower() == value.strip().lower():
            return member
    if value.strip().lower() in {"ack", "error"}:
        raise RecordError(f"msgType {value!r} carries no public information")
    if value:
        raise RecordError(f"field 'msgType': unknown value {value!r}")
    return MsgType.ALERT


def _references(value: str) -> tuple[str, ...]:
    """"sender,identifier,sent sender,identifier,sent" -> (identifier, identifier)."""
    refs: list[str] = []
    for triple in value.split():
        parts = triple.split(",")
        if len(parts) >= 2 and parts[1]:
            refs.append(parts[1])
        elif len(parts) == 1 and parts[0]:
            refs.append(parts[0])  # a bare identifier, tolerated
    return dedupe(refs)


def _pick_info(alert: ET.Element) -> ET.Element | None:
    infos = list(children(alert, "info"))
    for info in infos:
        if text(info, "language").lower().startswith("fr"):
            return info
    return infos[0] if infos else None


def _name_values(element: ET.Element, tag: str) -> list[tuple[str, str]]:
    return [(text(node, "valueName"), text(node, "value")) for node in children(element, tag)]


def geocode_areas(pairs: list[tuple[str, str]]) -> list[Area]:
    """Areas from CAP geocodes: EMMA_ID FR041 also gives département 41; INSEE codes give communes."""
    areas: list[Area] = []
    for name, value in pairs:
        if not name or not value:
            continue
        upper = name.strip().upper()
        if upper == "EMMA_ID":
            areas.append(Area("EMMA_ID", value.upper()))
            if m := _EMMA_FR.match(value.upper()):
                dep = departement_area(next(g for g in m.groups() if g))
                if dep:
                    areas.append(dep)
        elif upper in _COMMUNE_GEOCODES:
            area = commune_area(value)
            areas.append(area if area else Area(name.strip(), value.strip()))
        elif upper in _DEPARTEMENT_GEOCODES:
            area = departement_area(value)
            areas.append(area if area else Area(name.strip(), value.strip()))
        else:
            areas.append(Area(name.strip(), value.strip()))
    return areas


def _polygon(value: str) -> list[list[float]]:
    """CAP polygon "lat,lon lat,lon ..." -> GeoJSON ring [[lon, lat], ...]."""
    ring: list[list[float]] = []
    for pair in value.split():
        lat, _, lon = pair.partition(",")
        try:
            ring.append([float(lon), float(lat)])
        except ValueError:
            raise RecordError(f"field 'polygon': bad point {pair[:40]!r}") from None
    if len(ring) < 4:
        raise RecordError(f"field 'polygon': {len(ring)} points, a CAP polygon needs at least 4")
    return ring


def _circle(value: str) -> dict[str, Any]:
    """CAP circle "lat,lon radius_km" -> a GeoJSON Point with a radius_km foreign member."""
    try:
        centre, radius = value.split()
        lat, lon = centre.split(",")
        return {"type": "Point", "coordinates": [float(lon), float(lat)], "radius_km": float(radius)}
    except ValueError:
        raise RecordError(f"field 'circle': unreadable {value[:60]!r}") from None


def _geometry(areas: list[ET.Element]) -> dict[str, Any] | None:
    polygons = [[_polygon(text(node))] for area in areas for node in children(area, "polygon") if text(node)]
    circles = [_circle(text(node)) for area in areas for node in children(area, "circle") if text(node)]
    shapes: list[dict[str, Any]] = []
    if len(polygons) == 1:
        shapes.append({"type": "Polygon", "coordinates": polygons[0]})
    elif polygons:
        shapes.append({"type": "MultiPolygon", "coordinates": polygons})
    shapes.extend(circles)
    if not shapes:
        return None
    return shapes[0] if len(shapes) == 1 else {"type": "GeometryCollection", "geometries": shapes}


def _awareness(parameters: list[tuple[str, str]], severity: Severity) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, value in parameters:
        if name.lower() in {"awareness_level", "awareness_type"}:
            attrs[name.lower()] = value
    level = attrs.get("awareness_level", "")
    if level:  # "3; orange; Severe"
        parts = [p.strip() for p in level.split(";")]
        colour = next((_COLOURS[p.lower()] for p in parts if p.lower() in _COLOURS), "")
        if not colour and parts[0].isdigit():
            colour = _LEVEL_COLOURS.get(int(parts[0]), "")
        if colour:
            attrs["colour"] = colour
    elif severity in _SEVERITY_COLOURS:
        attrs["colour"] = _SEVERITY_COLOURS[severity]
    if "awareness_type" in attrs:  # "2; snow-ice"
        attrs["phenomenon"] = attrs["awareness_type"].split(";")[-1].strip()
    return attrs


def alert_item(spec: Any, alert: ET.Element) -> Item:
    """One Item from a CAP <alert> element. RecordError if it lacks what every CAP alert must have."""
    identifier = text(alert, "identifier")
    if not identifier:
        raise RecordError("field 'identifier' is missing")
    sent = _date(alert, "sent")
    msg_type = _msg_type(text(alert, "msgType"))
    info = _pick_info(alert)
    attributes: dict[str, Any] = {"sender": text(alert, "sender"), "status": text(alert, "status")}
    if info is None:
        if msg_type is not MsgType.CANCEL:
            raise RecordError("no <info> block")
        return Item(source=spec.name, external_id=identifier, version=text(alert, "sent") or identifier,
                    msg_type=msg_type, references=_references(text(alert, "references")), sent=sent,
                    raw=serialise(alert), attributes=attributes)
    severity = Severity.parse(text(info, "severity"))
    area_elements = list(children(info, "area"))
    pairs = [pair for area in area_elements for pair in _name_values(area, "geocode")]
    attributes.update(_awareness(_name_values(info, "parameter"), severity))
    instruction = text(info, "instruction")
    if instruction:
        attributes["instruction"] = instruction
    area_desc = "; ".join(text(area, "areaDesc") for area in area_elements if text(area, "areaDesc"))
    if area_desc:
        attributes["area_desc"] = area_desc
    headline, description = text(info, "headline"), text(info, "description")
    return Item(
        source=spec.name,
        external_id=identifier,
        version=text(alert, "sent") or identifier,
        msg_type=msg_type,
        references=_references(text(alert, "references")),
        sent=sent,
        onset=_date(info, "onset") or _date(info, "effective"),
        expires=_date(info, "expires"),
        title=headline,
        text=description,
        language=text(info, "language") or "fr",
        category=text(info, "category"),
        event=text(info, "event"),
        severity=severity,
        urgency=Urgency.parse(text(info, "urgency")),
        certainty=Certainty.parse(text(info, "certainty")),
        areas=dedupe(geocode_areas(pairs)),
        roads=parse_roads(f"{headline}\n{description}\n{instruction}"),
        geometry=_geometry(area_elements),
        link=text(info, "web"),
        raw=serialise(alert),
        attributes=attributes,
    )


def _meteoalarm_entry(spec: Any, entry: ET.Element) -> Item:
    """A MeteoAlarm Atom entry: cap:* elements directly under <entry>, full CAP behind a link."""
    identifier = text(entry, "identifier") or text(entry, "id")
    if not identifier:
        raise RecordError("neither cap:identifier nor id")
    severity = Severity.parse(text(entry, "severity"))
    link = ""
    for node in children(entry, "link"):
        href = node.get("href", "")
        if "cap" in node.get("type", "") or not link:
            link = href
    pairs = _name_values(entry, "geocode")
    sent_text = text(entry, "sent") or text(entry, "updated")
    attributes: dict[str, Any] = _awareness(_name_values(entry, "parameter"), severity)
    if text(entry, "areaDesc"):
        attributes["area_desc"] = text(entry, "areaDesc")
    if text(entry, "status"):
        attributes["status"] = text(entry, "status")
    title = text(entry, "title")
    return Item(
        source=spec.name,
        external_id=identifier,
        version=sent_text or identifier,
        msg_type=_msg_type(text(entry, "msgType") or text(entry, "message_type")),
        references=_references(text(entry, "references")),
        sent=_date(entry, "sent") or _date(entry, "updated"),
        onset=_date(entry, "onset") or _date(entry, "effective"),
        expires=_date(entry, "expires"),
        title=title,
        text=text(entry, "summary"),
        category=text(entry, "category"),
        event=text(entry, "event"),
        severity=severity,
        urgency=Urgency.parse(text(entry, "urgency")),
        certainty=Certainty.parse(text(entry, "certainty")),
        areas=dedupe(geocode_areas(pairs)),
        roads=parse_roads(title),
        geometry=_geometry([entry]),
        link=link,
        raw=serialise(entry),
        attributes=attributes,
    )
