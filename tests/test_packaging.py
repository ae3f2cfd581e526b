"""A real, non-editable install (a wheel built from the repository, as pip or a package index would
install it), then `crieur demo` and `crieur init` from it: the example configuration must be in the
package, not only in the source tree."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request

import pytest
import yaml

from alerts.cli import main
from tests.conftest import ROOT
from tests.test_cli import keep_logging  # noqa: F401 (fixture: main() installs its own log handler)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A venv with Crieur installed from a wheel (no source tree on its path); its dependencies come
    from the test environment's site-packages, added as a plain path (no editable finder from there)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "__pycache__",
            "*.egg-info",
            "build",
            "dist",
            "data",
            "tests",
            "bench",
            ".pytest_cache",
            ".hypothesis",
            "test-artifacts",
        ),
    )
    wheels = work / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    pathlib.Path(purelib, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    [wheel] = wheels.glob("crieur-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=300,
    )
    return venv


def test_the_wheel_carries_the_example_and_nothing_from_the_source_tree(installed: pathlib.Path) -> None:
    python = installed / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import alerts, alerts.example as e; print(alerts.__file__); print(e.example_config())"],
        check=True,
        capture_output=True,
        text=True,
        cwd=installed,
    ).stdout.split()
    assert str(ROOT) not in found[0] and "site-packages" in found[0]
    assert found[1].endswith("alerts/example/crieur.yaml") and "site-packages" in found[1]
    example = pathlib.Path(found[1]).parent
    for name in (
        "rules.yaml",
        "territories.yaml",
        "authorities.yaml",
        "templates/alerte.j2",
        "feeds/prefecture-41.xml",
    ):
        assert (example / name).is_file(), name


def test_crieur_demo_runs_from_a_non_editable_install(installed: pathlib.Path, tmp_path: pathlib.Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    process = subprocess.Popen(
        [str(installed / "bin" / "crieur"), "demo", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, page = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/t/41", timeout=2) as response:
                    page = response.read().decode()
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.3)
        assert "Loir-et-Cher" in page
        dry_run = tmp_path / "data" / "dry-run.jsonl"
        while time.monotonic() < deadline and not (dry_run.exists() and dry_run.read_text().strip()):
            time.sleep(0.3)
        records = [json.loads(line) for line in dry_run.read_text().splitlines()]
        assert records and all("channel" in r for r in records)  # the demo feeds were read and fanned out
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "cannot read file" not in output


def test_crieur_init_writes_a_starting_configuration_that_loads(
    installed: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "cg41"
    result = subprocess.run(
        [str(installed / "bin" / "crieur"), "init", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    config = (target / "crieur.yaml").read_text(encoding="utf-8")
    assert config.startswith("# Starting configuration written by `crieur init`")
    parsed = yaml.safe_load(config)
    assert parsed["service"]["dry_run"] is True and parsed["sources"] == []
    for name in ("rules.yaml", "territories.yaml", "authorities.yaml", "templates/alerte-sms.j2"):
        text = (target / name).read_text(encoding="utf-8")
        assert name.endswith(".j2") or "#" in text, f"{name} is not commented"
    again = subprocess.run(
        [str(installed / "bin" / "crieur"), "init", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert again.returncode != 0 and "already exists" in again.stderr  # never overwrites a CM's work
    assert (
        main(
            [
                "rules",
                "check",
                str(target / "rules.yaml"),
                "--territories",
                str(target / "territories.yaml"),
                "--templates",
                str(target / "templates"),
            ]
        )
        == 0
    )
