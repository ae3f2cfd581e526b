"""Road references as rules and territories write them.

The full normaliser ("route départementale 957", "RD957", ...) is `alerts.roads`; it is imported lazily
so the rule engine also works where that module is absent, with a smaller built-in reader of the common
forms ("RD 957", "D957", "RN10", "A 10", "VC 3" → C3).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

from alerts.domain import Road

KINDS = ("D", "N", "A", "C")
_KIND_ALIASES = {"RD": "D", "D": "D", "RN": "N", "N": "N", "A": "A", "C": "C", "VC": "C"}
_REF = re.compile(r"^(RD|RN|VC|D|N|A|C)\s*0*(\d{1,4}[A-Z]?)$", re.IGNORECASE)
_IN_TEXT = re.compile(r"\b(RD|RN|VC|D|N|A)\s?0*(\d{1,4}[A-Z]?)\b")


def parse_road_spec(value: str) -> str | Road | None:
    """"D" → kind "D"; "D957" / "RD 957" → Road("D", "957"); anything else None."""
    text = value.strip().upper()
    if text in _KIND_ALIASES:
        return _KIND_ALIASES[text]
    external = _external("normalise_road")
    if external is not None:
        road = external(value)
        if road is not None:
            return road
    match = _REF.match(text)
    if match:
        return Road(_KIND_ALIASES[match.group(1).upper()], match.group(2).upper())
    return None


def roads_in_text(text: str) -> tuple[Road, ...]:
    """Roads written in free text, in order of appearance, without duplicates."""
    external = _external("parse_roads")
    if external is not None:
        return tuple(external(text))
    seen: dict[Road, None] = {}
    for match in _IN_TEXT.finditer(text):
        seen.setdefault(Road(_KIND_ALIASES[match.group(1)], match.group(2).upper()), None)
    return tuple(seen)


@lru_cache(maxsize=None)
def _external(name: str) -> Callable | None:
    try:
        from alerts import roads as module  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(module, name, None)
