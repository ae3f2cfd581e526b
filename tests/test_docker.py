"""Deployment files: compose services run real `crieur` commands, the image runs as a non-root user,
the systemd units are hardened and (where systemd-analyze exists) verify cleanly, and every data file
the service needs at run time is declared for the wheel the image installs."""

from __future__ import annotations

import configparser
import fnmatch
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from alerts.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"


def parses_as_crieur_command(argv: list[str]) -> str:
    """The subcommand, after argparse accepted argv exactly as `crieur` would."""
    args = build_parser().parse_args(argv)
    return args.command


def compose_file() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_file()


def test_compose_services_images_and_commands(compose):
    services = compose["services"]
    assert services["db"]["image"] == "postgres:15"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["db"]["volumes"])
    web = services["web"]
    workers = {name: s for name, s in services.items() if name.startswith("worker")}
    assert len(workers) == 2
    assert parses_as_crieur_command(web["command"]) == "run"
    assert build_parser().parse_args(web["command"]).workers == 0
    for worker in workers.values():
        assert parses_as_crieur_command(worker["command"]) == "worker"
        assert worker["healthcheck"] == {"disable": True}  # no web server to ask
    for service in [web, *workers.values()]:
        assert service["image"] == web["image"] and service["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert "./config:/etc/crieur:ro" in service["volumes"]
        assert any(v.endswith(":/var/lib/crieur") for v in service["volumes"])
        env = service["environment"]
        assert env["CRIEUR_CONFIG"] == "/etc/crieur/crieur.yaml" and env["CRIEUR_DATA_DIR"] == "/var/lib/crieur"
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["stop_signal"] == "SIGTERM"


def test_compose_holds_no_secret_value(compose):
    """Secrets come from crieur.env (not committed); compose.yaml only names it."""
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"(PASSWORD|TOKEN|SECRET|SID)[A-Z_]*:\s*\S", text.split("services:", 1)[1])
    assert compose["services"]["web"]["env_file"] == "crieur.env"


def test_env_example_names_every_secret_the_example_configuration_reads():
    example = (ROOT / "examples" / "loir-et-cher" / "crieur.yaml").read_text(encoding="utf-8")
    needed = set(re.findall(r"_env:\s*([A-Z][A-Z0-9_]+)", example))
    listed = {
        line.split("=", 1)[0]
        for line in (DOCKER / "crieur.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert needed and needed <= listed, needed - listed
    assert {"CRIEUR_PUBLIC_URL", "CRIEUR_DATABASE_URL", "CRIEUR_SECRET_KEY"} <= listed
    assert "POSTGRES_PASSWORD" not in listed  # db.env's, and the database container gets nothing else
    assert compose_file()["services"]["db"]["env_file"] == "db.env"
    assert "POSTGRES_PASSWORD=" in (DOCKER / "db.env.example").read_text()


def test_compose_environment_never_shadows_the_env_file(compose):
    """`environment:` wins over `env_file:`: a deployment setting written in crieur.env must not be
    silently replaced by a default in compose.yaml."""
    listed = {
        line.split("=", 1)[0]
        for line in (DOCKER / "crieur.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    for name, service in compose["services"].items():
        assert not listed & set(service.get("environment", {})), name


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_multi_stage_non_root_with_healthcheck():
    steps = dockerfile()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in steps
    users = [args for word, args in steps if word == "USER"]
    assert users, "the image must switch to a user"
    final_user = users[-1].split(":")[0]
    assert final_user not in ("root", "0") and not final_user.startswith("0")
    # the USER comes after the last FROM, so it applies to the runtime stage
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert any(word == "USER" and i > last_from for i, (word, _) in enumerate(steps))
    health = " ".join(args for word, args in steps if word == "HEALTHCHECK")
    assert "/healthz" in health
    entry = [args for word, args in steps if word == "ENTRYPOINT"]
    assert entry == ['["crieur"]']
    cmd = [args for word, args in steps if word == "CMD"]
    assert parses_as_crieur_command(yaml.safe_load(cmd[-1])) == "run"
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "CRIEUR_CONFIG=/etc/crieur/crieur.yaml" in env and "CRIEUR_DATA_DIR=/var/lib/crieur" in env
    assert ("VOLUME", '["/var/lib/crieur"]') in steps


def test_dockerignore_keeps_the_context_to_what_the_wheel_needs():
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1 :].count("!alerts/") == 1
    copied = [args.split()[0] for word, args in dockerfile() if word == "COPY" and "--from" not in args]
    for source in copied:
        assert (ROOT / source).exists(), source


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment]
    parser.read(DOCKER / name, encoding="utf-8")
    return parser


@pytest.mark.parametrize("name,command", [("crieur.service", "run"), ("crieur-worker@.service", "worker")])
def test_systemd_units_run_crieur_hardened(name, command):
    service = unit(name)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/crieur")
    assert parses_as_crieur_command(argv[1:]) == command
    assert service["User"] not in ("root", "0")
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "KillSignal": "SIGTERM",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert "/var/lib/crieur" in service["ReadWritePaths"]
    assert service["EnvironmentFile"] == "/etc/crieur/crieur.env"


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the static checks above still ran
        pytest.skip("systemd-analyze is not installed")
    paths = []
    for name in ("crieur.service", "crieur-worker@.service"):
        text = (DOCKER / name).read_text().replace("/opt/crieur/bin/crieur", shutil.which("true") or "/bin/true")
        target = tmp_path / name.replace("@.", "@1.")
        target.write_text(text)
        paths.append(str(target))
    result = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, timeout=60)
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if str(tmp_path) in line
    ]  # other units of the host may warn; ours may not
    assert complaints == []


