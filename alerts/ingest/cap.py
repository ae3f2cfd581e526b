"""CAP 1.2: a standalone <alert>, an Atom feed embedding <alert>s, or a MeteoAlarm CAP-in-Atom feed
whose entries carry cap:* summary elements and link to the full CAP document.

Colours are given in French (vert, jaune, orange, rouge) so that rules test the same words as for
Météo-France vigilance; the published MeteoAlarm parameter stays in attributes["awareness_level"].
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile
from datetime import datetime
from typing import Any

from ..domain import Area, Certainty, Item, MsgType, Severity, Urgency
from ..geocodes import emma_departement, nuts3_departement
from ..roads import parse_roads
from .common import commune_area, dedupe, departement_area, origin, parse_datetime
from .errors import ParseError, RecordError, skip_record
from .xml import children, local, parse_xml, serialise, text

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"

# MeteoAlarm awareness levels: 1 green Minor, 2 yellow Moderate, 3 orange Severe, 4 red Extreme.
_COLOURS = {
    "green": "vert",
    "yellow": "jaune",
    "orange": "orange",
    "red": "rouge",
    "vert": "vert",
    "jaune": "jaune",
    "rouge": "rouge",
}
_LEVEL_COLOURS = {1: "vert", 2: "jaune", 3: "orange", 4: "rouge"}
COLOURS = tuple(_LEVEL_COLOURS.values())  # the colour words items carry (attributes["colour"])
# <category> values CAP 1.2 allows (the spec's enumeration)
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")  # <status>, kept in attributes["status"]
# attributes an item may carry, for rules to test
ATTRIBUTES = (
    "sender",
    "status",
    "colour",
    "awareness_level",
    "awareness_type",
    "phenomenon",
    "instruction",
    "area_desc",
)
_SEVERITY_COLOURS = {
    Severity.MINOR: "vert",
    Severity.MODERATE: "jaune",
    Severity.SEVERE: "orange",
    Severity.EXTREME: "rouge",
}
_COMMUNE_GEOCODES = {"INSEE", "CODE_INSEE", "INSEE_COM", "INSEE_COMMUNE", "COMMUNE"}
_DEPARTEMENT_GEOCODES = {"DEPARTEMENT", "INSEE_DEP", "CODE_DEPARTEMENT", "DEP"}


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    if body[:4] == b"PK\x03\x04":  # DWD serves its CAP alerts as a zip of CAP files
        return _zipped_alerts(spec, body)
    root = parse_xml(body, spec.name, what="CAP")
    name = local(root.tag)
    if name == "alert":
        try:
            return [alert_item(spec, root, raw=_document_text(body))]
        except RecordError as exc:
            raise ParseError(str(exc), source=spec.name) from None
    if name == "feed":
        return _atom(spec, root)
    if name == "alerts":  # SMHI wraps many <alert> in a non-standard <alerts> root
        return _wrapped_alerts(spec, root)
    raise ParseError(
        f"expected a CAP <alert>, an <alerts> list or an Atom <feed>, found <{name or root.tag}>", source=spec.name
    )


MAX_ZIP_MEMBERS = 2000
_EMMA_IN_LINK = re.compile(r"geocode=EMMA_ID:([A-Z]{2}[0-9A-Z]{3})", re.IGNORECASE)


def _zipped_alerts(spec: Any, body: bytes) -> list[Item]:
    """Every CAP document in a zip. The decompressed total may not exceed the source's max_bytes (a zip
    bomb is refused before anything is inflated beyond it); a member that is not CAP is skipped."""
    limit = int(getattr(spec, "max_bytes", 0) or 5_000_000)
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise ParseError(f"unreadable zip of CAP files: {exc}", source=spec.name) from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise ParseError(f"zip of {len(members)} files, more than the {MAX_ZIP_MEMBERS} accepted", source=spec.name)
    if sum(m.file_size for m in members) > limit:
        raise ParseError(f"zip inflates to more than the limit of {limit} bytes", source=spec.name)
    items: list[Item] = []
    read = 0
    for member in members:
        try:
            with archive.open(member) as handle:
                data = handle.read(limit - read + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
            skip_record(spec.name, f"zip member {member.filename!r}", exc)
            continue
        read += len(data)
        if read > limit:  # sizes declared in the zip were false
            raise ParseError(f"zip inflates to more than the limit of {limit} bytes", source=spec.name)
        try:
            root = parse_xml(data, spec.name, what="CAP")
            if local(root.tag) != "alert":
                raise RecordError(f"not a CAP <alert> (root <{local(root.tag)}>)")
            items.append(alert_item(spec, root, raw=_document_text(data)))
        except (ParseError, RecordError) as exc:
            skip_record(spec.name, f"zip member {member.filename!r}", exc)
    if not items and members:
        raise ParseError(f"no readable CAP alert in the zip's {len(members)} files", source=spec.name)
    return items


def _wrapped_alerts(spec: Any, root: ET.Element) -> list[Item]:
    items: list[Item] = []
    for index, alert in enumerate(children(root, "alert"), start=1):
        try:
            items.append(alert_item(spec, alert))
        except RecordError as exc:
            skip_record(spec.name, f"alert {index}", exc)
    if not items and not any(True for _ in children(root, "alert")):
        raise ParseError("<alerts> holds no CAP <alert>", source=spec.name)
    return items


def _atom(spec: Any, feed: ET.Element) -> list[Item]:
    items: list[Item] = []
    by_identifier: dict[str, Item] = {}
    publisher = text(feed, "author", "name")
    for index, entry in enumerate(children(feed, "entry"), start=1):
        embedded = next((node for node in entry.iter() if local(node.tag) == "alert"), None)
        try:
            if embedded is not None:
                items.append(alert_item(spec, embedded))
                continue
            item = _meteoalarm_entry(spec, entry, publisher)
        except RecordError as exc:
            skip_record(spec.name, f"entry {index}", exc)
            continue
        # MeteoAlarm writes one entry per area of the same CAP alert: they are one item, all its areas
        first = by_identifier.get(item.external_id)
        if first is None:
            by_identifier[item.external_id] = item
            items.append(item)
        else:
            _merge_area(first, item)
    for item in by_identifier.values():
        item.title = _meteoalarm_title(item)
    return items


def _merge_area(item: Item, other: Item) -> None:
    item.areas = dedupe(list(item.areas) + list(other.areas))
    descs = [d for d in (item.attributes.get("area_desc"), other.attributes.get("area_desc")) if d]
    if descs:
        item.attributes["area_desc"] = "; ".join(dict.fromkeys("; ".join(descs).split("; ")))
    item.raw += "\n" + other.raw


# MeteoAlarm awareness types ("9; avalanches") and event words, in Météo-France's wording.
PHENOMENA_FR = {
    "1": "vent violent",
    "2": "neige-verglas",
    "3": "orages",
    "4": "brouillard",
    "5": "canicule",
    "6": "grand froid",
    "7": "vagues-submersion",
    "8": "feux de forêt",
    "9": "avalanches",
    "10": "pluie",
    "12": "crues",
    "13": "pluie-inondation",
}
_EVENT_WORDS = (
    ("avalanche", "9"),
    ("snow", "2"),
    ("ice", "2"),
    ("thunder", "3"),
    ("fog", "4"),
    ("high-temp", "5"),
    ("high temp", "5"),
    ("heat", "5"),
    ("low-temp", "6"),
    ("low temp", "6"),
    ("cold", "6"),
    ("coastal", "7"),
    ("forest", "8"),
    ("fire", "8"),
    ("rain-flood", "13"),
    ("rain flood", "13"),
    ("flood", "12"),
    ("rain", "10"),
    ("wind", "1"),
)


def _phenomenon_fr(item: Item) -> str:
    kind = str(item.attributes.get("awareness_type", "")).split(";")[0].strip()
    if kind in PHENOMENA_FR:
        return PHENOMENA_FR[kind]
    event = item.event.lower()
    return next((PHENOMENA_FR[code] for word, code in _EVENT_WORDS if word in event), "météo")


def _meteoalarm_title(item: Item) -> str:
    """ "Vigilance jaune avalanches : Haute Savoie, Savoie" from an entry's index fields (the entry's own
    title is English); the linked CAP, when followed, gives Météo-France's own French headline."""
    colour = item.attributes.get("colour", "")
    areas = str(item.attributes.get("area_desc", "")).replace("; ", ", ")
    head = " ".join(part for part in ("Vigilance", colour, _phenomenon_fr(item)) if part)
    return f"{head} : {areas}" if areas else head


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
    """ "sender,identifier,sent sender,identifier,sent" -> (identifier, identifier)."""
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
    """Areas from CAP geocodes, each kept as published, followed by the département it designates: NUTS3
    (2013 "FR718" or 2016 "FRK28" codes), a verified MeteoAlarm EMMA_ID (see alerts.geocodes), a
    département code; INSEE codes give communes (and their département)."""
    areas: list[Area] = []
    for name, value in pairs:
        if not name or not value or len(value) > 64:  # DWD's EXCLUDE_POLYGON holds coordinates, not a code
            continue
        upper, value = name.strip().upper(), value.strip()
        if upper in {"EMMA_ID", "NUTS3", "NUTS"}:
            areas.append(Area(upper if upper != "NUTS" else "NUTS3", value.upper()))
            dep = emma_departement(value) if upper == "EMMA_ID" else nuts3_departement(value)
            if dep:
                areas.append(Area("departement", dep))
        elif upper in _COMMUNE_GEOCODES:
            area = commune_area(value)
            areas.append(area if area else Area(name.strip(), value))
            if area and (dep_area := departement_area(area.code[:3] if area.code.startswith("97") else area.code[:2])):
                areas.append(dep_area)
        elif upper in _DEPARTEMENT_GEOCODES:
            area = departement_area(value)
            areas.append(area if area else Area(name.strip(), value))
        else:
            areas.append(Area(name.strip(), value))
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


