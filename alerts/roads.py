"""Find and normalise French road references ("RD 957", "N10", "autoroute A10", "VC 12").

Matching runs on an accent-folded copy of the text that keeps every character at its position, so
that the original case is still available where it disambiguates: a bare spaced single letter
("A 10", "D 957", "N 10") is only a road when the letter is an upper-case Latin letter, because
"à 10 km" folds to "a 10 km". Attached forms ("D957", "a10") and explicit prefixes ("RD", "route
départementale") are accepted in any case.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from .domain import Road

__all__ = ["parse_roads", "normalise_road", "fold"]

_NUMBER = r"(?P<num>\d{1,4})(?P<suffix>[a-z])?"
# "n°", "no", "numéro" may sit between an explicit prefix and the number.
_NO = r"(?:\s*(?:n\s*°|n\s*o\b\.?|numero)\s*)?"

# Explicit prefixes: any case, optional space, optional "n°".
_EXPLICIT = [
    ("D", r"route\s+departementale|departementale|r\.?\s?d\.?"),
    ("N", r"route\s+nationale|nationale|r\.?\s?n\.?"),
    ("A", r"autoroute\s+a|autoroute"),
    ("C", r"voie\s+communale|chemin\s+communal|v\.?\s?c\.?"),
]
# Single-letter prefixes: "D957" (attached, any case) or "D 957" (spaced, upper case only).
_SINGLE = {"d": "D", "n": "N", "a": "A"}

_PATTERN = re.compile(
    r"(?<!\w)(?:"
    + "|".join(f"(?P<{kind}>{prefix})\\s*{_NO}" for kind, prefix in _EXPLICIT)
    + r"|(?P<single>[dna])(?P<gap>\s*)"
    + r")"
    + _NUMBER
    + r"(?![\w°'’,.]\d|\w|\s*(?:km|m|h|min|cm|mm|kg|t|%|°|€|heures?|minutes?|jours?|ans?|mois)\b)",
)
# "RD 957." ends a sentence; "10.5" and "10,5" are decimals, so only a digit after "." or "," rejects.


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character without its accents, lower-cased, always exactly one character long."""
    base = unicodedata.normalize("NFKD", char)[:1] or char
    lowered = base.lower()
    return lowered if len(lowered) == 1 else base


def fold(text: str) -> str:
    """Lower case without accents, same length as `text` (position i is still character i)."""
    if text.isascii():
        return text.lower()
    return "".join(_fold_char(c) for c in text)


def _match_to_road(match: re.Match[str], original: str, strict: bool) -> Road | None:
    number = match.group("num").lstrip("0") or "0"
    suffix = (match.group("suffix") or "").upper()
    single = match.group("single")
    if single is not None:
        kind = _SINGLE[single]
        if match.group("gap") and strict:
            letter = original[match.start("single")]
            if letter != kind:  # "à 10", "a 10", "d 3" are prose, not roads
                return None
    else:
        kind = next(k for k, _ in _EXPLICIT if match.group(k) is not None)
    return Road(kind, number + suffix)


def parse_roads(text: str) -> tuple[Road, ...]:
    """Every road reference in `text`, normalised, deduplicated, in order of first appearance."""
    if not text:
        return ()
    folded = fold(text)
    found: dict[Road, None] = {}
    for match in _PATTERN.finditer(folded):
        road = _match_to_road(match, text, strict=True)
        if road is not None:
            found.setdefault(road, None)
    return tuple(found)


def normalise_road(ref: str) -> Road | None:
    """One reference ("RD957", "route nationale 10", "a 10") as a Road, or None if it is not one.

    A reference given alone is unambiguous, so the spaced single-letter form is accepted in any case.
    """
    if not ref:
        return None
    stripped = ref.strip()
    folded = fold(stripped)
    match = _PATTERN.fullmatch(folded)
    if match is None:
        return None
    return _match_to_road(match, stripped, strict=False)
