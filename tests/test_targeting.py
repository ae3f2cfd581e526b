"""Targeting by place, on both backends: citizens subscribe to a whole département, to communes or to roads;
an alert naming communes, roads or a geometry reaches the subscribers of those places plus those of the whole
département, and says how many people and why. Commune outlines are read in place from ../shared/geo."""

from __future__ import annotations

import pathlib
from types import SimpleNamespace

import pytest

from alerts.citizens import Citizens
from alerts.config import ServiceConfig
from alerts.domain import Alert, Area, Road, Severity
from alerts.fanout import Fanout, Text
from alerts.keywords import PlaceRequest, parse_place_request
from alerts.places import Gazetteer, commune_key, gazetteer_for, road_key, targets
from channels.base import Channel, Limits, Message, Receipt

GEO = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "geo"
VENDOME, ROMORANTIN, BLOIS = "41269", "41194", "41018"
NEAR_VENDOME = {"type": "Point", "coordinates": [1.0655, 47.7930]}  # the D957 at Vendôme's northern edge


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_folder(GEO)  # raises (the test fails) when the shared outlines are missing


class Sms(Channel):
    kind = "recorder"
    limits = Limits()
    per_recipient = True
    subscribers = True

    async def send(self, message: Message) -> Receipt:
        return Receipt("x")


def test_gazetteer_finds_communes_by_name_and_by_geometry(gazetteer):
    assert [c.code for c in gazetteer.find("VENDOME")] == [VENDOME]
    assert [c.code for c in gazetteer.find("romorantin lanthenay", "41")] == [ROMORANTIN]
    assert gazetteer.find("vendome", "28") == []
    assert VENDOME in gazetteer.touching(NEAR_VENDOME)
    assert ROMORANTIN not in gazetteer.touching(NEAR_VENDOME)
    around_romorantin = {
        "type": "Polygon",
        "coordinates": [[[1.70, 47.33], [1.78, 47.33], [1.78, 47.39], [1.70, 47.39], [1.70, 47.33]]],
    }
    touched = gazetteer.touching(around_romorantin)
    assert ROMORANTIN in touched and VENDOME not in touched


def test_gazetteer_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "communes-99.geojson"
    bad.write_text('{"features": [{"properties": {"nom": "Sans code"}, "geometry": null}]}')
    with pytest.raises(ValueError, match=r"communes-99.geojson: feature 0 lacks"):
        Gazetteer.from_folder(tmp_path)
    with pytest.raises(ValueError, match="no communes"):
        Gazetteer.from_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ROUTE41 BLOIS", PlaceRequest(("41",), (), "blois")),
        ("ABONNER D957", PlaceRequest((), ("D957",), "")),
        ("abonner rd 957 svp", PlaceRequest((), ("D957",), "")),
        ("INFO 41 Romorantin-Lanthenay D957", PlaceRequest(("41",), ("D957",), "romorantin lanthenay")),
        ("ROUTE41", None),
        ("STOP", None),
        ("La D957 est-elle fermée ?", None),
    ],
)
def test_place_requests_are_read_from_sms(text, expected):
    assert parse_place_request(text) == expected


async def subscribe_everyone(store) -> dict[str, str]:
    people = {
        "+33600000001": "41",  # the whole département
        "+33600000002": commune_key(VENDOME),
        "+33600000003": road_key("41", "D957"),
        "+33600000004": commune_key(ROMORANTIN),
        "+33600000005": road_key("28", "D957"),  # another D957, in Eure-et-Loir
        "+33600000006": commune_key(BLOIS),
        "+33600000007": "28",
    }
    for phone, key in people.items():
        await store.subscribe(phone, [key])
    await store.subscribe("+33600000008", [commune_key(VENDOME), road_key("41", "D957")])  # counted once
    return people


async def test_a_closure_on_the_d957_near_vendome_reaches_vendome_the_d957_and_the_whole_41(store, gazetteer):
    await subscribe_everyone(store)
    fanout = Fanout(store, {"sms": Sms("sms", {})}, lambda alert, ch: Text(alert.text), gazetteer=gazetteer)
    closure = await store.add_alert(
        Alert(
            title="D957 fermée",
            text="D957 fermée à Vendôme",
            territories=("41",),
            hashtags=(),
            channels=("sms",),
            severity=Severity.SEVERE,
            roads=(Road("D", "957"),),
            geometry=NEAR_VENDOME,
        )
    )
    assert closure.geometry == NEAR_VENDOME  # kept with the alert
    audience = await fanout.audience(closure)
    assert audience.total == 4
    assert dict(audience.reasons) == {"tout le 41": 1, "commune de Vendôme": 2, "route D957": 2}
    assert audience.describe() == "4 personnes : tout le 41 (1), commune de Vendôme (2), route D957 (2)"
    assert await fanout.plan(closure) == {"sms": 4}
    reached = {d.recipient for d in await store.deliveries(alert_id=closure.id, limit=100)}
    assert reached == {"+33600000001", "+33600000002", "+33600000003", "+33600000008"}


