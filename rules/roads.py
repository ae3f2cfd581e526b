"""Road references as rules and territories write them: a road kind alone ("D": every départementale) or
one road ("D957", "RD 957", "route départementale 957"). Reading references is `alerts.roads`' job."""

from __future__ import annotations

from alerts.domain import Road
from alerts.roads import normalise_road, parse_roads

KINDS = ("D", "N", "A", "C")
_KIND_ALIASES = {"RD": "D", "D": "D", "RN": "N", "N": "N", "A": "A", "C": "C", "VC": "C"}


def parse_road_spec(value: str) -> str | Road | None:
    """ "D" → kind "D"; "D957" / "RD 957" → Road("D", "957"); anything else None."""
    text = value.strip().upper()
    if text in _KIND_ALIASES:
        return _KIND_ALIASES[text]
    return normalise_road(value)


def roads_in_text(text: str) -> tuple[Road, ...]:
    """Roads written in free text, in order of appearance, without duplicates."""
    return tuple(parse_roads(text))
