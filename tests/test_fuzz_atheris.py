"""The atheris harness (bench/fuzz_atheris.py) runs a bounded number of inputs per target and finds no
crash. Long runs are for a person: `python bench/fuzz_atheris.py cap -max_total_time=600`."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("atheris", reason="atheris is a fuzzing tool, not a dependency: pip install atheris")

ROOT = pathlib.Path(__file__).resolve().parent.parent
HARNESS = ROOT / "bench" / "fuzz_atheris.py"


# rss/atom: feedparser errors escape the parser (see test_fuzz_feeds.py); not strict, a fuzzer's path varies
TARGETS = ["sms", "rss", "atom", "cap", "datex2", "geojson", "csv", "vigilance"]


@pytest.mark.parametrize("target", TARGETS)
def test_harness_runs_bounded_and_finds_no_crash(target, tmp_path):
    result = subprocess.run(
        [sys.executable, str(HARNESS), target, "-runs=400", "-seed=41"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Done 400 runs" in output
    assert not list(tmp_path.glob("crash-*"))


def test_unknown_target_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, str(HARNESS), "pdf"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "usage" in result.stderr
