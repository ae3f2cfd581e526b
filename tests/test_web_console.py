"""The CMs' console: login, lockout, sessions, CSRF, roles, compose with preview, approvals, episodes,
users and the audit log."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest

from alerts.domain import AlertStatus, MsgType, Severity
from alerts.storage import DeliveryState
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
        response = await client.post(
            "/console/login",
            data={"username": "camille", "password": PASSWORD, "csrf": token},
            cookies={"crieur_login": token},
            allow_redirects=False,
        )
        cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "crieur_session=" in v)
        assert "Secure" in cookie
    await crieur.store.close()


async def test_login_form_needs_its_csrf_token(web_env: Web) -> None:
    await web_env.client.get("/console/login")
    response = await web_env.client.post("/console/login", data={"username": "camille", "password": PASSWORD})
    assert response.status == 403


async def test_wrong_passwords_from_one_address_make_it_wait(web_env: Web) -> None:
    async def attempt(password: str) -> Any:
        token = csrf_of(await (await web_env.client.get("/console/login")).text())
        return await web_env.client.post(
            "/console/login", data={"username": "camille", "password": password, "csrf": token}, allow_redirects=False
        )

    for _ in range(2):
        response = await attempt("mauvais-mot-de-passe")
        assert response.status == 401
        assert "Identifiant ou mot de passe incorrect" in await response.text()
    third = await attempt("mauvais-mot-de-passe")
    assert third.status == 401 and "réessayez dans 1 seconde" in await third.text()
    assert third.headers["Retry-After"] == "1"
    right_but_too_soon = await attempt(PASSWORD)  # not even heard: the wait is running
    assert right_but_too_soon.status == 429 and "réessayez dans" in await right_but_too_soon.text()
    log = await accounts.audit_log(web_env.store)
    assert [e["action"] for e in log].count("login-bad-credentials") == 3
    assert "login-throttled" in [e["action"] for e in log]


async def test_waits_double_up_to_fifteen_minutes_and_a_right_password_starts_afresh(web_env: Web) -> None:
    now = 1_800_000_000.0
    waits = []
    for _ in range(15):
        result = await accounts.login(web_env.store, "camille", "faux-mot-de-passe", address="198.51.100.7", now=now)
        assert result.reason == "bad-credentials"
        waits.append(round(result.retry_at - now) if result.retry_at else 0)
        now = result.retry_at or now
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    early = await accounts.login(web_env.store, "camille", PASSWORD, address="198.51.100.7", now=now - 1)
    assert early.session is None and early.reason == "throttled" and early.retry_at == now
    assert (await accounts.login(web_env.store, "camille", PASSWORD, address="198.51.100.7", now=now)).session
    fresh = await accounts.login(web_env.store, "camille", "faux", address="198.51.100.7", now=now)
    assert fresh.reason == "bad-credentials" and fresh.retry_at is None


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
    response = await web_env.client.post(
        f"/console/alerts/{alert.id}/end", data={"csrf": csrf, "text": "RD 957 rouverte, prudence."}
    )
    assert "Fin d'alerte publiée" in html_lib.unescape(await response.text())
    assert (await web_env.store.alert(alert.id)).status is AlertStatus.ENDED
    [ending] = web_env.crieur.fanout.planned
    assert (ending.msg_type, ending.supersedes, ending.text) == (MsgType.CANCEL, alert.id, "RD 957 rouverte, prudence.")


async def test_compose_preview_without_javascript(web_env: Web) -> None:
    calls: list[tuple] = []

    async def preview(text: str, territories: list[str], channels: list[str], signature: str, title: str) -> list[dict]:
        calls.append((title, text, territories, channels, signature))
        return [
            {
                "channel": "sms",
                "kind": "twilio",
                "text": f"{text} #route41 — {signature}",
                "length": 64,
                "max_length": 480,
                "segments": 1,
                "encoding": "GSM-7",
                "subscribers": 1200,
                "audience": "1200 personnes : tout le 41 (1000), commune de Blois (150), route D957 (60)",
            },
            {
                "channel": "mastodon",
                "kind": "mastodon",
                "text": f"{text} #route41",
                "length": 58,
                "max_length": 500,
                "segments": None,
                "encoding": None,
                "subscribers": None,
            },
        ]

    web_env.crieur.preview = preview  # type: ignore[attr-defined]
    csrf = await web_env.login()
    page = await (await web_env.client.get("/console/compose")).text()
    assert 'value="CA"' in page  # the signature defaults to the user's initials
    response = await web_env.client.post(
        "/console/compose",
        data=[
            ("csrf", csrf),
            ("territories", "41"),
            ("channels", "sms"),
            ("channels", "mastodon"),
            ("severity", "3"),
            ("title", "Neige"),
            ("text", "RD 957 coupée à Blois"),
            ("signature", "CA"),
            ("action", "preview"),
        ],
    )
    assert response.status == 200
    html = await response.text()
    # the title goes to the preview too: what the CM sees is what the channels will get
    assert calls == [("Neige", "RD 957 coupée à Blois", ["41"], ["sms", "mastodon"], "CA")]
    assert "1200 abonnés" in html and "1200 SMS facturés" in html
    assert "Destinataires : 1200 personnes : tout le 41 (1000), commune de Blois (150), route D957 (60)" in html
    assert "#route41" in html and "64 / 480 caractères" in html
    assert not web_env.crieur.fanout.planned  # a preview sends nothing


async def test_preview_fragment_for_the_script(web_env: Web) -> None:
    web_env.crieur.preview = lambda *a: [  # type: ignore[attr-defined]
        {
            "channel": "sms",
            "kind": "twilio",
            "text": "Neige",
            "length": 5,
            "max_length": 160,
            "segments": 1,
            "encoding": "UCS-2",
            "subscribers": 3,
        }
    ]
    csrf = await web_env.login()
    response = await web_env.client.post(
        "/console/preview",
        data={"territories": "41", "channels": "sms", "text": "Neige"},
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
    response = await web_env.client.post(
        "/console/compose",
        data=[
            ("csrf", csrf),
            ("territories", "41"),
            ("territories", "28"),
            ("channels", "mastodon"),
            ("severity", "3"),
            ("title", "Neige sur le nord"),
            ("text", "Routes glissantes au nord"),
            ("signature", "CA"),
            ("action", "preview"),
        ],
    )
    assert "prévisualisation n'est pas disponible" in html_lib.unescape(await response.text())
    response = await web_env.client.post(
        "/console/compose",
        data=[
            ("csrf", csrf),
            ("territories", "41"),
            ("territories", "28"),
            ("channels", "mastodon"),
            ("severity", "3"),
            ("title", "Neige sur le nord"),
            ("text", "Routes glissantes au nord"),
            ("signature", "CA"),
            ("action", "send"),
        ],
    )
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
        return [
            {
                "channel": "sms",
                "kind": "twilio",
                "max_length": 160,
                "text": "",
                "error": "le texte ne tient pas en 3 SMS",
            }
        ]

    web_env.crieur.preview = preview  # type: ignore[attr-defined]
    csrf = await web_env.login()
    response = await web_env.client.post(
        "/console/compose",
        data={"csrf": csrf, "territories": "41", "channels": "sms", "text": "x" * 600, "action": "preview"},
    )
    assert response.status == 200
    assert "le texte ne tient pas en 3 SMS" in await response.text()


async def test_compose_errors_are_listed_and_nothing_sent(web_env: Web) -> None:
    csrf = await web_env.login()
    response = await web_env.client.post(
        "/console/compose", data={"csrf": csrf, "text": "", "action": "send", "territories": "99", "channels": "pigeon"}
    )
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
    await web_env.store.add_question(
        channel="sms", sender="+33612345678", text="Le car passe-t-il ?", authority="region", status="escalated"
    )
    await web_env.store.count_escalation("prefecture-41", "poids-lourds", 0.0)
    await web_env.login()
    html = await (await web_env.client.get("/console")).text()
    for expected in (
        "Alerte en cours",
        "Alerte à valider",
        "prefecture-41",
        "Le car passe-t-il ?",
        "poids-lourds",
        "Loir-et-Cher (41)",
    ):
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
    response = await web_env.client.post(
        "/console/users", data={"csrf": csrf, "username": "lea.roux", "password": PASSWORD, "role": "approver"}
    )
    assert "Compte créé" in await response.text()
    assert (await accounts.login(web_env.store, "lea.roux", PASSWORD)).session.user.role == "approver"
    weak = await web_env.client.post(
        "/console/users", data={"csrf": csrf, "username": "x.y", "password": "1", "role": "cm"}
    )
    assert weak.status == 400 and "10 characters" in await weak.text()


async def test_logout_ends_the_session(web_env: Web) -> None:
    csrf = await web_env.login()
    response = await web_env.client.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert await web_env.store.db.fetchval("SELECT COUNT(*) FROM web_sessions") == 0
    assert (await web_env.client.get("/console", allow_redirects=False)).status == 302


async def test_progress_is_grouped_per_alert_with_bars_and_failure_reasons(web_env: Web) -> None:
    from alerts.storage.store import NewDelivery
    from alerts.web import delivery_progress

    store = web_env.store
    ids = [(await web_env.add(title=f"Alerte {n}")).id for n in range(10)]
    for alert_id in ids:
        await store.enqueue(
            [NewDelivery(f"{alert_id}:mastodon", alert_id, "mastodon", "t")]
            + [NewDelivery(f"{alert_id}:sms:{n}", alert_id, "sms", "t", recipient=f"+3361234560{n}") for n in range(4)]
        )
    newest = ids[-1]
    held = {d.key: d for d in await store.claim("w1", 100, 60.0) if d.alert_id == newest}
    await store.outbox.mark_sent(
        "w1", [(held[f"{newest}:mastodon"].id, "p1", "")] + [(held[f"{newest}:sms:0"].id, "SM1", "queued")]
    )
    await store.outbox.mark_ended(
        held[f"{newest}:sms:1"], "w1", DeliveryState.FAILED, "Twilio 21610: le destinataire a répondu STOP"
    )
    await store.outbox.release("w1")

    await web_env.login()
    html = html_lib.unescape(await (await web_env.client.get("/console")).text())
    section = html[html.index('id="progress-title"') : html.index('id="sources-title"')]
    # bounded: only the most recent alerts, newest first, one card each (not one row per alert x channel)
    shown = re.findall(r"<h3>n° (\d+) — ", section)
    assert shown == [str(i) for i in reversed(ids)][: delivery_progress.RECENT_ALERTS]
    card = section[section.index(f"n° {newest} — ") : section.index(f"n° {ids[-2]} — ")]
    assert f'<progress id="progress-{newest}-sms" max="4" value="2">' in card
    assert f'<progress id="progress-{newest}-mastodon" max="1" value="1">' in card
    assert "3 / 5 traités" in card and "1 / 4 envoyé" in card and "2 en file" in card
    assert f'href="/console/alerts/{newest}/receipts?vue=failed#canal-sms"' in card
    # the failure's reason is one click away, the subscriber's number masked (the old address redirects)
    page = html_lib.unescape(await (await web_env.client.get(f"/console/alerts/{newest}/failures")).text())
    assert "le destinataire a répondu STOP" in page and "+33612345601" not in page and "+336" in page
    assert 'id="canal-sms"' in page


async def test_initials_are_the_default_signature_and_are_kept_in_the_audit_log(web_env: Web) -> None:
    web_env.crieur.preview = None  # type: ignore[assignment]
    csrf = await web_env.login("alex.martin")
    page = await (await web_env.client.get("/console/compose")).text()
    assert 'id="signature" name="signature" maxlength="20" value="AM"' in page  # alex.martin -> AM
    form = [
        ("csrf", csrf),
        ("territories", "41"),
        ("channels", "mastodon"),
        ("severity", "2"),
        ("text", "Verglas sur la RD 2152"),
        ("action", "send"),
    ]
    await web_env.client.post("/console/compose", data=[*form, ("signature", "")])  # emptied: still signed
    await web_env.client.post(
        "/console/compose", data=[*form[:-1], ("signature", "A. Martin"), ("action", "send-anyway")]
    )  # same text: held otherwise
    assert [a.signature for a in web_env.crieur.fanout.planned] == ["AM", "A. Martin"]
    entries = [e for e in await accounts.audit_log(web_env.store) if e["action"] == "publish"]
    assert [(e["username"], e["initials"]) for e in entries] == [("alex.martin", "AM")] * 2
    assert "signé A. Martin" in entries[0]["detail"] and "signé AM" in entries[1]["detail"]
    web_env.client.session.cookie_jar.clear()
    await web_env.login("admin")
    audit = await (await web_env.client.get("/console/audit")).text()
    assert "alex.martin (AM)" in audit


async def test_accounts_without_initials_get_them_from_the_migration(web_env: Web) -> None:
    from alerts.storage import migrate

    db = web_env.store.db
    await db.execute(
        "INSERT INTO users (username, password_hash, role, initials, created_at) VALUES ('dominique', 'x', 'cm', '', 0)"
    )
    # replay migration 0006 on this database as if the account predated it
    await db.execute("ALTER TABLE audit_log DROP COLUMN initials")
    await db.execute("ALTER TABLE users DROP COLUMN seen_question_id")
    await db.execute("DELETE FROM schema_migrations WHERE version = 6")
    assert await migrate(db) == ["0006_console.sql"]
    assert await db.fetchval("SELECT initials FROM users WHERE username = 'dominique'") == "DO"
    assert await db.fetchval("SELECT initials FROM users WHERE username = 'alex.martin'") == "AM"  # kept
    await accounts.audit(web_env.store, "dominique", "login", initials="DO")
    assert (await accounts.audit_log(web_env.store))[0]["initials"] == "DO"


async def test_preview_shows_the_sms_cost_in_euros_from_the_price_per_segment(web_env: Web) -> None:
    async def preview(text: str, territories: list[str], channels: list[str], signature: str, title: str) -> list[dict]:
        return [
            {
                "channel": "sms",
                "kind": "twilio",
                "text": text,
                "length": 200,
                "max_length": 480,
                "segments": 2,
                "encoding": "GSM-7",
                "subscribers": 1250,
            }
        ]

    web_env.crieur.preview = preview  # type: ignore[attr-defined]
    web_env.crieur.config.channels["sms"]["price_per_segment"] = 0.0725
    csrf = await web_env.login()
    form = {"territories": "41", "channels": "sms", "text": "Neige sur la RD 957"}
    html = await (await web_env.client.post("/console/preview", data=form, headers={"X-CSRF-Token": csrf})).text()
    # 2 segments x 1250 subscribers x 0,0725 € = 181,25 €
    assert "2500 SMS facturés ≈ 181,25\u00a0€" in html
    assert "Coût total estimé : 2500 SMS, soit 181,25\u00a0€." in html
    # the same without JavaScript, through the Prévisualiser button
    page = await (
        await web_env.client.post("/console/compose", data={**form, "csrf": csrf, "action": "preview"})
    ).text()
    assert "181,25\u00a0€" in page
    web_env.crieur.config.channels["sms"]["price_per_segment"] = "sept centimes"
    html = html_lib.unescape(
        await (await web_env.client.post("/console/preview", data=form, headers={"X-CSRF-Token": csrf})).text()
    )
    assert "channels.sms.price_per_segment : 'sept centimes' n'est pas un prix en euros" in html
    assert "2500 SMS facturés" in html and "€" not in html


def test_euros_are_written_the_french_way() -> None:
    from alerts.web.console import euros

    assert (euros(181.25), euros(0.0725), euros(12345.5)) == ("181,25\u00a0€", "0,07\u00a0€", "12\u202f345,50\u00a0€")


async def read_event(stream: Any, timeout: float) -> dict:
    """The next `attention` server-sent event's data (comments and retry lines skipped)."""
    import asyncio
    import json

    async def next_event() -> dict:
        data = None
        while True:
            line = (await stream.readline()).decode()
            assert line, "the event stream ended"
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "\n" and data is not None:
                return data

    return await asyncio.wait_for(next_event(), timeout)


