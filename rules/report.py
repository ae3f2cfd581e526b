"""The report an admin sees after "Recharger les règles" in the console, in French: what `crieur rules
check` says (errors, rules that can never fire), and the coverage of the rules in force on the items the
sources published last (rules.coverage), so that a rule no recent item triggers is seen the same day."""

from __future__ import annotations

from typing import Any, Sequence

from alerts.ingest import SourceSpec

from .coverage import Coverage, evaluate, rule_places
from .vocabulary import parser_of

RECENT_ITEMS = 500


async def stored_coverage(book: Any, store: Any, sources: Sequence[SourceSpec], limit: int = RECENT_ITEMS) -> Coverage:
    """The rules in force run on the last `limit` stored items."""
    kinds = {s.name: parser_of(s.kind) for s in sources}
    items = await store.items(limit=limit)
    report = Coverage(rules=rule_places(book))
    report.documents = len({item.source for item in items})
    return evaluate(book, ((item, kinds.get(item.source, "?"), item.key) for item in items), report)


def french_report(book: Any, coverage: Coverage | None = None) -> list[str]:
    """Lines in French: errors (the rules in force stay), warnings, then the coverage."""
    lines: list[str] = []
    if book.errors:
        lines.append(f"Règles non rechargées, les précédentes restent en vigueur ({len(book.errors)} erreur(s)) :")
        lines += [error.in_french() for error in book.errors]
    elif book.warnings:
        lines.append(f"Règles rechargées, avec {len(book.warnings)} avertissement(s) :")
    if book.warnings and not book.errors:
        lines += [warning.in_french() for warning in book.warnings]
    if coverage is not None and coverage.items:
        lines += coverage.lines(french=True)
    return lines