# How French readers know some senders that write their name in capitals or as an address.
_SENDER_NAMES = {"METEO-FRANCE": "Météo-France", "METEO FRANCE": "Météo-France", "VIGILANCE@METEO.FR": "Météo-France"}


def _display_sender(value: str) -> str:
    return _SENDER_NAMES.get(value.strip().upper(), value.strip())


def _document_text(body: bytes) -> str:
    """A whole CAP document as text for Item.raw: its own bytes (re-serialising a DWD alert of 400 kB,
    8 languages and 1,300 geocodes cost more than parsing it)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")  # the USGS alert declares ISO-8859-1


def alert_item(spec: Any, alert: ET.Element, raw: str | None = None) -> Item:
    """One Item from a CAP <alert> element. RecordError if it lacks what every CAP alert must have.
    `raw` is the alert's document text when the alert is a whole document."""
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
        # a Cancel may carry no <info> at all: it still ends the alerts it references
        return Item(
            source=spec.name,
            external_id=identifier,
            version=text(alert, "sent") or identifier,
            msg_type=msg_type,
            references=_references(text(alert, "references")),
            sent=sent,
            title="Fin de l'alerte",
            text=text(alert, "note"),
            raw=raw if raw is not None else serialise(alert),
            attributes=attributes,
            authority=origin(spec, "", _display_sender(text(alert, "sender"))),
        )
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
        language=text(info, "language") or "en-US",  # CAP 1.2: an <info> without <language> is en-US
        category=text(info, "category"),
        event=text(info, "event"),
        severity=severity,
        urgency=Urgency.parse(text(info, "urgency")),
        certainty=Certainty.parse(text(info, "certainty")),
        areas=dedupe(geocode_areas(pairs)),
        roads=parse_roads(f"{headline}\n{description}\n{instruction}"),
        geometry=_geometry(area_elements),
        link=text(info, "web"),
        raw=raw if raw is not None else serialise(alert),
        attributes=attributes,
        authority=origin(spec, _display_sender(text(info, "senderName")), _display_sender(text(alert, "sender"))),
    )