async def test_live_badge_events_tell_of_a_new_question_a_pending_alert_and_a_source_down(web_env: Web) -> None:
    from alerts.ingest import SourceSpec

    await web_env.store.add_question(channel="sms", sender="+33612345678", text="Le car scolaire passe-t-il ?")
    await web_env.login()  # the dashboard: that question is seen
    events = await web_env.client.get("/console/events")
    assert events.headers["Content-Type"] == "text/event-stream"
    first = await read_event(events.content, 5)
    assert (first["total"], first["summary"]) == (0, "rien pour l'instant")
    await web_env.store.add_question(
        channel="mastodon", sender="@jean@example.org", text="La RD 957 est-elle déneigée vers Vendôme ?"
    )
    second = await read_event(events.content, 5)
    assert second["new_questions"] == 1 and second["total"] == 1
    assert "La RD 957 est-elle déneigée vers Vendôme ?" in second["items"][0]["text"]
    await web_env.add(status=AlertStatus.PENDING_APPROVAL)
    web_env.crieur.config.sources = [SourceSpec("dir-centre-ouest", "rss", "https://dir.example/rss")]
    await web_env.store.save_source_state(
        "dir-centre-ouest",
        {"last_status": "error", "consecutive_failures": 4, "last_error": "HTTP 503 Service Unavailable"},
    )
    third = await read_event(events.content, 5)
    assert (third["pending"], third["sources_down"], third["total"]) == (1, ["dir-centre-ouest"], 3)
    assert third["summary"] == "1 nouvelle question · 1 alerte à valider · 1 source en panne"
    events.close()
    # without JavaScript every page carries the same state: title, badge, panel
    page = html_lib.unescape(await (await web_env.client.get("/console/compose")).text())
    assert "<title>(3) Rédiger une alerte" in page
    assert '<span class="count">3</span>' in page and "Source en panne : dir-centre-ouest" in page
    polled = await (await web_env.client.get("/console/attention")).json()
    assert polled["total"] == 3
    # opening the dashboard marks the question seen, and shows it as new one last time
    dashboard = html_lib.unescape(await (await web_env.client.get("/console")).text())
    assert '<span class="pill pill-down">nouvelle</span>' in dashboard
    assert (await (await web_env.client.get("/console/attention")).json())["new_questions"] == 0


