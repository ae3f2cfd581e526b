"""Road-state open data ("état des routes", "viabilité hivernale") as a GeoJSON FeatureCollection, or
a CSV of the same columns (kind "csv", or kind "geojson" served as text/csv).

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
from .common import commune_area, content_hash, dedupe, departement_area, load_json, parse_datetime
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
    "normal": Severity.MINOR, "normale": Severity.MINOR, "c1": Severity.MINOR, "bon": Severity.MINOR,
    "sec": Severity.MINOR, "ras": Severity.MINOR,
    "delicate": Severity.MODERATE, "delicat": Severity.MODERATE, "c2": Severity.MODERATE,
    "glissante": Severity.MODERATE, "difficile": Severity.SEVERE, "c3": Severity.SEVERE,
    "tres difficile": Severity.SEVERE, "impraticable": Severity.EXTREME, "c4": Severity.EXTREME,
    "fermee": Severity.EXTREME, "ferme": Severity.EXTREME, "coupee": Severity.EXTREME,
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
        self.fields = {name: ((mapping[name],) if name in mapping else candidates)
                       for name, candidates in DEFAULT_MAPPING.items()}
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
    is_csv = spec.kind == "csv" or media in {"text/csv", "application/csv"} or (
        not media.endswith("json") and first not in {b"{", b"["})
    if is_csv:
        return _parse_csv(spec, config, body)
    return _parse_geojson(spec, config, body)


def _parse_geojson(spec: Any, config: _Config, body: bytes) -> list[Item]:
    doc = load_json(spec, body)
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
        raise ParseError(f"CSV has neither a road nor a state column (columns: {', '.join(columns)[:200]})",
                         source=spec.name, line=1)
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
            props = dict(zip(columns, row))
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


def _item(spec: Any, config: _Config, props: dict[str, Any], feature_id: Any,
          geometry: dict[str, Any] | None, raw: str) -> Item:
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
    )
