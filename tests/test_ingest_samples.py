"""Every real sample in ../shared/samples (when that folder exists) of a format Crieur reads is parsed into
items that carry what the rules need. A real published document that Crieur cannot read is a failure."""

import pathlib

import pytest

from alerts.ingest import ParseError, SourceSpec, parse

SAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


def guess_kind(path: pathlib.Path, head: bytes) -> str | None:
    if path.suffix.lower() == ".csv":
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


def sample_files():
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.stat().st_size < 20_000_000)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="no ../shared/samples folder")
@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_real_sample(path):
    body = path.read_bytes()
    kind = guess_kind(path, body[:4096])
    if kind is None:
        pytest.skip(f"format of {path.name} not recognised")
    try:
        items = parse(SourceSpec(name=path.name, kind=kind, url="file:unused"), body)
    except ParseError as exc:
        pytest.fail(f"a real {kind} document could not be read: {exc}")
    assert items, f"no item read from the real {kind} document {path.name}"
    for item in items:
        assert item.source == path.name and item.external_id
        assert item.title or item.text, f"{item.external_id}: neither title nor text"
        assert item.version or item.sent, f"{item.external_id}: no version and no date"
