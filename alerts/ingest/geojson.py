"""Road-state open data ("état des routes", "viabilité hivernale") as a GeoJSON FeatureCollection, or
a CSV of the same columns (kind "csv", or kind "geojson" served as text/csv).

Two published shapes are read as well (kind "geojson"): traffic messages whose features carry
situationId/version/releaseTime and announcements[] in several languages (Digitraffic; the French
announcement is chosen when there is one), and road-weather forecasts {roadConditions: [{roadId,
observation, forecast[]}]} with overallRoadCondition codes 1-4 (Digitraffic "keliennuste").

options:
  mapping: {"id": ..., "road": ..., "state": ..., "insee": ..., "text": ..., "updated": ...,
            "lon": ..., "lat": ...} -- the property (column) holding each field; default candidates below
  states: {"C2": "Moderate", ...} -- extra or overriding state -> CAP severity
  end_states: states that end an earlier alert on the same feature (default "normal", "C1")
  default_road_kind: kind for a bare number in the road column (default "D")
  departement: département for every feature (areas)
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any

from ..domain import Area, Item, MsgType, Road, Severity
from ..roads import fold, normalise_road, parse_roads
from .common import commune_area, content_hash, dedupe, departement_area, load_json, origin, parse_datetime
from .errors import ParseError, RecordError, skip_record

DEFAULT_MAPPING: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifiant", "gid", "objectid", "code"),
    "road": ("route", "axe", "rd", "num_route", "numero_route", "road"),
    "state": ("etat", "etat_route", "viabilite", "etat_viabilite", "niveau", "state"),
    "insee": ("insee", "code_insee", "insee_com", "commune_insee", "commune"),
    "text": ("commentaire", "observation", "observations", "description", "message"),
    "updated": ("date_maj", "maj", "date_mise_a_jour", "date_modification", "updated_at", "date"),
    "lon": ("lon", "longitude", "lng"),
    "lat": ("lat", "latitude"),
}

# Keys are accent-folded, lower case. C1..C4 are the winter road-condition codes of French road services.
DEFAULT_STATES: dict[str, Severity] = {
    "normal": Severity.MINOR,
    "normale": Severity.MINOR,
    "c1": Severity.MINOR,
    "bon": Severity.MINOR,
    "sec": Severity.MINOR,
    "ras": Severity.MINOR,
    "delicate": Severity.MODERATE,
    "delicat": Severity.MODERATE,
    "c2": Severity.MODERATE,
    "glissante": Severity.MODERATE,
    "difficile": Severity.SEVERE,
    "c3": Severity.SEVERE,
    "tres difficile": Severity.SEVERE,
    "impraticable": Severity.EXTREME,
    "c4": Severity.EXTREME,
    "fermee": Severity.EXTREME,
    "ferme": Severity.EXTREME,
    "coupee": Severity.EXTREME,
    "coupe": Severity.EXTREME,
}
DEFAULT_END_STATES = ("normal", "normale", "c1")
EVENT = "viabilite-hivernale"  # every road-state item's event
CATEGORY = "Transport"
ATTRIBUTES = ("state", "commune")  # what rules may test
_BARE_NUMBER = re.compile(r"^(?P<num>\d{1,4})(?P<suffix>[A-Za-z])?$")


def _key(value: object) -> str:
    return " ".join(fold(str(value)).split())


class _Config:
    def __init__(self, options: dict[str, Any]) -> None:
        mapping = options.get("mapping") or {}
        if not isinstance(mapping, dict):
            raise ValueError("options.mapping must be a mapping of field -> property name")
        self.fields = {
            name: ((mapping[name],) if name in mapping else candidates) for name, candidates in DEFAULT_MAPPING.items()
        }
        self.states = dict(DEFAULT_STATES)
        for state, severity in (options.get("states") or {}).items():
            self.states[_key(state)] = severity if isinstance(severity, Severity) else Severity.parse(str(severity))
        self.end_states = {_key(s) for s in options.get("end_states", DEFAULT_END_STATES)}
        self.road_kind = str(options.get("default_road_kind") or "D")
        dep = departement_area(str(options.get("departement") or ""))
        self.areas: tuple[Area, ...] = (dep,) if dep else ()

    def get(self, props: dict[str, Any], name: str) -> str:
        lowered = {str(k).lower(): v for k, v in props.items()}
        for candidate in self.fields[name]:
            value = props.get(candidate, lowered.get(str(candidate).lower()))
            if value is not None and str(value).strip():
                return str(value).strip()
        return ""


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    try:
        config = _Config(spec.options)
    except ValueError as exc:
        raise ParseError(str(exc), source=spec.name, field="options") from None
    media = content_type.split(";", 1)[0].strip().lower()
    first = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    is_csv = (
        spec.kind == "csv"
        or media in {"text/csv", "application/csv"}
        or (not media.endswith("json") and first not in {b"{", b"["})
    )
    if is_csv:
        return _parse_csv(spec, config, body)
    return _parse_geojson(spec, config, body)


def _parse_geojson(spec: Any, config: _Config, body: bytes) -> list[Item]:
    doc = load_json(spec, body)
    if isinstance(doc, dict) and isinstance(doc.get("roadConditions"), list):
        return _road_conditions(spec, config, doc)
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ParseError("expected a GeoJSON FeatureCollection", source=spec.name, field="type")
    features = doc.get("features")
    if not isinstance(features, list):
        raise ParseError("FeatureCollection without a features list", source=spec.name, field="features")
    items: list[Item] = []
    for index, feature in enumerate(features, start=1):
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise RecordError("not a GeoJSON Feature")
            props = feature.get("properties") or {}
            if not isinstance(props, dict):
                raise RecordError("field 'properties' is not an object")
            geometry = feature.get("geometry")
            if geometry is not None and not (isinstance(geometry, dict) and isinstance(geometry.get("type"), str)):
                raise RecordError("field 'geometry' is not a GeoJSON geometry")
            raw = json.dumps(feature, ensure_ascii=False)
            if isinstance(props.get("announcements"), list):
                items.append(_announcement_item(spec, config, props, geometry, raw))
            else:
                items.append(_item(spec, config, props, feature.get("id"), geometry, raw))
        except RecordError as exc:
            skip_record(spec.name, f"feature {index}", exc)
    return items


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")  # French spreadsheets exported from Windows


def _parse_csv(spec: Any, config: _Config, body: bytes) -> list[Item]:
    text = _decode(body)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ParseError("empty CSV, expected a header line", source=spec.name, line=1)
    header = lines[0]
    delimiter = max(";,\t", key=header.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = [c.strip() for c in next(reader)]
    except csv.Error as exc:
        raise ParseError(f"unreadable CSV header: {exc}", source=spec.name, line=1) from None
    if not any(config.get(dict.fromkeys(columns, "x"), name) for name in ("road", "state")):
        raise ParseError(
            f"CSV has neither a road nor a state column (columns: {', '.join(columns)[:200]})", source=spec.name, line=1
        )
    items: list[Item] = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            skip_record(spec.name, f"line {line}", exc)
            continue
        if not any(cell.strip() for cell in row):
            continue
        try:
            if len(row) != len(columns):
                raise RecordError(f"{len(row)} cells for {len(columns)} columns")
            props = dict(zip(columns, row, strict=True))
            geometry = _point(config, props)
            items.append(_item(spec, config, props, None, geometry, delimiter.join(row)))
        except RecordError as exc:
            skip_record(spec.name, f"line {line}", exc)
    return items


def _point(config: _Config, props: dict[str, Any]) -> dict[str, Any] | None:
    lon, lat = config.get(props, "lon"), config.get(props, "lat")
    if not lon or not lat:
        return None
    try:
        x, y = float(lon.replace(",", ".")), float(lat.replace(",", "."))
    except ValueError:
        raise RecordError(f"field 'lon/lat': unreadable {lon!r}, {lat!r}") from None
    if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        raise RecordError(f"field 'lon/lat': out of range {lon!r}, {lat!r}")
    return {"type": "Point", "coordinates": [x, y]}


def _roads(config: _Config, value: str) -> tuple[Road, ...]:
    if not value:
        return ()
    if bare := _BARE_NUMBER.match(value):  # "957" in a column that only holds numbers
        return (Road(config.road_kind, (bare["num"].lstrip("0") or "0") + (bare["suffix"] or "").upper()),)
    road = normalise_road(value)
    return (road,) if road else parse_roads(value)


def _item(
    spec: Any, config: _Config, props: dict[str, Any], feature_id: Any, geometry: dict[str, Any] | None, raw: str
) -> Item:
    road_ref = config.get(props, "road")
    state = config.get(props, "state")
    comment = config.get(props, "text")
    insee = config.get(props, "insee")
    updated = config.get(props, "updated")
    external_id = config.get(props, "id") or (str(feature_id) if feature_id not in (None, "") else "")
    if not external_id:
        if not road_ref:
            raise RecordError("field 'id' is missing and there is no road to identify the feature")
        external_id = f"{road_ref}:{insee}:{content_hash(json.dumps(geometry, sort_keys=True))}"
    try:
        sent = parse_datetime(updated)
    except ValueError as exc:
        raise RecordError(f"field 'updated' ({'/'.join(config.fields['updated'])}): {exc}") from None
    roads = dedupe(list(_roads(config, road_ref)) + list(parse_roads(comment)))
    state_key = _key(state)
    severity = config.states.get(state_key, Severity.UNKNOWN)
    areas = list(config.areas)
    if commune := commune_area(insee):
        areas.extend([commune, departement_area(commune.code[:2]) or Area("departement", commune.code[:2])])
    label = ", ".join(r.label for r in roads) or road_ref
    title = f"{label} : {state}" if state else label
    attributes: dict[str, Any] = {"state": state}
    if insee and not commune:
        attributes["commune"] = insee
    return Item(
        source=spec.name,
        external_id=external_id,
        version=sent.isoformat() if sent else "sha:" + content_hash(state, comment, road_ref, insee),
        msg_type=MsgType.CANCEL if state_key in config.end_states else MsgType.ALERT,
        sent=sent,
        title=title,
        text=comment,
        category=CATEGORY,
        event=EVENT,
        severity=severity,
        areas=dedupe(areas),
        roads=roads,
        geometry=geometry,
        raw=raw,
        attributes=attributes,
        authority=origin(spec),
    )


def _announcement_item(
    spec: Any, config: _Config, props: dict[str, Any], geometry: dict[str, Any] | None, raw: str
) -> Item:
    """A traffic-message feature (Digitraffic "GeoJSON-FeatureCollection"): properties.situationId,
    version, releaseTime and announcements[] in several languages; the French one is chosen when given."""
    situation = str(props.get("situationId") or "").strip()
    if not situation:
        raise RecordError("field 'situationId' is missing")
    announcements = [a for a in props["announcements"] if isinstance(a, dict)]
    if not announcements:
        raise RecordError("field 'announcements' holds no announcement")
    chosen = next((a for a in announcements if str(a.get("language") or "").lower().startswith("fr")), announcements[0])
    try:
        sent = parse_datetime(str(props.get("releaseTime") or ""))
        timing = _object(chosen, "timeAndDuration")
        onset = parse_datetime(str(timing.get("startTime") or ""))
        expires = parse_datetime(str(timing.get("endTime") or ""))
    except ValueError as exc:
        raise RecordError(f"field 'releaseTime/timeAndDuration': {exc}") from None
    location = _object(chosen, "location")
    features = [str(f) for f in chosen.get("features") or [] if isinstance(f, (str, int, float))]
    title = " ".join(str(chosen.get("title") or "").split())
    lines = [
        str(location.get("description") or "").strip(),
        ", ".join(features),
        str(chosen.get("comment") or "").strip(),
        str(chosen.get("additionalInformation") or "").strip(),
    ]
    body = "\n".join(line for line in lines if line)
    details = _object(chosen, "locationDetails")
    road_location = _object(details, "roadAddressLocation")
    road_numbers = []
    for point in ("primaryPoint", "secondaryPoint"):
        place = road_location.get(point)
        address = place.get("roadAddress") if isinstance(place, dict) else None
        if isinstance(address, dict) and address.get("road") not in (None, ""):
            road_numbers.append(str(address["road"]))
    version = str(props.get("version") or "").strip()
    attributes: dict[str, Any] = {"situation_id": situation, "features": features}
    if road_numbers:
        attributes["road_numbers"] = list(dict.fromkeys(road_numbers))
    if direction := str(road_location.get("direction") or ""):
        attributes["direction"] = direction
    sender = str(chosen.get("sender") or "").strip()
    return Item(
        source=spec.name,
        external_id=situation,
        version=version or (sent.isoformat() if sent else "sha:" + content_hash(title, body)),
        msg_type=MsgType.UPDATE if version.isdigit() and int(version) > 1 else MsgType.ALERT,
        sent=sent,
        onset=onset,
        expires=expires,
        title=title,
        text=body,
        language=str(chosen.get("language") or "fr"),
        category="Transport",
        event="information-trafic",
        areas=config.areas,
        roads=parse_roads(f"{title}\n{body}"),
        geometry=geometry,
        raw=raw,
        attributes=attributes,
        authority=origin(spec, sender),
    )


# Digitraffic road-weather forecast "overallRoadCondition" codes.
_OVERALL_CONDITIONS = {
    1: ("état normal", Severity.MINOR),
    2: ("conditions difficiles", Severity.MODERATE),
    3: ("conditions très difficiles", Severity.SEVERE),
    4: ("état non déterminé", Severity.UNKNOWN),
}


def _road_conditions(spec: Any, config: _Config, doc: dict[str, Any]) -> list[Item]:
    """A road-weather forecast (Digitraffic "keliennuste" v2): one item per road section, its observed
    condition and the worst of its forecasts; back to normal everywhere ends an earlier alert."""
    items: list[Item] = []
    for index, section in enumerate(doc["roadConditions"], start=1):
        try:
            if not isinstance(section, dict) or not str(section.get("roadId") or "").strip():
                raise RecordError("field 'roadId' is missing")
            road_id = str(section["roadId"]).strip()
            observation = _object(section, "observation")
            forecasts = [f for f in section.get("forecast") or [] if isinstance(f, dict)]
            codes = [c for c in (_condition_code(observation), *(_condition_code(f) for f in forecasts)) if c]
            worst = max(codes, default=4, key=lambda c: (c != 4, c))
            label, severity = _OVERALL_CONDITIONS.get(worst, _OVERALL_CONDITIONS[4])
            sent = parse_datetime(str(observation.get("Time") or doc.get("messageTimestamp") or ""))
            number = road_id.split("_", 1)[0].lstrip("0")
            lines = []
            if observation:
                now_label = _OVERALL_CONDITIONS.get(_condition_code(observation) or 4, _OVERALL_CONDITIONS[4])[0]
                lines.append(
                    f"Observé : {now_label}, chaussée à {observation.get('roadTemperature', '?')} °C, "
                    f"air à {observation.get('temperature', '?')} °C."
                )
            for forecast in forecasts:
                state = _OVERALL_CONDITIONS.get(_condition_code(forecast) or 4, _OVERALL_CONDITIONS[4])[0]
                lines.append(f"Prévision à {forecast.get('forecastName', '?')} : {state}.")
            items.append(
                Item(
                    source=spec.name,
                    external_id=road_id,
                    version=sent.isoformat() if sent else "sha:" + content_hash(road_id, codes),
                    msg_type=MsgType.CANCEL if worst == 1 else MsgType.ALERT,
                    sent=sent,
                    title=f"Route {number} : {label}" if number else f"Section {road_id} : {label}",
                    text="\n".join(lines),
                    category="Transport",
                    event="viabilite-hivernale",
                    severity=severity,
                    areas=config.areas,
                    raw=json.dumps(section, ensure_ascii=False),
                    attributes={"state": label, "condition_code": worst, "road_number": number},
                    authority=origin(spec),
                )
            )
        except (RecordError, ValueError) as exc:
            skip_record(spec.name, f"roadConditions {index}", exc)
    return items


def _object(record: dict[str, Any], key: str) -> dict[str, Any]:
    """The JSON object under `key`, or an empty one when it is missing or not an object."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _condition_code(record: dict[str, Any]) -> int | None:
    value = record.get("overallRoadCondition")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
