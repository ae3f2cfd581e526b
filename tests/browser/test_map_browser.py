"""The map in a real headless Chromium: /t/41 with real DATEX II records placed by their own coordinates (Bison
Futé/Tipi: lanes blocked on the A4; DiaLog: an arrêté closing Maisse's streets to lorries over 7.5 t) and an
orange vigilance over Loir-et-Cher, at desktop and 360 px widths,
axe-core, the page with its stylesheet off, the alert page and « Qui fait quoi ? ». Screenshots go to
test-artifacts/."""

from __future__ import annotations

import pathlib
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from alerts.web import make_app
from rules.competence import Directory
from tests.browser.test_web_browser import ARTIFACTS, axe_violations, page  # noqa: F401  (fixture)
from tests.test_web_map import GEO, add_item_alert, dialog_item, orange_vigilance, tipi_item
from tests.test_web_support import make_crieur

pytestmark = pytest.mark.browser

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "loir-et-cher" / "authorities.yaml"


@pytest.fixture
async def mapped_site(tmp_path: pathlib.Path) -> AsyncIterator[dict[str, Any]]:
    crieur = await make_crieur(tmp_path, geo=GEO)
    crieur.directory = Directory.load(EXAMPLE)
    obstruction = await add_item_alert(crieur, tipi_item(), title="A4 : voies bloquées à Charenton-le-Pont")
    vigilance = await add_item_alert(crieur, orange_vigilance())
    await add_item_alert(crieur, dialog_item(), title="Maisse : traversée interdite aux plus de 7,5 t")
    server = TestServer(make_app(crieur), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield {"base": str(server.make_url("")).rstrip("/"), "alerts": (obstruction, vigilance)}
    finally:
        await server.close()
        await crieur.store.close()


async def _map_box(page: Any) -> dict[str, float]:
    box = await page.locator("svg#carte").bounding_box()
    assert box is not None
    return box


async def test_territory_map_at_desktop_and_phone_widths(mapped_site: dict[str, Any], page: Any) -> None:
    base = mapped_site["base"]
    ARTIFACTS.mkdir(exist_ok=True)
    for name, width, height in (("desktop", 1280, 900), ("360", 360, 780)):
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto(f"{base}/t/41")
        box = await _map_box(page)
        assert 300 < box["width"] <= width and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5
        scroll = await page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the page scrolls sideways at {width} px"
        # what is drawn: the A4 point (no-entry sign), Maisse's streets (dashed, with a marker as they are
        # only a few pixels long) and the orange vigilance over the département
        assert await page.locator("svg#carte circle").count() == 2
        assert await page.locator('svg#carte path[stroke-dasharray="10 6"]').count() == 1
        assert await page.locator('svg#carte path[fill="#e8710a"]').count() == 1
        legend = await page.locator(".map-section").inner_text()
        assert "Voies fermées — A4 : voies bloquées à Charenton-le-Pont : A 4" in legend
        assert "Vigilance orange — Vigilance orange neige-verglas (41) : Loir-et-Cher" in legend
        assert "Circulation restreinte — Maisse : traversée interdite aux plus de 7,5 t" in legend
        assert "IGN Admin Express (via france-geojson), Licence Ouverte" in legend
        await page.locator("svg#carte").scroll_into_view_if_needed()
        await page.screenshot(path=str(ARTIFACTS / f"map-territory-41-{name}.png"), full_page=True)
        assert await axe_violations(page) == []


async def test_map_reads_with_the_stylesheet_off(mapped_site: dict[str, Any], page: Any) -> None:
    base = mapped_site["base"]
    await page.set_viewport_size({"width": 1024, "height": 900})
    await page.goto(f"{base}/t/41")
    await page.evaluate("document.querySelectorAll('link[rel=stylesheet], style').forEach(e => e.remove())")
    assert await page.evaluate("document.styleSheets.length") == 0
    box = await _map_box(page)
    # sized by its own attributes, not squashed or blown up without CSS
    assert 780 <= box["width"] <= 820 and box["height"] > 500
    paint = await page.evaluate(
        "() => { const p = document.querySelector('svg#carte path[fill=\"#e8710a\"]');"
        " return getComputedStyle(p).fill; }"
    )
    assert paint == "rgb(232, 113, 10)"  # the orange comes from the SVG itself
    assert "Voies fermées" in await page.locator(".map-section").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "map-territory-41-css-off.png"), full_page=True)


async def test_alert_page_and_who_does_what_have_no_axe_violations(mapped_site: dict[str, Any], page: Any) -> None:
    base = mapped_site["base"]
    obstruction, _ = mapped_site["alerts"]
    await page.goto(f"{base}/alertes/{obstruction.id}")
    assert await page.locator(f"svg#carte-{obstruction.id} circle").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "alert-page.png"), full_page=True)
    assert await axe_violations(page) == []
    await page.goto(f"{base}/qui-fait-quoi")
    school = await page.locator(
        "#sujet-transport-scolaire + * + ul, section[aria-labelledby=sujet-transport-scolaire]"
    ).first.inner_text()
    assert "La Région Centre-Val de Loire (réseau Rémi)" in school
    await page.screenshot(path=str(ARTIFACTS / "qui-fait-quoi.png"), full_page=True)
    assert await axe_violations(page) == []
