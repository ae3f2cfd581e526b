"""`crieur users`: the account lifecycle from the command line; a password never on the command line."""

from __future__ import annotations

import asyncio
import io
import pathlib

import pytest

from alerts.cli import main
from alerts.storage import open_store
from alerts.web import accounts
from tests.test_cli import example, keep_logging  # noqa: F401 (fixtures)
from tests.test_web_support import quick_argon2


def database(tmp_path: pathlib.Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'crieur.db'}"


async def in_store(url: str, action):  # noqa: ANN001, ANN201
    store = await open_store(url)
    try:
        return await action(store)
    finally:
        await store.close()


def test_users_lifecycle_from_the_command_line(example, tmp_path, monkeypatch, capsys):  # noqa: F811
    quick_argon2(monkeypatch)
    monkeypatch.setenv("CRIEUR_DATABASE_URL", database(tmp_path))
    with pytest.raises(SystemExit):  # the option that put passwords in the process list is gone
        main(["users", "add", "cm41", "--password", "neige-sur-la-RD957"])
    monkeypatch.setattr("sys.stdin", io.StringIO("neige-sur-la-RD957\n"))
    assert main(["users", "add", "cm41", "--role", "admin"]) == 0
    assert "cm41 (admin) created" in capsys.readouterr().out
    url = database(tmp_path)
    result = asyncio.run(in_store(url, lambda s: accounts.login(s, "cm41", "neige-sur-la-RD957")))
    assert result.session is not None
    token = result.session.token

    def alive() -> bool:
        return asyncio.run(in_store(url, lambda s: accounts.session(s, token))) is not None

    assert alive()
    monkeypatch.setattr("sys.stdin", io.StringIO("un-autre-mot-de-passe\n"))
    assert main(["users", "password", "cm41"]) == 0
    assert not alive()
    assert main(["users", "disable", "cm41"]) == 0
    assert main(["users", "list"]) == 0
    assert "disabled" in capsys.readouterr().out
    assert asyncio.run(in_store(url, lambda s: accounts.login(s, "cm41", "un-autre-mot-de-passe"))).session is None
    assert main(["users", "enable", "cm41"]) == 0
    assert main(["users", "unlock", "cm41"]) == 0
    assert main(["users", "remove", "cm41"]) == 0
    with pytest.raises(SystemExit, match="no user 'cm41'"):
        main(["users", "remove", "cm41"])
    audit = asyncio.run(in_store(url, lambda s: accounts.audit_log(s)))
    assert [e["action"] for e in reversed(audit)] == [
        "user-add",
        "user-password",
        "user-disable",
        "user-enable",
        "user-unlock",
        "user-remove",
    ]
