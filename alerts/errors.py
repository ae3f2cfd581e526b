"""The root of Crieur's own exceptions.

Every error Crieur raises on purpose derives from `CrieurError`, so a caller (the web layer, the CLI) can tell
"Crieur refused this, and says why" from a bug. A subclass's docstring is its default message, so that
`raise AlertNotFound()` already reads well in a log.
"""

from __future__ import annotations


class CrieurError(Exception):
    """Crieur could not do what was asked."""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0], *args)


class AlertNotFound(CrieurError, KeyError):
    """No such alert."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotAwaitingApproval(CrieurError, ValueError):
    """The alert is not waiting for approval (already approved, rejected or ended)."""


class LeaseLost(CrieurError):
    """The delivery is no longer held by this worker: its lease expired and another worker took it over."""
