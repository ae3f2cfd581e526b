"""The server-drawn map: outlines read from a geo folder (../shared/geo, IGN Admin Express via france-geojson,
read in place), each alert placed from its item's own geometry (a real DATEX II record's coordinates, CAP
polygons and circles, commune INSEE codes, a département's vigilance), coloured by severity, with a text
alternative listing the same roads and places, on /t/41 and on each alert's page."""

from __future__ import annotations

import json
import pathlib
import re
import xml.etree.ElementTree as ET
from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from shapely.geometry import LineString, MultiLineString, Point

from alerts.config import load_config
from alerts.domain import Alert, AlertStatus, Area, Item, Severity
from alerts.geo import Atlas, GeoError, datex_shape, locate
from alerts.ingest import SourceSpec, datex2, vigilance
from alerts.web import make_app
from alerts.web.map import build_scene, classify, mark_for, to_svg
from rules.yamlcheck import ValidationFailed
from tests.test_web_support import make_crieur

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GEO = SHARED / "geo"
DATEX = SHARED / "samples" / "datex2"
TIPI = DATEX / "bisonfute-tipi-v2-situation-vehicleobstruction-fr.xml"
DIALOG = DATEX / "dialog-v3-traffic-regulation-fr.xml"
VIGILANCE = ROOT / "tests" / "data" / "ingest" / "vigilance_encours.json"


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    assert GEO.is_dir(), f"{GEO} is missing: the map tests read the shared outlines in place"
    return Atlas.load(GEO)


def tipi_item() -> Item:
    [item] = datex2.parse(SourceSpec("tipi", "datex2", "file:unused"), TIPI.read_bytes())
    return item


def dialog_item() -> Item:
    """DiaLog's arrêté for Maisse (Essonne): lorries over 7.5 t may not cross the village, on named streets."""
    items = datex2.parse(SourceSpec("dialog", "datex2", "file:unused"), DIALOG.read_bytes())
    return next(i for i in items if "MAISSE" in i.title)


def orange_vigilance() -> Item:
    items = vigilance.parse(SourceSpec("vigilance", "vigilance", "file:unused"), VIGILANCE.read_bytes())
    return next(i for i in items if i.attributes.get("colour") == "orange" and any(a.code == "41" for a in i.areas))


# ----------------------------------------------------------------------------------------- outlines


def test_atlas_reads_the_shared_outlines(atlas: Atlas) -> None:
    loir = atlas.departement("41")
    assert loir.name == "Loir-et-Cher"
    minx, miny, maxx, maxy = loir.shape.bounds
    assert 0.5 < minx < 0.7 and 47.1 < miny < 47.3 and 2.1 < maxx < 2.4 and 48.0 < maxy < 48.2
    assert atlas.commune("41018").name == "Blois" and atlas.commune("28085").name == "Chartres"
    assert len(atlas.communes_of("41")) > 250 and len(atlas.communes_of("28")) > 350
    assert atlas.departement("75").name == "Paris"  # from the simplified all-France file
    assert atlas.area(Area("EMMA_ID", "FR041")) is loir
    assert atlas.commune("41018").shape.within(loir.shape.buffer(0.01))


def test_bad_outline_files_name_the_file_and_feature(tmp_path: pathlib.Path) -> None:
    with pytest.raises(GeoError, match="does not exist"):
        Atlas.load(tmp_path / "absent")
    with pytest.raises(GeoError, match="no .geojson"):
        Atlas.load(tmp_path)
    (tmp_path / "communes-41.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "Blois"},
                        "geometry": {"type": "Point", "coordinates": [1, 47]},
                    }
                ],
            }
        )
    )
    with pytest.raises(GeoError, match=r"communes-41.geojson: feature 0: property 'code' 'BLOIS'"):
        Atlas.load(tmp_path)
    (tmp_path / "communes-41.geojson").write_text("{not json")
    with pytest.raises(GeoError, match="communes-41.geojson: not readable GeoJSON"):
        Atlas.load(tmp_path)


# ---------------------------------------------------------------------------------- where items lie


def test_a_real_datex_record_is_placed_by_its_own_coordinates(atlas: Atlas) -> None:
    item = tipi_item()
    located = locate(item, atlas)
    assert located is not None and located.exact
    assert located.shape.equals(Point(2.3988867, 48.821583))
    alert = Alert(item.title, item.text, ("41",), (), (), severity=item.severity)
    assert classify(alert, item) == ("voies", "jaune")  # impact lanesBlocked, overall severity medium


def test_dialog_regulation_lines_are_read_from_their_geojson_extension(atlas: Atlas) -> None:
    root = ET.parse(DIALOG).getroot()
    order = next(e for e in root.iter() if e.tag.endswith("}trafficRegulationOrder"))
    found = datex_shape(ET.tostring(order, encoding="unicode"))
    assert isinstance(found, MultiLineString)
    assert found.within(atlas.departement("91").shape)  # Maisse, in Essonne
    assert found.length < 0.1  # the streets of one village, not a stray coordinate


