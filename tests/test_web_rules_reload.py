"""An admin reloads the rules from the console; a broken file leaves the rules in force and says where."""

from __future__ import annotations

import shutil

from alerts.web import accounts
from rules.book import RuleBook
from tests.conftest import EXAMPLES
from tests.test_web_support import Web, csrf_of, web_env  # noqa: F401  (fixture)


async def test_admin_reloads_rules_and_sees_errors(web_env: Web, tmp_path) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(EXAMPLES / "loir-et-cher", folder)
    web_env.crieur.rules = RuleBook.load(
        folder / "rules.yaml", territories=folder / "territories.yaml", templates=folder / "templates"
    )
    in_force = web_env.crieur.rules.engine

    await web_env.login("camille")  # a CM may not reload
    page = await web_env.client.get("/console")
    token = csrf_of(await page.text())
    refused = await web_env.client.post("/console/rules/reload", data={"csrf": token}, allow_redirects=False)
    assert refused.status == 403
    await web_env.client.post("/console/logout", data={"csrf": token})

    token = await web_env.login("admin")
    (folder / "rules.yaml").write_text(
        "mode: first-match\nrules:\n  - name: x\n    when: {severity: Big}\n    then: {channels: [sms]}\n",
        encoding="utf-8",
    )
    answer = await web_env.client.post("/console/rules/reload", data={"csrf": token})
    assert answer.status == 400
    assert "rules.yaml:4:" in await answer.text()
    assert web_env.crieur.rules.engine is in_force

    shutil.copy(EXAMPLES / "loir-et-cher" / "rules.yaml", folder / "rules.yaml")
    answer = await web_env.client.post("/console/rules/reload", data={"csrf": token})
    assert answer.status == 200 and "Règles rechargées" in await answer.text()
    assert web_env.crieur.rules.engine is not in_force
    actions = [entry["action"] for entry in await accounts.audit_log(web_env.store)]
    assert actions.count("rules-reload") == 2
