"""Where things are: outlines of départements and communes, and the shape of what an item concerns.

The outlines come from a folder of GeoJSON files named by the `service.geo` setting (France's are published
by IGN as Admin Express under the Licence Ouverte; the france-geojson project serves them per département:
`departement-41-loir-et-cher.geojson`, `communes-41-loir-et-cher.geojson`, `departements-version-simplifiee.geojson`).
Every feature needs a `code` property (INSEE code: 2 or 3 characters for a département, 5 for a commune) and
a `nom`. Shapes are simplified when loaded (about 100 m), which is finer than any map Crieur draws.

An item's shape is, in this order: its own geometry (CAP polygons and circles, GeoJSON road state), the
coordinates written in its DATEX II record (point coordinates, TPEG linear from/to, GML posList, DiaLog's
GeoJSON extension), else the outlines of the communes and départements it names (INSEE codes, EMMA_ID).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable

import shapely
from shapely import affinity
from shapely.geometry import GeometryCollection, LineString, Point, shape
from shapely.geometry.base import BaseGeometry

from alerts.domain import Area, Item
from alerts.errors import CrieurError

SIMPLIFY_DEGREES = 0.001  # about 100 m: invisible at département scale, a tenth of the points
ATTRIBUTION = "Contours : IGN Admin Express (via france-geojson), Licence Ouverte"
_DEPT = re.compile(r"^(\d{2}|2[AB]|97\d)$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_EMMA = re.compile(r"^FR(?:0(\d\d)|0?(2[AB])|(97\d))$")


class GeoError(CrieurError, ValueError):
    """An outline file that cannot be used; the message names the file and the feature."""


@dataclass(frozen=True, slots=True)
class Place:
    """A département or commune outline."""

    code: str
    name: str
    shape: BaseGeometry = field(compare=False, hash=False)

    @property
    def departement(self) -> str:
        return self.code if len(self.code) <= 3 else (self.code[:3] if self.code.startswith("97") else self.code[:2])


@dataclass(slots=True)
class Atlas:
    """Every outline of a geo folder, by INSEE code. A per-département file wins over a simplified all-France
    file for the same département."""

    departements: dict[str, Place] = field(default_factory=dict)
    communes: dict[str, Place] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> "Atlas":
        root = pathlib.Path(folder)
        if not root.is_dir():
            raise GeoError(f"{root}: the geo folder does not exist")
        atlas = cls(source=str(root))
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".geojson", ".json"))
        if not files:
            raise GeoError(f"{root}: no .geojson file in the geo folder")
        # all-France files first, so that a département's own (finer) file replaces their outline
        files.sort(key=lambda p: (not p.name.startswith("departements"), p.name))
        for path in files:
            for place in _read_places(path):
                (atlas.departements if len(place.code) <= 3 else atlas.communes)[place.code] = place
        return atlas

    def departement(self, code: str) -> Place | None:
        return self.departements.get(code.upper())

    def commune(self, insee: str) -> Place | None:
        return self.communes.get(insee.upper())

    def communes_of(self, departement: str) -> list[Place]:
        return [p for p in self.communes.values() if p.departement == departement]

    def area(self, area: Area) -> Place | None:
        """The outline of an item's area: a commune, a département, a Meteoalarm EMMA_ID (FR041)."""
        kind = area.kind.casefold()
        code = area.code.strip().upper()
        if kind == "commune":
            return self.commune(code)
        if kind in ("departement", "département", "department"):
            return self.departement(code)
        if kind == "emma_id":
            found = _EMMA.match(code)
            return self.departement(next(g for g in found.groups() if g)) if found else None
        return None


