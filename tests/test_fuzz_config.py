"""Fuzzing the files people edit by hand: rule files, territory files and crieur.yaml.

Mutated copies of the real example files (text mutations: deleted, duplicated or re-indented lines, YAML
tokens, tabs, bad bytes; tree mutations: any value replaced by another type) and random YAML documents
must give ValidationFailed / RuleError lists naming the file — never another exception. Feed parsers are
fuzzed in test_ingest_properties.py and the SMS keyword parser in test_keywords.py.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.config import load_config
from rules.loader import Known, check_rules, load_rules
from rules.territories import check_territories
from rules.yamlcheck import RuleError, ValidationFailed
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "loir-et-cher"
SEEDS = {
    name: (EXAMPLE / name).read_text(encoding="utf-8")
    for name in ("rules.yaml", "territories.yaml", "crieur.yaml", "authorities.yaml")
}
KNOWN = Known(
    territories=("41", "28"),
    templates=("alerte", "alerte-sms", "mise-a-jour", "fin-alerte"),
    channels=("mastodon", "x", "bluesky", "facebook", "sms", "email", "web"),
)
# CRIEUR_FUZZ_EXAMPLES=2000 for a long run; the default keeps the file within seconds
FUZZ = settings(
    max_examples=int(os.environ.get("CRIEUR_FUZZ_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TOKENS = [
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "*unknown",
    "<<: *a",
    "!!python/object:os.system ",
    "!!binary ",
    "? ",
    "|",
    ">",
    "'",
    '"',
    "\\",
    "#",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\t",
    "  ",
    "\n",
    "~",
    "null",
    "yes",
    "no",
    "1e309",
    "-1",
    "0x41",
    "9" * 30,
    "2013-01-18",
    "é",
    "\u2019",
    "\x00",
    "\ufeff",
]


# ---------------------------------------------------------------------------------------- mutations

text_op = st.tuples(
    st.sampled_from(
        ["delete_line", "duplicate_line", "indent", "dedent", "token", "delete_chars", "swap_lines", "truncate"]
    ),
    st.floats(0, 1, exclude_max=True),
    st.integers(1, 6),
    st.sampled_from(TOKENS),
)


def mutate_text(text: str, ops) -> str:
    lines = text.split("\n")
    for op, where, n, token in ops:
        i = int(where * len(lines)) if lines else 0
        if not lines:
            lines = [token]
            continue
        if op == "delete_line":
            del lines[i : i + n]
        elif op == "duplicate_line":
            lines[i:i] = lines[i : i + n]
        elif op == "indent":
            lines[i] = " " * n + lines[i]
        elif op == "dedent":
            lines[i] = lines[i][n:]
        elif op == "token":
            line = lines[i]
            at = int(where * 997) % (len(line) + 1)
            lines[i] = line[:at] + token + line[at:]
        elif op == "delete_chars":
            line = lines[i]
            at = int(where * 991) % (len(line) + 1)
            lines[i] = line[:at] + line[at + n :]
        elif op == "swap_lines" and len(lines) > 1:
            j = (i + n) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines = lines[:i]
    return "\n".join(lines)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["41", "28", "2A", "#route41", "RD 957", "15m", "neige", ""])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=10) | st.sampled_from(["name", "when", "then", "kind", "url"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def paths_of(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths_of(value, prefix + (index,))


def replace_at(tree, path, value):
    if not path:
        return value
    node = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return tree


@st.composite
def tree_mutation(draw, seed_name: str) -> str:
    """Parse a seed, replace a few values anywhere in it by values of any type, dump it back."""
    tree = yaml.safe_load(SEEDS[seed_name])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(paths_of(tree))
        tree = replace_at(tree, draw(st.sampled_from(paths)), draw(values))
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)


def write(path: pathlib.Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


def assert_named(errors, path: pathlib.Path) -> None:
    for error in errors:
        assert isinstance(error, RuleError)
        assert error.file.endswith(path.name) or path.name in error.message, error
        assert error.line >= 0 and error.column >= 0 and error.message


# ---------------------------------------------------------------------------------------- rules


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> pathlib.Path:
    """A copy of the example folder, so that crieur.yaml's relative paths resolve."""
    folder = tmp_path_factory.mktemp("fuzz") / "loir-et-cher"
    shutil.copytree(EXAMPLE, folder)
    return folder