def test_gml_and_tpeg_linear_locations() -> None:
    v3 = (
        '<loc xmlns:l="http://datex2.eu/schema/3/locationReferencing"><l:gmlLineString><l:posList>'
        "47.59 1.33 47.79 1.07</l:posList></l:gmlLineString></loc>"
    )
    assert datex_shape(v3).equals(LineString([(1.33, 47.59), (1.07, 47.79)]))
    tpeg = (
        "<r><tpegLinearLocation><from><pointCoordinates><latitude>47.5</latitude><longitude>1.3</longitude>"
        "</pointCoordinates></from><to><pointCoordinates><latitude>47.7</latitude><longitude>1.1</longitude>"
        "</pointCoordinates></to></tpegLinearLocation></r>"
    )
    assert datex_shape(tpeg).equals(LineString([(1.3, 47.5), (1.1, 47.7)]))
    assert datex_shape("<r><latitude>95</latitude><longitude>1</longitude></r>") is None
    assert datex_shape("<r>not closed") is None


def test_cap_shapes_communes_and_departements(atlas: Atlas) -> None:
    polygon = {"type": "Polygon", "coordinates": [[[1.2, 47.5], [1.4, 47.5], [1.4, 47.7], [1.2, 47.5]]]}
    assert locate(Item("cap", "1", geometry=polygon), atlas).shape.bounds == (1.2, 47.5, 1.4, 47.7)
    circle = locate(Item("cap", "2", geometry={"type": "Point", "coordinates": [1.33, 47.59], "radius_km": 10}), atlas)
    minx, miny, maxx, maxy = circle.shape.bounds
    assert abs((maxy - miny) * 111.32 - 20) < 0.5 and maxx - minx > maxy - miny  # a disc, wider in degrees
    blois = locate(Item("rss", "3", areas=(Area("departement", "41"), Area("commune", "41018"))), atlas)
    assert not blois.exact and blois.places == ("Blois",) and blois.shape.equals(atlas.commune("41018").shape)
    whole = locate(orange_vigilance(), atlas)
    assert whole.places == ("Loir-et-Cher",) and whole.shape.equals(atlas.departement("41").shape)
    # an alert written by a CM has no item: its own areas place it
    assert locate(None, atlas, (Area("commune", "41269"),)).places == ("Vendôme",)
    assert locate(Item("rss", "4"), atlas) is None


# -------------------------------------------------------------------------------------------- SVG


def _alert(item: Item | None, id_: int, **fields) -> Alert:
    values = dict(
        title=item.title if item else "",
        text=item.text if item else "",
        territories=("41",),
        hashtags=("#route41",),
        channels=(),
        severity=item.severity if item else Severity.SEVERE,
        roads=item.roads if item else (),
        id=id_,
    )
    values.update(fields)
    return Alert(**values)


def test_svg_draws_each_mark_with_presentation_attributes(atlas: Atlas) -> None:
    tipi, vig = tipi_item(), orange_vigilance()
    closed = _alert(
        None, 3, title="RD 957 fermée à Vendôme", areas=(Area("commune", "41269"),), severity=Severity.EXTREME
    )
    far = _alert(Item("x", "far", geometry={"type": "Point", "coordinates": [7.75, 48.58]}), 4, title="Strasbourg")
    marks = [
        mark_for(_alert(tipi, 1), tipi, atlas, {}),
        mark_for(_alert(vig, 2), vig, atlas, {}),
        mark_for(closed, None, atlas, {"41269": "Vendôme"}),
        mark_for(far, far and None, atlas, {}),
    ]
    scene = build_scene(atlas, "41", "Loir-et-Cher", marks, labels=["Blois", "Vendôme"])
    svg = to_svg(scene, "carte")
    assert [m.drawn for m in scene.marks] == [True, True, True, False]  # no place for Strasbourg's: listed only
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" id="carte"')
    assert 'role="img" aria-labelledby="carte-titre carte-desc"' in svg
    assert '<title id="carte-titre">Carte des alertes en cours — Loir-et-Cher</title>' in svg
    assert "class=" not in svg.replace('class="map"', "")  # no CSS: it reads the same with styles off
    assert svg.count('fill="#e8710a" fill-rule="evenodd" fill-opacity="0.45"') == 1  # the orange vigilance
    assert "<title>Vigilance orange — Vigilance orange neige-verglas (41) (Loir-et-Cher)</title>" in svg
    assert "<circle cx=" in svg and 'fill="#f2c200"' in svg  # the A4 obstruction, moderate: yellow
    assert "<title>Voies fermées — " in svg and "(A 4)</title>" in svg
    assert 'fill="#c8102e"' in svg  # Vendôme's closure, extreme: red
    assert ">Blois</text>" in svg and ">Eure-et-Loir</text>" in svg  # a listed commune, a neighbour
    assert "IGN Admin Express" in svg and "Licence Ouverte" in svg
    ET.fromstring(svg)  # well-formed


