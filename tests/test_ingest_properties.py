"""Property tests: random and mutated documents never raise anything but ParseError, and the
SourceLoop survives whatever a source serves."""

import pathlib

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.domain import Item
from alerts.ingest import ParseError, SourceSpec, parse
from alerts.ingest.loop import MemoryStateStore, SourceLoop

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ingest"
FIXTURES = [
    ("rss", "prefecture41_rss.xml"),
    ("atom", "cd28_atom.xml"),
    ("cap", "cap_41_alert.xml"),
    ("cap", "cap_41_cancel.xml"),
    ("cap", "meteoalarm_france_atom.xml"),
    ("datex2", "datex2_v2_cd41.xml"),
    ("datex2", "datex2_v3_dir.xml"),
    ("geojson", "viabilite41.geojson"),
    ("csv", "viabilite28.csv"),
    ("vigilance", "vigilance_encours.json"),
]
BODIES = {name: (DATA / name).read_bytes() for _, name in FIXTURES}
# Tokens that make mutations reach deeper code than random bytes do.
TOKENS = [
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b'"',
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b";",
    b"null",
    b"\xff",
    b"\x00",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<!DOCTYPE x>",
    b'xsi:type="x"',
    b"1e999",
    b"-",
    b"\n",
    b"2013-13-45T99:99:99",
    b"RD 957",
    b"\xc3",
    b"\xe9",
]

mutation = st.tuples(
    st.sampled_from(["flip", "delete", "insert", "token", "truncate"]),
    st.floats(0, 1, exclude_max=True),
    st.integers(1, 64),
    st.integers(0, 255),
    st.sampled_from(TOKENS),
)


def mutate(body: bytes, ops) -> bytes:
    data = bytearray(body)
    for op, where, length, byte, token in ops:
        pos = int(where * len(data)) if data else 0
        if op == "flip" and data:
            data[pos] ^= 1 << (byte % 8)
        elif op == "delete":
            del data[pos : pos + length]
        elif op == "insert":
            data[pos:pos] = bytes([byte]) * (length % 4 + 1)
        elif op == "token":
            data[pos:pos] = token
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def check(kind: str, body: bytes, content_type: str = "") -> None:
    spec = SourceSpec(name="fuzz", kind=kind, url="file:unused")
    try:
        items = parse(spec, body, content_type)
    except ParseError as exc:
        assert "fuzz" in str(exc)
        return
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item, Item) and item.source == "fuzz" and item.external_id


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(fixture=st.sampled_from(FIXTURES), ops=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_fixtures_raise_only_parse_error(fixture, ops):
    kind, name = fixture
    check(kind, mutate(BODIES[name], ops))


@FAST
@given(
    kind=st.sampled_from(sorted({k for k, _ in FIXTURES})),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["", "application/xml", "application/json", "text/csv", "text/html"]),
)
def test_random_bytes_raise_only_parse_error(kind, body, content_type):
    check(kind, body, content_type)


@FAST
@given(
    kind=st.sampled_from(["geojson", "vigilance"]),
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "features",
                        "properties",
                        "geometry",
                        "id",
                        "route",
                        "etat",
                        "date_maj",
                        "insee",
                        "product",
                        "periods",
                        "echeance",
                        "timelaps",
                        "domain_ids",
                        "domain_id",
                        "phenomenon_items",
                        "phenomenon_id",
                        "phenomenon_max_color_id",
                        "update_time",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    ),
)
def test_random_json_structures_raise_only_parse_error(kind, doc):
    import json

    check(kind, json.dumps(doc).encode())


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(fixture=st.sampled_from(FIXTURES), ops=st.lists(mutation, min_size=1, max_size=4), sink_fails=st.booleans())
async def test_source_loop_never_dies(tmp_path, fixture, ops, sink_fails):
    kind, name = fixture
    path = tmp_path / f"doc-{kind}"
    path.write_bytes(mutate(BODIES[name], ops))

    async def sink(spec, items):
        if sink_fails:
            raise RuntimeError("sink down")

    spec = SourceSpec(name="fuzz", kind=kind, url=f"file:{path.name}", options={"base_dir": str(tmp_path)})
    async with aiohttp.ClientSession() as session:
        loop = SourceLoop(session, [spec], sink, MemoryStateStore())
        health = await loop.poll_once("fuzz")
    assert health["last_status"] in {"ok", "error"}
    if health["last_status"] == "error":
        assert health["last_error"].startswith("source 'fuzz'") and health["consecutive_failures"] == 1