def test_every_runtime_data_file_is_declared_for_the_wheel():
    """The image installs the wheel, not the source tree: a file left out is missing in production."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    declared: dict[str, list[str]] = {}
    for package, patterns in config["options.package_data"].items():
        declared[package] = [p.strip() for p in re.split(r"[,\n]", patterns) if p.strip()]
    missing = []
    for top in ("alerts", "channels", "rules"):
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            folder = path.parent
            while not (folder / "__init__.py").exists():
                folder = folder.parent
            package = ".".join(folder.relative_to(ROOT).parts)
            relative = path.relative_to(folder).as_posix()
            patterns = declared.get(package, []) + declared.get("*", [])
            if not any(fnmatch.fnmatch(relative, p) and ("/" in p) == ("/" in relative) for p in patterns):
                missing.append(path.relative_to(ROOT).as_posix())
    assert missing == []


# Releases below these have published CVEs (Jinja2 sandbox escapes: CVE-2024-56201, CVE-2024-56326,
# CVE-2025-27516; aiohttp request smuggling, path traversal and decompression bombs up to 3.13.2).
SECURITY_FLOORS = {"jinja2": "3.1.6", "aiohttp": "3.13.3"}


def _requirements() -> dict[str, str]:
    from packaging.requirements import Requirement

    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    found = {}
    for line in config["options"]["install_requires"].splitlines():
        if line.strip():
            requirement = Requirement(line.strip())
            found[requirement.name.lower()] = str(requirement.specifier)
    return found


def test_dependency_floors_exclude_releases_with_known_cves():
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    requirements = _requirements()
    for name, floor in SECURITY_FLOORS.items():
        allowed = SpecifierSet(requirements[name])
        below = Version(floor).release
        older = Version(".".join(map(str, below[:-1] + (below[-1] - 1,))))
        assert older not in allowed and Version(floor) in allowed, (name, requirements[name])


def test_the_image_installs_from_a_constraints_file_that_pins_every_runtime_dependency():
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = {}
    for line in (DOCKER / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            [spec] = list(requirement.specifier)
            assert spec.operator == "==", line
            pins[requirement.name.lower().replace("_", "-")] = spec.version
    for name, specifier in _requirements().items():
        assert name in pins, f"{name} is not pinned in docker/constraints.txt"
        from packaging.specifiers import SpecifierSet

        assert Version(pins[name]) in SpecifierSet(specifier), (name, pins[name], specifier)
    for name, floor in SECURITY_FLOORS.items():
        assert Version(pins[name]) >= Version(floor)
    runs = " ".join(args for word, args in dockerfile() if word == "RUN")
    assert "pip wheel --constraint constraints.txt" in runs
    assert "--constraint /wheels/constraints.txt crieur" in runs
    copies = [args for word, args in dockerfile() if word == "COPY"]
    assert "docker/constraints.txt ./constraints.txt" in copies and "examples ./examples" in copies
