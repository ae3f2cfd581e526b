""" "Progression des envois" for the console: the deliveries of the most recent alerts, grouped per alert,
one bar per channel, the time left and the failures with their reasons. Bounded: only the latest
alerts are shown (older ones stay available through `crieur deliveries`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .durations import duration_fr

RECENT_ALERTS = 8
FAILED_STATES = ("failed", "dead")


@dataclass(frozen=True, slots=True)
class ChannelProgress:
    channel: str
    total: int
    sent: int
    failed: int
    queued: int
    cancelled: int
    rate_per_s: float
    eta_s: float | None
    delivered: int = 0  # the provider's receipts (Twilio status callbacks)
    undelivered: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "ChannelProgress":
        """One row of Store.progress."""
        return cls(
            row["channel"],
            row["total"],
            row["sent"],
            row["failed"],
            row["queued"],
            row["cancelled"],
            row["rate_per_s"],
            row["eta_s"],
            row.get("delivered", 0),
            row.get("undelivered", 0),
        )

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.cancelled

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def left(self) -> str:
        """The time left in words."""
        if self.finished:
            return "terminé"
        if self.eta_s is None:
            return "pas encore commencé" if not self.done else "durée restante inconnue"
        return remaining(self.eta_s)


@dataclass(frozen=True, slots=True)
class AlertProgress:
    alert_id: int
    title: str
    status: str
    channels: list[ChannelProgress] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.channels)

    @property
    def done(self) -> int:
        return sum(c.done for c in self.channels)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.channels)

    @property
    def finished(self) -> bool:
        return all(c.finished for c in self.channels)

    @property
    def left(self) -> str:
        if self.finished:
            return "terminé"
        etas = [c.eta_s for c in self.channels if not c.finished]
        known = [e for e in etas if e is not None]
        if len(known) < len(etas):
            return "durée restante inconnue"
        return remaining(max(known))


def remaining(seconds: float) -> str:
    return "moins d'une minute restante" if seconds < 60 else f"environ {duration_fr(seconds)} restantes"


async def recent_alert_ids(store: Any, limit: int = RECENT_ALERTS) -> list[int]:
    """The newest alerts that have deliveries (the outbox's alert index answers it without a scan)."""
    rows = await store.db.fetch(
        "SELECT alert_id FROM deliveries GROUP BY alert_id ORDER BY alert_id DESC LIMIT $1", limit
    )
    return [int(r["alert_id"]) for r in rows]


async def recent(store: Any, limit: int = RECENT_ALERTS) -> list[AlertProgress]:
    """Per recent alert (newest first): one ChannelProgress per channel, from Store.progress."""
    found = []
    for alert_id in await recent_alert_ids(store, limit):
        alert = await store.alert(alert_id)
        rows = await store.progress(alert_id)
        found.append(
            AlertProgress(
                alert_id=alert_id,
                title=alert.title if alert is not None else f"alerte {alert_id}",
                status=alert.status.value if alert is not None else "",
                channels=[ChannelProgress.from_row(r) for r in rows],
            )
        )
    return found


VIEWS_FR = {"all": "Tous", "delivered": "Remis", "failed": "Échecs", "aside": "Mis de côté"}
ASIDE_FR = {
    "undeliverable": "mis de côté : plusieurs messages de suite non remis",
    "invalid": "mis de côté : numéro invalide",
    "unsubscribe": "mis de côté : désabonné auprès de l'opérateur",
    "stop": "désabonné (STOP)",
}


def outcome_fr(row: dict[str, Any]) -> str:
    """What became of one delivery, as a CM reads it: the provider's receipt first, else the send's state."""
    receipt = str(row.get("provider_status") or "")
    state = str(row.get("state") or "")
    if receipt == "delivered":
        return "Remis"
    if receipt in ("undelivered", "failed"):
        return "Non remis"
    if state in FAILED_STATES:
        return "Échec de l'envoi" + (" (abandonné)" if state == "dead" else "")
    return {
        "sent": "Envoyé, sans accusé de réception"
        if not receipt or receipt in ("sent", "queued", "accepted")
        else "Envoyé",
        "queued": "En file",
        "sending": "En cours d'envoi",
        "cancelled": "Annulé",
    }.get(state, state)


async def recipients(store: Any, alert_id: int, view: str = "all", limit: int = 500) -> list[dict[str, Any]]:
    """One alert's recipients in a view of Outbox.recipients, masked, with what became of each and why."""
    return [
        {
            "channel": r["channel"],
            "recipient": mask(r["recipient"]),
            "outcome": outcome_fr(r),
            "reason": r["last_error"] if r["last_error"] and outcome_fr(r) != "Remis" else "",
            "aside": ASIDE_FR.get(r["aside"], ""),
            "attempts": r["attempts"],
            "updated_at": r["updated_at"],
        }
        for r in await store.outbox.recipients(alert_id, view, limit)
    ]


def mask(recipient: str) -> str:
    """A phone number with its middle hidden ("+33 6 •• •• •• 01"): a CM needs to tell failures apart,
    not to read subscribers' numbers."""
    if recipient.startswith("+") and len(recipient) > 6:
        return f"{recipient[:4]}{'•' * (len(recipient) - 6)}{recipient[-2:]}"
    return recipient
