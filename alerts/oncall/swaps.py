"""On-call swaps entered in the console: "Yanis replaces Camille tonight" without editing the rota file.

A swap is a dated shift (CM, back-up, Paris-time period) kept in the table oncall_swaps (migration 0013),
so every process pages the same people; it comes before every shift of the file, the newest swap first
where two overlap. Cancelling one keeps its row for the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from alerts.errors import CrieurError

from .rota import Rota, Shift

MAX_LENGTH = timedelta(days=31)


class SwapRefused(CrieurError, ValueError):
    """A swap that cannot be recorded; the message, in French, names the field (for the console's form)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Swap:
    id: int
    starts_at: datetime
    ends_at: datetime
    cm: str
    backup: str
    reason: str
    created_by: str

    def shift(self) -> Shift:
        return Shift(self.cm, self.backup, period=(self.starts_at, self.ends_at))


def _swap(row: dict[str, Any]) -> Swap:
    return Swap(
        int(row["id"]),
        datetime.fromtimestamp(row["starts_at"], timezone.utc),
        datetime.fromtimestamp(row["ends_at"], timezone.utc),
        row["cm"],
        row["backup"],
        row["reason"],
        row["created_by"],
    )


async def swaps(db: Any, since: float) -> list[Swap]:
    """The swaps not cancelled that end after `since`, newest first (the one that wins an overlap)."""
    rows = await db.fetch(
        "SELECT * FROM oncall_swaps WHERE cancelled_at IS NULL AND ends_at > $1 ORDER BY created_at DESC, id DESC",
        float(since),
    )
    return [_swap(r) for r in rows]


async def add_swap(
    db: Any,
    rota: Rota,
    *,
    starts: datetime,
    ends: datetime,
    cm: str,
    backup: str,
    reason: str,
    by: str,
    now: float,
) -> Swap:
    """Record a swap after checking it; SwapRefused names the field of the first problem."""
    if cm not in rota.people:
        raise SwapRefused("cm", "Choisissez la personne d'astreinte parmi celles du tableau.")
    if backup and backup not in rota.people:
        raise SwapRefused("backup", "Choisissez le suppléant parmi les personnes du tableau.")
    if backup == cm:
        raise SwapRefused("backup", "Le suppléant doit être une autre personne.")
    if ends <= starts:
        raise SwapRefused("ends", "La fin du remplacement doit suivre son début.")
    if ends.timestamp() <= now:
        raise SwapRefused("ends", "Ce remplacement est déjà terminé.")
    if ends - starts > MAX_LENGTH:
        raise SwapRefused(
            "ends", f"Un remplacement dure au plus {MAX_LENGTH.days} jours : au-delà, modifiez le tableau."
        )
    swap_id = await db.fetchval(
        "INSERT INTO oncall_swaps (starts_at, ends_at, cm, backup, reason, created_by, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        starts.timestamp(),
        ends.timestamp(),
        cm,
        backup,
        reason[:200],
        by,
        now,
    )
    return Swap(int(swap_id), starts, ends, cm, backup, reason[:200], by)


async def cancel_swap(db: Any, swap_id: int, now: float) -> bool:
    changed = await db.execute(
        "UPDATE oncall_swaps SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL", swap_id, now
    )
    return int(changed) > 0