def _meteoalarm_entry(spec: Any, entry: ET.Element, publisher: str = "") -> Item:
    """A MeteoAlarm Atom entry: cap:* elements directly under <entry>, full CAP behind a link."""
    identifier = text(entry, "identifier") or text(entry, "id")
    if not identifier:
        raise RecordError("neither cap:identifier nor id")
    severity = Severity.parse(text(entry, "severity"))
    link = cap_link = ""
    emma: list[tuple[str, str]] = []
    for node in children(entry, "link"):
        href = node.get("href", "")
        if "cap" in node.get("type", "") and not cap_link:
            cap_link = href
        link = link or href
        if m := _EMMA_IN_LINK.search(href):  # MeteoAlarm gives EMMA_ID only in a link's query
            emma.append(("EMMA_ID", m.group(1)))
    link = cap_link or link
    pairs = _name_values(entry, "geocode") + emma
    sent_text = text(entry, "sent") or text(entry, "updated")
    attributes: dict[str, Any] = _awareness(_name_values(entry, "parameter"), severity)
    if cap_link:
        attributes["cap_link"] = cap_link
    if text(entry, "title"):
        attributes["source_title"] = text(entry, "title")
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
        language="fr",  # the title is rewritten in French (_meteoalarm_title)
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
        authority=origin(spec, "", publisher),
    )
