"""How long a text is for each channel, and making it fit.

Counting (`Limits.counting`):
  * "x": X's weighted length, computed by twitter-text's own algorithm and configuration v3 (the
    twitter-text-parser port, which passes twitter-text's conformance suite): after NFC, code points in
    0-4351, 8192-8205, 8208-8223 and 8242-8247 weigh 1, every other one 2; an emoji weighs 2; a URL
    X would link weighs 23 whatever its length, bare domains such as "cg41.fr" included, but a host with
    a label over 63 characters is no link and counts in full.
  * "chars": Mastodon: code points, every URL `Limits.url_weight` (the instance's
    characters_reserved_per_url, 23 by default). (Mastodon itself counts grapheme clusters, never more
    than code points, so this count is never below the server's.)
  * "graphemes": Bluesky: user-perceived characters (grapheme clusters), URLs as written.
  * "sms": GSM 03.38 7-bit when every character is in the basic set or the extension table (which
    costs 2 septets: ^ { } \\ [ ~ ] | € and form feed), else UCS-2 counted in UTF-16 code units. One
    segment holds 160 septets / 70 units; a concatenated message 153 / 67 per part, and a two-septet
    character or a surrogate pair is never split across parts. For SMS, `Limits.max_segments` is the
    usual limit; a `max_length` is read in septets (GSM-7) or UTF-16 units (UCS-2).
  * "none": no limit (email, web).

Note on "ç": the GSM 03.38 basic set has the capital "Ç" (0x09) only; a lower-case "ç" turns the message
into UCS-2 (several handsets display 0x09 as "ç", which is why some tables list it). The GSM-7 rendering
writes it "c".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import grapheme

from alerts.errors import CrieurError
from channels._twitter_text import config as _twitter_text_config
from channels._twitter_text import parse_tweet
from channels.base import Limits
from channels.bluesky import facets_for

URL_WEIGHT = 23
URL = re.compile(r"(?:https?://|www\.)[^\s<>\"«»]+[^\s<>\"«».,;:!?')\]]", re.IGNORECASE)
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\x0c")
assert len(GSM7_BASIC) == 127 and len(GSM7_EXTENSION) == 10  # 128 codes minus ESC; 9 + form feed

# French typography that GSM-7 lacks, written the way a French SMS would write it.
_TO_GSM7 = {
    "ê": "e",
    "ë": "e",
    "â": "a",
    "î": "i",
    "ï": "i",
    "ô": "o",
    "û": "u",
    "ÿ": "y",
    "ç": "c",
    "œ": "oe",
    "Ê": "E",
    "Ë": "E",
    "È": "E",
    "Â": "A",
    "À": "A",
    "Î": "I",
    "Ï": "I",
    "Ô": "O",
    "Û": "U",
    "Ù": "U",
    "Ÿ": "Y",
    "Œ": "OE",
    "’": "'",
    "‘": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "´": "'",
    "`": "'",
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "„": '"',
    "″": '"',
    "–": "-",
    "—": "-",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "−": "-",
    "…": "...",
    "•": "-",
    "·": ".",
    "\u00a0": " ",
    "\u202f": " ",
    "\u2009": " ",
    "\u2007": " ",
    "\u200a": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u200b": "",
    "\u2060": "",
    "\ufeff": "",
    "\t": " ",
    "°": "o",
    "½": "1/2",
    "¼": "1/4",
    "¾": "3/4",
    "²": "2",
    "³": "3",
}


class FittingError(CrieurError, ValueError):
    """The fixed parts of a message (title, hashtags, link, signature) exceed the channel's limit."""


@dataclass(frozen=True, slots=True)
class Measure:
    length: int  # in the channel's counting (septets / UTF-16 units for SMS)
    segments: int = 1
    encoding: str | None = None  # "GSM-7" / "UCS-2" for SMS


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    length: int
    segments: int
    encoding: str | None
    facets: tuple[dict[str, Any], ...] = ()
    shortened: bool = False


# -- counting -----------------------------------------------------------------------------------------


