"""Atom feeds parse with feedparser; CAP 1.2 messages validate against the CAP 1.2 schema and chain
Update/Cancel messages to the alert they replace through `references`."""

from __future__ import annotations

import pathlib

import feedparser
import pytest
from lxml import etree

from alerts.domain import AlertStatus, MsgType, Severity
from tests.test_web_support import DATA, Web, web_env  # noqa: F401  (fixture)

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
SAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


@pytest.fixture(scope="module")
def cap_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(DATA / "CAP-v1.2.xsd")))


async def _cap(web: Web, alert_id: int) -> etree._Element:
    response = await web.client.get(f"/alertes/{alert_id}.cap.xml")
    assert response.status == 200
    assert response.content_type == "application/cap+xml"
    return etree.fromstring(await response.read())


async def test_territory_atom_feed_parses_and_lists_only_its_alerts(web_env: Web) -> None:
    first = await web_env.add()
    await web_env.add(title="Verglas à Chartres", territories=("28",), hashtags=("#route28",))
    await web_env.add(title="En attente", status=AlertStatus.PENDING_APPROVAL)
    response = await web_env.client.get("/t/41/alertes.atom")
    assert response.status == 200
    assert response.content_type == "application/atom+xml"
    feed = feedparser.parse(await response.read())
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "Alertes routières — Loir-et-Cher"
    assert [e.title for e in feed.entries] == ["Neige : RD 957 coupée entre Blois et Vendôme"]
    entry = feed.entries[0]
    assert entry.id == f"http://127.0.0.1:8041/alertes/{first.id}"
    assert "RD 957, RN 10" in entry.summary
    assert any(link.type == "application/cap+xml" for link in entry.links)


async def test_global_atom_feed_has_every_territory(web_env: Web) -> None:
    await web_env.add()
    await web_env.add(title="Verglas à Chartres", territories=("28",), hashtags=("#route28",))
    feed = feedparser.parse(await (await web_env.client.get("/alertes.atom")).read())
    assert not feed.bozo
    assert {e.title for e in feed.entries} == {"Neige : RD 957 coupée entre Blois et Vendôme", "Verglas à Chartres"}


async def test_unknown_territory_feed_is_404(web_env: Web) -> None:
    assert (await web_env.client.get("/t/99/alertes.atom")).status == 404
    assert (await web_env.client.get("/t/99/alertes.cap.xml")).status == 404


async def test_cap_message_is_valid_cap_1_2(web_env: Web, cap_schema: etree.XMLSchema) -> None:
    alert = await web_env.add()
    root = await _cap(web_env, alert.id)
    assert cap_schema.validate(root), cap_schema.error_log
    assert root.findtext(f"{CAP}status") == "Actual"
    assert root.findtext(f"{CAP}scope") == "Public"
    assert root.findtext(f"{CAP}msgType") == "Alert"
    assert root.find(f"{CAP}references") is None
    info = root.find(f"{CAP}info")
    assert info.findtext(f"{CAP}language") == "fr-FR"
    assert info.findtext(f"{CAP}severity") == "Severe"
    area = info.find(f"{CAP}area")
    assert "Loir-et-Cher" in area.findtext(f"{CAP}areaDesc")
    geocodes = {(g.findtext(f"{CAP}valueName"), g.findtext(f"{CAP}value")) for g in area.findall(f"{CAP}geocode")}
    assert ("INSEE_DEPARTEMENT", "41") in geocodes and ("INSEE_COMMUNE", "41018") in geocodes


async def test_cap_update_and_cancel_reference_the_alert_they_replace(
    web_env: Web, cap_schema: etree.XMLSchema
) -> None:
    original = await web_env.add()
    await web_env.store.set_alert_status(original.id, AlertStatus.ENDED)
    update = await web_env.add(msg_type=MsgType.UPDATE, supersedes=original.id, text="La RD 957 est rouverte.")
    ending = await web_env.crieur.end_alert(update.id, by="test")
    roots = {a: await _cap(web_env, a) for a in (original.id, update.id, ending.id)}
    for root in roots.values():
        assert cap_schema.validate(root), cap_schema.error_log

    def triple(root: etree._Element) -> str:
        return ",".join(root.findtext(f"{CAP}{name}") for name in ("sender", "identifier", "sent"))

    assert roots[update.id].findtext(f"{CAP}msgType") == "Update"
    assert roots[update.id].findtext(f"{CAP}references") == triple(roots[original.id])
    assert roots[ending.id].findtext(f"{CAP}msgType") == "Cancel"
    assert roots[ending.id].findtext(f"{CAP}references") == triple(roots[update.id])
    assert len({triple(r) for r in roots.values()}) == 3


