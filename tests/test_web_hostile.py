"""Hostile clients against the real web application (make_app with its request limits, as served in
production): logins that would freeze the site, guessed passwords, user enumeration, account lifecycle,
the question form behind a reverse proxy, odd ids."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts.web import accounts, make_app
from tests.test_web_support import PASSWORD, Web, csrf_of, make_crieur, web_env  # noqa: F401 (fixture)

ADDRESS = "198.51.100.7"


async def form_login(client: TestClient, username: str, password: str, **headers: str) -> Any:
    token = csrf_of(await (await client.get("/console/login")).text())
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": token},
        allow_redirects=False,
        headers=headers,
    )


# --------------------------------------------------------------------------------------- logins


async def test_concurrent_wrong_passwords_are_all_counted(web_env: Web) -> None:
    results = await asyncio.gather(
        *(accounts.login(web_env.store, "camille", f"essai-{n}", address=ADDRESS) for n in range(20))
    )
    heard = [r for r in results if r.reason == "bad-credentials"]
    assert len(heard) == accounts.FREE_FAILURES  # the others were refused unheard: a wait had started
    assert all(r.reason == "throttled" and r.session is None for r in results if r not in heard)
    row = await web_env.store.db.fetchrow(
        "SELECT failures, next_at FROM login_failures WHERE username = 'camille' AND address = $1", ADDRESS
    )
    assert row["failures"] == accounts.FREE_FAILURES
    assert (
        await web_env.store.db.fetchval("SELECT failed_attempts FROM users WHERE username = 'camille'")
        == accounts.FREE_FAILURES
    )


async def test_someone_elses_guesses_do_not_lock_the_user_out(web_env: Web) -> None:
    for n in range(12):
        await accounts.login(web_env.store, "camille", f"essai-{n}", address="203.0.113.66")
    assert (await accounts.login(web_env.store, "camille", "x", address="203.0.113.66")).reason == "throttled"
    mine = await accounts.login(web_env.store, "camille", PASSWORD, address=ADDRESS)
    assert mine.session is not None


async def test_an_admin_unlocks_a_user(web_env: Web) -> None:
    for n in range(4):
        await accounts.login(web_env.store, "camille", f"essai-{n}", address=ADDRESS)
    assert (await accounts.login(web_env.store, "camille", PASSWORD, address=ADDRESS)).reason == "throttled"
    listed = {u["username"]: u for u in await accounts.users(web_env.store)}
    assert listed["camille"]["throttled_until"] is not None
    await web_env.login("admin")
    page = await web_env.client.get("/console/users")
    csrf = csrf_of(await page.text())
    assert "essais suspendus" in await page.text()
    response = await web_env.client.post("/console/users/camille/unlock", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert (await accounts.login(web_env.store, "camille", PASSWORD, address=ADDRESS)).session is not None


async def test_unknown_names_answer_exactly_like_wrong_passwords(web_env: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[str] = []
    real = accounts._verify_now

    def spy(hasher: Any, password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real(hasher, password_hash, password)

    monkeypatch.setattr(accounts, "_verify_now", spy)
    known = [
        await accounts.login(web_env.store, "camille", "faux", address=ADDRESS, now=1000.0 + n * 10) for n in range(4)
    ]
    unknown = [
        await accounts.login(web_env.store, "personne", "faux", address=ADDRESS, now=1000.0 + n * 10) for n in range(4)
    ]
    assert [(r.reason, r.retry_at) for r in known] == [(r.reason, r.retry_at) for r in unknown]
    assert len(verified) == 8  # a hash is verified for the unknown name too: same work, same time
    assert all(h.startswith("$argon2id$") for h in verified)
    # and through the form: same status, same message, same headers
    answers = []
    for name in ("alex.martin", "quelquun"):
        response = await form_login(web_env.client, name, "faux-mot-de-passe")
        body = (await response.text()).replace(name, "NAME")
        answers.append((response.status, body.count("incorrect"), "Retry-After" in response.headers))
    assert answers[0] == answers[1] == (401, 1, False)


async def test_passwords_are_hashed_off_the_event_loop_and_a_page_answers_meanwhile(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With production argon2 parameters: while logins hash, the event loop keeps serving pages, the
    hashing runs on other threads and never more than MAX_CONCURRENT_HASHES at once."""
    crieur = await make_crieur(tmp_path)
    await accounts.add_user(crieur.store, "camille", PASSWORD, "cm")
    threads: set[int] = set()
    running, peak = [0], [0]
    real = accounts._verify_now

    def spy(hasher: Any, password_hash: str, password: str) -> bool:
        threads.add(threading.get_ident())
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            return real(hasher, password_hash, password)
        finally:
            running[0] -= 1

    monkeypatch.setattr(accounts, "_verify_now", spy)
    finished: list[str] = []
    try:
        async with TestClient(TestServer(make_app(crieur))) as client:

            async def login(n: int) -> None:
                await accounts.login(crieur.store, "camille", f"faux-{n}", address=f"203.0.113.{n}")
                finished.append("login")

            async def page() -> None:
                await asyncio.sleep(0.05)  # the logins are hashing by now
                response = await client.get("/healthz")
                assert response.status == 200
                finished.append("page")

            await asyncio.gather(*(login(n) for n in range(8)), page())
    finally:
        await crieur.store.close()
    assert finished.index("page") < len(finished) - 1, finished  # not queued behind every login
    assert threading.get_ident() not in threads and threads
    assert 1 <= peak[0] <= accounts.MAX_CONCURRENT_HASHES


