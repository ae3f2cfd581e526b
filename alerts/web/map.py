"""The map of a territory's alerts, drawn on the server: SVG for the pages, the same scene for the PNG card.

No JavaScript and no tile server: the département's outline and communes (alerts.geo), then what each alert
concerns, from its source item's own geometry (alerts.geo.locate), coloured by severity — or by the colour of
a vigilance. Every mark also has a line in the text alternative the page shows next to the map, so a reader
who cannot see it loses nothing. Styles are SVG presentation attributes, never CSS: the map reads the same
with the page's stylesheet off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import pathlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from html import escape
from typing import Any, Iterable, Sequence

import numpy as np
import shapely
from markupsafe import Markup
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from alerts.domain import Alert, Item, Severity
from alerts.geo import ATTRIBUTION, Atlas, GeoError, Located, locate

log = logging.getLogger("crieur.web.map")

WIDTH = 800
PAD = 12
MIN_LINE_PX = 24  # a line shorter than this also gets a point marker, or nobody finds it
MAX_SPAN_DEGREES = 4.0  # a mark further than this from the territory is listed, not drawn (the map would be all void)
# Vigilance colours (Météo-France's scale) and the severities they stand for.
COLOURS = {"rouge": "#c8102e", "orange": "#e8710a", "jaune": "#f2c200", "vert": "#2e8540", "gris": "#4a5568"}
DARK = {"rouge": "#7a0a1c", "orange": "#8a4300", "jaune": "#6b5600", "vert": "#1a4d26", "gris": "#1f2933"}
SEVERITY_COLOUR = {
    Severity.EXTREME: "rouge",
    Severity.SEVERE: "orange",
    Severity.MODERATE: "jaune",
    Severity.MINOR: "vert",
    Severity.UNKNOWN: "gris",
}
KIND_LABELS = {
    "fermeture": "Route fermée",
    "voies": "Voies fermées",
    "restriction": "Circulation restreinte",
    "vigilance": "Vigilance",
    "alerte": "Alerte",
}
_CLOSED_WORDS = ("fermée", "fermé", "fermeture", "coupée", "barrée", "roadclosed", "closed", "closure")
# DATEX II impact and lane-management values that close a whole road, or some of its lanes.
_DATEX_VALUE = re.compile(r"<(?:\w+:)?(?:trafficConstrictionType|roadOrCarriagewayOrLaneManagementType)>\s*(\w+)")
_ROAD_CLOSED = {"roadBlocked", "carriagewayBlocked", "roadClosed", "carriagewayClosures"}
_LANES_CLOSED = {"lanesBlocked", "laneClosures", "singleAlternateLineTraffic"}
INK, MUTED, PAPER, LAND, NEIGHBOUR, BORDER = "#1b1b1b", "#4a4a4a", "#ffffff", "#fbfbf8", "#e9ecef", "#a7b0ba"


# ------------------------------------------------------------------------------------------ marks


@dataclass(frozen=True, slots=True)
class Mark:
    """One alert on the map, and its line in the text alternative."""

    alert_id: int | None
    title: str
    kind: str  # fermeture, restriction, vigilance, alerte
    colour: str  # a key of COLOURS
    severity: Severity
    roads: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    located: Located | None = field(default=None, compare=False)
    drawn: bool = False

    @property
    def label(self) -> str:
        if self.kind == "vigilance" and self.colour in ("rouge", "orange", "jaune", "vert"):
            return f"Vigilance {self.colour}"
        return KIND_LABELS.get(self.kind, "Alerte")

    @property
    def fill(self) -> str:
        return COLOURS[self.colour]

    @property
    def where(self) -> str:
        """Roads then places, as the text alternative says them."""
        return " · ".join(part for part in (", ".join(self.roads), ", ".join(self.places)) if part)


def classify(alert: Alert, item: Item | None) -> tuple[str, str]:
    """(kind, colour) of an alert: a vigilance keeps its own colour; otherwise the severity decides."""
    attributes = item.attributes if item is not None else {}
    colour = str(attributes.get("colour") or "").lower()
    severity_colour = SEVERITY_COLOUR.get(Severity(int(alert.severity)), "gris")
    if colour in COLOURS:
        return "vigilance", colour
    words = " ".join([alert.title, item.event if item else "", str(attributes.get("detail", ""))]).lower()
    datex = set(_DATEX_VALUE.findall(item.raw)) if item is not None and item.raw.startswith("<") else set()
    if (item is not None and item.event.startswith("restriction")) or attributes.get("hgv"):
        return "restriction", severity_colour
    if datex & _ROAD_CLOSED or any(word in words for word in _CLOSED_WORDS):
        return "fermeture", severity_colour
    if datex & _LANES_CLOSED:
        return "voies", severity_colour
    if item is not None and item.category == "Met" and not alert.roads:
        return "vigilance", severity_colour
    return "alerte", severity_colour


def mark_for(alert: Alert, item: Item | None, atlas: Atlas | None, commune_names: dict[str, str]) -> Mark:
    kind, colour = classify(alert, item)
    located = locate(item, atlas, alert.areas)
    places = list(located.places) if located else []
    places += [commune_names.get(a.code, a.code) for a in alert.areas if a.kind == "commune"]
    return Mark(
        alert.id,
        alert.title or alert.text[:80],
        kind,
        colour,
        Severity(int(alert.severity)),
        tuple(r.label for r in alert.roads),
        tuple(dict.fromkeys(places)),
        located,
    )


# ------------------------------------------------------------------------------------------ scene


@dataclass(frozen=True, slots=True)
class Shape:
    """Something to draw, in pixels: rings (polygons), paths (lines) or a point, with its paint."""

    kind: str  # "area", "line", "point", "label"
    rings: tuple[np.ndarray, ...] = ()
    fill: str = "none"
    fill_opacity: float = 1.0
    stroke: str = "none"
    width: float = 1.0
    dash: str = ""
    casing: str = ""  # a wider line drawn under this one, so that it stands out of the background
    text: str = ""
    size: float = 13.0
    bold: bool = False
    closed_sign: bool = False  # a point drawn as a no-entry sign
    background: bool = False  # outlines under the alerts: drawn to the whole pixel
    title: str = ""


@dataclass(slots=True)
class Scene:
    """A whole map in pixels (width × height), ready for SVG or raster output."""

    width: int
    height: int
    shapes: list[Shape]
    title: str
    marks: list[Mark]


class Projection:
    """Equirectangular projection scaled at the frame's mid-latitude: at département scale the error is far
    below a pixel, and it needs no library."""

    def __init__(self, frame: tuple[float, float, float, float], width: int = WIDTH, pad: int = PAD):
        minx, miny, maxx, maxy = frame
        self.k = math.cos(math.radians((miny + maxy) / 2))
        span = max((maxx - minx) * self.k, 1e-6)
        self.scale = (width - 2 * pad) / span
        self.minx, self.maxy, self.pad = minx, maxy, pad
        self.width = width
        self.height = int(round((maxy - miny) * self.scale + 2 * pad))

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords, dtype=float)
        out[:, 0] = (coords[:, 0] - self.minx) * self.k * self.scale + self.pad
        out[:, 1] = (self.maxy - coords[:, 1]) * self.scale + self.pad
        return out


def _rings(geometry: BaseGeometry, project: Projection) -> tuple[np.ndarray, ...]:
    """Every ring (polygons) or path (lines) of a geometry, projected."""
    out: list[np.ndarray] = []
    for part in getattr(geometry, "geoms", [geometry]):
        if isinstance(part, Polygon):
            out.append(project(np.asarray(part.exterior.coords)))
            out.extend(project(np.asarray(r.coords)) for r in part.interiors)
        elif isinstance(part, LineString):
            out.append(project(np.asarray(part.coords)))
        elif isinstance(part, (MultiPolygon, MultiLineString, MultiPoint)) or hasattr(part, "geoms"):
            out.extend(_rings(part, project))
    return tuple(out)


def _points(geometry: BaseGeometry) -> list[Point]:
    return [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Point)]


def _polygons(geometry: BaseGeometry) -> BaseGeometry:
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, (Polygon, MultiPolygon))]
    return shapely.union_all(parts) if parts else Polygon()


def _lines(geometry: BaseGeometry) -> BaseGeometry:
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, (LineString, MultiLineString))]
    return shapely.union_all(parts) if parts else LineString()


def build_scene(
    atlas: Atlas,
    territory_code: str,
    territory_name: str,
    marks: Sequence[Mark],
    labels: Iterable[str] = (),
    width: int = WIDTH,
) -> Scene:
    """The map of `territory_code` with `marks` on it. Marks within reach of the territory are drawn (the
    frame grows to hold them, with the neighbouring départements around); the others are only listed."""
    outline = atlas.departement(territory_code)
    base = outline.shape if outline is not None else None
    if base is None:
        located = [m.located.shape for m in marks if m.located is not None]
        base = shapely.union_all(located) if located else box(-5, 42, 8, 51)  # metropolitan France
    minx, miny, maxx, maxy = base.bounds
    drawn: list[Mark] = []
    for mark in marks:
        if mark.located is None:
            drawn.append(mark)
            continue
        bx0, by0, bx1, by1 = mark.located.shape.bounds
        grown = (min(minx, bx0), min(miny, by0), max(maxx, bx1), max(maxy, by1))
        if max(grown[2] - grown[0], grown[3] - grown[1]) <= MAX_SPAN_DEGREES:
            minx, miny, maxx, maxy = grown
            drawn.append(_replace_drawn(mark, True))
        else:
            drawn.append(mark)
    margin = 0.02 * max(maxx - minx, maxy - miny)
    frame = (minx - margin, miny - margin, maxx + margin, maxy + margin)
    project = Projection(frame, width)
    view = box(*frame)
    shapes: list[Shape] = [Shape("area", (project(np.asarray(view.exterior.coords)),), fill="#dfe5ec")]
    # neighbours, then the territory's communes and outline
    neighbour_labels: list[Shape] = []
    for code, place in sorted(atlas.departements.items()):
        if code != territory_code and place.shape.intersects(view):
            shown = place.shape.intersection(view)
            shapes.append(
                Shape(
                    "area",
                    _rings(shown, project),
                    fill=NEIGHBOUR,
                    stroke=BORDER,
                    width=1.0,
                    title=place.name,
                    background=True,
                )
            )
            if shown.area > 0.08 * view.area / 4:  # name the neighbours that show enough to be recognised
                spot = shown.representative_point()
                neighbour_labels.append(
                    Shape("label", (project(np.asarray([[spot.x, spot.y]])),), text=place.name, size=13, fill=MUTED)
                )
    for place in atlas.communes_of(territory_code):
        shapes.append(
            Shape(
                "area",
                _rings(place.shape, project),
                fill=LAND,
                stroke="#c9ced6",
                width=0.6,
                title=place.name,
                background=True,
            )
        )
    if outline is not None and not atlas.communes_of(territory_code):
        shapes.append(Shape("area", _rings(outline.shape, project), fill=LAND))
    # areas (vigilance, communes named), then the outline over them, then lines and points
    order = sorted((m for m in drawn if m.drawn and m.located is not None), key=lambda m: int(m.severity))
    geometry = {id(mark): mark.located.shape for mark in order if mark.located is not None}
    for mark in order:
        area = _polygons(geometry[id(mark)])
        if not area.is_empty:
            shapes.append(
                Shape(
                    "area",
                    _rings(area, project),
                    fill=COLOURS[mark.colour],
                    fill_opacity=0.45,
                    stroke=DARK[mark.colour],
                    width=1.5,
                    title=_tooltip(mark),
                )
            )
    if outline is not None:
        shapes.append(Shape("area", _rings(outline.shape, project), stroke=INK, width=2.2, title=outline.name))
    for mark in order:
        line = _lines(geometry[id(mark)])
        if not line.is_empty:
            shapes.append(
                Shape(
                    "line",
                    _rings(line, project),
                    stroke=COLOURS[mark.colour],
                    width=5.0,
                    casing=DARK[mark.colour],
                    dash="10 6" if mark.kind == "restriction" else "",
                    title=_tooltip(mark),
                )
            )
    for mark in order:
        points = _points(geometry[id(mark)])
        line = _lines(geometry[id(mark)])
        if not line.is_empty and _extent_px(line, project) < MIN_LINE_PX:
            points.append(line.centroid)  # a few streets at département scale: a marker, or nobody sees them
        for point in points:
            shapes.append(
                Shape(
                    "point",
                    (project(np.asarray([[point.x, point.y]])),),
                    fill=COLOURS[mark.colour],
                    stroke=PAPER,
                    width=2.0,
                    closed_sign=mark.kind in ("fermeture", "voies"),
                    title=_tooltip(mark),
                )
            )
    shapes.extend(neighbour_labels)
    for name in labels:
        commune = next((p for p in atlas.communes_of(territory_code) if p.name == name), None)
        if commune is not None:
            spot = commune.shape.representative_point()
            shapes.append(Shape("label", (project(np.asarray([[spot.x, spot.y]])),), text=name, size=13))
    title = f"Carte des alertes en cours — {territory_name}"
    return Scene(project.width, project.height, shapes, title, drawn)


def _extent_px(geometry: BaseGeometry, project: Projection) -> float:
    minx, miny, maxx, maxy = geometry.bounds
    corners = project(np.asarray([[minx, miny], [maxx, maxy]]))
    return float(max(abs(corners[1] - corners[0])))


def _replace_drawn(mark: Mark, drawn: bool) -> Mark:
    return Mark(
        mark.alert_id, mark.title, mark.kind, mark.colour, mark.severity, mark.roads, mark.places, mark.located, drawn
    )


def _tooltip(mark: Mark) -> str:
    return f"{mark.label} — {mark.title}" + (f" ({mark.where})" if mark.where else "")


# -------------------------------------------------------------------------------------------- SVG


def _d(rings: Iterable[np.ndarray], close: bool, decimals: int = 1) -> str:
    """SVG path data; whole pixels for the background (a third lighter), tenths for what the alerts draw.
    Points that rounding merges are written once."""
    parts = []
    for ring in rings:
        if len(ring) == 0:
            continue
        rounded = np.round(ring, decimals)
        keep = np.ones(len(rounded), dtype=bool)
        keep[1:] = (np.diff(rounded, axis=0) != 0).any(axis=1)
        rounded = rounded[keep]
        if decimals == 0:
            coords = " ".join(f"{int(x)},{int(y)}" for x, y in rounded)
        else:
            coords = " ".join(f"{x:.{decimals}f},{y:.{decimals}f}" for x, y in rounded)
        parts.append(f"M{coords}{'Z' if close else ''}")
    return "".join(parts)


def to_svg(scene: Scene, map_id: str = "carte") -> str:
    """The scene as an inline SVG element (role img, with a title and a description)."""
    drawn = [m for m in scene.marks if m.drawn]
    desc = (
        f"{len(drawn)} alerte(s) localisée(s) sur la carte. La liste qui suit la carte donne les mêmes "
        "routes et lieux en texte."
        if drawn
        else "Aucune alerte localisée sur la carte."
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{map_id}" class="map" viewBox="0 0 {scene.width} {scene.height + 22}"'
        f' width="{scene.width}" height="{scene.height + 22}" role="img" aria-labelledby="{map_id}-titre {map_id}-desc"'
        ' preserveAspectRatio="xMidYMid meet" font-family="system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif">',
        f'<title id="{map_id}-titre">{escape(scene.title)}</title>',
        f'<desc id="{map_id}-desc">{escape(desc)}</desc>',
    ]
    for shape in scene.shapes:
        title = f"<title>{escape(shape.title)}</title>" if shape.title else ""
        if shape.kind == "area":
            out.append(
                f'<path d="{_d(shape.rings, True, 0 if shape.background else 1)}" fill="{shape.fill}" fill-rule="evenodd"'
                + (f' fill-opacity="{shape.fill_opacity}"' if shape.fill_opacity != 1 else "")
                + (
                    f' stroke="{shape.stroke}" stroke-width="{shape.width}" stroke-linejoin="round"'
                    if shape.stroke != "none"
                    else ""
                )
                + f">{title}</path>"
            )
        elif shape.kind == "line":
            d = _d(shape.rings, False)
            dash = f' stroke-dasharray="{shape.dash}"' if shape.dash else ""
            out.append(
                f'<g>{title}<path d="{d}" fill="none" stroke="{shape.casing or PAPER}" stroke-width="{shape.width + 4}"'
                ' stroke-linecap="round" stroke-linejoin="round"/>'
                f'<path d="{d}" fill="none" stroke="{shape.stroke}" stroke-width="{shape.width}"{dash}'
                ' stroke-linecap="round" stroke-linejoin="round"/></g>'
            )
        elif shape.kind == "point":
            x, y = shape.rings[0][0]
            sign = (
                f'<rect x="{x - 6:.1f}" y="{y - 2:.1f}" width="12" height="4" fill="{PAPER}"/>'
                if shape.closed_sign
                else ""
            )
            out.append(
                f'<g>{title}<circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="{shape.fill}" stroke="{INK}"'
                f' stroke-width="1.5"/>{sign}</g>'
            )
        elif shape.kind == "label":
            x, y = shape.rings[0][0]
            weight = ' font-weight="700"' if shape.bold else ""
            ink = shape.fill if shape.fill != "none" else INK
            out.append(
                f'<text x="{x:.1f}" y="{y:.1f}" font-size="{shape.size}" text-anchor="middle" fill="{ink}"'
                f' stroke="{PAPER}" stroke-width="3" paint-order="stroke"{weight}>{escape(shape.text)}</text>'
            )
    out.append(
        f'<text x="{scene.width - 4}" y="{scene.height + 16}" font-size="12" text-anchor="end" fill="{INK}">'
        f"{escape(ATTRIBUTION)}</text>"
    )
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------------------- the pages


@dataclass(slots=True)
class MapView:
    """What a page shows: the SVG, and the text alternative (every mark, drawn or not)."""

    svg: Markup
    marks: list[Mark]
    attribution: str = ATTRIBUTION

    @property
    def unplaced(self) -> list[Mark]:
        return [m for m in self.marks if not m.drawn]


_ATLASES: dict[pathlib.Path, Atlas | None] = {}
_LOADING: dict[pathlib.Path, asyncio.Lock] = {}


async def atlas_for(crieur: Any) -> Atlas | None:
    """The outlines named by `service.geo`, loaded once per process (in a thread: a few hundred ms);
    None when no folder is configured or it cannot be read (the pages then show no map, and say why in
    the log once)."""
    folder = getattr(crieur.config, "geo", None)
    if folder is None:
        return None
    folder = pathlib.Path(folder).resolve()
    if folder in _ATLASES:
        return _ATLASES[folder]
    lock = _LOADING.setdefault(folder, asyncio.Lock())
    async with lock:
        if folder not in _ATLASES:
            try:
                _ATLASES[folder] = await asyncio.to_thread(Atlas.load, folder)
            except GeoError as exc:
                log.error("no map: %s", exc)
                _ATLASES[folder] = None
    return _ATLASES[folder]


async def marks_for(
    crieur: Any, alerts: Sequence[Alert], atlas: Atlas | None, commune_names: dict[str, str]
) -> list[Mark]:
    from .feeds import source_item

    return [mark_for(alert, await source_item(crieur, alert), atlas, commune_names) for alert in alerts]


_VIEWS: OrderedDict[tuple[Any, ...], MapView] = OrderedDict()
VIEW_CACHE_SIZE = 64


async def map_view(crieur: Any, territory: Any, alerts: Sequence[Alert], map_id: str = "carte") -> MapView | None:
    """The map of `territory` (a site.TerritoryInfo) with `alerts`, or None without outlines. A map is drawn
    once per set of alert versions (a snow night's readers all see the same few), then served from memory."""
    atlas = await atlas_for(crieur)
    if atlas is None or atlas.departement(territory.code) is None:
        return None
    key = (id(atlas), territory.code, map_id, tuple((a.id, a.updated_at, a.status) for a in alerts))
    if key in _VIEWS:
        _VIEWS.move_to_end(key)
        return _VIEWS[key]
    marks = await marks_for(crieur, alerts, atlas, dict(territory.communes))
    scene = build_scene(atlas, territory.code, territory.name, marks, labels=territory.communes.values())
    view = _VIEWS[key] = MapView(Markup(to_svg(scene, map_id)), scene.marks)
    while len(_VIEWS) > VIEW_CACHE_SIZE:
        _VIEWS.popitem(last=False)
    return view
