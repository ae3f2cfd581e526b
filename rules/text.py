"""Text normalisation shared by keyword matching and territory-name lookup.

Rules say `keywords: {any: [neige]}` and must match "NEIGE", "Neige" and "neigé"? No: accents are removed
and case folded ("Vendôme" == "vendome"), but matching is on whole words, so "verglas" does not match
"verglasé" ("verglase"). Hyphens and apostrophes separate words: "neige-verglas" is the phrase
"neige verglas", "l'A10" is "l a10".

A normalised text is padded with one space on each side and words are separated by exactly one space, so
that a whole-word (or whole-phrase) match is a plain substring search for " word ".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Ligatures NFKD does not split.
_EXTRA = {"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i"}


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char in _EXTRA:
        return _EXTRA[char]
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class _FoldTable(dict):
    """str.translate table filled on demand: one dict lookup per character after the first time."""

    def __missing__(self, codepoint: int) -> str:
        folded = _fold_char(chr(codepoint))
        self[codepoint] = folded
        return folded


_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Casefold and strip accents, keeping every other character."""
    text = text.casefold()
    if text.isascii():
        return text
    return text.translate(_TABLE)


_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_LETTERS_NFKD_KEEPS = tuple(_EXTRA.items())
# After folding, bytes other than ASCII letters and digits separate words.
_WORD_BYTES = bytes(c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122) else 32 for c in range(256))


def normalise(text: str) -> str:
    """ " word word " form: folded, punctuation and underscores turned into single spaces, padded.

    Runs on every item for every rule set, so it stays in C as much as possible: casefold, NFKD and
    dropping combining marks, then a byte table. Letters outside the Latin alphabet separate words
    (keywords are normalised the same way, so a keyword made only of them is refused at load time)."""
    folded = text.casefold()
    if not folded.isascii():
        folded = _MARKS.sub("", unicodedata.normalize("NFKD", folded))
        for letter, replacement in _LETTERS_NFKD_KEEPS:
            if letter in folded:
                folded = folded.replace(letter, replacement)
    words = folded.encode("ascii", "replace").translate(_WORD_BYTES).split()
    return (b" " + b" ".join(words) + b" ").decode("ascii") if words else " "


@lru_cache(maxsize=8192)
def normalise_phrase(text: str) -> str:
    """A keyword or name as the words it matches, without padding ("" when it has no word). Remembered:
    a rule book of 10,000 rules repeats a few hundred keywords."""
    return normalise(text).strip()