async def test_cap_keeps_the_source_items_urgency_and_certainty(web_env: Web, cap_schema: etree.XMLSchema) -> None:
    from alerts.domain import Certainty, Item, Urgency

    item = Item(
        source="meteo-france",
        external_id="FR041-neige",
        title="Vigilance orange neige-verglas",
        category="Met",
        event="Neige-verglas",
        urgency=Urgency.EXPECTED,
        certainty=Certainty.LIKELY,
        severity=Severity.SEVERE,
    )
    await web_env.store.ingest([item])
    alert = await web_env.add(item_key=item.key)
    root = await _cap(web_env, alert.id)
    assert cap_schema.validate(root), cap_schema.error_log
    info = root.find(f"{CAP}info")
    assert (info.findtext(f"{CAP}category"), info.findtext(f"{CAP}event")) == ("Met", "Neige-verglas")
    assert (info.findtext(f"{CAP}urgency"), info.findtext(f"{CAP}certainty")) == ("Expected", "Likely")


async def test_cap_of_unpublished_alert_is_404(web_env: Web) -> None:
    pending = await web_env.add(status=AlertStatus.PENDING_APPROVAL)
    assert (await web_env.client.get(f"/alertes/{pending.id}.cap.xml")).status == 404
    assert (await web_env.client.get("/alertes/999.cap.xml")).status == 404


async def test_cap_index_is_atom_linking_each_cap_message(web_env: Web, cap_schema: etree.XMLSchema) -> None:
    alerts = [await web_env.add(), await web_env.add(title="Verglas sur la RD 2152")]
    feed = feedparser.parse(await (await web_env.client.get("/t/41/alertes.cap.xml")).read())
    assert not feed.bozo
    links = [link.href for e in feed.entries for link in e.links if link.type == "application/cap+xml"]
    assert sorted(links) == sorted(f"http://127.0.0.1:8041/alertes/{a.id}.cap.xml" for a in alerts)
    for link in links:
        root = await _cap(web_env, int(link.rsplit("/", 1)[1].split(".")[0]))
        assert cap_schema.validate(root)


async def test_control_characters_and_markup_in_text_stay_valid_xml(web_env: Web, cap_schema: etree.XMLSchema) -> None:
    alert = await web_env.add(text="Route <fermée> & \x0bdéviée", title="A & B <c>")
    root = await _cap(web_env, alert.id)
    assert cap_schema.validate(root)
    assert root.find(f"{CAP}info").findtext(f"{CAP}headline") == "A & B <c>"


def test_schema_rejects_what_cap_1_2_forbids(cap_schema: etree.XMLSchema) -> None:
    """The schema itself: wrong order, a bad enumeration and a UTC 'Z' time are all refused."""
    good = (DATA / "cap-sample-meteo.xml").read_bytes()
    assert cap_schema.validate(etree.fromstring(good)), cap_schema.error_log
    for broken in (
        good.replace(b"<scope>Public</scope>", b"<scope>Everyone</scope>"),
        good.replace(b"+01:00</sent>", b"Z</sent>"),
        good.replace(
            b"<status>Actual</status><msgType>Alert</msgType>", b"<msgType>Alert</msgType><status>Actual</status>"
        ),
    ):
        assert broken != good
        assert not cap_schema.validate(etree.fromstring(broken))


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="no shared samples on this machine")
def test_published_cap_samples_validate(cap_schema: etree.XMLSchema) -> None:
    checked = 0
    for path in sorted(SAMPLES.rglob("*.xml")):
        try:
            root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
        except etree.XMLSyntaxError:
            continue
        if root.tag == f"{CAP}alert":
            assert cap_schema.validate(root), f"{path.name}: {cap_schema.error_log}"
            checked += 1
    if not checked:
        pytest.skip("no CAP 1.2 alert among the samples")
