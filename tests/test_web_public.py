"""Citizens' pages: current alerts by severity, roads and communes, SMS instructions, the question form,
the hashtag wall (partners only, cached 60 s, Mastodon failures tolerated), caching and health checks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from alerts.citizens import Thread
from alerts.domain import AlertStatus, Severity
from alerts.web.site import WALL
from channels.mastodon import MastodonChannel
from tests.fakes.mastodon import FakeMastodon
from tests.test_web_support import Web, web_env  # noqa: F401  (fixture)


def _titles(html: str) -> list[str]:
    return re.findall(r'<h3 id="alerte-\d+">(.*?)</h3>', html)


async def test_territory_page_lists_current_alerts_by_severity(web_env: Web) -> None:
    await web_env.add(title="Mineure", severity=Severity.MINOR)
    await web_env.add(title="Extrême", severity=Severity.EXTREME)
    await web_env.add(title="Sévère")
    await web_env.add(title="Expirée", expires=datetime.now(timezone.utc) - timedelta(minutes=1))
    await web_env.add(title="À valider", status=AlertStatus.PENDING_APPROVAL)
    await web_env.add(title="Terminée", status=AlertStatus.ENDED)
    await web_env.add(title="Eure-et-Loir", territories=("28",))
    response = await web_env.client.get("/t/41")
    assert response.status == 200
    html = await response.text()
    assert _titles(html) == ["Extrême", "Sévère", "Mineure"]
    assert "RD 957" in html and "RN 10" in html
    assert "Blois, Vendôme" in html
    assert '<html lang="fr">' in html


async def test_times_are_shown_in_paris_time(web_env: Web) -> None:
    alert = await web_env.add()
    local = alert.updated_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    html = await (await web_env.client.get("/t/41")).text()
    assert f"à {local.hour} h {local.minute:02d}" in html
    assert "heure de Paris" in html


async def test_sms_instructions_use_the_sms_channel_number(web_env: Web) -> None:
    html = await (await web_env.client.get("/t/41")).text()
    assert re.search(r"Envoyez <strong[^>]*>ROUTE41</strong> au <strong[^>]*>07 57 00 00 41</strong>", html)
    home = await (await web_env.client.get("/")).text()
    assert "ROUTE28" in home and "ROUTE41" in home


async def test_home_page_shows_every_territory(web_env: Web) -> None:
    await web_env.add(title="Dans le 41")
    await web_env.add(title="Dans le 28", territories=("28",))
    html = await (await web_env.client.get("/")).text()
    assert sorted(_titles(html)) == ["Dans le 28", "Dans le 41"]
    assert 'href="/t/28"' in html and 'href="/t/41"' in html


async def test_unknown_territory_is_404(web_env: Web) -> None:
    assert (await web_env.client.get("/t/99")).status == 404


async def test_text_is_escaped(web_env: Web) -> None:
    await web_env.add(title="<script>alert(1)</script>", text="<b>gras</b>")
    html = await (await web_env.client.get("/t/41")).text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;gras" in html


async def test_security_headers(web_env: Web) -> None:
    response = await web_env.client.get("/t/41")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# ------------------------------------------------------------------------------------------- questions


async def test_question_without_citizens_service_says_unavailable(web_env: Web) -> None:
    response = await web_env.client.post("/questions", data={"text": "La RD 957 est-elle ouverte ?", "territory": "41"})
    assert response.status == 503
    html = await response.text()
    assert "Service indisponible" in html and "indisponible" in html
    assert "La RD 957 est-elle ouverte ?" in html  # the citizen's text is kept for a later try


async def test_question_is_routed_and_the_reply_shown(web_env: Web) -> None:
    calls: list[dict[str, Any]] = []

    class Citizens:
        async def ask(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs)
            return {"reply": "Les poids lourds relèvent de la préfecture : question transmise."}

    web_env.crieur.citizens = Citizens()  # type: ignore[attr-defined]
    response = await web_env.client.post(
        "/questions", data={"text": "Les camions peuvent-ils rouler ?", "phone": "06 12 34 56 78", "territory": "41"}
    )
    assert response.status == 200
    assert "question transmise" in await response.text()
    assert calls == [
        {
            "channel": "web",
            "sender": "+33612345678",
            "text": "Les camions peuvent-ils rouler ?",
            "territories": ["41"],
            # the number left is the way back: the team's answer goes by SMS
            "thread": Thread("web", channel="sms", recipient="+33612345678"),
        }
    ]


async def test_question_errors_are_named_and_nothing_is_asked(web_env: Web) -> None:
    class Citizens:
        async def ask(self, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("must not be called")

    web_env.crieur.citizens = Citizens()  # type: ignore[attr-defined]
    response = await web_env.client.post("/questions", data={"text": "  ", "phone": "12", "territory": "41"})
    assert response.status == 400
    html = await response.text()
    assert "Écrivez votre question." in html and "Numéro de mobile non reconnu" in html
    assert 'aria-invalid="true"' in html


async def test_question_service_failure_is_unavailable_not_500(web_env: Web) -> None:
    class Citizens:
        async def ask(self, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("database gone")

    web_env.crieur.citizens = Citizens()  # type: ignore[attr-defined]
    response = await web_env.client.post("/questions", data={"text": "Question ?", "territory": "41"})
    assert response.status == 503
    assert "indisponible" in await response.text()


# ------------------------------------------------------------------------------------------- wall


async def _with_mastodon(web: Web, fake: FakeMastodon) -> None:
    channel = MastodonChannel("mastodon", {"base_url": fake.base_url, "access_token": "test-token"})
    await channel.start(web.client.session)
    web.crieur.channels = {"mastodon": channel}


async def test_wall_shows_our_alerts_and_partner_posts_only(web_env: Web) -> None:
    await web_env.add(text="Notre alerte sur la RD 957")
    async with FakeMastodon() as fake:
        fake.add_status(
            "Déneigement en cours rue <b>Denis Papin</b> #route41",
            tags=("route41",),
            account="mairie_blois@mastodon.example",
        )
        fake.add_status("Pub pour des pneus neige #route41", tags=("route41",), account="spam@example.org")
        await _with_mastodon(web_env, fake)
        html = await (await web_env.client.get("/t/41")).text()
        wall = html.split('id="mur-titre"', 1)[1]
        assert "Notre alerte sur la RD 957" in wall
        assert "Déneigement en cours rue Denis Papin" in wall  # HTML from Mastodon reduced to text
        assert "@mairie_blois@mastodon.example" in wall
        assert "pneus neige" not in wall
        assert "<b>" not in wall


async def test_wall_timeline_is_cached_for_a_minute(web_env: Web) -> None:
    async with FakeMastodon() as fake:
        fake.add_status("Salage #route41", tags=("route41",), account="mairie_blois@mastodon.example")
        await _with_mastodon(web_env, fake)
        for _ in range(3):
            assert (await web_env.client.get("/t/41")).status == 200
        assert len(fake.received("GET", "/timelines/tag/")) == 1
        cache = web_env.client.app[WALL]._cache
        stamp, posts = cache["#route41"]
        cache["#route41"] = (stamp - 61, posts)  # a minute later, in this process's memory...
        await web_env.client.get("/t/41")
        assert len(fake.received("GET", "/timelines/tag/")) == 1  # ...but another process may have fetched
        await web_env.store.db.execute("UPDATE shared_cache SET at = at - 61")  # nobody did for a minute
        cache["#route41"] = (stamp - 61, posts)
        await web_env.client.get("/t/41")
        assert len(fake.received("GET", "/timelines/tag/")) == 2


async def test_wall_survives_a_failing_mastodon(web_env: Web) -> None:
    await web_env.add(text="Notre alerte reste visible")
    async with FakeMastodon() as fake:
        fake.fail_next(1, status=503)
        await _with_mastodon(web_env, fake)
        response = await web_env.client.get("/t/41")
        assert response.status == 200
        html = await response.text()
        assert "Notre alerte reste visible" in html.split('id="mur-titre"', 1)[1]


# ------------------------------------------------------------------------------------------- caching, health


async def test_etag_gives_304_until_an_alert_changes(web_env: Web) -> None:
    alert = await web_env.add()
    first = await web_env.client.get("/t/41")
    etag = first.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"]
    again = await web_env.client.get("/t/41", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    await web_env.store.set_alert_status(alert.id, AlertStatus.ENDED)
    changed = await web_env.client.get("/t/41", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    other = await web_env.client.get("/t/28", headers={"If-None-Match": changed.headers["ETag"]})
    assert other.status == 200  # the path is part of the tag


async def test_etag_changes_when_an_alert_expires(web_env: Web) -> None:
    alert = await web_env.add(expires=datetime.now(timezone.utc) + timedelta(seconds=60))
    etag = (await web_env.client.get("/")).headers["ETag"]
    await web_env.store.db.execute("UPDATE alerts SET expires = $2 WHERE id = $1", alert.id, 1.0)
    response = await web_env.client.get("/", headers={"If-None-Match": etag})
    assert response.status == 200
    assert "Aucune alerte en cours" in await response.text()


async def test_healthz_and_readyz(web_env: Web) -> None:
    response = await web_env.client.get("/healthz")
    assert (response.status, await response.text()) == (200, "ok")
    assert (await web_env.client.get("/readyz")).status == 200


async def test_readyz_fails_when_the_source_loop_died(web_env: Web) -> None:
    import asyncio

    async def crash() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(crash(), name="sources")
    await asyncio.gather(task, return_exceptions=True)
    web_env.crieur.source_loop = object()
    web_env.crieur._tasks = [task]
    response = await web_env.client.get("/readyz")
    assert response.status == 503
    assert "sources" in await response.text()


async def test_readyz_fails_when_the_database_is_gone(web_env: Web) -> None:
    class Broken:
        async def fetchval(self, *args: Any) -> Any:
            raise OSError("connection refused")

    real = web_env.store.db
    web_env.store.db = Broken()  # type: ignore[assignment]
    try:
        response = await web_env.client.get("/readyz")
        assert response.status == 503
        assert "database" in await response.text()
    finally:
        web_env.store.db = real


async def test_question_form_is_rate_limited_per_address_and_per_phone(web_env: Web) -> None:
    asked: list[str] = []

    class Citizens:
        async def ask(self, **kwargs: Any) -> dict[str, Any]:
            asked.append(kwargs["sender"])
            return {"reply": "Merci."}

    web_env.crieur.citizens = Citizens()  # type: ignore[attr-defined]
    statuses = []
    for n in range(4):  # one phone: 3 an hour
        response = await web_env.client.post("/questions", data={"text": f"Q{n}", "phone": "0612345678"})
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429]
    assert "Trop de questions" in await response.text()
    assert asked == ["+33612345678"] * 3
    fifth = await web_env.client.post("/questions", data={"text": "sans numéro"})
    assert fifth.status == 200  # the address is at 5 (the refused one was counted for the address)
    sixth = await web_env.client.post("/questions", data={"text": "encore"})
    assert sixth.status == 429
    assert len(asked) == 4


async def test_question_phone_must_be_a_mobile(web_env: Web) -> None:
    response = await web_env.client.post("/questions", data={"text": "Question", "phone": "02 54 58 41 41"})
    assert response.status == 400
    assert "Numéro de mobile non reconnu" in await response.text()