# --------------------------------------------------------------------------------------------- pages


@pytest.fixture
async def client(tmp_path: pathlib.Path, db_url: str) -> AsyncIterator[TestClient]:
    crieur = await make_crieur(tmp_path, database=db_url, geo=GEO)
    client = TestClient(TestServer(make_app(crieur)))
    await client.start_server()
    client.crieur = crieur  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        await client.close()
        await crieur.store.close()


async def add_item_alert(crieur, item: Item, **fields) -> Alert:
    await crieur.store.ingest([item])
    alert = _alert(item, None, item_key=item.key, **fields)
    alert.id = None
    return await crieur.store.add_alert(alert)


async def test_territory_page_shows_the_map_and_its_text_alternative(client: TestClient) -> None:
    crieur = client.crieur  # type: ignore[attr-defined]
    tipi = await add_item_alert(crieur, tipi_item(), title="A4 : voies bloquées à Charenton-le-Pont")
    await add_item_alert(crieur, orange_vigilance())
    await crieur.store.add_alert(_alert(None, None, title="Sans lieu", areas=(), roads=()))
    html = await (await client.get("/t/41")).text()
    section = re.search(r'<section class="map-section".*?</section>', html, re.S).group(0)
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="carte"' in section
    assert (
        f'<strong>Voies fermées</strong> — <a href="/alertes/{tipi.id}">A4 : voies bloquées à Charenton-le-Pont</a> : A 4'
        in section
    )
    assert "<strong>Vigilance orange</strong>" in section and ": Loir-et-Cher" in section
    assert "Hors de la carte ou sans localisation précise" in section and "Sans lieu" in section
    assert "IGN Admin Express (via france-geojson), Licence Ouverte" in section
    assert html.index("map-section") < html.index('id="alertes-titre"')  # seen before read
    assert f'href="/alertes/{tipi.id}"' in html


async def test_alert_page_has_its_map_and_open_graph_card(client: TestClient) -> None:
    crieur = client.crieur  # type: ignore[attr-defined]
    alert = await add_item_alert(crieur, tipi_item(), title="A4 : voies bloquées")
    response = await client.get(f"/alertes/{alert.id}")
    assert response.status == 200
    html = await response.text()
    assert '<h1 id="alerte-titre">A4 : voies bloquées</h1>' in html
    assert f'id="carte-{alert.id}"' in html and "<strong>Voies fermées</strong>" in html
    assert f'<meta property="og:image" content="http://127.0.0.1:8041/alertes/{alert.id}/carte.png">' in html
    assert '<meta property="og:image:alt" content="Alerte « A4 : voies bloquées », sévérité modérée.' in html
    pending = await crieur.store.add_alert(_alert(None, None, title="À valider", status=AlertStatus.PENDING_APPROVAL))
    assert (await client.get(f"/alertes/{pending.id}")).status == 404
    assert (await client.get("/alertes/999999")).status == 404


async def test_without_outlines_there_is_no_map(tmp_path: pathlib.Path) -> None:
    crieur = await make_crieur(tmp_path)
    client = TestClient(TestServer(make_app(crieur)))
    await client.start_server()
    try:
        await crieur.store.add_alert(_alert(None, None, title="Neige", areas=(Area("commune", "41018"),)))
        html = await (await client.get("/t/41")).text()
        assert "map-section" not in html and "Neige" in html
    finally:
        await client.close()
        await crieur.store.close()


def test_geo_setting(tmp_path: pathlib.Path) -> None:
    (tmp_path / "crieur.yaml").write_text(f"service:\n  geo: {GEO}\n", encoding="utf-8")
    assert load_config(tmp_path / "crieur.yaml").geo == GEO
    (tmp_path / "crieur.yaml").write_text("service:\n  geo: cartes\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="service.geo: cartes does not exist"):
        load_config(tmp_path / "crieur.yaml")


def test_a_few_streets_get_a_marker_too(atlas: Atlas) -> None:
    """DiaLog's arrêté in Maisse covers a few streets: at département scale a dashed line of a few pixels,
    so a marker shows where it is."""
    root = ET.parse(DIALOG).getroot()
    order = next(e for e in root.iter() if e.tag.endswith("}trafficRegulationOrder"))
    item = Item(
        "dialog",
        "maisse",
        raw=ET.tostring(order, encoding="unicode"),
        event="restriction-poids-lourds",
        severity=Severity.MODERATE,
    )
    mark = mark_for(_alert(item, 9, title="Maisse : poids lourds interdits"), item, atlas, {})
    assert mark.kind == "restriction" and mark.label == "Circulation restreinte"
    scene = build_scene(atlas, "41", "Loir-et-Cher", [mark])
    kinds = [s.kind for s in scene.shapes if s.title.startswith("Circulation restreinte")]
    assert kinds == ["line", "point"]
    svg = to_svg(scene)
    assert 'stroke-dasharray="10 6"' in svg and "<circle" in svg
