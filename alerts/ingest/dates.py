"""Feed dates written with localised day and month names ("lun., 24 déc. 2018 10:00:00 +0100",
"Seg, 24 Set 2018 19:42:40 -0300", "martes, 4 de diciembre de 2018 09:00"), and French numeric dates
("24/12/2018 10:00"), which feedparser's own handlers do not read.

`register()` installs `localised_date` as a feedparser date handler. It declines (returns None) for
English day names, so feedparser's RFC 822 handling stays in charge of those; abbreviations shared
with English ("Dec", "Mar") mean the same month in every language read here. A date without a zone
is read in Europe/Paris, like every naive date from French publishers (see common.parse_datetime).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import feedparser

from ..roads import fold
from .common import _FRENCH_DATE, PARIS, parse_datetime

# Full month names, accent-folded, in the Romance languages of European publishers.
_MONTH_NAMES: dict[int, tuple[str, ...]] = {
    1: ("janvier", "janeiro", "enero", "gennaio", "gener", "ianuarie"),
    2: ("fevrier", "fevereiro", "febrero", "febbraio", "febrer", "februarie"),
    3: ("mars", "marco", "marzo", "marc", "martie"),
    4: ("avril", "abril", "aprile", "aprilie"),
    5: ("mai", "maio", "mayo", "maggio", "maig"),
    6: ("juin", "junho", "junio", "giugno", "juny", "iunie"),
    7: ("juillet", "julho", "julio", "luglio", "juliol", "iulie"),
    8: ("aout", "agosto", "agost", "august"),
    9: ("septembre", "setembro", "septiembre", "settembre", "setembre", "septembrie"),
    10: ("octobre", "outubro", "octubre", "ottobre", "octombrie"),
    11: ("novembre", "novembro", "noviembre", "noiembrie"),
    12: ("decembre", "dezembro", "diciembre", "dicembre", "desembre", "decembrie"),
}
# Abbreviations that are not a prefix of their month's full name.
_ABBREVIATIONS = {"fev": 2, "fevr": 2, "aou": 8, "ag": 8, "dez": 12, "set": 9, "sett": 9}
_ENGLISH_DAY = re.compile(r"^\s*(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,", re.IGNORECASE)
_ZONES = {
    "gmt": 0,
    "utc": 0,
    "ut": 0,
    "z": 0,
    "cet": 60,
    "cest": 120,
    "met": 60,
    "mest": 120,
    "wet": 0,
    "west": 60,
    "brt": -180,
    "brst": -120,
}

_DATE = re.compile(
    r"^\s*(?:[a-z]+\.?,?\s+)?"  # day name: "lun.,", "Seg,", "martes,"
    r"(?P<day>\d{1,2})(?:er|o|º)?\.?\s+(?:de\s+)?"  # "24", "1er", "4 de"
    r"(?P<month>[a-z]+)\.?,?\s+(?:de\s+)?"  # "déc.", "Set", "diciembre de"
    r"(?P<year>\d{4}),?"
    r"(?:\s+(?:a|as|à|alle|a\s+las|um|-)?\s*(?P<H>\d{1,2})\s*[:h]\s*(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
    r"\s*(?P<zone>[+-]\d{2}:?\d{2}|[a-z]{1,5})?\s*$"
)


def _month(token: str) -> int | None:
    if token in _ABBREVIATIONS:
        return _ABBREVIATIONS[token]
    if len(token) < 3:
        return None
    found = {number for number, names in _MONTH_NAMES.items() for name in names if name.startswith(token)}
    return found.pop() if len(found) == 1 else None


def _zone(value: str | None) -> timezone | None:
    if not value:
        return None
    if value[0] in "+-":
        digits = value[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:])
        return timezone(timedelta(minutes=minutes if value[0] == "+" else -minutes))
    if value in _ZONES:
        return timezone(timedelta(minutes=_ZONES[value]))
    raise ValueError(f"unknown time zone {value!r}")


def parse_localised(value: str) -> datetime | None:
    """An aware datetime from a localised date, or None when it is not one (English names included)."""
    if not value:
        return None
    if _FRENCH_DATE.match(value.strip()):
        return parse_datetime(value)
    if _ENGLISH_DAY.match(value):  # RFC 822 as written: feedparser's own handler reads it
        return None
    match = _DATE.match(fold(value))
    if not match:
        return None
    month = _month(match["month"])
    if month is None:
        return None
    try:
        zone = _zone(match["zone"])
        naive = datetime(
            int(match["year"]),
            month,
            int(match["day"]),
            int(match["H"] or 0),
            int(match["M"] or 0),
            int(match["S"] or 0),
        )
    except ValueError:
        return None
    return naive.replace(tzinfo=zone or PARIS)


def localised_date(value: str) -> time.struct_time | None:
    """feedparser date handler: a UTC struct_time, or None to let the next handler try."""
    parsed = parse_localised(value)
    return parsed.astimezone(timezone.utc).timetuple() if parsed else None


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        feedparser.registerDateHandler(localised_date)
        _registered = True
