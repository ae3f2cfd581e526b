""" "En ce moment" for one territory: what is published right now on each channel (and how far its
sending got), what is waiting (an approval, deliveries still queued), and what ended today."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from alerts.domain import Alert, AlertStatus, MsgType

from . import site
from .delivery_progress import ChannelProgress


@dataclass(frozen=True, slots=True)
class Published:
    alert: Alert
    progress: ChannelProgress | None  # None: nothing queued on this channel for it (yet)

    @property
    def state(self) -> str:
        p = self.progress
        if p is None:
            return "pas d'envoi enregistré"
        if p.finished and not p.failed:
            return f"envoyé ({p.sent} / {p.total})"
        if p.finished:
            return f"{p.sent} / {p.total} envoyés, {p.failed} échec{'s' if p.failed > 1 else ''}"
        return f"envoi en cours : {p.done} / {p.total} · {p.left}"


@dataclass(frozen=True, slots=True)
class Ended:
    alert: Alert
    how: str  # "fin publiée", "remplacée par la mise à jour n° 6", "expirée"


@dataclass(frozen=True, slots=True)
class Queued:
    alert: Alert
    progress: ChannelProgress


@dataclass(slots=True)
class NowView:
    code: str
    name: str
    episode: dict[str, Any] | None
    channels: dict[str, list[Published]] = field(default_factory=dict)
    pending: list[Alert] = field(default_factory=list)
    queued: list[Queued] = field(default_factory=list)
    ended: list[Ended] = field(default_factory=list)


def start_of_today(now: datetime | None = None) -> datetime:
    """Midnight, Paris time, of the current day."""
    local = (now or datetime.now(timezone.utc)).astimezone(site.PARIS)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def territory_now(crieur: Any, territory: site.TerritoryInfo) -> NowView:
    store = crieur.store
    code = territory.code
    episodes = {row["territory"]: row for row in await store.episodes()}
    episode = episodes.get(code)
    view = NowView(code, territory.name, episode if episode and episode["active"] else None)
    current = await site.current_alerts(crieur, code)
    progress: dict[int, dict[str, ChannelProgress]] = {}
    for alert in current:
        rows = await store.progress(alert.id)
        progress[alert.id] = {r["channel"]: ChannelProgress.from_row(r) for r in rows}  # type: ignore[index]
    for channel in crieur.config.channels:
        view.channels[channel] = [
            Published(a, progress[a.id].get(channel))  # type: ignore[index]
            for a in current
            if channel in a.channels
        ]
    view.queued = [Queued(a, p) for a in current for p in progress[a.id].values() if p.queued]  # type: ignore[index]
    view.pending = await store.alerts((AlertStatus.PENDING_APPROVAL,), territory=code, limit=50)
    view.ended = await _ended_today(store, code)
    return view


async def _ended_today(store: Any, code: str) -> list[Ended]:
    since = start_of_today()
    finished = await store.alerts((AlertStatus.ENDED, AlertStatus.EXPIRED), territory=code, limit=200)
    today = [a for a in finished if a.updated_at is not None and a.updated_at >= since]
    followers = {a.supersedes: a for a in today if a.supersedes is not None}
    current = await store.alerts((AlertStatus.PUBLISHED,), territory=code, limit=200)
    followers.update({a.supersedes: a for a in current if a.supersedes is not None})
    found = []
    for alert in today:
        if alert.msg_type is MsgType.CANCEL:
            continue  # the "fin d'alerte" message itself: shown as how its alert ended
        follower = followers.get(alert.id)
        if alert.status is AlertStatus.EXPIRED:
            how = "expirée"
        elif follower is not None and follower.msg_type is MsgType.UPDATE:
            how = f"remplacée par la mise à jour n° {follower.id}"
        else:
            how = "fin publiée"
        found.append(Ended(alert, how))
    found.sort(key=lambda e: e.alert.updated_at or since, reverse=True)
    return found
