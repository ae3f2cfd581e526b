"""Shared fixtures. Fake provider servers live in tests/fakes/."""
from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
EXAMPLES = ROOT / "examples"


@pytest.fixture
def samples_dir() -> pathlib.Path:
    return SAMPLES