async def test_seen_button_clears_new_questions_and_streams_need_a_session(web_env: Web) -> None:
    assert (await web_env.client.get("/console/events", allow_redirects=False)).status == 302
    csrf = await web_env.login()
    await web_env.store.add_question(channel="sms", sender="+33612345678", text="Route de Blois ?")
    assert (await (await web_env.client.get("/console/attention")).json())["new_questions"] == 1
    await web_env.client.post("/console/attention/seen", data={"csrf": csrf})
    assert (await (await web_env.client.get("/console/attention")).json())["new_questions"] == 0
    # another account still has it to see
    from alerts.web import attention

    assert (await attention.gather(web_env.crieur, "admin")).new_questions == 1


async def test_event_streams_end_when_the_server_shuts_down(web_env: Web) -> None:
    import asyncio

    await web_env.login()
    events = await web_env.client.get("/console/events")
    await read_event(events.content, 5)
    shutdown = asyncio.create_task(web_env.client.server.runner.shutdown())
    # the stream ends (it does not wait EVENT_STREAM_SECONDS for the browser to hang up)
    rest = await asyncio.wait_for(events.content.read(), 10)
    assert b"data:" not in rest
    await shutdown


async def test_near_duplicate_is_held_and_can_be_sent_as_an_update_threaded_under_the_first(web_env: Web) -> None:
    import time

    from alerts.domain import Road

    web_env.crieur.preview = None  # type: ignore[assignment]
    first = await web_env.add(
        title="RD 957 coupée entre Blois et Vendôme", text="Chaussée enneigée.", roads=(Road("D", "957"),)
    )
    # it went out 12 minutes ago
    await web_env.store.db.execute("UPDATE alerts SET created_at = $2 WHERE id = $1", first.id, time.time() - 12 * 60)
    csrf = await web_env.login()
    form = [
        ("csrf", csrf),
        ("territories", "41"),
        ("channels", "mastodon"),
        ("severity", "3"),
        ("text", "La RD957 reste fermée à Saint-Sulpice, déviation par la RD 766."),
    ]
    # the preview warns as the CM types
    fragment = html_lib.unescape(
        await (await web_env.client.post("/console/preview", data=form[1:], headers={"X-CSRF-Token": csrf})).text()
    )
    assert f"Une alerte citant la RD 957 est partie il y a 12 min : n° {first.id}" in fragment
    held = await web_env.client.post("/console/compose", data=[*form, ("action", "send")])
    assert held.status == 409 and not web_env.crieur.fanout.planned  # nothing sent yet
    page = html_lib.unescape(await held.text())
    assert "Mettre à jour cette alerte" in page and f'name="supersedes" value="{first.id}"' in page
    # "mettre à jour cette alerte": a threaded update, the first one ends
    done = await web_env.client.post(
        "/console/compose", data=[*form, ("supersedes", str(first.id)), ("action", "update")]
    )
    assert "Mise à jour publiée" in html_lib.unescape(await done.text())
    [update] = web_env.crieur.fanout.planned
    assert (update.msg_type, update.supersedes) == (MsgType.UPDATE, first.id)
    assert (await web_env.store.alert(first.id)).status is AlertStatus.ENDED
    assert "publish-update" in [e["action"] for e in await accounts.audit_log(web_env.store)]
    # an update of an alert no longer out is refused, not sent as if it were
    again = await web_env.client.post(
        "/console/compose", data=[*form, ("supersedes", str(first.id)), ("action", "update")]
    )
    assert again.status == 400 and "n'est plus en cours" in html_lib.unescape(await again.text())
    assert len(web_env.crieur.fanout.planned) == 1