def _read_places(path: pathlib.Path) -> list[Place]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GeoError(f"{path}: not readable GeoJSON: {exc}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    features = data.get("features") if kind == "FeatureCollection" else [data] if kind == "Feature" else None
    if not isinstance(features, list):
        raise GeoError(f"{path}: expected a GeoJSON Feature or FeatureCollection")
    places = []
    for index, feature in enumerate(features):
        where = f"{path}: feature {index}"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            raise GeoError(f"{where}: no properties")
        code = str(props.get("code") or "").strip().upper()
        if not (_DEPT.match(code) or _INSEE.match(code)):
            raise GeoError(f"{where}: property 'code' {code!r} is not an INSEE département or commune code")
        try:
            outline = shape(feature.get("geometry"))
        except Exception as exc:  # shapely raises several types for broken geometries
            raise GeoError(f"{where} ({code}): unreadable geometry: {exc}") from None
        if outline.is_empty:
            continue
        places.append(Place(code, str(props.get("nom") or code), outline.simplify(SIMPLIFY_DEGREES)))
    return places


# ------------------------------------------------------------------------------------- item shapes


@dataclass(frozen=True, slots=True)
class Located:
    """Where an item lies. `exact` is True for coordinates it carries itself, False for the outline of an
    area it names (a commune, a département); `places` names those areas."""

    shape: BaseGeometry
    exact: bool
    places: tuple[str, ...] = ()


def locate(item: Item | None, atlas: Atlas | None, areas: Iterable[Area] = ()) -> Located | None:
    """The shape an item concerns (see the module docstring), or None when nothing places it.
    `areas` are used when the item has none (an alert written by a CM carries its own)."""
    own = [
        s
        for s in (
            _geojson_shape(item.geometry) if item and item.geometry else None,
            datex_shape(item.raw) if item and _has_coordinates(item.raw) else None,
        )
        if s
    ]
    named = [p for p in (atlas.area(a) for a in ((item.areas if item else ()) or tuple(areas))) if p] if atlas else []
    # a commune is finer than its département: draw the communes when both are named
    communes = [p for p in named if len(p.code) > 3]
    chosen = communes or named
    places = tuple(dict.fromkeys(p.name for p in chosen))
    if own:
        return Located(own[0], True, places)
    if chosen:
        return Located(shapely.union_all([p.shape for p in chosen]), False, places)
    return None


def _has_coordinates(raw: str) -> bool:
    """Cheap test before parsing: only XML that writes coordinates is worth reading again."""
    return raw.startswith("<") and any(word in raw for word in ("latitude", "posList", "geoJsonGeometry"))


def _geojson_shape(geometry: dict[str, Any]) -> BaseGeometry | None:
    """A GeoJSON geometry as shapely; a CAP circle (Point with radius_km) becomes its disc."""
    try:
        if geometry.get("type") == "GeometryCollection":
            parts = [_geojson_shape(g) for g in geometry.get("geometries", []) if isinstance(g, dict)]
            parts = [p for p in parts if p is not None]
            return GeometryCollection(parts) if parts else None
        found = shape(geometry)
    except Exception:  # an item's geometry is the source's: a broken one is ignored, not fatal
        return None
    radius = geometry.get("radius_km")
    if isinstance(found, Point) and isinstance(radius, (int, float)) and radius > 0:
        return disc(found, float(radius))
    return None if found.is_empty else found


def disc(centre: Point, radius_km: float) -> BaseGeometry:
    """A circle of `radius_km` around a WGS84 point (longitudes shrink with the cosine of the latitude)."""
    degrees = radius_km / 111.32
    circle = centre.buffer(degrees, quad_segs=16)
    scale = 1 / max(math.cos(math.radians(centre.y)), 0.01)
    return affinity.scale(circle, xfact=scale, yfact=1.0, origin=centre)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_float(element: ET.Element, name: str) -> float | None:
    for child in element:
        if _local(child.tag) == name and child.text:
            try:
                return float(child.text.strip())
            except ValueError:
                return None
    return None


def _coordinates(element: ET.Element) -> tuple[float, float] | None:
    """(lon, lat) of an element holding <latitude> and <longitude> children, if valid."""
    lat, lon = _child_float(element, "latitude"), _child_float(element, "longitude")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lon, lat


def datex_shape(raw: str) -> BaseGeometry | None:
    """The coordinates a DATEX II record (v2 or v3) carries, as a shape; None when it has none."""
    from alerts.ingest.errors import ParseError
    from alerts.ingest.xml import parse_xml

    try:
        record = parse_xml(raw.encode("utf-8"), "item", what="DATEX II record")
    except ParseError:
        return None
    lines: list[BaseGeometry] = []
    points: list[Point] = []
    for element in record.iter():
        name = _local(element.tag)
        if name == "geoJsonGeometry" and element.text:  # DiaLog's extension: a GeoJSON geometry as text
            try:
                found = _geojson_shape(json.loads(element.text))
            except ValueError:
                found = None
            if found is not None:
                lines.append(found)
        elif name == "posList" and element.text:  # GML: "lat lon lat lon ..." (EPSG:4326 order)
            values = element.text.split()
            try:
                pairs = [(float(values[i + 1]), float(values[i])) for i in range(0, len(values) - 1, 2)]
            except ValueError:
                continue
            if len(pairs) >= 2:
                lines.append(LineString(pairs))
        elif name == "tpegLinearLocation":  # from and to points: the stretch between them
            ends = [_coordinates(e) for e in element.iter() if _local(e.tag) == "pointCoordinates"]
            ends = [e for e in ends if e]
            if len(ends) >= 2:
                lines.append(LineString([ends[0], ends[-1]]))
        elif name in ("pointCoordinates", "locationForDisplay", "pointByCoordinates"):
            found = _coordinates(element)
            if found:
                points.append(Point(found))
    if lines:  # a line's own end points would only repeat it
        return lines[0] if len(lines) == 1 else shapely.union_all(lines)
    if points:
        unique = list(dict.fromkeys((p.x, p.y) for p in points))
        return Point(unique[0]) if len(unique) == 1 else shapely.MultiPoint(unique)
    return None
