"""Snow episodes per territory: declared and ended by a CM or by a rule (`then.episode: start/end`).

Pure state, no I/O: the integrator persists `to_dict()` and restores with `from_dict()`. Starting an
episode that is already running, or ending one that is not, changes nothing and returns False, so a
vigilance bulletin repeated every hour does not restart the episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from .engine import Decision


@dataclass(frozen=True, slots=True)
class Episode:
    territory: str
    started_at: datetime
    started_by: str  # "cm:<login>" or "rule:<name>"
    reason: str = ""
    ended_at: datetime | None = None
    ended_by: str = ""
    end_reason: str = ""

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "territory": self.territory,
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
            "reason": self.reason,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Episode":
        return cls(
            territory=str(data["territory"]),
            started_at=_aware(datetime.fromisoformat(data["started_at"]), "started_at"),
            started_by=str(data.get("started_by", "")),
            reason=str(data.get("reason", "")),
            ended_at=_aware(datetime.fromisoformat(data["ended_at"]), "ended_at") if data.get("ended_at") else None,
            ended_by=str(data.get("ended_by", "")),
            end_reason=str(data.get("end_reason", "")),
        )


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")
    return moment


class Episodes:
    """Current episode per territory, and the history of ended ones (newest last)."""

    def __init__(self) -> None:
        self._current: dict[str, Episode] = {}
        self.history: list[Episode] = []

    def active(self) -> frozenset[str]:
        return frozenset(self._current)

    def current(self, territory: str) -> Episode | None:
        return self._current.get(territory)

    def start(self, territory: str, by: str, reason: str, at: datetime) -> bool:
        """Declare an episode; False when one is already running there."""
        _aware(at, "at")
        if territory in self._current:
            return False
        self._current[territory] = Episode(territory, at, by, reason)
        return True

    def end(self, territory: str, by: str, reason: str, at: datetime) -> bool:
        """End the running episode; False when there is none."""
        _aware(at, "at")
        episode = self._current.pop(territory, None)
        if episode is None:
            return False
        if at < episode.started_at:
            self._current[territory] = episode
            raise ValueError(f"episode on {territory} cannot end ({at.isoformat()}) before it started")
        self.history.append(
            Episode(episode.territory, episode.started_at, episode.started_by, episode.reason, at, by, reason)
        )
        return True

    def apply(self, decisions: Iterable[Decision], at: datetime, reason: str = "") -> list[tuple[str, str]]:
        """Carry out the `episode_action` of rule decisions; returns the (action, territory) changes."""
        changes: list[tuple[str, str]] = []
        for decision in decisions:
            if decision.episode_action not in ("start", "end"):
                continue
            act = self.start if decision.episode_action == "start" else self.end
            for territory in decision.territories:
                if act(territory, f"rule:{decision.rule}", reason or decision.rule, at):
                    changes.append((decision.episode_action, territory))
        return changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": [e.to_dict() for e in self._current.values()],
            "history": [e.to_dict() for e in self.history],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Episodes":
        episodes = cls()
        for entry in data.get("current", []):
            episode = Episode.from_dict(entry)
            episodes._current[episode.territory] = episode
        episodes.history = [Episode.from_dict(e) for e in data.get("history", [])]
        return episodes
