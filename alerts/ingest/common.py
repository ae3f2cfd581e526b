"""Small helpers the format modules share: dates, hashes, HTML to text, French codes."""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from ..domain import Area
from .errors import ParseError

PARIS = ZoneInfo("Europe/Paris")

_FRENCH_DATE = re.compile(
    r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})(?:[ T]+(?P<H>\d{1,2})[:h](?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)
DEPARTEMENT = re.compile(r"^(?:0?[1-9]|[1-8]\d|9[0-5]|2[AaBb]|97[1-6])$")
INSEE_COMMUNE = re.compile(r"^(?:\d{5}|2[AaBb]\d{3})$")


def parse_datetime(value: str | None, *, default_tz: ZoneInfo = PARIS) -> datetime | None:
    """An aware datetime from ISO 8601 ("2013-01-20T07:00:00Z", "+01:00") or French "20/01/2013 07:30".

    Naive times are read in `default_tz` (French sources publish local time). Empty gives None;
    anything unreadable raises ValueError naming the value.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    match = _FRENCH_DATE.match(value)
    try:
        if match:
            parsed = datetime(
                int(match["y"]),
                int(match["m"]),
                int(match["d"]),
                int(match["H"] or 0),
                int(match["M"] or 0),
                int(match["S"] or 0),
            )
        else:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"unreadable date {value[:60]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed


def origin(spec: Any, own: str = "", publisher: str = "") -> str:
    """Who issued an item: the issuer the document names for this item (CAP senderName, a DiaLog order's
    issuingAuthority, a DATEX record's source), else the source's configured `authority`, else the
    document's publisher (DATEX publicationCreator, CAP sender)."""
    return (own or "").strip() or str(getattr(spec, "authority", "") or "").strip() or (publisher or "").strip()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def content_hash(*parts: object) -> str:
    """A short stable hash, used as version or id when a source gives none."""
    digest = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


class _TextExtractor(HTMLParser):
    _BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"}
    _SKIP = {"script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


_ANY_TAG = re.compile(r"<[^>]*>")


def html_to_text(fragment: str) -> str:
    """Readable plain text from an HTML fragment: tags dropped, entities decoded, blank runs collapsed."""
    if not fragment:
        return ""
    if "<" not in fragment:
        text = html.unescape(fragment)
    else:
        parser = _TextExtractor()
        try:
            parser.feed(fragment)
            parser.close()
            text = "".join(parser.parts)
        except AssertionError:  # html.parser on a broken marked section ("<![CDATH["): drop the tags bluntly
            text = html.unescape(_ANY_TAG.sub(" ", fragment))
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def departement_area(code: str) -> Area | None:
    """Area("departement", "41") for a French département code ("41", "041" is not one, "2A", "971")."""
    code = code.strip().upper()
    if DEPARTEMENT.match(code):
        return Area("departement", code.zfill(2) if code.isdigit() else code)
    return None


def commune_area(code: str) -> Area | None:
    code = code.strip().upper()
    return Area("commune", code) if INSEE_COMMUNE.match(code) else None


def dedupe(values: list) -> tuple:
    return tuple(dict.fromkeys(values))


def load_json(spec: Any, body: bytes) -> Any:
    """A JSON document, or a ParseError naming the source (and the line, for a syntax error)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ParseError(f"unreadable JSON: {type(exc).__name__}", source=spec.name) from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"malformed JSON: {exc.msg}", source=spec.name, line=exc.lineno) from None
