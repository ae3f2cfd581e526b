"""The PNG card of an alert (map + headline, 1200 × 630): drawn from the same scene as the SVG map, served as
the alert page's Open Graph image, with an alt text saying what it shows."""

from __future__ import annotations

import io

import numpy as np
from aiohttp.test_utils import TestClient
from PIL import Image

from alerts.domain import AlertStatus, Severity
from alerts.geo import Atlas
from alerts.web.card import HEIGHT, WIDTH, card_alt, card_scene, render_card
from alerts.web.map import COLOURS, mark_for
from tests.test_web_map import GEO, _alert, add_item_alert, client, orange_vigilance, tipi_item  # noqa: F401

NAMES = {"41018": "Blois", "41269": "Vendôme"}


def _count(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    pixels = np.asarray(image.convert("RGB"), dtype=int)
    return int((np.abs(pixels - np.array(colour)) <= tolerance).all(axis=2).sum())


def _blend(hex_colour: str, opacity: float, under: tuple[int, int, int] = (0xFB, 0xFB, 0xF8)) -> tuple[int, int, int]:
    rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return tuple(round(c * opacity + u * (1 - opacity)) for c, u in zip(rgb, under, strict=True))


def test_card_draws_the_vigilance_and_the_headline() -> None:
    atlas = Atlas.load(GEO)
    item = orange_vigilance()
    alert = _alert(item, 7)
    marks = [mark_for(alert, item, atlas, NAMES)]
    scene = card_scene(atlas, "41", "Loir-et-Cher", marks, list(NAMES.values()))
    assert scene.height <= 590 and scene.width <= 600
    png = render_card(alert, scene, "Département de Loir-et-Cher", "Loir-et-Cher")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    left = image.crop((0, 0, 620, HEIGHT))
    # the département is filled with the vigilance's orange (translucent over the land), over much of the map
    assert _count(left, _blend(COLOURS["orange"], 0.45)) > 60_000
    right = image.crop((640, 0, WIDTH, HEIGHT))
    assert _count(right, (0x1B, 0x1B, 0x1B), 40) > 2_000  # the headline, in ink
    assert _count(right, _blend(COLOURS["orange"], 0.45)) < 500  # only the badge's smoothed edges come close
    assert card_alt(alert, scene.marks, "Loir-et-Cher") == (
        "Alerte « Vigilance orange neige-verglas (41) », sévérité sévère. "
        "Carte de Loir-et-Cher : Vigilance orange : Loir-et-Cher."
    )


def test_card_without_a_map_keeps_the_headline() -> None:
    alert = _alert(None, 8, title="Chutes de neige : " + "très " * 60 + "fortes", severity=Severity.EXTREME)
    image = Image.open(io.BytesIO(render_card(alert, None, "Département de Loir-et-Cher")))
    assert image.size == (WIDTH, HEIGHT)
    assert _count(image.crop((0, 0, 600, HEIGHT)), (0x1B, 0x1B, 0x1B), 40) > 2_000  # the text takes the room
    assert card_alt(alert, []).endswith("sévérité extrême.")


async def test_card_is_the_alert_pages_open_graph_image(client: TestClient) -> None:  # noqa: F811
    crieur = client.crieur  # type: ignore[attr-defined]
    alert = await add_item_alert(crieur, tipi_item(), title="A4 : voies bloquées")
    response = await client.get(f"/alertes/{alert.id}/carte.png")
    assert response.status == 200 and response.content_type == "image/png"
    image = Image.open(io.BytesIO(await response.read()))
    assert image.size == (WIDTH, HEIGHT)
    assert _count(image.crop((0, 0, 620, HEIGHT)), tuple(int(COLOURS["jaune"][i : i + 2], 16) for i in (1, 3, 5))) > 50
    again = await client.get(f"/alertes/{alert.id}/carte.png", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    html = await (await client.get(f"/alertes/{alert.id}")).text()
    assert (
        '<meta property="og:image:alt" content="Alerte « A4 : voies bloquées », sévérité modérée. '
        'Carte de Loir-et-Cher : Voies fermées : A 4.">'
    ) in html
    pending = await crieur.store.add_alert(_alert(None, None, title="À valider", status=AlertStatus.PENDING_APPROVAL))
    assert (await client.get(f"/alertes/{pending.id}/carte.png")).status == 404
