"""Exercise mode: a CAP item whose `status` is Exercise or Test becomes an *exercise* alert.

An exercise goes only to the channels `crieur.yaml` marks for exercises (`exercise.channels`), its SMS only
to the exercise numbers (`exercise.recipients`), never to the subscribers' lists; every text starts with
"EXERCICE"; it is never on the public page, feeds or API. Without exercise channels an exercise goes
nowhere (logged), it never falls back to the real ones.

    exercise:
      channels: [email-cellule, sms]       # channels that carry exercises
      recipients: ["+33612345601"]         # the only numbers an exercise SMS reaches
"""

from __future__ import annotations

import logging
from typing import Sequence

from .domain import Alert, Item

log = logging.getLogger("crieur.exercise")

EXERCISE_STATUSES = frozenset({"exercise", "test"})  # CAP 1.2 <status> values that are not real
PREFIX = "EXERCICE"


def is_exercise(item: Item) -> bool:
    return str(item.attributes.get("status", "")).strip().lower() in EXERCISE_STATUSES


def prepare(alert: Alert, exercise_channels: Sequence[str]) -> Alert:
    """Turn a rule's alert into an exercise: exercise channels only, "EXERCICE : " before the title."""
    alert.exercise = True
    kept = tuple(c for c in alert.channels if c in exercise_channels)
    dropped = [c for c in alert.channels if c not in exercise_channels]
    if dropped:
        log.info("exercise %r: not sent on %s (not exercise channels)", alert.title, ", ".join(dropped))
    alert.channels = kept
    if not alert.title.upper().startswith(PREFIX):
        alert.title = f"{PREFIX} : {alert.title}" if alert.title else PREFIX
    return alert


def marked(alert: Alert, text: str) -> str:
    """A rendered exercise text always starts with EXERCICE, whatever the template does with the title."""
    if alert.exercise and not text.upper().startswith(PREFIX):
        return f"{PREFIX} : {text}"
    return text
