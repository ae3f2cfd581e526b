"""Territories: who Crieur speaks for, and how an item is attributed to them.

File format (see examples/loir-et-cher/territories.yaml)::

    territories:
      - code: "41"                 # département code ("41", "2A", "971")
        name: Loir-et-Cher
        hashtag: "#route41"
        roads: [D]                 # road kinds ("D") or exact refs ("N10") this territory manages
        match_names: true          # also recognise commune and département names in the text
        communes:                  # INSEE code: name
          "41018": Blois
        border_communes:           # listed communes near another territory's edge: INSEE code: [codes]
          "41075": ["28"]          # an item about Droué also carries #route28

An item resolves to territories from, in this order of confidence:
  * its areas: departement code; commune INSEE code (listed commune, else its département prefix);
    NUTS3 ("FR245" or "FRB05" → 41) and verified Meteoalarm EMMA_IDs ("FR035" → 74, see alerts.geocodes);
  * when `match_names` is set, commune and département names written in its title or text, compared
    without case or accents, on whole words ("Vendôme" = "VENDOME", but "Bloisiens" is not "Blois");
  * a border commune (found by its code or its name) also brings the territories its entry lists;
  * its roads, only when exactly one territory manages that road (a D957 exists in many départements,
    so with 41 and 28 both managing D roads a bare "D957" resolves nothing).
The result is in the order of the file, so hashtags always come out in the same order.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import ahocorasick

from alerts.domain import Item, Road
from alerts.geocodes import emma_departement, nuts3_departement

from .roads import parse_road_spec, roads_in_text
from .text import normalise, normalise_phrase
from .yamlcheck import Checker, RuleError, ValidationFailed, compose, display_name

_DEPT = re.compile(r"^(\d{2}|2[AB]|97\d)$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_HASHTAG = re.compile(r"^#\w+$")


@dataclass(frozen=True, slots=True)
class Territory:
    code: str
    name: str
    hashtag: str
    communes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    road_kinds: frozenset[str] = frozenset()
    road_refs: frozenset[Road] = frozenset()
    match_names: bool = False
    border_communes: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)


def departement_of(insee: str) -> str:
    """Département part of an INSEE commune code: 41018 → 41, 2A004 → 2A, 97105 → 971."""
    return insee[:3] if insee.startswith("97") else insee[:2]


def emma_to_departement(code: str) -> str | None:
    """A Meteoalarm EMMA_ID's département, when verified: FR035 → 74 (EMMA_IDs are not département numbers)."""
    return emma_departement(code)


class Territories:
    """The configured territories, in file order, with the lookups `resolve` needs."""

    def __init__(self, territories: Iterable[Territory]):
        self.items: tuple[Territory, ...] = tuple(territories)
        self.by_code = {t.code: t for t in self.items}
        self._order = {t.code: i for i, t in enumerate(self.items)}
        self._commune = {insee: t.code for t in self.items for insee in t.communes}
        # INSEE code -> every territory an item about that commune concerns (border communes bring several)
        self._commune_territories = {
            insee: frozenset({t.code, *t.border_communes.get(insee, ())}) for t in self.items for insee in t.communes
        }
        names: dict[str, set[str]] = {}
        for t in self.items:
            if not t.match_names:
                continue
            named = [(t.name, {t.code})] + [(n, self._commune_territories[i]) for i, n in t.communes.items()]
            for name, codes in named:
                phrase = normalise_phrase(name)
                if phrase:
                    names.setdefault(f" {phrase} ", set()).update(codes)
        self._names = None
        if names:
            automaton = ahocorasick.Automaton()
            for phrase, codes in names.items():
                automaton.add_word(phrase, frozenset(codes))
            automaton.make_automaton()
            self._names = automaton

    def __contains__(self, code: str) -> bool:
        return code in self.by_code

    def __len__(self) -> int:
        return len(self.items)

    def codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.items)

    def ordered(self, codes: Iterable[str]) -> tuple[str, ...]:
        """Known codes in file order, without duplicates (unknown codes are dropped)."""
        return tuple(sorted({c for c in codes if c in self._order}, key=self._order.__getitem__))

    def hashtags(self, codes: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.by_code[c].hashtag for c in self.ordered(codes))

    def resolve(self, item: Item, normalised_text: str | None = None) -> tuple[str, ...]:
        """Territory codes the item concerns (see module docstring). `normalised_text` lets the engine
        pass the text it has already normalised."""
        found: set[str] = set()
        for area in item.areas:
            code = self._area_territory(area.kind, area.code)
            if code is not None:
                found.add(code)
                if area.kind.casefold() == "commune":
                    found.update(self._commune_territories.get(area.code.strip().upper(), ()))
        if self._names is not None:
            if normalised_text is None:
                normalised_text = normalise(f"{item.title}\n{item.text}")
            for _end, codes in self._names.iter(normalised_text):
                found.update(codes)
        roads = item.roads or (roads_in_text(f"{item.title}\n{item.text}") if self._manages_refs() else ())
        for road in roads:
            owners = [t.code for t in self.items if road in t.road_refs]
            if not owners:
                owners = [t.code for t in self.items if road.kind in t.road_kinds]
            if len(owners) == 1:
                found.add(owners[0])
        return self.ordered(found)

    def _manages_refs(self) -> bool:
        return any(t.road_refs for t in self.items)

    def _area_territory(self, kind: str, code: str) -> str | None:
        kind = kind.casefold()
        code = code.strip().upper()
        if kind in ("departement", "département", "department"):
            return code if code in self.by_code else None
        if kind == "commune":
            if code in self._commune:
                return self._commune[code]
            dept = departement_of(code)
            return dept if dept in self.by_code else None
        if kind in ("emma_id", "nuts3"):
            coded = emma_departement(code) if kind == "emma_id" else nuts3_departement(code)
            return coded if coded in self.by_code else None
        return None


