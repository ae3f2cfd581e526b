"""Errors and per-record issues shared by every format module."""

from __future__ import annotations

import contextvars
import logging

from alerts.errors import CrieurError

log = logging.getLogger("crieur.ingest")

# While a SourceLoop parses a body it installs a list here; parsers append the problems of records
# they had to skip, so that health() can show them. Outside a loop the problems are only logged.
_issues: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("crieur_ingest_issues", default=None)


class ParseError(CrieurError):
    """A document that cannot be read at all. str() names the source and, where known, line and field."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None, field: str = "") -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [f"source {self.source!r}"] if self.source else []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class RecordError(CrieurError, ValueError):
    """One record (entry, feature, situation record) is unusable; the rest of the document is kept."""


def skip_record(source: str, where: str, reason: object) -> None:
    """Log (and collect, inside a SourceLoop) a record skipped because of `reason`."""
    message = f"source {source!r}: {where} skipped: {reason}"
    log.warning("%s", message)
    issues = _issues.get()
    if issues is not None:
        issues.append(message)


def collect_issues() -> tuple[list[str], contextvars.Token[list[str] | None]]:
    """Start collecting skipped-record messages in the current context; reset with the token."""
    bucket: list[str] = []
    return bucket, _issues.set(bucket)


def stop_collecting(token: contextvars.Token[list[str] | None]) -> None:
    _issues.reset(token)
