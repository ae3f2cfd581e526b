"""An exercise on the web, in a real headless Chromium at 360 px and 1280 px: the territory's page keeps its
real alerts and shows an EXERCICE banner pointing to the exercise page, which lists the exercise under its
own banner; axe-core finds nothing on either. Screenshots in test-artifacts/."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.browser.test_web_browser import ARTIFACTS, axe_violations, page, site  # noqa: F401  (fixtures)
from tests.test_web_support import snow_alert

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [360, 1280])
async def test_the_exercise_banner_and_page(site: dict[str, Any], page: Any, width: int) -> None:  # noqa: F811
    crieur, base = site["crieur"], site["base"]
    crieur.config.exercise_channels = ["web"]
    await crieur.store.add_alert(
        snow_alert(
            title="EXERCICE : pont de Montrichard fermé",
            text="Exercice de la préfecture : déviation par Chissay.",
            channels=("web",),
            exercise=True,
            roads=(),
            expires=datetime.now(timezone.utc) + timedelta(hours=3),
        )
    )
    await page.set_viewport_size({"width": width, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)

    await page.goto(f"{base}/t/41")
    assert "pont de Montrichard" not in await page.locator("#alertes-titre + ol, #alertes-titre + p").inner_text()
    banner = page.locator(".exercise-banner")
    assert "EXERCICE en cours" in await banner.inner_text()
    await page.screenshot(path=str(ARTIFACTS / f"exercice-bandeau-{width}.png"), full_page=True)
    assert await axe_violations(page) == []

    await banner.get_by_role("link").click()
    await page.wait_for_url(f"{base}/t/41/exercice")
    assert (await page.locator(".exercise-banner").inner_text()).startswith("EXERCICE")
    assert "EXERCICE : pont de Montrichard fermé" in await page.locator("ol.alerts").inner_text()
    assert "RD 957" not in await page.locator("main").inner_text()  # the real alerts stay on their page
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=str(ARTIFACTS / f"exercice-page-{width}.png"), full_page=True)
    assert await axe_violations(page) == []
