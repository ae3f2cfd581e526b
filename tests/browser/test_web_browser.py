"""The web side in a real headless Chromium (Debian's, never a downloaded one): the citizen page, axe-core
accessibility checks, a CM composing with the live preview and sending, CSRF refusal and the login
redirect. Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import pathlib
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from alerts.domain import Severity
from alerts.web import make_app
from alerts.web.accounts import add_user
from channels.mastodon import MastodonChannel
from tests.fakes.mastodon import FakeMastodon
from tests.test_web_support import PASSWORD, make_crieur, quick_argon2, snow_alert

pytestmark = pytest.mark.browser

CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

import playwright.async_api as playwright_api  # noqa: E402  (a test dependency: missing = failure)


def axe_source() -> str:
    """axe-core as bundled by the axe-playwright-python package (a test dependency)."""
    try:
        import axe_playwright_python
    except ImportError as exc:  # a missing test dependency must fail the run, not skip the check
        raise AssertionError("axe-playwright-python is not installed: pip install axe-playwright-python") from exc

    return (pathlib.Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


async def fake_preview(text: str, territories: list[str], channels: list[str], signature: str) -> list[dict]:
    """Stands in for crieur.preview (the rules engine's rendering) in this test only."""
    tags = " ".join(f"#route{t}" for t in territories)
    rendered = f"{text} {tags} — {signature}".strip()
    rows = []
    for name in channels:
        if name == "sms":
            gsm = all(ord(c) < 128 or c in "éèàùç" for c in rendered)
            per = 153 if gsm else 67
            rows.append(
                {
                    "channel": name,
                    "kind": "twilio",
                    "text": rendered,
                    "length": len(rendered),
                    "max_length": 480,
                    "segments": max(1, -(-len(rendered) // per)),
                    "encoding": "GSM-7" if gsm else "UCS-2",
                    "subscribers": 1250,
                }
            )
        else:
            rows.append(
                {
                    "channel": name,
                    "kind": "mastodon",
                    "text": rendered,
                    "length": len(rendered),
                    "max_length": 500,
                    "segments": None,
                    "encoding": None,
                    "subscribers": None,
                }
            )
    return rows


@pytest.fixture
async def site(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, Any]]:
    quick_argon2(monkeypatch)
    crieur = await make_crieur(tmp_path)
    await add_user(crieur.store, "camille.durand", PASSWORD, "cm")
    await crieur.store.add_alert(snow_alert())
    await crieur.store.add_alert(
        snow_alert(
            title="Verglas sur la RD 2152 à Vendôme",
            text="Plaques de verglas signalées, salage en cours.",
            severity=Severity.MODERATE,
            roads=(),
            areas=(),
        )
    )
    crieur.preview = fake_preview  # type: ignore[attr-defined]
    async with FakeMastodon() as mastodon:
        mastodon.add_status(
            "Rue Denis Papin : déneigement en cours, stationnement interdit #route41",
            tags=("route41",),
            account="mairie_blois@mastodon.example",
        )
        server = TestServer(make_app(crieur), host="127.0.0.1", port=0)
        await server.start_server()
        import aiohttp

        async with aiohttp.ClientSession() as session:
            channel = MastodonChannel("mastodon", {"base_url": mastodon.base_url, "access_token": "test-token"})
            await channel.start(session)
            crieur.channels = {"mastodon": channel}
            yield {"crieur": crieur, "base": str(server.make_url("")).rstrip("/")}
        await server.close()
    await crieur.store.close()


@pytest.fixture
async def page(tmp_path: pathlib.Path) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        # Missing Chromium fails the run (scripts/test installs Debian's package); it is never skipped.
        assert CHROMIUM.exists(), "Debian's chromium is not installed: apt-get install chromium"
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        # bypass_csp: only so that the test can inject axe-core; the pages themselves run under their CSP
        context = await browser.new_context(
            viewport={"width": 412, "height": 915}, locale="fr-FR", timezone_id="Europe/Paris", bypass_csp=True
        )
        page = await context.new_page()
        try:
            yield page
        finally:
            await context.close()
            await browser.close()


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    await page.add_script_tag(content=axe_source())
    result = await page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]
    ]


