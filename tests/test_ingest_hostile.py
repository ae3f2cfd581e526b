"""Hostile and broken documents: entity bombs, XXE, truncation, wrong content types."""

import pathlib

import pytest

from alerts.ingest import ParseError, SourceSpec, parse

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
%s"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
%s"""

DOCS = {
    "rss": b"<rss version='2.0'><channel><title>t</title><item><guid>1</guid><title>&lol9;&xxe;</title>"
    b"<description>&lol9;&xxe;</description></item></channel></rss>",
    "cap": b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>&lol9;&xxe;</identifier>"
    b"<sent>2013-01-19T16:00:00+01:00</sent><msgType>Alert</msgType><info><headline>&xxe;</headline>"
    b"</info></alert>",
    "datex2": b"<sit:situationPublication xmlns:sit='http://datex2.eu/schema/3/situation'><sit:situation id='s'>"
    b"<sit:situationRecord id='&xxe;&lol9;' version='1'/></sit:situation></sit:situationPublication>",
}


def spec(kind):
    return SourceSpec(name=f"hostile-{kind}", kind=kind, url="file:unused")


def _entities_only(doc: bytes, which: bytes) -> bytes:
    other = b"&xxe;" if which == b"lol9" else b"&lol9;"
    return doc.replace(other, b"")


@pytest.mark.parametrize("kind", sorted(DOCS))
def test_billion_laughs_is_refused(kind):
    body = BILLION_LAUGHS % _entities_only(DOCS[kind], b"lol9")
    with pytest.raises(ParseError, match=f"hostile-{kind}"):
        parse(spec(kind), body)


@pytest.mark.parametrize("kind", sorted(DOCS))
def test_external_entity_is_refused_and_never_read(kind):
    body = XXE % _entities_only(DOCS[kind], b"xxe")
    with pytest.raises(ParseError) as info:
        parse(spec(kind), body)
    assert "root:" not in str(info.value)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("cap_41_alert.xml", "cap"),
        ("datex2_v2_cd41.xml", "datex2"),
        ("datex2_v3_dir.xml", "datex2"),
        ("meteoalarm_france_atom.xml", "cap"),
    ],
)
def test_truncated_xml_names_source_and_line(name, kind):
    full = (DATA / name).read_bytes()
    cut = full[: len(full) * 2 // 3]
    with pytest.raises(ParseError) as info:
        parse(spec(kind), cut)
    assert f"hostile-{kind}" in str(info.value) and info.value.line is not None
    assert f"line {info.value.line}" in str(info.value)
    assert info.value.line >= cut.count(b"\n")


def test_truncated_rss_with_no_complete_entry():
    cut = (DATA / "prefecture41_rss.xml").read_bytes()[:400]
    with pytest.raises(ParseError, match="hostile-rss"):
        parse(spec("rss"), cut)


@pytest.mark.parametrize(
    "kind, name, content_type",
    [
        ("cap", "cap_41_alert.xml", "application/json"),
        ("vigilance", "vigilance_encours.json", "text/xml"),
        ("geojson", "viabilite41.geojson", "text/html; charset=utf-8"),
        ("rss", None, "text/html"),
    ],
)
def test_wrong_content_type_is_refused(kind, name, content_type):
    body = (DATA / name).read_bytes() if name else b"<!DOCTYPE html><html><body>Maintenance</body></html>"
    with pytest.raises(ParseError, match="content type|HTML page"):
        parse(spec(kind), body, content_type)


def test_rss_served_as_text_html_is_still_read():
    """Some portals serve their feed as text/html; what matters is that the body is a feed."""
    items = parse(spec("rss"), (DATA / "prefecture41_rss.xml").read_bytes(), "text/html")
    assert len(items) == 3


def test_byte_order_mark_before_a_feed_served_as_html():
    body = b"\xef\xbb\xbf" + (DATA / "cap_41_alert.xml").read_bytes()
    assert len(parse(spec("cap"), body, "text/html")) == 1


def test_html_error_page_for_an_xml_source_even_without_content_type():
    with pytest.raises(ParseError, match="HTML page"):
        parse(spec("datex2"), b"<html><head><title>502 Bad Gateway</title></head></html>")