async def test_an_alert_naming_a_commune_reaches_it_and_the_whole_departement_only(store, gazetteer):
    await subscribe_everyone(store)
    alert = Alert(
        title="Verglas",
        text="Verglas à Romorantin",
        territories=("41",),
        hashtags=(),
        channels=("sms",),
        areas=(Area("commune", ROMORANTIN),),
    )
    assert [t.key for t in targets(alert, gazetteer)] == ["41", commune_key(ROMORANTIN)]
    audience = await store.audience(targets(alert, gazetteer))
    assert audience.total == 2 and dict(audience.reasons) == {"tout le 41": 1, "commune de Romorantin-Lanthenay": 1}


async def test_an_alert_for_the_whole_departement_reaches_every_subscriber_in_it(store, gazetteer):
    await subscribe_everyone(store)
    await store.opt_out("+33600000006")
    fanout = Fanout(store, {"sms": Sms("sms", {})}, lambda alert, ch: Text(alert.text), gazetteer=gazetteer)
    snow = await store.add_alert(
        Alert(title="Neige", text="Vigilance neige", territories=("41",), hashtags=(), channels=("sms",))
    )
    audience = await fanout.audience(snow)
    assert audience.total == 5 and dict(audience.reasons) == {"tout le 41": 5}
    await fanout.plan(snow)
    reached = {d.recipient for d in await store.deliveries(alert_id=snow.id, limit=100)}
    assert reached == {"+33600000001", "+33600000002", "+33600000003", "+33600000004", "+33600000008"}


async def test_sms_subscriptions_to_communes_and_roads(store, tmp_path):
    config = ServiceConfig(path=tmp_path / "c.yaml")
    config.geo = GEO
    host = SimpleNamespace(config=config, store=store, channels={}, directory=None, rules=None, metrics=None)
    desk = Citizens(host)
    desk.territories = lambda: [("41", "Loir-et-Cher", "#route41"), ("28", "Eure-et-Loir", "#route28")]

    reply = await desk.handle_sms("+33611111111", "ROUTE41 BLOIS")
    assert "vous recevrez les alertes pour commune de Blois (41), et celles qui concernent tout le" in reply
    assert "STOP" in reply
    assert await store.subscriptions("+33611111111") == [commune_key(BLOIS)]
    reply = await desk.handle_sms("+33611111112", "ABONNER 41 D957")
    assert "route D957 (41)" in reply
    assert await store.subscriptions("+33611111112") == [road_key("41", "D957")]
    reply = await desk.handle_sms("+33611111113", "ABONNER D957")  # two territories: which one?
    assert "Précisez le territoire" in reply and await store.subscriptions("+33611111113") == []
    reply = await desk.handle_sms("+33611111114", "ABONNER VENDOME D957")  # the commune says which
    assert "commune de Vendome (41)" in reply and "route D957 (41)" in reply
    assert await store.subscriptions("+33611111114") == [commune_key(VENDOME), road_key("41", "D957")]
    assert "déjà abonné" in await desk.handle_sms("+33611111114", "ABONNER VENDOME D957")


def test_the_geo_folder_is_a_service_setting(tmp_path):
    from alerts.config import load_config

    (tmp_path / "crieur.yaml").write_text("service:\n  geo: geo\n")
    with pytest.raises(Exception, match="service.geo: geo does not exist"):
        load_config(tmp_path / "crieur.yaml")
    assert gazetteer_for(None) is None


async def test_the_console_preview_says_whom_an_alert_reaches(tmp_path, db_url):
    """The real service, configured with the shared commune outlines: the compose preview counts every
    subscriber of the département (communes and roads included) and says why."""
    from alerts.config import load_config
    from alerts.service import Crieur
    from tests.test_service import config_text

    path = tmp_path / "crieur.yaml"
    path.write_text(config_text(tmp_path, db_url).replace("  workers: 0\n", f"  workers: 0\n  geo: {GEO}\n"))
    service = Crieur(load_config(path))
    await service.open()
    try:
        assert service.fanout.gazetteer is not None and VENDOME in service.fanout.gazetteer.communes
        await subscribe_everyone(service.store)
        [sms] = await service.preview("Neige\nVigilance neige sur tout le département", ["41"], ["sms"], "CA")
        assert sms["subscribers"] == 6
        assert sms["audience"] == "6 personnes : tout le 41 (6)"
    finally:
        await service.stop()
