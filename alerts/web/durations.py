"""Durations as a French reader says them: "12 s", "2 min", "1 h 05", "3 j"; "il y a 2 min", "dans 30 s"."""

from __future__ import annotations


def duration_fr(seconds: float) -> str:
    """A rounded, readable duration: below a minute in seconds, below an hour in minutes, then hours."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{int(round(seconds))} s"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest:02d}" if rest else f"{hours} h"
    return f"{round(hours / 24)} j"


def ago(seconds: float) -> str:
    """ "il y a 2 min" (a time in the past, `seconds` before now); "à l'instant" under 5 s."""
    if seconds < 5:
        return "à l'instant"
    return f"il y a {duration_fr(seconds)}"


def within(seconds: float) -> str:
    """ "dans 30 s" (a time `seconds` from now); "maintenant" when due."""
    if seconds < 1:
        return "maintenant"
    return f"dans {duration_fr(seconds)}"
