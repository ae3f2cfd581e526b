"""Rules run on real documents: which rules never fired, which items no rule handled.

`crieur rules check --against FOLDER` reads every document under FOLDER (feeds as published, the shared
samples, a recorded episode; zip archives are opened), parses it as the source it belongs to would, and
asks the rules about each item, with and without a snow episode on, at the item's own time. A CM sees
that no rule covers a DATEX road closure before the night it happens. A document Crieur cannot read is a
line of the report, not a crash.

Which source a document belongs to: the configured source whose `file:` URL is that file; else the one
named by a folder or the start of the file name (a recorded episode: FOLDER/<source>/...); else the first
configured source read by the same parser; else none (shown as "no configured rss source"), and then only
the rules without `source:` can fire.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from alerts.domain import Item
from alerts.ingest import KINDS, ParseError, SourceSpec, parse
from alerts.ingest.errors import collect_issues, stop_collecting

from .book import RuleBook
from .engine import EvalState

_IGNORED_SUFFIXES = {".md", ".txt", ".xsd", ".rnc", ".rng", ".py", ".yaml", ".yml", ".j2", ".html"}
_CONTENT_TYPES = {
    "rss": "application/rss+xml",
    "cap": "application/cap+xml",
    "datex2": "application/xml",
    "geojson": "application/geo+json",
    "csv": "text/csv",
    "vigilance": "application/json",
}
_MAX_BYTES = 50_000_000
_KINDS_SHOWN = 8  # per source in the report; the rest is counted


def guess_kind(name: str, head: bytes) -> str | None:
    """The source kind of a document from its first bytes (None: not a format Crieur reads)."""
    if name.lower().endswith(".csv"):
        return "csv"
    if b"urn:oasis:names:tc:emergency:cap" in head:
        return "cap"
    if b"datex2" in head.lower() or b"d2LogicalModel" in head:
        return "datex2"
    if b"<rss" in head or b"<feed" in head or b"<rdf:RDF" in head:
        return "rss"
    if b"FeatureCollection" in head:
        return "geojson"
    if b"phenomenon" in head or b"domain_id" in head:
        return "vigilance"
    return None


@dataclass(frozen=True, slots=True)
class Unread:
    document: str
    reason: str
    reason_fr: str


@dataclass(slots=True)
class Coverage:
    """What the rules made of a set of items."""

    rules: Sequence[tuple[str, str]]  # (name, "file:line") of every rule, in order
    items: int = 0
    documents: int = 0
    fired: Counter[str] = field(default_factory=Counter)  # rule name -> items it fired for
    # (source, kind) -> item kind -> [count, example title, document]
    unhandled: dict[tuple[str, str], dict[str, list[Any]]] = field(default_factory=lambda: defaultdict(dict))
    unread: list[Unread] = field(default_factory=list)
    attributions: dict[str, tuple[str, str]] = field(default_factory=dict)  # parser -> how its documents got a source
    folder: str = ""

    @property
    def unhandled_count(self) -> int:
        return sum(entry[0] for kinds in self.unhandled.values() for entry in kinds.values())

    def never_fired(self) -> list[tuple[str, str]]:
        return [(name, where) for name, where in self.rules if not self.fired[name]]

    def lines(self, french: bool = False) -> list[str]:
        t = _FR if french else _EN
        head = t["head"] if self.folder else t["head-store"]
        out = [head.format(items=self.items, documents=self.documents, folder=self.folder)]
        out += [f"  {fr if french else en}" for en, fr in self.attributions.values()]
        silent = self.never_fired()
        out.append(t["silent"].format(n=len(silent), total=len(self.rules)) if silent else t["all-fired"])
        out += [f"  {name} ({where})" for name, where in silent]
        fired = [(name, self.fired[name]) for name, _w in self.rules if self.fired[name]]
        if fired:
            out.append(t["fired"] + ", ".join(f"{name} ×{count}" for name, count in fired))
        if self.unhandled:
            out.append(t["unhandled"].format(n=self.unhandled_count, total=self.items))
            for (source, kind), kinds in sorted(self.unhandled.items()):
                count = sum(entry[0] for entry in kinds.values())
                out.append(f"  {source} ({kind}) : {count}" if french else f"  {source} ({kind}): {count}")
                ranked = sorted(kinds.items(), key=lambda kv: (-kv[1][0], kv[0]))
                for what, (n, title, document) in ranked[:_KINDS_SHOWN]:
                    out.append(
                        f"    {what} ×{n} — {t['eg']} « {_short(title)} » ({document})"
                        if french
                        else f'    {what} ×{n} — e.g. "{_short(title)}" ({document})'
                    )
                if len(ranked) > _KINDS_SHOWN:
                    rest = ranked[_KINDS_SHOWN:]
                    out.append("    " + t["more"].format(kinds=len(rest), items=sum(e[0] for _w, e in rest)))
        elif self.items:
            out.append(t["all-handled"])
        if self.unread:
            out.append(t["unread"].format(n=len(self.unread)))
            out += [f"  {u.document}: {u.reason_fr if french else u.reason}" for u in self.unread]
        return out


_EN = {
    "head": "Coverage: {items} item(s) from {documents} document(s) of {folder}",
    "head-store": "Coverage: the last {items} item(s) stored, from {documents} source(s)",
    "silent": "Rules that never fired ({n} of {total}):",
    "all-fired": "Every rule fired at least once.",
    "fired": "Fired: ",
    "unhandled": "Items no rule handled ({n} of {total}), by source and kind:",
    "all-handled": "Every item was handled by a rule.",
    "eg": "e.g.",
    "more": "… and {kinds} other kind(s), {items} item(s)",
    "unread": "Not read ({n}):",
}
_FR = {
    "head": "Couverture : {items} message(s) de {documents} document(s) de {folder}",
    "head-store": "Couverture : les {items} derniers messages reçus, de {documents} source(s)",
    "silent": "Règles qui ne se sont jamais déclenchées ({n} sur {total}) :",
    "all-fired": "Chaque règle s'est déclenchée au moins une fois.",
    "fired": "Déclenchées : ",
    "unhandled": "Messages qu'aucune règle n'a traités ({n} sur {total}), par source et par type :",
    "all-handled": "Chaque message a été traité par une règle.",
    "eg": "par ex.",
    "more": "… et {kinds} autre(s) type(s), {items} message(s)",
    "unread": "Non lus ({n}) :",
}


def _short(text: str, size: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def item_kind(item: Item) -> str:
    """What an item is about, for grouping: its event (DATEX: also its record type), else its category."""
    record = item.attributes.get("record_type")
    if item.event and record and record != item.event:
        return f"{item.event} [{record}]"
    if item.event:
        return item.event
    return f"category {item.category}" if item.category else "no event"


def evaluate(
    book: RuleBook, items: Iterable[tuple[Item, str, str]], report: Coverage, now: datetime | None = None
) -> Coverage:
    """Run (item, kind, document) through the book's rules, with and without a snow episode on its
    territories, at the item's time; fill `report`."""
    engine = book.engine
    everywhere = frozenset(book.territories.codes()) if book.territories is not None else frozenset()
    for item, kind, document in items:
        report.items += 1
        moment = item.sent or now or datetime.now(timezone.utc)
        fired: set[str] = set()
        for episodes in (frozenset(), everywhere):
            fired.update(d.rule for d in engine.decide(item, EvalState(moment, episodes)))
        for name in fired:
            report.fired[name] += 1
        if not fired:
            entry = report.unhandled[(item.source, kind)].setdefault(
                item_kind(item), [0, item.title or item.text, document]
            )
            entry[0] += 1
    return report