async def test_send_anyway_and_unrelated_alerts_are_not_held(web_env: Web) -> None:
    web_env.crieur.preview = None  # type: ignore[assignment]
    await web_env.add(title="RD 957 coupée", text="Chaussée enneigée.", territories=("41",))
    csrf = await web_env.login()
    base = [("csrf", csrf), ("channels", "mastodon"), ("severity", "2")]
    other_road = await web_env.client.post(
        "/console/compose",
        data=[*base, ("territories", "41"), ("text", "Verglas sur la RD 2152 à Vendôme."), ("action", "send")],
    )
    other_place = await web_env.client.post(
        "/console/compose",
        data=[*base, ("territories", "28"), ("text", "RD 957 coupée, chaussée enneigée."), ("action", "send")],
    )
    anyway = await web_env.client.post(
        "/console/compose",
        data=[*base, ("territories", "41"), ("text", "RD 957 coupée, chaussée enneigée."), ("action", "send-anyway")],
    )
    assert [r.status for r in (other_road, other_place, anyway)] == [200, 200, 200]
    assert len(web_env.crieur.fanout.planned) == 3


def test_near_duplicates_by_road_by_text_and_only_recent_published_ones() -> None:
    from datetime import datetime, timedelta, timezone

    from alerts.domain import Road
    from alerts.web.near_duplicates import find
    from tests.test_web_support import snow_alert

    now = datetime(2026, 12, 3, 18, 0, tzinfo=timezone.utc)

    def sent(minutes: float, **fields: Any) -> Any:
        alert = snow_alert(**fields)
        alert.id, alert.created_at = 7, now - timedelta(minutes=minutes)
        return alert

    road = sent(12, roads=(Road("D", "957"),))
    assert (
        find("", "Route départementale 957 : toujours fermée", ["41"], [road], now).message
        == "Une alerte citant la RD 957 est partie il y a 12 min : n° 7 « Neige : RD 957 coupée entre Blois et Vendôme »."
    )
    alike = sent(30, title="Chutes de neige sur le nord du département", text="Prudence sur les routes.", roads=())
    found = find("", "Chutes de neige sur le nord du département, prudence sur les routes", ["41"], [alike], now)
    assert found is not None and found.roads == () and "au texte très proche" in found.message
    assert find("", "Vigilance orange : vent violent", ["41"], [alike], now) is None
    assert find("", "RD 957 fermée", ["41"], [sent(7 * 60, roads=(Road("D", "957"),))], now) is None  # too old
    assert find("", "RD 957 fermée", ["41"], [sent(5, status=AlertStatus.ENDED)], now) is None
    newest = find("", "RD 957 fermée", ["41"], [road, sent(3)], now)
    assert newest is not None and newest.age_seconds == 180


