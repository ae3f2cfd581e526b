"""Named SQL statements, kept in reviewable `.sql` files beside this module and read once.

A file holds blocks headed by `-- name --`, each one statement written PostgreSQL style (`$1` placeholders; the
SQLite side rewrites them). A few statements have parts only Python can fill, written `{marker}`: an IN list
of variable length (`{ids}`, `{channels}`, `{territories}`), a clause one dialect lacks (`{lock}`) or spells
its own way (`{elements}`, a JSON array's rows); see `in_list`.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


@functools.cache
def load(name: str) -> dict[str, str]:
    """The statements of `alerts/storage/<name>.sql`, by name."""
    text = (importlib.resources.files("alerts.storage") / f"{name}.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for query_name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("--")]
        queries[query_name] = " ".join(line.strip() for line in lines).rstrip(";")
    return queries


def in_list(start: int, count: int) -> str:
    """`$start, $start+1, ...` placeholders for an IN list of `count` values."""
    return ", ".join(f"${i}" for i in range(start, start + count))