def rule_places(book: RuleBook) -> list[tuple[str, str]]:
    """(name, "file:line") of every rule, the file relative to the current folder when it is inside it."""
    places = []
    for rule in book.engine.rules:
        file = rule.file
        relative = os.path.relpath(file) if os.path.isabs(file) else file
        places.append((rule.name, f"{file if relative.startswith('..') else relative}:{rule.line}"))
    return places


def coverage(
    book: RuleBook,
    folder: str | os.PathLike[str],
    *,
    sources: Sequence[SourceSpec] | None = None,
    now: datetime | None = None,
) -> Coverage:
    """Read every document under `folder` and run its items through the rules of `book` (a loaded RuleBook)."""
    root = Path(folder)
    report = Coverage(rules=rule_places(book), folder=str(folder))
    if not root.exists():
        report.unread.append(Unread(str(folder), "no such folder", "dossier introuvable"))
        return report
    return evaluate(book, _items(root, list(sources or ()), report), report, now)


def _documents(root: Path) -> Iterator[tuple[str, Path, bytes | None]]:
    """(name shown, path, body) of every file; zip members one by one."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        name = str(path.relative_to(root)) if path != root else path.name
        if path.suffix.lower() in _IGNORED_SUFFIXES or path.name.startswith("."):
            continue
        if path.stat().st_size > _MAX_BYTES:
            yield name, path, None
            continue
        body = path.read_bytes()
        if zipfile.is_zipfile(io.BytesIO(body)):
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                for member in archive.infolist():
                    if not member.is_dir() and member.file_size <= _MAX_BYTES:
                        yield f"{name}!{member.filename}", path, archive.read(member)
            continue
        yield name, path, body


def _items(root: Path, sources: list[SourceSpec], report: Coverage) -> Iterator[tuple[Item, str, str]]:
    for name, path, body in _documents(root):
        if body is None:
            report.unread.append(Unread(name, f"larger than {_MAX_BYTES // 1_000_000} MB", "trop volumineux"))
            continue
        kind = guess_kind(name, body[:4096])
        if kind is None:
            report.unread.append(Unread(name, "not a format Crieur reads", "format que Crieur ne lit pas"))
            continue
        spec = _source_for(name, path, kind, sources, report)
        skipped, token = collect_issues()
        quiet = logging.getLogger("crieur.ingest")
        level, quiet.level = quiet.level, logging.ERROR  # skipped records go to the report, not the log
        try:
            items = parse(spec, body, _CONTENT_TYPES.get(kind, ""))
        except ParseError as exc:
            report.unread.append(
                Unread(name, f"cannot read this {kind} document: {exc}", f"document {kind} illisible : {exc}")
            )
            continue
        except Exception as exc:  # noqa: BLE001 - a parser bug on a real document is reported, not fatal
            report.unread.append(
                Unread(
                    name,
                    f"the {kind} parser failed: {type(exc).__name__}: {exc}",
                    f"le lecteur {kind} a échoué : {type(exc).__name__} : {exc}",
                )
            )
            continue
        finally:
            stop_collecting(token)
            quiet.setLevel(level)
        report.documents += 1
        for issue in skipped:
            reason = issue.split(": ", 1)[-1]  # without the source, named by the document
            report.unread.append(Unread(name, reason, f"enregistrement ignoré : {reason}"))
        if not items:
            report.unread.append(Unread(name, f"a {kind} document without any item", f"document {kind} sans message"))
        for item in items:
            yield item, kind, name


def _source_for(name: str, path: Path, kind: str, sources: list[SourceSpec], report: Coverage) -> SourceSpec:
    from alerts.ingest.fetch import _file_path

    parser = KINDS[kind]
    for spec in sources:
        if spec.url.lower().startswith("file:") and _same_file(_file_path(spec), path):
            return spec
    parts = Path(name.split("!")[0]).parts
    for spec in sources:
        if spec.name in parts[:-1] or parts[-1].startswith(spec.name):
            return spec
    same = [s for s in sources if KINDS[s.kind] == parser]
    if same:
        if parser not in report.attributions:
            others = ", ".join(s.name for s in same[1:])
            report.attributions[parser] = (
                f"{parser} documents read as source {same[0].name}" + (f" ({others} not tried)" if others else ""),
                f"documents {parser} lus comme venant de la source {same[0].name}"
                + (f" ({others} non essayées)" if others else ""),
            )
        return same[0]
    label = f"no configured {parser} source" if sources else parser
    return SourceSpec(name=label, kind=kind, url=f"file:{path}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
