"""The web side in a real headless Chromium (Debian's, never a downloaded one): the citizen page, axe-core
accessibility checks, a CM composing with the live preview and sending, CSRF refusal and the login
redirect. Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import pathlib
import textwrap
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from alerts.config import load_config
from alerts.domain import Severity
from alerts.service import Crieur
from alerts.web import make_app
from alerts.web.accounts import add_user
from tests.conftest import EXAMPLES
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.facebook import FakeFacebook
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.twilio import FakeTwilio
from tests.fakes.x import FakeX
from tests.test_web_support import PASSWORD, quick_argon2, snow_alert

pytestmark = pytest.mark.browser

EXAMPLE = EXAMPLES / "loir-et-cher"
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


SUBSCRIBERS_41 = 1250


def write_config(tmp_path: pathlib.Path, fakes: dict[str, Any]) -> pathlib.Path:
    """The example département's own rules, territories and templates, with Mastodon and SMS pointed at the
    fakes: the console's preview and sending are the real ones, not a copy built for the test."""
    mastodon, twilio, x, bluesky, facebook = (fakes[k] for k in ("mastodon", "twilio", "x", "bluesky", "facebook"))
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent(f"""
        service:
          name: Département de Loir-et-Cher
          public_url: http://127.0.0.1:8041
          data_dir: {tmp_path / "data"}
          database: sqlite:///{tmp_path / "crieur.db"}
          territories: {EXAMPLE / "territories.yaml"}
          rules: [{EXAMPLE / "rules.yaml"}]
          templates: {EXAMPLE / "templates"}
          authorities: {EXAMPLE / "authorities.yaml"}
        channels:
          mastodon: {{kind: mastodon, base_url: "{mastodon.base_url}", access_token: test-token}}
          sms: {{kind: twilio, api_base: "{twilio.base_url}", account_sid: "{twilio.account_sid}",
                 auth_token: "{twilio.auth_token}", from: "+33757000041", price_per_segment: 0.0725}}
          x: {{kind: x, api_base: "{x.base_url}", consumer_key: ck, consumer_secret: cs, access_token: at,
               access_token_secret: ats}}
          bluesky: {{kind: bluesky, service: "{bluesky.base_url}", identifier: "{bluesky.identifier}",
                     app_password: "{bluesky.password}"}}
          facebook: {{kind: facebook, api_base: "{facebook.base_url}", page_id: "{facebook.page_id}",
                      page_token: "{facebook.token}"}}
          web: {{kind: web}}
        citizens:
          sms_channel: sms
          partners: ["@mairie_blois@mastodon.example"]
        """),
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def site(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, Any]]:
    """The real service (rules, channels, fan-out into the outbox) behind its web app; no delivery worker
    runs, so a test sees what would be sent in the outbox and the fakes receive nothing it did not ask for."""
    quick_argon2(monkeypatch)
    async with (
        FakeMastodon() as mastodon,
        FakeTwilio() as twilio,
        FakeX() as x,
        FakeBluesky() as bluesky,
        FakeFacebook() as facebook,
    ):
        mastodon.add_status(
            "Rue Denis Papin : déneigement en cours, stationnement interdit #route41",
            tags=("route41",),
            account="mairie_blois@mastodon.example",
        )
        fakes = {"mastodon": mastodon, "twilio": twilio, "x": x, "bluesky": bluesky, "facebook": facebook}
        crieur = Crieur(load_config(write_config(tmp_path, fakes)))
        await crieur.open()
        try:
            await add_user(crieur.store, "camille.durand", PASSWORD, "cm")
            await crieur.store.add_subscribers((f"+336{n:08d}", "41") for n in range(SUBSCRIBERS_41))
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
            server = TestServer(make_app(crieur), host="127.0.0.1", port=0)
            await server.start_server()
            try:
                yield {"crieur": crieur, "base": str(server.make_url("")).rstrip("/")}
            finally:
                await server.close()
        finally:
            await crieur.stop(grace=1.0)


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
    for other in ("web", "x", "bluesky", "facebook"):
        await page.get_by_label(other, exact=True).uncheck()
    await page.get_by_label("Sévérité").select_option(label="Sévère")
    await page.get_by_label("Titre").fill("Chutes de neige : RD 956 fermée")
    await page.get_by_label("Texte de l'alerte").fill("RD 956 fermée entre Contres et Cheverny jusqu'à 18 h.")
    # the script refreshes the preview as the CM types, without a page load
    await page.locator("#preview .preview-item").first.wait_for()
    preview = await page.locator("#preview").inner_text()
    sms_preview = "Chutes de neige : RD 956 fermée : RD 956 fermée entre Contres et Cheverny jusqu'à 18 h. CD"
    assert sms_preview in preview and "1250 abonnés" in preview and "tout le 41 (1250)" in preview
    assert (
        "Chutes de neige : RD 956 fermée\nRD 956 fermée entre Contres et Cheverny jusqu'à 18 h.\n#route41 CD" in preview
    )
    assert "bluesky" not in preview  # only the channels the CM ticked
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
    [sent] = [a for a in await crieur.store.alerts(limit=10) if a.title == "Chutes de neige : RD 956 fermée"]
    assert sent.signature == "CD" and sent.channels == ("mastodon", "sms")
    # the real fan-out put one post on Mastodon and one SMS per subscriber of the 41 in the outbox, with the
    # very text the preview showed
    deliveries = await crieur.store.deliveries(sent.id, limit=2 * SUBSCRIBERS_41)
    assert [d.channel for d in deliveries if not d.recipient] == ["mastodon"]
    sms = [d for d in deliveries if d.channel == "sms"]
    assert len({d.recipient for d in sms}) == len(sms) == SUBSCRIBERS_41
    assert {d.text for d in sms} == {sms_preview}
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
    assert await site["crieur"].store.deliveries() == []


async def test_console_redirects_to_login(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    response = await page.goto(f"{base}/console/compose")
    assert page.url == f"{base}/console/login"
    assert response.status == 200
    assert await page.get_by_role("heading", level=1).inner_text() == "Connexion à la console"
