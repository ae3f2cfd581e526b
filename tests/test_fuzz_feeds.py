"""Inputs the coverage-guided fuzzer (bench/fuzz_atheris.py) found that make a feed parser raise something
other than ParseError. Random and mutated documents are property-tested in test_ingest_properties.py;
these are the exact inputs, kept as regressions.

Both came from feedparser's internal errors, which alerts/ingest/rss.py now turns into ParseError: a
caller of `parse` is promised ParseError only.
"""

from __future__ import annotations

import pathlib

import pytest

from alerts.ingest import ParseError, SourceSpec, parse

DATA = pathlib.Path(__file__).resolve().parent / "data" / "fuzz"

CASES = {
    # an XML declaration whose encoding name holds a NUL byte: feedparser's bytes.decode raises ValueError
    "encoding-with-nul": (
        "atom",
        b'<?xml version="1.0" encoding="utf\x008"?>\n'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>CD28</title>'
        b"<entry><title>Neige</title><id>1</id></entry></feed>",
    ),
    # a malformed feed that sends feedparser to its loose SGML parser, where "<![CDATH[" trips an
    # AssertionError ("unknown status keyword 'CDATH' in marked section")
    "unknown-marked-section": ("rss", (DATA / "rss_unknown_marked_section.xml").read_bytes()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzzer_findings_raise_only_parse_error(name):
    kind, body = CASES[name]
    try:
        parse(SourceSpec(name="fuzz", kind=kind, url="file:unused"), body, "")
    except ParseError as exc:
        assert "fuzz" in str(exc)
