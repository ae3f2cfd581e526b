"""The CMs' console: login, lockout, sessions, CSRF, roles, compose with preview, approvals, episodes,
users and the audit log."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest

from alerts.domain import AlertStatus, MsgType, Severity
from alerts.web import accounts
from tests.test_web_support import PASSWORD, Web, csrf_of, web_env  # noqa: F401  (fixture)

CONSOLE_PAGES = ["/console", "/console/compose", "/console/users", "/console/audit"]


@pytest.mark.parametrize("path", CONSOLE_PAGES)
async def test_anonymous_console_requests_go_to_login(web_env: Web, path: str) -> None:
    response = await web_env.client.get(path, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/console/login"


async def test_anonymous_post_goes_to_login_and_changes_nothing(web_env: Web) -> None:
    alert = await web_env.add(status=AlertStatus.PENDING_APPROVAL)
    response = await web_env.client.post(f"/console/alerts/{alert.id}/approve", allow_redirects=False)
    assert response.status == 302
    assert (await web_env.store.alert(alert.id)).status is AlertStatus.PENDING_APPROVAL


async def test_login_sets_a_strict_http_only_cookie(web_env: Web) -> None:
    page = await web_env.client.get("/console/login")
    token = csrf_of(await page.text())
    response = await web_env.client.post(
        "/console/login", data={"username": "camille", "password": PASSWORD, "csrf": token}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/console"
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "crieur_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # public_url is http in the tests
    stored = await web_env.store.db.fetch("SELECT token_hash FROM web_sessions")
    value = re.search(r"crieur_session=([^;]+)", cookie).group(1)
    assert stored and all(value not in row["token_hash"] for row in stored)  # only a hash is kept


async def test_secure_cookie_when_public_url_is_https(tmp_path: Any) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from alerts.web import make_app
    from tests.test_web_support import make_crieur

    crieur = await make_crieur(tmp_path, public_url="https://routes.departement41.example")
    await accounts.add_user(crieur.store, "camille", PASSWORD, "cm")
    async with TestClient(TestServer(make_app(crieur))) as client:
        token = csrf_of(await (await client.get("/console/login")).text())
        # the login cookie is Secure too, so the test client (on http) would not send it back: pass it by hand
        response = await client.post("/console/login", data={"username": "camille", "password": PASSWORD,
                                                               "csrf": token},
                                     cookies={"crieur_login": token}, allow_redirects=False)
        cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "crieur_session=" in v)
        assert "Secure" in cookie
    await crieur.store.close()


async def test_login_form_needs_its_csrf_token(web_env: Web) -> None:
    await web_env.client.get("/console/login")
    response = await web_env.client.post("/console/login", data={"username": "camille", "password": PASSWORD})
    assert response.status == 403


async def test_wrong_password_then_lockout_after_five_failures(web_env: Web) -> None:
    async def attempt(password: str) -> Any:
        token = csrf_of(await (await web_env.client.get("/console/login")).text())
        return await web_env.client.post(
            "/console/login", data={"username": "camille", "password": password, "csrf": token}, allow_redirects=False
        )

    for n in range(4):
        response = await attempt("mauvais-mot-de-passe")
        assert response.status == 401
        assert "Identifiant ou mot de passe incorrect" in await response.text()
    fifth = await attempt("mauvais-mot-de-passe")
    assert fifth.status == 429 and "bloqué" in await fifth.text()
    right_but_locked = await attempt(PASSWORD)
    assert right_but_locked.status == 429
    log = await accounts.audit_log(web_env.store)
    assert [e["action"] for e in log].count("login-bad-credentials") == 4
    assert "login-locked" in [e["action"] for e in log]


async def test_lockout_lasts_fifteen_minutes(web_env: Web) -> None:
    now = 1_800_000_000.0
    for _ in range(5):
        result = await accounts.login(web_env.store, "camille", "faux-mot-de-passe", now=now)
    assert result.reason == "locked" and result.locked_until == now + 15 * 60
    assert (await accounts.login(web_env.store, "camille", PASSWORD, now=now + 14 * 60)).reason == "locked"
    assert (await accounts.login(web_env.store, "camille", PASSWORD, now=now + 15 * 60 + 1)).session is not None


async def test_unknown_user_is_refused_like_a_wrong_password(web_env: Web) -> None:
    result = await accounts.login(web_env.store, "personne", PASSWORD)
    assert result.session is None and result.reason == "bad-credentials"


async def test_add_user_validates(web_env: Web) -> None:
    with pytest.raises(accounts.AccountError, match="role"):
        await accounts.add_user(web_env.store, "dominique", PASSWORD, "chef")
    with pytest.raises(accounts.AccountError, match="password"):
        await accounts.add_user(web_env.store, "dominique", "court", "cm")
    with pytest.raises(accounts.AccountError, match="already exists"):
        await accounts.add_user(web_env.store, "camille", PASSWORD, "cm")
    with pytest.raises(accounts.AccountError, match="username"):
        await accounts.add_user(web_env.store, "a b", PASSWORD, "cm")
    user = await accounts.add_user(web_env.store, "jean.dupont", PASSWORD, "cm")
    assert user.initials == "JD"
    row = await web_env.store.db.fetchrow("SELECT password_hash FROM users WHERE username = 'jean.dupont'")
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]


async def test_post_without_csrf_is_refused(web_env: Web) -> None:
    await web_env.login()
    alert = await web_env.add()
    for data in ({}, {"csrf": "faux"}):
        response = await web_env.client.post(f"/console/alerts/{alert.id}/end", data=data)
        assert response.status == 403
    assert (await web_env.store.alert(alert.id)).status is AlertStatus.PUBLISHED


async def test_cm_cannot_approve_but_approver_can(web_env: Web) -> None:
    pending = await web_env.add(status=AlertStatus.PENDING_APPROVAL)
    csrf = await web_env.login("camille")
    assert "Valider et publier" not in await (await web_env.client.get("/console")).text()
    refused = await web_env.client.post(f"/console/alerts/{pending.id}/approve", data={"csrf": csrf})
    assert refused.status == 403
    assert (await web_env.store.alert(pending.id)).status is AlertStatus.PENDING_APPROVAL

    web_env.client.session.cookie_jar.clear()
    csrf = await web_env.login("alex.martin")
    response = await web_env.client.post(f"/console/alerts/{pending.id}/approve", data={"csrf": csrf})
    assert response.status == 200 and "Alerte validée et publiée" in await response.text()
    assert (await web_env.store.alert(pending.id)).status is AlertStatus.PUBLISHED
    assert [a.id for a in web_env.crieur.fanout.planned] == [pending.id]
    again = await web_env.client.post(f"/console/alerts/{pending.id}/approve", data={"csrf": csrf})
    assert "n'attend plus de validation" in html_lib.unescape(await again.text())


async def test_reject(web_env: Web) -> None:
    pending = await web_env.add(status=AlertStatus.PENDING_APPROVAL)
    csrf = await web_env.login("admin")
    await web_env.client.post(f"/console/alerts/{pending.id}/reject", data={"csrf": csrf})
    assert (await web_env.store.alert(pending.id)).status is AlertStatus.REJECTED
    assert not web_env.crieur.fanout.planned


async def test_end_alert_publishes_a_cancel(web_env: Web) -> None:
    alert = await web_env.add()
    csrf = await web_env.login()
    response = await web_env.client.post(f"/console/alerts/{alert.id}/end",
                                         data={"csrf": csrf, "text": "RD 957 rouverte, prudence."})
    assert "Fin d'alerte publiée" in html_lib.unescape(await response.text())
    assert (await web_env.store.alert(alert.id)).status is AlertStatus.ENDED
    [ending] = web_env.crieur.fanout.planned
    assert (ending.msg_type, ending.supersedes, ending.text) == (MsgType.CANCEL, alert.id, "RD 957 rouverte, prudence.")


async def test_compose_preview_without_javascript(web_env: Web) -> None:
    calls: list[tuple] = []

    async def preview(text: str, territories: list[str], channels: list[str], signature: str) -> list[dict]:
        calls.append((text, territories, channels, signature))
        return [
            {"channel": "sms", "kind": "twilio", "text": f"{text} #route41 — {signature}", "length": 64,
             "max_length": 480, "segments": 1, "encoding": "GSM-7", "subscribers": 1200,
             "audience": "1200 personnes : tout le 41 (1000), commune de Blois (150), route D957 (60)"},
            {"channel": "mastodon", "kind": "mastodon", "text": f"{text} #route41", "length": 58, "max_length": 500,
             "segments": None, "encoding": None, "subscribers": None},
        ]

    web_env.crieur.preview = preview  # type: ignore[attr-defined]
    csrf = await web_env.login()
    page = await (await web_env.client.get("/console/compose")).text()
    assert 'value="CA"' in page  # the signature defaults to the user's initials
    response = await web_env.client.post("/console/compose", data=[
        ("csrf", csrf), ("territories", "41"), ("channels", "sms"), ("channels", "mastodon"),
        ("severity", "3"), ("text", "RD 957 coupée à Blois"), ("signature", "CA"), ("action", "preview"),
    ])
    assert response.status == 200
    html = await response.text()
    assert calls == [("RD 957 coupée à Blois", ["41"], ["sms", "mastodon"], "CA")]
    assert "1200 abonnés" in html and "1200 SMS facturés" in html
    assert "Destinataires : 1200 personnes : tout le 41 (1000), commune de Blois (150), route D957 (60)" in html
    assert "#route41" in html and "64 / 480 caractères" in html
    assert not web_env.crieur.fanout.planned  # a preview sends nothing


async def test_preview_fragment_for_the_script(web_env: Web) -> None:
    web_env.crieur.preview = lambda *a: [  # type: ignore[attr-defined]
        {"channel": "sms", "kind": "twilio", "text": "Neige", "length": 5, "max_length": 160, "segments": 1,
         "encoding": "UCS-2", "subscribers": 3}]
    csrf = await web_env.login()
    response = await web_env.client.post(
        "/console/preview", data={"territories": "41", "channels": "sms", "text": "Neige"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    html = await response.text()
    assert "<html" not in html and "3 SMS facturés" in html and "UCS-2" in html
    refused = await web_env.client.post("/console/preview", data={"text": "x"}, headers={"X-CSRF-Token": "no"})
    assert refused.status == 403


async def test_compose_without_preview_support_still_sends(web_env: Web) -> None:
    web_env.crieur.preview = None  # type: ignore[assignment]  (a service without a rules engine)
    csrf = await web_env.login()
    response = await web_env.client.post("/console/compose", data=[
        ("csrf", csrf), ("territories", "41"), ("territories", "28"), ("channels", "mastodon"),
        ("severity", "3"), ("title", "Neige sur le nord"), ("text", "Routes glissantes au nord"),
        ("signature", "CA"), ("action", "preview"),
    ])
    assert "prévisualisation n'est pas disponible" in html_lib.unescape(await response.text())
    response = await web_env.client.post("/console/compose", data=[
        ("csrf", csrf), ("territories", "41"), ("territories", "28"), ("channels", "mastodon"),
        ("severity", "3"), ("title", "Neige sur le nord"), ("text", "Routes glissantes au nord"),
        ("signature", "CA"), ("action", "send"),
    ])
    assert "Alerte publiée" in await response.text()
    [alert] = web_env.crieur.fanout.planned
    assert alert.territories == ("41", "28") and alert.hashtags == ("#route41", "#route28")
    assert (alert.severity, alert.signature, alert.channels) == (Severity.SEVERE, "CA", ("mastodon",))
    row = await web_env.store.db.fetchrow("SELECT created_by FROM alerts WHERE id = $1", alert.id)
    assert row["created_by"] == "camille"
    public = await (await web_env.client.get("/t/28")).text()
    assert "Routes glissantes au nord" in public


async def test_preview_failures_are_shown_not_raised(web_env: Web) -> None:
    async def preview(*args: Any) -> list[dict]:
        return [{"channel": "sms", "kind": "twilio", "max_length": 160, "text": "",
                 "error": "le texte ne tient pas en 3 SMS"}]

    web_env.crieur.preview = preview  # type: ignore[attr-defined]
    csrf = await web_env.login()
    response = await web_env.client.post("/console/compose", data={
        "csrf": csrf, "territories": "41", "channels": "sms", "text": "x" * 600, "action": "preview"})
    assert response.status == 200
    assert "le texte ne tient pas en 3 SMS" in await response.text()


async def test_compose_errors_are_listed_and_nothing_sent(web_env: Web) -> None:
    csrf = await web_env.login()
    response = await web_env.client.post("/console/compose", data={"csrf": csrf, "text": "", "action": "send",
                                                                    "territories": "99", "channels": "pigeon"})
    assert response.status == 400
    html = await response.text()
    for message in ("Écrivez le texte", "au moins un territoire", "au moins un canal"):
        assert message in html
    assert not web_env.crieur.fanout.planned


async def test_episodes_start_and_end(web_env: Web) -> None:
    csrf = await web_env.login()
    await web_env.client.post("/console/episodes", data={"csrf": csrf, "territory": "41", "action": "start"})
    assert await web_env.store.active_episodes() == frozenset({"41"})
    html = await (await web_env.client.get("/console")).text()
    assert "Clore l'épisode" in html
    await web_env.client.post("/console/episodes", data={"csrf": csrf, "territory": "41", "action": "end"})
    assert await web_env.store.active_episodes() == frozenset()
    bad = await web_env.client.post("/console/episodes", data={"csrf": csrf, "territory": "99", "action": "start"})
    assert bad.status == 400


async def test_episodes_use_the_service_methods_when_present(web_env: Web) -> None:
    calls = []

    async def start_episode(code: str, by: str, reason: str = "") -> None:
        calls.append(("start", code, by))

    web_env.crieur.start_episode = start_episode  # type: ignore[attr-defined]
    csrf = await web_env.login()
    await web_env.client.post("/console/episodes", data={"csrf": csrf, "territory": "28", "action": "start"})
    assert calls == [("start", "28", "camille")]


async def test_dashboard_shows_the_state_of_things(web_env: Web) -> None:
    await web_env.add(title="Alerte en cours")
    await web_env.add(title="Alerte à valider", status=AlertStatus.PENDING_APPROVAL)
    await web_env.store.save_source_state("prefecture-41", {"ok": True})
    await web_env.store.add_question(channel="sms", sender="+33612345678", text="Le car passe-t-il ?",
                                     authority="region", status="escalated")
    await web_env.store.count_escalation("prefecture-41", "poids-lourds", 0.0)
    await web_env.login()
    html = await (await web_env.client.get("/console")).text()
    for expected in ("Alerte en cours", "Alerte à valider", "prefecture-41", "Le car passe-t-il ?",
                     "poids-lourds", "Loir-et-Cher (41)"):
        assert expected in html


async def test_audit_log_is_for_admins_and_records_actions(web_env: Web) -> None:
    alert = await web_env.add()
    csrf = await web_env.login("camille")
    await web_env.client.post(f"/console/alerts/{alert.id}/end", data={"csrf": csrf})
    assert (await web_env.client.get("/console/audit")).status == 403
    assert (await web_env.client.get("/console/users")).status == 403
    web_env.client.session.cookie_jar.clear()
    await web_env.login("admin")
    html = await (await web_env.client.get("/console/audit")).text()
    assert f"alert:{alert.id}" in html
    entries = await accounts.audit_log(web_env.store)
    assert ("camille", "end", f"alert:{alert.id}") in [(e["username"], e["action"], e["target"]) for e in entries]
    assert all(e["at"] > 0 for e in entries)


async def test_admin_adds_a_user(web_env: Web) -> None:
    csrf = await web_env.login("admin")
    response = await web_env.client.post("/console/users", data={"csrf": csrf, "username": "lea.roux",
                                                                 "password": PASSWORD, "role": "approver"})
    assert "Compte créé" in await response.text()
    assert (await accounts.login(web_env.store, "lea.roux", PASSWORD)).session.user.role == "approver"
    weak = await web_env.client.post("/console/users", data={"csrf": csrf, "username": "x.y", "password": "1",
                                                             "role": "cm"})
    assert weak.status == 400 and "10 characters" in await weak.text()


async def test_logout_ends_the_session(web_env: Web) -> None:
    csrf = await web_env.login()
    response = await web_env.client.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert await web_env.store.db.fetchval("SELECT COUNT(*) FROM web_sessions") == 0
    assert (await web_env.client.get("/console", allow_redirects=False)).status == 302
