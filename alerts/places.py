"""Targeting by place: what a citizen subscribes to, and which subscriptions an alert reaches.

A subscription is a *place key*, stored in `subscribers.territory`:
- ``41``: the whole département (what "ROUTE41" has always meant);
- ``41:commune:41269``: one commune (INSEE code), "ROUTE41 VENDOME";
- ``41:route:D957``: one road within the département, "ABONNER D957".

An alert reaches the subscribers of its territories (whole département), of the communes it names or whose
outline its geometry touches, and of the roads it names. Commune outlines are GeoJSON files (properties
`code` and `nom`, WGS84) read with shapely: a closure given as a point or a line finds the communes it lies in.
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from shapely import STRtree
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .domain import Alert, Road
from .roads import fold

# A closure given as a point is "near" the communes within this distance (degrees; about 500 m).
POINT_TOLERANCE = 0.005


def territory_key(territory: str) -> str:
    return territory


def commune_key(insee: str) -> str:
    return f"{departement_of(insee)}:commune:{insee}"


def road_key(territory: str, road: Road | str) -> str:
    return f"{territory}:route:{road}"


def departement_of(insee: str) -> str:
    """The département of an INSEE commune code: "41269" -> "41", "97411" -> "974", "2A004" -> "2A"."""
    return insee[:3] if insee.startswith("97") else insee[:2]


def territory_of_key(key: str) -> str:
    """The département a place key belongs to."""
    return key.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    name: str
    outline: BaseGeometry


class Gazetteer:
    """Communes by INSEE code and by name, and which ones a geometry touches."""

    def __init__(self, communes: Iterable[Commune]):
        self.communes: dict[str, Commune] = {c.code: c for c in communes}
        self._by_name: dict[str, list[Commune]] = {}
        for commune in self.communes.values():
            self._by_name.setdefault(name_key(commune.name), []).append(commune)
        self._list = list(self.communes.values())
        self._tree = STRtree([c.outline for c in self._list])

    @classmethod
    def from_files(cls, paths: Sequence[pathlib.Path]) -> "Gazetteer":
        communes = []
        for path in paths:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: not a readable GeoJSON file ({exc})") from exc
            for index, feature in enumerate(data.get("features", [])):
                props = feature.get("properties") or {}
                if not props.get("code") or not props.get("nom") or not feature.get("geometry"):
                    raise ValueError(f"{path}: feature {index} lacks its code, nom or geometry")
                communes.append(Commune(str(props["code"]), str(props["nom"]), shape(feature["geometry"])))
        return cls(communes)

    @classmethod
    def from_folder(cls, folder: pathlib.Path) -> "Gazetteer":
        """Every `communes-*.geojson` of a folder."""
        paths = sorted(folder.glob("communes-*.geojson"))
        if not paths:
            raise ValueError(f"{folder}: no communes-*.geojson file")
        return cls.from_files(paths)

    def name(self, insee: str) -> str:
        commune = self.communes.get(insee)
        return commune.name if commune else insee

    def find(self, words: str, territory: str | None = None) -> list[Commune]:
        """Communes named `words` ("vendome", "Romorantin Lanthenay"), within `territory` if given."""
        found = self._by_name.get(name_key(words), [])
        return [c for c in found if territory is None or departement_of(c.code) == territory]

    def named_in(self, text: str, territory: str | None = None) -> Commune | None:
        """The first commune a free text names ("la route de Romorantin Lanthenay est-elle salée ?"), the
        longest name winning at a position; None when it names none."""
        words = re.findall(r"[^\W_]+", name_key(text))
        for start in range(len(words)):
            for length in range(min(6, len(words) - start), 0, -1):
                found = self.find(" ".join(words[start : start + length]), territory)
                if found:
                    return found[0]
        return None

    def touching(self, geometry: Mapping[str, Any] | BaseGeometry) -> list[str]:
        """INSEE codes of the communes a GeoJSON geometry lies in or crosses (a point: within ~500 m)."""
        geom = geometry if isinstance(geometry, BaseGeometry) else shape(geometry)
        if geom.geom_type in ("Point", "MultiPoint", "LineString", "MultiLineString"):
            geom = geom.buffer(POINT_TOLERANCE)
        return sorted(self._list[i].code for i in self._tree.query(geom, predicate="intersects"))


@functools.cache
def gazetteer_for(folder: pathlib.Path | None) -> Gazetteer | None:
    """The communes of the configured `service.geo` folder, read once per process; None when unset."""
    return Gazetteer.from_folder(folder) if folder is not None else None


def name_key(name: str) -> str:
    """Compare commune names without case, accents, hyphens or apostrophes ("Saint-Aignan" = "st aignan")."""
    words = fold(name).replace("-", " ").replace("'", " ").split()
    return " ".join("saint" if w == "st" else "sainte" if w == "ste" else w for w in words)


@dataclass(frozen=True, slots=True)
class Target:
    """One reason an alert reaches people: a place key and how to say it."""

    key: str
    label: str
    whole: bool = False  # a territory an alert concerns as a whole: its communes' and roads' subscribers too


def targets(
    alert: Alert, gazetteer: Gazetteer | None = None, geometry: Mapping[str, Any] | None = None
) -> list[Target]:
    """The place keys an alert reaches, each with its French label: its whole territories, the communes it
    names or its geometry touches (within its territories), and its roads in each territory."""
    communes = [a.code for a in alert.areas if a.kind == "commune"]
    geometry = geometry if geometry is not None else alert.geometry
    if geometry is not None and gazetteer is not None:
        communes += gazetteer.touching(geometry)
    communes = [insee for insee in communes if departement_of(insee) in alert.territories]
    placed = bool(communes or alert.roads)
    out: dict[str, Target] = {}
    for territory in alert.territories:
        out[territory] = Target(territory, f"tout le {territory}", whole=not placed)
    for insee in communes:
        name = gazetteer.name(insee) if gazetteer else insee
        out.setdefault(commune_key(insee), Target(commune_key(insee), f"commune de {name}"))
    for territory in alert.territories:
        for road in alert.roads:
            key = road_key(territory, road)
            out.setdefault(key, Target(key, f"route {road}"))
    return list(out.values())


@dataclass(frozen=True, slots=True)
class Audience:
    """How many distinct numbers an alert reaches, and how many subscribed for each reason (a number
    subscribed for two reasons counts in both, and once in the total)."""

    total: int
    reasons: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        """ "1 234 personnes : tout le 41 (1 000), commune de Vendôme (200), route D957 (40)" """
        people = "personne" if self.total <= 1 else "personnes"
        parts = ", ".join(f"{label} ({count})" for label, count in self.reasons if count)
        return f"{self.total} {people}" + (f" : {parts}" if parts else "")