async def test_now_view_per_territory(web_env: Web) -> None:
    from alerts.domain import Road
    from alerts.storage.store import NewDelivery

    store = web_env.store
    out = await web_env.add(title="RD 957 coupée", channels=("mastodon", "sms"))
    await store.enqueue(
        [NewDelivery(f"{out.id}:m", out.id, "mastodon", "t")]
        + [NewDelivery(f"{out.id}:s{n}", out.id, "sms", "t", recipient=f"+3361111111{n}") for n in range(3)]
    )
    claimed = {d.key: d.id for d in await store.claim("w", 10, 60.0)}
    await store.outbox.mark_sent("w", [(claimed[f"{out.id}:m"], "p", "")])
    await store.outbox.release("w")
    await web_env.add(title="Verglas à Chartres", territories=("28",), hashtags=("#route28",))
    waiting = await web_env.add(title="Fermeture du col", status=AlertStatus.PENDING_APPROVAL)
    ended = await web_env.add(title="Neige à Romorantin", roads=(Road("D", "724"),))
    await web_env.crieur.end_alert(ended.id, by="camille", text="Routes dégagées.")
    replaced = await web_env.add(title="RD 2152 glissante", roads=(Road("D", "2152"),), channels=("mastodon",))
    csrf = await web_env.login()
    await web_env.client.post(
        "/console/compose",
        data=[
            ("csrf", csrf),
            ("territories", "41"),
            ("channels", "mastodon"),
            ("severity", "2"),
            ("text", "RD 2152 : salage terminé, prudence."),
            ("supersedes", str(replaced.id)),
            ("action", "update"),
        ],
    )

    response = await web_env.client.get("/console/now?territoire=41")
    assert response.status == 200
    page = html_lib.unescape(await response.text())
    published = page[page.index('id="published-title"') : page.index('id="waiting-title"')]
    waiting_part = page[page.index('id="waiting-title"') : page.index('id="ended-title"')]
    ended_part = page[page.index('id="ended-title"') :]
    mastodon = published[published.index("<h3>mastodon") : published.index("<h3>sms")]
    sms = published[published.index("<h3>sms") : published.index("<h3>web")]
    assert f"n° {out.id} — RD 957 coupée" in mastodon and "envoyé (1 / 1)" in mastodon
    assert f"n° {out.id} — RD 957 coupée" in sms and "envoi en cours : 0 / 3" in sms
    assert "RD 2152 : salage terminé" in mastodon and "RD 2152 : salage terminé" not in sms
    assert "Rien de publié sur ce canal" in published[published.index("<h3>web") :]
    assert "Verglas à Chartres" not in page  # another territory
    assert f"n° {waiting.id} — Fermeture du col" in waiting_part and "3 en file" in waiting_part
    assert f"n° {ended.id} — Neige à Romorantin · fin publiée" in ended_part.replace(' <span class="small">', " ")
    assert "remplacée par la mise à jour n° " in ended_part and "RD 2152 glissante" in ended_part
    assert "Routes dégagées" not in ended_part  # the end message itself is not listed as an alert
    other = html_lib.unescape(await (await web_env.client.get("/console/now?territoire=28")).text())
    assert "Verglas à Chartres" in other and "RD 957 coupée" not in other
    assert (await web_env.client.get("/console/now?territoire=99")).status == 404
    assert (await web_env.client.get("/console/now")).status == 200
