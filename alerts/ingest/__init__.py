"""Ingestion: fetch a source's document and turn it into normalised Items.

`parse(spec, body, content_type)` dispatches on `spec.kind` to one module per format (rss, cap,
datex2, geojson, csv, vigilance). Each format module exposes the same
`parse(spec, body, content_type) -> list[Item]`. A document that cannot be read raises ParseError; a
single unusable record inside a readable document is skipped and reported (see errors.skip_record).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..domain import Item
from .errors import ParseError

__all__ = ["SourceSpec", "ParseError", "parse", "KINDS"]

# kind -> module in this package
KINDS: dict[str, str] = {
    "rss": "rss",
    "atom": "rss",
    "cap": "cap",
    "datex2": "datex2",
    "geojson": "geojson",
    "csv": "geojson",
    "vigilance": "vigilance",
}
_XML_KINDS = {"rss", "atom", "cap", "datex2"}
_JSON_KINDS = {"geojson", "vigilance"}


@dataclass(slots=True)
class SourceSpec:
    """One configured source. `options` carries format-specific settings (GeoJSON property mapping,
    default département, timezone of naive dates, "base_dir" for file: URLs, "max_linked" and
    "follow_links" for MeteoAlarm feeds...). `authority` names who issues the source's items when the
    document does not say it itself (the service turns an id of the authorities file into its name)."""

    name: str
    kind: str
    url: str
    interval: float = 300
    timeout: float = 20
    max_bytes: int = 5_000_000
    authority: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("source without a name")
        if self.kind not in KINDS:
            raise ValueError(f"source {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(sorted(KINDS))})")
        if self.interval <= 0 or self.timeout <= 0 or self.max_bytes <= 0:
            raise ValueError(f"source {self.name!r}: interval, timeout and max_bytes must be positive")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _check_content_type(spec: SourceSpec, body: bytes, content_type: str) -> None:
    """Refuse an HTML page (a portal's error or login page) served where a data format was expected."""
    media = _media_type(content_type)
    if spec.options.get("ignore_content_type"):
        return
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()  # UTF-8 BOM, then whitespace
    looks_html = head.startswith((b"<!doctype html", b"<html"))
    if media in {"text/html", "application/xhtml+xml"} or looks_html:
        if looks_html or spec.kind in _JSON_KINDS or not head.startswith(b"<"):
            raise ParseError(
                f"expected {spec.kind} but the server sent an HTML page (content type {media or 'unknown'!r})",
                source=spec.name,
            )
    if spec.kind in _XML_KINDS and media in {"application/json", "application/geo+json"}:
        raise ParseError(f"expected {spec.kind} (XML) but got content type {media!r}", source=spec.name)
    if spec.kind in _JSON_KINDS and media.endswith("xml"):
        raise ParseError(f"expected {spec.kind} (JSON) but got content type {media!r}", source=spec.name)


def parse(spec: SourceSpec, body: bytes, content_type: str = "") -> list[Item]:
    """Items of one fetched document; ParseError if the document as a whole is unreadable."""
    _check_content_type(spec, body, content_type)
    module = importlib.import_module(f"{__name__}.{KINDS[spec.kind]}")
    return module.parse(spec, body, content_type)
