"""Every real sample in ../shared/samples of a format Crieur reads is parsed into items that carry what
the rules need. A real published document that Crieur cannot read is a failure, and so is a missing
samples folder (the run must not pass by skipping). Field-level assertions per file are in
tests/test_ingest_real_*.py."""

import pathlib

import pytest

from alerts.ingest import ParseError, SourceSpec, parse

SAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "samples"

# samples folder -> the source kind a CM would configure for such a document
FEED_KINDS = {
    "cap": "cap",
    "meteoalarm": "cap",
    "datex2": "datex2",
    "rss": "rss",
    "roadstate": "geojson",
    "vigilance": "vigilance",
}
# Not feeds: social-network payloads (used by the channel tests), schemas, the folder's own notes.
NOT_FEEDS = {"providers", "schemas"}


def sample_files() -> list[pathlib.Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def feed_files() -> list[pathlib.Path]:
    return [p for p in sample_files() if p.relative_to(SAMPLES).parts[0] in FEED_KINDS]


def kind_of(path: pathlib.Path) -> str:
    return FEED_KINDS[path.relative_to(SAMPLES).parts[0]]


def test_samples_folder_is_present():
    assert SAMPLES.is_dir(), f"the shared samples folder is missing: {SAMPLES}"
    assert (SAMPLES / "SOURCES.md").is_file(), "the shared samples folder has no SOURCES.md"
    assert len(feed_files()) >= 25, f"only {len(feed_files())} feed samples found in {SAMPLES}"


def test_every_sample_folder_is_known():
    """A new folder of samples must be classified here (feed kind or out of scope), not silently ignored."""
    folders = {p.relative_to(SAMPLES).parts[0] for p in sample_files()}
    assert folders, "no samples"
    unknown = folders - set(FEED_KINDS) - NOT_FEEDS
    assert not unknown, f"unclassified sample folders: {unknown}"


@pytest.mark.parametrize("path", feed_files(), ids=lambda p: p.name)
def test_real_sample(path):
    body = path.read_bytes()
    kind = kind_of(path)
    try:
        items = parse(SourceSpec(name=path.name, kind=kind, url="file:unused"), body)
    except ParseError as exc:
        pytest.fail(f"a real {kind} document could not be read: {exc}")
    assert items, f"no item read from the real {kind} document {path.name}"
    for item in items:
        assert item.source == path.name and item.external_id
        assert item.title or item.text, f"{item.external_id}: neither title nor text"
        assert item.version or item.sent, f"{item.external_id}: no version and no date"
