"""The bundled example configuration (Loir-et-Cher): what `crieur demo` runs, what `crieur init` copies.

In a source checkout (or an editable install) it is examples/loir-et-cher at the top of the repository;
in an installed package (wheel, `pip install .`) the build copied it to alerts/example (see setup.py).
"""

from __future__ import annotations

import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent
CANDIDATES = (HERE / "example", HERE.parent / "examples" / "loir-et-cher")
# What `crieur init` writes: the configuration a CM edits, without the demo's feeds and data.
STARTER_FILES = ("crieur.yaml", "rules.yaml", "territories.yaml", "authorities.yaml", "templates")


def example_dir() -> pathlib.Path:
    for candidate in CANDIDATES:
        if (candidate / "crieur.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        "the bundled example configuration is missing from this installation "
        f"(looked in {', '.join(str(c) for c in CANDIDATES)})"
    )


def example_config() -> pathlib.Path:
    return example_dir() / "crieur.yaml"


STARTER_NOTE = """\
# Starting configuration written by `crieur init`, from the bundled Loir-et-Cher example: every file is
# commented; change the names, territories, rules, authorities and templates to your département's.
# It starts in dry-run (nothing is sent: every message goes to data/dry-run.jsonl); set dry_run to false
# once each channel's secret is in the environment. The variable named by secret_key_env (a long random
# value) is needed even in dry-run. `crieur rules check rules.yaml` checks your rules.
"""
STARTER_SOURCES = """\
sources: []
  # Feeds to poll, for example:
  # - name: prefecture-41
  #   kind: rss                # rss, atom, cap, datex2, geojson, vigilance
  #   url: https://www.loir-et-cher.gouv.fr/.../rss.xml
  #   interval: 60s
  #   authority: prefecture-41 # the authorities.yaml entry that publishes it
"""


def write_starter(target: pathlib.Path, *, force: bool = False) -> list[pathlib.Path]:
    """Write a starting configuration into `target` (created if needed); refuses to overwrite a file
    unless `force`. Returns the paths written."""
    source = example_dir()
    target.mkdir(parents=True, exist_ok=True)
    clashes = [target / name for name in STARTER_FILES if (target / name).exists()]
    if clashes and not force:
        raise FileExistsError(f"{clashes[0]} already exists (use --force to overwrite)")
    written = []
    for name in STARTER_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif name == "crieur.yaml":
            (target / name).write_text(_starter_config(path.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copyfile(path, target / name)
        written.append(target / name)
    return written


def _starter_config(example: str) -> str:
    """The example's crieur.yaml in dry-run, its demo feeds replaced by a commented sources list."""
    lines = example.splitlines()
    while lines and lines[0].startswith("#"):  # the example's own header speaks of the demo
        lines.pop(0)
    out: list[str] = [STARTER_NOTE.rstrip("\n")]
    skipping = False
    for line in lines:
        if line.startswith("sources:"):
            out.extend(STARTER_SOURCES.rstrip("\n").splitlines())
            skipping = True
            continue
        if skipping:
            if line and not line.startswith((" ", "#", "-")):
                skipping = False
            else:
                continue
        if line.strip().startswith("dry_run:"):
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}dry_run: true                           # false once the channels' secrets are set"
        out.append(line)
    return "\n".join(out) + "\n"
