"""Material published by others, read in place from ../shared beside the repository (never copied here).

A missing file is an error, not a skip: a test that depends on a provider's description or a peer suite
must not pass silently when that description is absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"../shared/{'/'.join(parts)} is missing: the test reads it in place")
    return path


def shared_json(*parts: str) -> Any:
    return json.loads(shared_path(*parts).read_text(encoding="utf-8"))