def check_rule_text(folder: pathlib.Path, text: str) -> None:
    path = folder / "fuzzed-rules.yaml"
    write(path, text)
    rules, errors = check_rules([path], KNOWN)
    assert_named(errors, path)
    try:
        load_rules([path], KNOWN)
    except ValidationFailed as exc:
        assert exc.errors and path.name in str(exc)
    else:
        assert not errors


@FUZZ
@given(ops=st.lists(text_op, min_size=1, max_size=5))
def test_mutated_rule_files_give_only_rule_errors(work, ops):
    check_rule_text(work, mutate_text(SEEDS["rules.yaml"], ops))


@FUZZ
@given(text=tree_mutation("rules.yaml"))
def test_rule_files_with_wrong_types_anywhere_give_only_rule_errors(work, text):
    check_rule_text(work, text)


@FUZZ
@given(doc=values)
def test_random_yaml_documents_as_rule_files(work, doc):
    check_rule_text(work, yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_as_rule_files(work, data):
    path = work / "fuzzed-bytes.yaml"
    path.write_bytes(data)
    _rules, errors = check_rules([path], KNOWN)
    assert_named(errors, path)


@FUZZ
@given(
    text=st.one_of(
        st.lists(text_op, min_size=1, max_size=5).map(lambda ops: mutate_text(SEEDS["territories.yaml"], ops)),
        tree_mutation("territories.yaml"),
    )
)
def test_mutated_territory_files_give_only_rule_errors(work, text):
    path = work / "fuzzed-territories.yaml"
    write(path, text)
    territories, errors = check_territories(path)
    assert_named(errors, path)
    assert territories is not None or errors


# ---------------------------------------------------------------------------------------- crieur.yaml


def check_config_text(folder: pathlib.Path, text: str) -> None:
    path = folder / "fuzzed-crieur.yaml"  # beside the example's files, which its relative paths name
    write(path, text)
    try:
        config = load_config(path)
    except ValidationFailed as exc:
        assert exc.errors
        assert_named(exc.errors, path)
    else:
        assert config.path == path.resolve()
        assert config.port >= 1 and config.workers >= 0
        assert all(isinstance(options, dict) and options.get("kind") for options in config.channels.values())


@FUZZ
@given(ops=st.lists(text_op, min_size=1, max_size=5))
def test_mutated_service_configuration_gives_only_validation_errors(work, ops, monkeypatch):
    for name in ("CRIEUR_DATABASE_URL", "CRIEUR_DATA_DIR", "CRIEUR_HOST", "CRIEUR_PORT", "CRIEUR_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    check_config_text(work, mutate_text(SEEDS["crieur.yaml"], ops))


@FUZZ
@given(text=tree_mutation("crieur.yaml"))
def test_service_configuration_with_wrong_types_anywhere(work, text, monkeypatch):
    for name in ("CRIEUR_DATABASE_URL", "CRIEUR_DATA_DIR", "CRIEUR_HOST", "CRIEUR_PORT", "CRIEUR_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    check_config_text(work, text)


@FUZZ
@given(doc=values)
def test_random_yaml_documents_as_service_configuration(work, doc):
    check_config_text(work, yaml.safe_dump(doc, allow_unicode=True))


def test_seeds_are_valid_so_the_mutations_start_from_a_good_file(work):
    check_rules([work / "rules.yaml"], KNOWN)
    assert load_config(work / "crieur.yaml").channels
    assert check_territories(work / "territories.yaml")[1] == []