async def test_too_many_waiting_logins_are_answered_busy(web_env: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "MAX_WAITING_LOGINS", 2)
    gate = threading.Event()

    def slow(hasher: Any, password_hash: str, password: str) -> bool:
        gate.wait(10)
        return False

    monkeypatch.setattr(accounts, "_verify_now", slow)
    tasks = [
        asyncio.create_task(accounts.login(web_env.store, "camille", "faux", address=f"203.0.113.{n}"))
        for n in range(6)
    ]
    for _ in range(500):
        if sum(t.done() for t in tasks) >= 4:
            break
        await asyncio.sleep(0.01)
    assert [t.result().reason for t in tasks if t.done()] == ["busy"] * 4
    gate.set()
    reasons = sorted(r.reason for r in await asyncio.gather(*tasks))
    assert reasons == ["bad-credentials"] * 2 + ["busy"] * 4


# ------------------------------------------------------------------------------------ lifecycle


async def session_alive(client: TestClient) -> bool:
    response = await client.get("/console", allow_redirects=False)
    return response.status == 200


async def second_client(web_env: Web, username: str) -> TestClient:
    client = TestClient(web_env.client.server)
    response = await form_login(client, username, PASSWORD)
    assert response.status == 303
    return client


@pytest.mark.parametrize("action", ["disable", "remove", "unlock", "password"])
async def test_every_account_change_ends_the_users_sessions(web_env: Web, action: str) -> None:
    victim = await second_client(web_env, "camille")
    try:
        assert await session_alive(victim)
        await web_env.login("admin")
        csrf = csrf_of(await (await web_env.client.get("/console/users")).text())
        data = {"csrf": csrf, "password": "un-tout-nouveau-mot"} if action == "password" else {"csrf": csrf}
        response = await web_env.client.post(f"/console/users/camille/{action}", data=data, allow_redirects=False)
        assert response.status == 303, await response.text()
        assert not await session_alive(victim)
        audit = await accounts.audit_log(web_env.store)
        assert any(e["action"] == f"user-{action}" and e["target"] == "user:camille" for e in audit)
        relogin = await form_login(victim, "camille", PASSWORD)
        expected = 303 if action == "unlock" else 401
        assert relogin.status == expected
    finally:
        await victim.close()
    if action == "password":
        assert (await accounts.login(web_env.store, "camille", "un-tout-nouveau-mot")).session is not None


async def test_a_disabled_account_can_be_enabled_again(web_env: Web) -> None:
    await accounts.set_active(web_env.store, "camille", False)
    assert (await accounts.login(web_env.store, "camille", PASSWORD)).session is None
    await accounts.set_active(web_env.store, "camille", True)
    assert (await accounts.login(web_env.store, "camille", PASSWORD)).session is not None


async def test_only_an_admin_manages_accounts_and_not_their_own_removal(web_env: Web) -> None:
    csrf = await web_env.login("camille")
    refused = await web_env.client.post("/console/users/alex.martin/disable", data={"csrf": csrf})
    assert refused.status == 403
    other = await second_client(web_env, "admin")
    try:
        csrf = csrf_of(await (await other.get("/console/users")).text())
        own = await other.post("/console/users/admin/remove", data={"csrf": csrf})
        assert own.status == 400
        unknown = await other.post("/console/users/personne/disable", data={"csrf": csrf})
        assert unknown.status == 400 and "existe pas" in await unknown.text()
    finally:
        await other.close()
    assert {u["username"] for u in await accounts.users(web_env.store)} == {"admin", "alex.martin", "camille"}