def _split_urls(text: str, pattern: re.Pattern[str] = URL) -> tuple[list[str], int]:
    """Text without its URLs (as pieces) and the number of URLs."""
    pieces: list[str] = []
    last = 0
    count = 0
    for match in pattern.finditer(text):
        pieces.append(text[last : match.start()])
        last = match.end()
        count += 1
    pieces.append(text[last:])
    return pieces, count


X_CONFIG = _twitter_text_config["version3"]  # twitter-text's config/v3.json (the test compares them)


def x_length(text: str) -> int:
    return int(parse_tweet(text, X_CONFIG).weightedLength)


def mastodon_length(text: str, url_weight: int = URL_WEIGHT) -> int:
    """Code points, every link counted as `url_weight` (the instance's characters_reserved_per_url)."""
    pieces, urls = _split_urls(text)
    return urls * url_weight + sum(len(p) for p in pieces)


def grapheme_length(text: str) -> int:
    return grapheme.length(text)


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _segments(costs: list[int], single: int, part: int) -> int:
    if sum(costs) <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return segments


def sms_measure(text: str) -> Measure:
    if is_gsm7(text):
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return Measure(sum(costs), _segments(costs, 160, 153), "GSM-7")
    costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return Measure(sum(costs), _segments(costs, 70, 67), "UCS-2")


def to_gsm7(text: str) -> str:
    """Rewrite text with GSM-7 characters where a faithful French equivalent exists (ê → e, « → ",
    … → ...). Characters with none (emoji, other scripts) are kept, and keep the message in UCS-2."""
    out: list[str] = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENSION:
            out.append(char)
        elif char in _TO_GSM7:
            out.append(_TO_GSM7[char])
        else:
            stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            out.append(stripped if stripped and is_gsm7(stripped) else char)
    return "".join(out)


def measure(text: str, limits: Limits) -> Measure:
    counting = limits.counting
    if counting == "x":
        return Measure(x_length(text))
    if counting == "chars":
        return Measure(mastodon_length(text, limits.url_weight))
    if counting == "graphemes":
        return Measure(grapheme_length(text))
    if counting == "sms":
        return sms_measure(text)
    if counting == "none":
        return Measure(len(text))
    raise ValueError(f"unknown counting {counting!r} (expected x, chars, graphemes, sms or none)")


def fits(m: Measure, limits: Limits) -> bool:
    if limits.max_length is not None and m.length > limits.max_length:
        return False
    if limits.max_segments is not None and m.segments > limits.max_segments:
        return False
    return True


def describe_limit(limits: Limits) -> str:
    parts = []
    if limits.max_length is not None:
        parts.append(f"{limits.max_length} ({limits.counting})")
    if limits.max_segments is not None:
        parts.append(f"{limits.max_segments} SMS segment(s)")
    return " and ".join(parts) or "none"


# -- Bluesky facets -----------------------------------------------------------------------------------


def bluesky_facets(text: str) -> tuple[dict[str, Any], ...]:
    """app.bsky.richtext.facet records for the links and hashtags of `text`, indexed in UTF-8 bytes: the
    Bluesky adapter's own detection (channels.bluesky.facets_for), so rendering and sending agree."""
    return tuple(facets_for(text))


# -- shortening ---------------------------------------------------------------------------------------


def cut_points(body: str) -> list[int]:
    """Positions where `body` may be cut: word boundaries that are not inside a link or a hashtag."""
    protected = [(m.start(), m.end()) for m in URL.finditer(body)]
    points = [0]
    for match in re.finditer(r"\s+", body):
        position = match.start()
        if any(s < position < e for s, e in protected):
            continue
        points.append(position)
    return points


def shorten(body: str, point: int, ellipsis: str = "…") -> str:
    """Body cut at `point` (from `cut_points`), trailing punctuation dropped, ellipsis added."""
    if point <= 0:
        return ""
    kept = body[:point].rstrip().rstrip(".,;:-–—").rstrip()
    return f"{kept}{ellipsis}" if kept else ""
