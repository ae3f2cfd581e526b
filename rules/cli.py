"""`crieur rules check` and `crieur rules test`: what a CM runs before a snow night.

Both functions print to `out` and return a process exit code (0 fine, 1 rule/template problem, 2 bad
item file). `test` sends nothing: it shows which rules fire and the exact text each channel would get.

With a service configuration (`crieur rules check|test --config`), rules are loaded exactly as that
service loads them (RuleBook.for_config). Without one, `territories.yaml` and `templates/` next to the
first rule file are used if present (the layout of examples/loir-et-cher/).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TextIO

from alerts.domain import Item
from alerts.ingest import ParseError
from channels.base import Limits

from .book import RuleBook
from .engine import EvalState
from .fitting import FittingError, describe_limit
from .itemfile import ItemFileError, load_item
from .templates import TemplateRenderError
from .yamlcheck import ValidationFailed

PathLike = str | os.PathLike[str]

# Channel names rules use → adapter kinds, when the service configuration is not at hand.
DEFAULT_KINDS = {"sms": "twilio"}
# Used only when an adapter module is missing; adapters own the real figures (channels/<kind>.limits).
FALLBACK_LIMITS = {
    "x": Limits(counting="x", max_length=280),
    "mastodon": Limits(counting="chars", max_length=500),
    "bluesky": Limits(counting="graphemes", max_length=300),
    "twilio": Limits(counting="sms", max_segments=10),
}


def channel_limits(kind: str) -> Limits:
    try:
        from channels import channel_class

        return channel_class(kind).limits
    except Exception:  # noqa: BLE001 - a missing or broken adapter must not stop a dry run
        return FALLBACK_LIMITS.get(kind, Limits())


def _siblings(paths: Sequence[PathLike], territories: PathLike | None, templates: PathLike | None):
    if paths:
        folder = Path(paths[0]).parent
        if territories is None and (folder / "territories.yaml").is_file():
            territories = folder / "territories.yaml"
        if templates is None and (folder / "templates").is_dir():
            templates = folder / "templates"
    return territories, templates


def _book(paths: Sequence[PathLike], territories: PathLike | None, templates: PathLike | None, config: Any) -> RuleBook:
    """The service's book for `config` (rules/territories/templates given here replace its own), else the
    rule files with the territories and templates beside them."""
    if config is not None:
        return RuleBook.for_config(config, paths=list(paths) or None, territories=territories, templates=templates)
    territories, templates = _siblings(paths, territories, templates)
    return RuleBook(paths, territories=territories, templates=templates)


def check(
    paths: Sequence[PathLike],
    territories_path: PathLike | None = None,
    templates_dir: PathLike | None = None,
    *,
    config: Any = None,
    against: PathLike | None = None,
    now: datetime | None = None,
    out: TextIO | None = None,
) -> int:
    """Errors (exit 1) and warnings (rules that can never fire) of the rule files, checked as the service
    of `config` would load them (its channels, sources, territories, templates, authorities); without a
    configuration, against the territories file and templates next to the rules. `against`: also run the
    documents of that folder through the rules (rules.coverage)."""
    out = out or sys.stdout
    book = _book(paths, territories_path, templates_dir, config)
    errors = book.reload()
    for finding in (*errors, *book.warnings):
        print(finding, file=out)
    if errors:
        print(f"{len(errors)} error(s): nothing changed, fix them and check again", file=out)
        return 1
    engine = book.engine
    parts = [f"{len(engine)} rule(s) in {len(book.paths)} file(s)"]
    if book.territories is not None:
        parts.append(f"{len(book.territories)} territories ({', '.join(book.territories.codes())})")
    if book.templates is not None:
        parts.append(f"{len(book.templates.names())} templates")
    if book.warnings:
        parts.append(f"{len(book.warnings)} warning(s)")
    print("OK: " + ", ".join(parts), file=out)
    if against is not None:
        from .coverage import coverage

        report = coverage(book, against, sources=book.sources, now=now)
        print("", file=out)
        for line in report.lines():
            print(line, file=out)
    return 0


def test(
    rule_paths: Sequence[PathLike],
    item_file: PathLike,
    territories_path: PathLike | None = None,
    templates_dir: PathLike | None = None,
    *,
    now: datetime | None = None,
    episodes: Iterable[str] = (),
    signature: str = "",
    channel_kinds: Mapping[str, str] | None = None,
    config: Any = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    try:
        book = _book(rule_paths, territories_path, templates_dir, config).load_or_raise()
    except ValidationFailed as failed:
        for error in failed.errors:
            print(error, file=out)
        return 1
    for warning in book.warnings:
        print(warning, file=out)
    try:
        items = load_items(item_file)
    except (ItemFileError, ParseError) as exc:
        print(exc, file=out)
        return 2
    state = EvalState(now or datetime.now(timezone.utc), frozenset(episodes))
    kinds = {**DEFAULT_KINDS, **(channel_kinds or {})}
    if not items:
        print(f"{os.fspath(item_file)}: no item in this document", file=out)
    return max((explain(book, item, state, kinds, signature, out) for item in items), default=0)


def load_items(path: PathLike) -> list[Item]:
    """The items of a YAML/JSON item file, or of a real published document (CAP, MeteoAlarm Atom,
    DATEX II, RSS, GeoJSON, vigilance JSON) read as a source would read it."""
    import asyncio

    from alerts.ingest.document import read_document
    from alerts.ingest.fetch import FetchError

    if Path(path).suffix.lower() in {".yaml", ".yml"}:
        return [load_item(path)]
    try:
        return asyncio.run(read_document(os.fspath(path))).items
    except ParseError as exc:
        if Path(path).suffix.lower() == ".json" and "format not recognised" in str(exc):
            return [load_item(path)]  # an item written as JSON
        raise
    except FetchError as exc:
        raise ItemFileError(f"{os.fspath(path)}: cannot read: {exc}") from None


def explain(book: RuleBook, item: Item, state: EvalState, kinds: Mapping[str, str], signature: str, out: TextIO) -> int:
    """Print which rules fire for `item` and the exact text of every message; 1 if a message fails."""
    resolved = book.territories.resolve(item) if book.territories is not None else ()
    print(
        f"item {item.key}: territories {', '.join(resolved) or '-'}; episodes {', '.join(sorted(state.episodes)) or '-'}",
        file=out,
    )
    decisions = book.engine.decide(item, state)
    if not decisions:
        print("no rule fires: nothing would be published", file=out)
        return 0
    status = 0
    for decision in decisions:
        print(f"\nrule {decision.rule} fires", file=out)
        print(
            f"  territories: {', '.join(decision.territories) or '-'}   hashtags: {' '.join(decision.hashtags) or '-'}",
            file=out,
        )
        notes = [f"priority {decision.priority}"]
        if decision.approve:
            notes.append("waits for a CM's approval")
        if decision.escalate_to:
            notes.append(f"escalates to {decision.escalate_to}")
        if decision.suppress_window:
            notes.append(f"duplicates suppressed for {decision.suppress_window // 60} min")
        if decision.episode_action:
            notes.append(f"{decision.episode_action}s the snow episode")
        print("  " + "; ".join(notes), file=out)
        alert = decision.to_alert(item)
        for channel in decision.channels:
            kind = kinds.get(channel, channel)
            limits = channel_limits(kind)
            template = decision.templates[channel]
            if book.templates is None:
                print(f"  [{channel}] template {template}: no templates directory, not rendered", file=out)
                continue
            try:
                rendered = book.templates.render(alert, kind, limits, template, signature, gsm7=decision.sms_gsm7)
            except (FittingError, TemplateRenderError) as exc:
                print(f"  [{channel}] ERROR: {exc}", file=out)
                status = 1
                continue
            size = f"{rendered.length}" + (f"/{limits.max_length}" if limits.max_length else "")
            if limits.counting == "sms":
                size += f" {'septets' if rendered.encoding == 'GSM-7' else 'UTF-16 units'}, {rendered.segments} segment(s) {rendered.encoding}"
            elif limits.counting != "none":
                size += f" ({limits.counting})"
            flags = " shortened" if rendered.shortened else ""
            print(f"  [{channel}] template {template}, {size}{flags}, limit {describe_limit(limits)}", file=out)
            for line in rendered.text.splitlines():
                print(f"    | {line}", file=out)
            if rendered.facets:
                tags = [f["features"][0].get("tag") or f["features"][0].get("uri") for f in rendered.facets]
                print(f"    facets: {', '.join(tags)}", file=out)
    return status