async def test_a_user_changes_their_own_password(web_env: Web) -> None:
    await web_env.login("camille")
    page = await web_env.client.get("/console/password")
    csrf = csrf_of(await page.text())
    wrong = await web_env.client.post(
        "/console/password",
        data={"csrf": csrf, "current": "pas-le-bon", "new": "neige-et-verglas-41", "confirm": "neige-et-verglas-41"},
    )
    assert wrong.status == 400 and "actuel incorrect" in await wrong.text()
    differ = await web_env.client.post(
        "/console/password",
        data={"csrf": csrf, "current": PASSWORD, "new": "neige-et-verglas-41", "confirm": "neige-et-verglas-42"},
    )
    assert differ.status == 400
    done = await web_env.client.post(
        "/console/password",
        data={"csrf": csrf, "current": PASSWORD, "new": "neige-et-verglas-41", "confirm": "neige-et-verglas-41"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/console/login"
    assert not await session_alive(web_env.client)
    assert (await form_login(web_env.client, "camille", "neige-et-verglas-41")).status == 303


# ------------------------------------------------------------------------ behind a reverse proxy


async def test_question_buckets_are_per_citizen_behind_a_trusted_proxy(tmp_path: Any) -> None:
    """The real app, its limits included, behind a proxy on loopback that appends X-Forwarded-For."""
    crieur = await make_crieur(tmp_path, trusted_proxies=["127.0.0.0/8"])

    class Citizens:
        async def ask(self, **kwargs: Any) -> dict[str, Any]:
            return {"reply": "Merci."}

    crieur.citizens = Citizens()
    try:
        async with TestClient(TestServer(make_app(crieur))) as client:

            async def ask(citizen: str) -> int:
                response = await client.post(
                    "/questions", data={"text": "Le car passe ?"}, headers={"X-Forwarded-For": citizen}
                )
                return response.status

            first = [await ask("198.51.100.1") for _ in range(6)]
            assert first == [200] * 5 + [429]
            assert [await ask("198.51.100.2") for _ in range(5)] == [200] * 5  # another citizen, own bucket
    finally:
        await crieur.store.close()


async def test_without_trusted_proxies_a_forged_forwarded_for_buys_nothing(web_env: Web) -> None:
    class Citizens:
        async def ask(self, **kwargs: Any) -> dict[str, Any]:
            return {"reply": "Merci."}

    web_env.crieur.citizens = Citizens()  # type: ignore[attr-defined]
    statuses = [
        (
            await web_env.client.post("/questions", data={"text": "Q"}, headers={"X-Forwarded-For": f"198.51.100.{n}"})
        ).status
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]


async def test_the_web_tests_app_has_the_production_limits(web_env: Web) -> None:
    statuses = [(await web_env.client.post("/console/login", data={})).status for _ in range(12)]
    assert 429 in statuses  # the login form's per-address rate (10 at once, then one per 6 s)


# ------------------------------------------------------------------------------------------ ids

ODD_IDS = ["99999999999999999999", "9223372036854775808", "²", "١٢", "0", "00000000000000000000001"]


async def test_odd_ids_are_404_or_400_never_500(web_env: Web) -> None:
    alert = await web_env.add()
    assert (await web_env.client.get(f"/api/v1/alerts/{alert.id}")).status == 200
    for odd in ODD_IDS:
        api = await web_env.client.get(f"/api/v1/alerts/{odd}")
        assert api.status == 404, odd
        assert (await api.json())["status"] == 404
        assert (await web_env.client.get(f"/alertes/{odd}.cap.xml")).status == 404, odd
        progress = await web_env.client.get("/api/v1/deliveries/progress", params={"alert": odd})
        assert progress.status == 400, odd
    assert (await web_env.client.get("/api/v1/alerts/9223372036854775807")).status == 404
    csrf = await web_env.login("admin")
    for odd in ODD_IDS:
        response = await web_env.client.post(f"/console/alerts/{odd}/end", data={"csrf": csrf}, allow_redirects=False)
        assert response.status in (303, 404), odd


# ----------------------------------------------------------------------------------------- links

HOSTILE_LINKS = [
    "javascript:alert(document.cookie)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox",
    "http:javascript:alert(1)",
    "//evil.example/x",
    "file:///etc/passwd",
]
RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>P</title>
<item><guid>a1</guid><title>Neige</title><description>Prudence</description><link>{link}</link></item>
</channel></rss>"""


@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_only_web_links_are_kept_at_ingest(link: str) -> None:
    from xml.sax.saxutils import escape

    from alerts.ingest import SourceSpec, parse

    spec = SourceSpec(name="pref41", kind="rss", url="file:unused", options={})
    [item] = parse(spec, RSS.format(link=escape(link)).encode(), "application/rss+xml")
    assert item.link == ""
    [kept] = parse(spec, RSS.format(link="https://www.loir-et-cher.gouv.fr/neige").encode(), "application/rss+xml")
    assert kept.link == "https://www.loir-et-cher.gouv.fr/neige"


async def test_a_hostile_link_already_stored_is_never_written_out(web_env: Web) -> None:
    """A row written before the check (or by another tool): page, Atom, CAP, API and SMS text drop it."""
    from channels.base import Limits
    from rules.templates import Templates

    alert = await web_env.add(link="https://www.loir-et-cher.gouv.fr/neige")
    await web_env.store.db.execute("UPDATE alerts SET link = $1 WHERE id = $2", "javascript:alert(1)", alert.id)
    for path in (
        "/t/41",
        "/",
        "/alertes.atom",
        "/t/41/alertes.atom",
        f"/alertes/{alert.id}.cap.xml",
        "/api/v1/alerts",
        f"/api/v1/alerts/{alert.id}",
    ):
        response = await web_env.client.get(path)
        assert response.status == 200, path
        assert "javascript" not in (await response.text()).lower(), path
    stored = await web_env.store.alert(alert.id)
    assert stored.link == ""
    stored.link = "javascript:alert(1)"  # even if something set it after construction
    rendered = Templates({"sms": "{{ title }} {{ link }}"}).render(
        stored, "sms", Limits(counting="sms", max_segments=3), "sms"
    )
    assert "javascript" not in rendered.text


# ------------------------------------------------------------------------------ escalation links


def test_a_dry_run_configuration_signs_with_no_built_in_key(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts.cli import DEMO_SECRET_KEY, _demo_secret
    from rules.yamlcheck import ValidationFailed
    from tests.test_web_support import make_config

    monkeypatch.delenv("CRIEUR_SECRET_KEY", raising=False)
    config = make_config(tmp_path, dry_run=True)
    with pytest.raises(ValidationFailed, match="CRIEUR_SECRET_KEY is not set"):
        config.secret_key()
    monkeypatch.setenv("CRIEUR_SECRET_KEY", "clé-du-département-41")
    assert config.secret_key() == "clé-du-département-41".encode()
    monkeypatch.delenv("CRIEUR_SECRET_KEY")
    _demo_secret(config)  # what `crieur demo` does, and only it
    assert config.secret_key() == DEMO_SECRET_KEY.encode()


# ------------------------------------------------------------------------ metrics, raw errors


async def test_metrics_answer_loopback_or_the_token_bearer_only(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts.service import Crieur

    monkeypatch.delenv("CRIEUR_METRICS_TOKEN", raising=False)
    crieur = await make_crieur(tmp_path, trusted_proxies=["127.0.0.0/8"])
    assert isinstance(crieur, Crieur)
    crieur.route_installers.append(crieur.metrics.install_routes)
    try:
        async with TestClient(TestServer(make_app(crieur))) as client:
            local = await client.get("/metrics")
            assert local.status == 200 and "crieur_" in await local.text()
            # the same request through the reverse proxy, from a citizen: refused
            outside = await client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
            assert outside.status == 403 and "crieur_" not in await outside.text()
            monkeypatch.setenv("CRIEUR_METRICS_TOKEN", "jeton-de-supervision-41")
            assert (await client.get("/metrics")).status == 401  # a token configured: even loopback shows it
            bearer = {"Authorization": "Bearer jeton-de-supervision-41", "X-Forwarded-For": "198.51.100.7"}
            assert (await client.get("/metrics", headers=bearer)).status == 200
    finally:
        await crieur.store.close()


async def test_readiness_names_no_internal_error(web_env: Web) -> None:
    class Broken:
        async def fetchval(self, *args: Any) -> Any:
            raise OSError("connection refused by db-interne.cg41.local:5432 (user crieur_admin)")

    real = web_env.store.db
    web_env.store.db = Broken()  # type: ignore[assignment]
    try:
        response = await web_env.client.get("/readyz")
        text = await response.text()
    finally:
        web_env.store.db = real
    assert response.status == 503 and text == "database: unavailable"


# ------------------------------------------------------------------------------ shared wall cache


async def test_the_wall_timeline_is_fetched_once_for_all_web_processes(web_env: Web) -> None:
    from alerts.web.wall import Wall
    from tests.fakes.mastodon import FakeMastodon
    from tests.test_web_public import _with_mastodon

    async with FakeMastodon() as fake:
        fake.add_status("Salage en cours #route41", tags=("route41",), account="mairie_blois@mastodon.example")
        await _with_mastodon(web_env, fake)
        processes = [Wall(web_env.crieur) for _ in range(3)]  # three web processes' walls, one database
        seen = [await wall.partner_posts("#route41") for wall in processes]
    assert len(fake.received("GET", "/timelines/tag/")) == 1
    assert [[p.text for p in posts] for posts in seen] == [["Salage en cours #route41"]] * 3
    assert len({wall.generation("#route41") for wall in processes}) == 1  # same ETag from every process
