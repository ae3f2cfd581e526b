"""The `crieur` command line, run in-process on the bundled example with a temporary data directory
(what a new user does after `crieur demo`)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from alerts.cli import main
from tests.conftest import EXAMPLES


@pytest.fixture(autouse=True)
def keep_logging():
    """`main()` installs its own log handler on the (captured) stderr; put the test run's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def example(tmp_path, monkeypatch):
    """A copy of the bundled example whose data go to tmp_path."""
    target = tmp_path / "loir-et-cher"
    shutil.copytree(EXAMPLES / "loir-et-cher", target)
    monkeypatch.setenv("CRIEUR_CONFIG", str(target / "crieur.yaml"))
    monkeypatch.setenv("CRIEUR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CRIEUR_DATABASE_URL", raising=False)
    return target


def dry_run_log(tmp_path) -> list[dict]:
    path = tmp_path / "data" / "dry-run.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_sms_conversation_in_the_demo(example, tmp_path, capsys):
    assert main(["sms", "+33612345678", "ROUTE41"]) == 0
    assert "STOP" in capsys.readouterr().out
    assert main(["sms", "06 12 34 56 78", "Les poids lourds peuvent-ils rouler sur l'A10 ?"]) == 0
    reply = capsys.readouterr().out
    assert "Prefecture" in reply or "Préfecture" in reply
    escalations = [r for r in dry_run_log(tmp_path) if r["channel"] == "email"]
    assert len(escalations) == 1 and "prefecture" in escalations[0]["recipient"]
    assert main(["subscribers", "export", "+33612345678"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [s["territory"] for s in exported["subscriptions"]] == ["41"]
    assert exported["questions"][0]["text"].startswith("Les poids lourds")
    [consent] = exported["consents"]  # the subscription SMS is the consent kept (RGPD)
    assert (consent["via"], consent["medium"], consent["text"]) == ("sms", "sms", "ROUTE41")
    assert main(["sms", "+33612345678", "stop"]) == 0
    capsys.readouterr()
    assert main(["subscribers", "export", "+33612345678"]) == 0
    assert json.loads(capsys.readouterr().out)["subscriptions"] == []
    assert main(["subscribers", "export", "Camille@Exemple.FR"]) == 0  # an e-mail subscriber too
    assert json.loads(capsys.readouterr().out)["phone"] == "Camille@exemple.fr"


def test_rules_check_and_test(example, tmp_path, capsys):
    assert main(["rules", "check", str(example / "rules.yaml")]) == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "mode: first-match\nrules:\n  - name: x\n    when: {severity: Big}\n    then: {channels: [sms]}\n"
    )
    assert main(["rules", "check", str(broken)]) != 0
    assert "broken.yaml:4:" in capsys.readouterr().out
    item = tmp_path / "item.yaml"
    item.write_text(
        "source: prefecture-41\nexternal_id: x\ntitle: Neige sur la RD 957\n"
        "text: Neige et verglas sur la RD 957 près de Blois.\nseverity: Severe\nroads: [D957]\n"
    )
    assert main(["rules", "test", str(example / "rules.yaml"), str(item)]) == 0
    shown = capsys.readouterr().out
    assert "neige-hors-episode" in shown and "sms" not in shown  # outside an episode: held, no SMS
    assert main(["rules", "test", str(example / "rules.yaml"), str(item), "--episode", "41"]) == 0
    shown = capsys.readouterr().out
    assert "neige-routes-episode" in shown and "#route41" in shown and "segment" in shown.lower()


def test_episode_sources_and_deliveries(example, capsys):
    assert main(["episode", "start", "41", "--by", "jd"]) == 0
    assert main(["sources"]) == 0
    assert "no source has been polled yet" in capsys.readouterr().out
    assert main(["deliveries", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_config_is_a_clear_error(tmp_path, monkeypatch, capsys):
    path = tmp_path / "crieur.yaml"
    path.write_text("service:\n  prot: 8041\n")
    monkeypatch.setenv("CRIEUR_CONFIG", str(path))
    with pytest.raises(SystemExit) as exit_:
        main(["sources"])
    assert f"{path}:2:3: service.prot: unknown key" in str(exit_.value)


def test_users_add_with_initials(example, capsys, monkeypatch):
    import asyncio
    import io
    import os

    from alerts.storage import open_store

    monkeypatch.setattr("sys.stdin", io.StringIO("neige-sur-la-RD957\n"))  # the password, never an argument
    assert main(["users", "add", "lea.roux", "--role", "cm", "--initials", "lr"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("neige-sur-la-RD957\n"))
    assert main(["users", "add", "jean.dupont"]) == 0

    async def initials() -> dict:
        store = await open_store(f"sqlite:///{os.environ['CRIEUR_DATA_DIR']}/crieur.db")
        try:
            return {r["username"]: r["initials"] for r in await store.db.fetch("SELECT username, initials FROM users")}
        finally:
            await store.close()

    assert asyncio.run(initials()) == {"lea.roux": "LR", "jean.dupont": "JD"}
