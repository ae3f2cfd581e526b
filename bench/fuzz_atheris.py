"""Coverage-guided fuzzing (atheris / libFuzzer) of what strangers can send Crieur: citizens' SMS and
source documents.

    python bench/fuzz_atheris.py sms                 # 20,000 inputs (default), then stops
    python bench/fuzz_atheris.py cap -runs=200000    # any libFuzzer option after the target
    python bench/fuzz_atheris.py rss -max_total_time=600

Targets: sms (alerts.keywords.parse_sms: must never raise) and one per feed kind (alerts.ingest.parse:
only ParseError). A feed target starts from the matching fixtures of tests/data/ingest (copied to a
temporary corpus). Anything else raised is a crash: libFuzzer prints it and writes the input as
crash-<sha1> in the current folder. `pip install atheris` first (it is not a dependency of Crieur).
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import sys
import tempfile

import atheris

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["alerts", "rules"]):
    # parse() imports its format modules on first use: import them here so they are instrumented
    from alerts.domain import Item
    from alerts.ingest import KINDS, ParseError, SourceSpec, cap, common, datex2, geojson, parse, rss, vigilance, xml  # noqa: F401
    from alerts.keywords import Command, parse_sms

DEFAULT_RUNS = 20_000
TERRITORIES = ("41", "28", "2A", "974")
FIXTURES = ROOT / "tests" / "data" / "ingest"
SEEDS = {  # fixture name prefixes per kind
    "rss": ("prefecture", "rss"),
    "atom": ("cd28_atom", "atom"),
    "cap": ("cap_", "meteoalarm"),
    "datex2": ("datex2",),
    "geojson": ("viabilite41", ".geojson"),
    "csv": ("viabilite28", ".csv"),
    "vigilance": ("vigilance",),
}
CONTENT_TYPES = ("", "application/xml", "text/xml; charset=utf-8", "application/json", "text/html", "text/csv")


def fuzz_sms(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    territories = TERRITORIES[: fdp.ConsumeIntInRange(0, len(TERRITORIES))]
    text = fdp.ConsumeUnicodeNoSurrogates(320)
    command = parse_sms(text, territories)
    if not isinstance(command, Command):
        raise AssertionError(f"parse_sms returned {command!r}")


def feed_target(kind: str):
    spec = SourceSpec(name="fuzz", kind=kind, url="file:unused")

    def fuzz_feed(data: bytes) -> None:
        content_type = CONTENT_TYPES[data[0] % len(CONTENT_TYPES)] if data else ""
        try:
            items = parse(spec, data[1:], content_type)
        except ParseError:
            return
        if not isinstance(items, list) or not all(isinstance(i, Item) and i.source == "fuzz" for i in items):
            raise AssertionError(f"parse returned {items!r}")

    return fuzz_feed


def seed_corpus(kind: str) -> str:
    """A temporary corpus of the fixtures for `kind`, each prefixed with the content-type byte 0."""
    folder = tempfile.mkdtemp(prefix=f"crieur-fuzz-{kind}-")
    for path in sorted(FIXTURES.glob("*")):
        if path.is_file() and any(p in path.name for p in SEEDS.get(kind, ())):
            (pathlib.Path(folder) / path.name).write_bytes(b"\x00" + path.read_bytes())
    return folder


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in {"sms", *KINDS}:
        raise SystemExit(f"usage: {argv[0]} sms|{'|'.join(sorted(KINDS))} [libFuzzer options]")
    target = argv[1]
    logging.disable(logging.CRITICAL)  # skipped-record warnings would drown libFuzzer's output
    options = argv[2:]
    if not any(o.startswith(("-runs=", "-max_total_time=")) for o in options):
        options.append(f"-runs={DEFAULT_RUNS}")
    corpus = None
    if target != "sms" and not any(not o.startswith("-") for o in options):
        corpus = seed_corpus(target)
        options.append(corpus)
    try:
        atheris.Setup([argv[0], *options], fuzz_sms if target == "sms" else feed_target(target))
        atheris.Fuzz()
    finally:  # reached only when atheris.Fuzz returns (some versions sys.exit instead)
        if corpus:
            shutil.rmtree(corpus, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
