"""Before a CM sends: is a near-duplicate already out? An alert still published in one of the same
territories, sent within WINDOW_SECONDS, that names the same road ("une alerte citant la RD 957 est
partie il y a 12 min") or says nearly the same thing. The console then offers to update that alert
(threaded under it, as rule-made updates are) instead of publishing a second one."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from alerts.domain import Alert, AlertStatus, MsgType, Road
from alerts.roads import fold, parse_roads

from .durations import ago

WINDOW_SECONDS = 6 * 3600  # a snow night's alerts: older ones are history, not duplicates
SIMILAR_TEXT = 0.6  # difflib ratio over the words, from which two texts say "the same thing"


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    alert: Alert
    roads: tuple[Road, ...]  # the roads both name (empty when the texts are alike)
    age_seconds: float

    @property
    def message(self) -> str:
        if self.roads:
            named = ", ".join(r.label for r in self.roads)
            what = f"citant la {named}" if len(self.roads) == 1 else f"citant les {named}"
        else:
            what = "au texte très proche"
        return f"Une alerte {what} est partie {ago(self.age_seconds)} : n° {self.alert.id} « {self.alert.title} »."


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in fold(text)).split()


def _roads(alert: Alert) -> set[Road]:
    return set(alert.roads) | set(parse_roads(f"{alert.title}\n{alert.text}"))


def find(
    title: str, text: str, territories: Sequence[str], published: Iterable[Alert], now: datetime | None = None
) -> NearDuplicate | None:
    """The most recent published alert the draft nearly repeats, or None."""
    now = now or datetime.now(timezone.utc)
    draft = f"{title}\n{text}"
    draft_roads = parse_roads(draft)
    draft_words = _words(draft)
    best: NearDuplicate | None = None
    for alert in published:
        sent = alert.created_at or alert.updated_at
        if alert.status is not AlertStatus.PUBLISHED or alert.msg_type is MsgType.CANCEL or sent is None:
            continue
        age = (now - sent).total_seconds()
        if age > WINDOW_SECONDS or not set(territories) & set(alert.territories):
            continue
        shared = tuple(r for r in draft_roads if r in _roads(alert))
        alike = (
            difflib.SequenceMatcher(None, draft_words, _words(f"{alert.title}\n{alert.text}"), autojunk=False).ratio()
            >= SIMILAR_TEXT
        )
        if (shared or alike) and (best is None or age < best.age_seconds):
            best = NearDuplicate(alert, shared, max(0.0, age))
    return best


async def check(store: Any, draft: dict[str, Any]) -> NearDuplicate | None:
    """find() against the alerts published now (the newest few hundred)."""
    if not draft.get("text") or not draft.get("territories"):
        return None
    published = await store.alerts((AlertStatus.PUBLISHED,), limit=300)
    return find(draft.get("title", ""), draft["text"], draft["territories"], published)
