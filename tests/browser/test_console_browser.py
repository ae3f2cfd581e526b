"""The CM's console in a real headless Chromium: the live badge, the compose page's duplicate warning and
the "En ce moment" view, with screenshots at 1280 px and 360 px (test-artifacts/) and axe-core checks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_web_browser import ARTIFACTS, axe_violations, login, page, site  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


async def test_a_question_arriving_shows_on_the_open_dashboard_within_5_s(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    await login(page, base)
    assert await page.locator("#attention-badge").is_hidden()
    assert not (await page.title()).startswith("(")
    await site["crieur"].store.add_question(channel="sms", sender="+33612345678",
                                            text="Les poids lourds peuvent-ils rouler sur la RD 957 ?")
    # no reload: the open page learns it by itself (server-sent events)
    await page.locator("#attention .attention-items").get_by_text("poids lourds peuvent-ils rouler").wait_for(
        timeout=5000)
    assert (await page.title()).startswith("(1) Tableau de bord")
    assert await page.locator("#attention-badge").is_visible()
    assert await page.locator("#attention-badge .count").inner_text() == "1"
    assert "1 nouvelle question" in await page.locator("#attention .summary").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-badge.png"))
    assert await axe_violations(page) == []
