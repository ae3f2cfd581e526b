"""The signed link's page in a real headless Chromium at 360 px wide, on SQLite and PostgreSQL: the back-up
paged on a Saturday night opens the link from the SMS, sees the alert, approves it; the page fits the
width, axe-core finds nothing, and the expired link says so in French. Screenshots in test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from alerts.domain import AlertStatus
from alerts.web import make_app
from tests.browser.test_web_browser import ARTIFACTS, axe_violations, page  # noqa: F401  (fixture)
from tests.test_oncall import BRUNO, LINK, SATURDAY_23H, close, mailbox, night_factory, orange_vigilance  # noqa: F401

pytestmark = pytest.mark.browser


async def fits(page: Any) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


async def test_the_backup_decides_from_a_360_px_phone(night_factory: Any, page: Any) -> None:  # noqa: F811
    night = await night_factory("publish", "45m")
    server = TestServer(make_app(night.crieur), host="127.0.0.1", port=0)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        for minute in (0, 5, 15):
            await night.at(23, minute)
        path = LINK.search(night.sms_to(BRUNO)[0])[1]
        night._clock[0] = SATURDAY_23H.replace(minute=16).timestamp()
        await page.set_viewport_size({"width": 360, "height": 740})
        ARTIFACTS.mkdir(exist_ok=True)

        await page.goto(base + path)
        assert await page.get_by_role("heading", level=1).inner_text() == f"Alerte {alert.id} à valider"
        assert "Sans décision à 23:45, elle sera publiée." in await page.locator("main").inner_text()
        assert await fits(page)
        await page.screenshot(path=str(ARTIFACTS / "astreinte-lien-360.png"), full_page=True)
        assert await axe_violations(page) == []

        await page.get_by_role("button", name=f"Publier l'alerte {alert.id}").click()
        await page.get_by_role("status").get_by_text(f"Alerte {alert.id} publiée.").wait_for(timeout=5000)
        assert await page.get_by_role("button").count() == 0  # decided: no buttons left
        assert await fits(page)
        await page.screenshot(path=str(ARTIFACTS / "astreinte-lien-publiee-360.png"), full_page=True)
        assert await axe_violations(page) == []
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PUBLISHED

        night._clock[0] = SATURDAY_23H.replace(minute=16).timestamp() + 3 * 3600
        response = await page.goto(base + path)
        assert response.status == 403
        assert await page.get_by_role("heading", level=1).inner_text() == "Lien expiré"
        assert await fits(page)
        assert await axe_violations(page) == []
    finally:
        await server.close()
        await close(night)


async def test_the_astreinte_console_page_and_a_swap_at_360_px(night_factory: Any, page: Any, monkeypatch) -> None:  # noqa: F811
    from alerts.web.accounts import add_user
    from tests.browser.test_web_browser import login
    from tests.test_web_support import PASSWORD, quick_argon2

    quick_argon2(monkeypatch)
    night = await night_factory("publish", "45m")
    await add_user(night.crieur.store, "camille.durand", PASSWORD, "approver")
    server = TestServer(make_app(night.crieur), host="127.0.0.1", port=0)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        await page.set_viewport_size({"width": 360, "height": 800})
        await login(page, base)
        await page.goto(f"{base}/console/astreinte")
        assert await axe_violations(page) == []
        await page.get_by_label("Personne d'astreinte").select_option(label="Bruno Petit")
        await page.get_by_label("Suppléant·e").select_option(label="Claire Roux")
        await page.get_by_label("Du").fill("2026-12-05T20:00")
        await page.get_by_label("Au", exact=False).last.fill("2026-12-07T08:00")
        await page.get_by_role("button", name="Enregistrer le remplacement").click()
        await page.wait_for_url(f"{base}/console/astreinte?msg=swap-added")
        listed = await page.locator("#remplacements + p + ul").inner_text()
        assert "Bruno Petit, suppléé·e par Claire Roux" in listed
        assert await fits(page)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "console-astreinte-360.png"), full_page=True)
        assert await axe_violations(page) == []
    finally:
        await server.close()
        await close(night)