def load_territories(path: str | os.PathLike[str]) -> Territories:
    """Read and validate a territories file; raises ValidationFailed with every error."""
    territories, errors = check_territories(path)
    if errors:
        raise ValidationFailed(errors)
    assert territories is not None
    return territories


def check_territories(path: str | os.PathLike[str]) -> tuple[Territories | None, list[RuleError]]:
    name = display_name(path)
    root, errors = compose(path)
    if errors:
        return None, errors
    checker = Checker(name)
    if root is None:
        checker.error(None, "", "the file is empty: expected 'territories:'")
        return None, checker.errors
    top = checker.mapping(root, "", ["territories"], required=["territories"])
    result: list[Territory] = []
    if top and "territories" in top:
        seen: set[str] = set()
        border_nodes: list[tuple[Any, str, tuple[str, ...]]] = []
        for node, path_ in checker.items(top["territories"][1], "territories", scalar_ok=False):
            territory = _territory(checker, node, path_, border_nodes)
            if territory is None:
                continue
            if territory.code in seen:
                checker.error(node, path_, f"territory {territory.code!r} is defined twice")
                continue
            seen.add(territory.code)
            result.append(territory)
        for value_node, where, codes in border_nodes:
            unknown = [c for c in codes if c not in seen]
            if unknown:
                checker.error(value_node, where, f"no territory {', '.join(map(repr, unknown))} in this file")
    if checker.errors:
        return None, sorted(checker.errors, key=lambda e: (e.line, e.column))
    return Territories(result), []


def _territory(checker: Checker, node, path: str, border_nodes: list) -> Territory | None:
    fields = checker.mapping(
        node,
        path,
        ["code", "name", "hashtag", "roads", "match_names", "communes", "border_communes"],
        required=["code", "name", "hashtag"],
    )
    if fields is None:
        return None
    before = len(checker.errors)
    code = name = hashtag = None
    if "code" in fields:
        code = checker.string(fields["code"][1], f"{path}.code")
        if code is not None and not _DEPT.match(code.upper()):
            checker.error(fields["code"][1], f"{path}.code", f"expected a département code like 41 or 2A, got {code!r}")
        code = code.upper() if code else code
    if "name" in fields:
        name = checker.string(fields["name"][1], f"{path}.name")
    if "hashtag" in fields:
        hashtag = checker.string(fields["hashtag"][1], f"{path}.hashtag")
        if hashtag is not None and not _HASHTAG.match(hashtag):
            checker.error(fields["hashtag"][1], f"{path}.hashtag", f"expected a hashtag like #route41, got {hashtag!r}")
    kinds: set[str] = set()
    refs: set[Road] = set()
    if "roads" in fields:
        values: list[str | Road] = checker.string_list(
            fields["roads"][1], f"{path}.roads", lambda v, n, p: _road(checker, v, n, p)
        )
        for value in values:
            if isinstance(value, Road):
                refs.add(value)
            else:
                kinds.add(value)
    match_names = False
    if "match_names" in fields:
        match_names = bool(checker.boolean(fields["match_names"][1], f"{path}.match_names"))
    communes: dict[str, str] = {}
    if "communes" in fields:
        communes_node = fields["communes"][1]
        entries = checker.mapping(communes_node, f"{path}.communes", None)
        for insee, (key_node, value_node) in (entries or {}).items():
            insee = insee.upper()
            if not _INSEE.match(insee):
                checker.error(key_node, f"{path}.communes", f"expected a 5-character INSEE code, got {insee!r}")
                continue
            commune_name = checker.string(value_node, f"{path}.communes.{insee}")
            if commune_name is not None:
                communes[insee] = commune_name
    border: dict[str, tuple[str, ...]] = {}
    if "border_communes" in fields:
        entries = checker.mapping(fields["border_communes"][1], f"{path}.border_communes", None)
        for insee, (key_node, value_node) in (entries or {}).items():
            where = f"{path}.border_communes.{insee}"
            if insee.upper() not in communes:
                checker.error(
                    key_node, where, f"{insee!r} is not one of this territory's communes: list it there first"
                )
                continue
            codes = checker.string_list(value_node, where)
            bad = [c for c in codes if not _DEPT.match(c.upper())]
            if bad or not codes:
                checker.error(value_node, where, f"expected territory codes like [28], got {bad or codes!r}")
                continue
            border[insee.upper()] = tuple(c.upper() for c in codes)
            border_nodes.append((value_node, where, border[insee.upper()]))
    if len(checker.errors) > before or code is None or name is None or hashtag is None:
        return None
    return Territory(code, name, hashtag, communes, frozenset(kinds), frozenset(refs), match_names, border)


def _road(checker: Checker, value: str, node, path: str) -> str | Road | None:
    spec = parse_road_spec(value)
    if spec is None:
        checker.error(node, path, f"expected a road kind (D, N, A, C) or a road like D957, got {value!r}")
    return spec
