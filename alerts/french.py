"""How Crieur writes dates and times for French readers ("24 décembre 2026 à 18 h 05", Europe/Paris)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _local(value: datetime | float) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), timezone.utc)
    return value.astimezone(PARIS)


def date_fr(value: datetime | float) -> str:
    """ "24 décembre 2026" (the Paris calendar day)."""
    local = _local(value)
    day = "1er" if local.day == 1 else str(local.day)
    return f"{day} {MONTHS[local.month - 1]} {local.year}"


def datetime_fr(value: datetime | float) -> str:
    """ "24 décembre 2026 à 18 h 05", in Europe/Paris time."""
    local = _local(value)
    return f"{date_fr(local)} à {local.hour} h {local.minute:02d}"


def without_article(name: str) -> str:
    """ "la Préfecture de Loir-et-Cher" -> "Préfecture de Loir-et-Cher", as written after "Source :"."""
    name = name.strip()
    for article in ("le ", "la ", "les ", "l'", "l’"):
        if name.lower().startswith(article):
            name = name[len(article) :]
            break
    return name[:1].upper() + name[1:]


def clock_fr(hours: int, minutes: int) -> str:
    """ "7 h", "18 h 30"."""
    return f"{hours} h" if not minutes else f"{hours} h {minutes:02d}"