async def login(page: Any, base: str) -> None:
    await page.goto(f"{base}/console/login")
    await page.get_by_label("Identifiant").fill("camille.durand")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{base}/console")


async def test_citizen_page_renders_alerts_and_has_no_axe_violations(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    await page.goto(f"{base}/t/41")
    titles = await page.locator("ol.alerts h3").all_inner_texts()
    assert titles == ["Neige : RD 957 coupée entre Blois et Vendôme", "Verglas sur la RD 2152 à Vendôme"]
    assert "Envoyez ROUTE41 au 07 57 00 00 41" in await page.locator("#sms-titre + p").inner_text()
    assert "Rue Denis Papin" in await page.locator("ul.wall").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "territory-41.png"), full_page=True)
    assert await axe_violations(page) == []
    await page.goto(f"{base}/")
    assert await axe_violations(page) == []


async def test_console_pages_have_no_axe_violations(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    await page.goto(f"{base}/console")
    assert page.url == f"{base}/console/login"  # redirected
    assert await axe_violations(page) == []
    await login(page, base)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)
    assert await axe_violations(page) == []
    await page.goto(f"{base}/console/compose")
    assert await axe_violations(page) == []


async def test_cm_composes_sees_the_live_preview_sends_and_the_alert_is_public(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    await login(page, base)
    await page.goto(f"{base}/console/compose")
    await page.get_by_label("Loir-et-Cher (#route41)").check()
    await page.get_by_label("mastodon").check()
    await page.get_by_label("sms").check()
    await page.get_by_label("web", exact=True).uncheck()
    await page.get_by_label("Sévérité").select_option(label="Sévère")
    await page.get_by_label("Titre").fill("Chutes de neige : RD 956 fermée")
    await page.get_by_label("Texte de l'alerte").fill("RD 956 fermée entre Contres et Cheverny jusqu'à 18 h.")
    # the script refreshes the preview as the CM types, without a page load
    await page.locator("#preview .preview-item").first.wait_for()
    preview = await page.locator("#preview").inner_text()
    assert "1250 abonnés" in preview and "#route41" in preview and "— CD" in preview
    # the no-script path: the Prévisualiser button renders the same block in a full page
    await page.get_by_role("button", name="Prévisualiser").click()
    await page.wait_for_load_state()
    assert "SMS facturés" in await page.locator("#preview").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "compose-preview.png"), full_page=True)
    await page.get_by_role("button", name="Envoyer l'alerte").click()
    await page.wait_for_url(f"{base}/console?msg=published")
    assert "Alerte publiée" in await page.locator("main").inner_text()
    crieur = site["crieur"]
    [sent] = crieur.fanout.planned
    assert sent.signature == "CD" and sent.channels == ("mastodon", "sms")
    await page.goto(f"{base}/t/41")
    assert "Chutes de neige : RD 956 fermée" in await page.locator("ol.alerts").inner_text()


async def test_form_without_csrf_token_is_refused(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    await login(page, base)
    await page.goto(f"{base}/console/compose")
    await page.evaluate("document.querySelector('#compose input[name=csrf]').remove()")
    await page.get_by_label("Loir-et-Cher (#route41)").check()
    await page.get_by_label("Texte de l'alerte").fill("Sans jeton")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Envoyer l'alerte").click()
    assert "Jeton CSRF absent ou invalide" in await page.content()
    assert site["crieur"].fanout.planned == []


async def test_console_redirects_to_login(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    response = await page.goto(f"{base}/console/compose")
    assert page.url == f"{base}/console/login"
    assert response.status == 200
    assert await page.get_by_role("heading", level=1).inner_text() == "Connexion à la console"
