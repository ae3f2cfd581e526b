"""Origin, everywhere: an alert relaying another authority's publication names that authority on the
public page, in the Atom author, the CAP senderName, the JSON API, the wall, and the social and SMS
texts; the département's own messages name the département."""

from __future__ import annotations

import pathlib
import re

import feedparser
from lxml import etree

from alerts.domain import Item
from alerts.ingest import SourceSpec
from alerts.service import name_source_authorities
from channels.base import Limits
from rules.competence import Directory
from rules.engine import Decision
from rules.templates import Templates
from tests.test_web_support import Web, snow_alert, web_env  # noqa: F401  (fixture)

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "loir-et-cher"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
PREFECTURE = "Préfecture de Loir-et-Cher"
OWN = "Département de Loir-et-Cher"


def test_a_source_authority_id_or_feed_names_the_authority():
    directory = Directory.load(EXAMPLE / "authorities.yaml")
    by_id = SourceSpec(name="flux-prefecture", kind="rss", url="file:x", authority="prefecture-41")
    by_feed = SourceSpec(name="prefecture-41", kind="rss", url="file:x")
    written = SourceSpec(name="autre", kind="rss", url="file:x", authority="Mairie de Blois")
    unknown = SourceSpec(name="inconnu", kind="rss", url="file:x")
    name_source_authorities([by_id, by_feed, written, unknown], directory)
    assert by_id.authority == PREFECTURE  # "la Préfecture de Loir-et-Cher" without its article
    assert by_feed.authority == PREFECTURE
    assert written.authority == "Mairie de Blois" and unknown.authority == ""


def test_rules_carry_the_items_authority_into_the_alert():
    item = Item(
        source="prefecture-41",
        external_id="pl-1",
        title="Interdiction des poids lourds sur la RN 10",
        authority=PREFECTURE,
    )
    decision = Decision(
        rule="pl", territories=("41",), hashtags=("#route41",), channels=("sms",), templates={"sms": "alerte-sms"}
    )
    assert decision.to_alert(item).authority == PREFECTURE


def test_social_and_sms_texts_name_the_authority():
    templates = Templates(EXAMPLE / "templates")
    alert = snow_alert(authority=PREFECTURE)
    social = templates.render(alert, "mastodon", Limits(counting="chars", max_length=500), "alerte").text
    assert f"Source : {PREFECTURE}" in social.splitlines()
    sms = templates.render(alert, "sms", Limits(counting="sms", max_segments=1), "alerte-sms", gsm7=True).text
    assert sms.endswith(f"(source : {PREFECTURE}) JD")  # the text is cut, never the authority
    ending = templates.render(alert, "x", Limits(counting="x", max_length=280), "fin-alerte").text
    assert f"Source : {PREFECTURE}" in ending
    own = templates.render(snow_alert(), "mastodon", Limits(counting="chars", max_length=500), "alerte").text
    assert "Source" not in own


async def test_page_feeds_api_and_wall_name_the_authority(web_env: Web) -> None:
    relayed = await web_env.add(title="Poids lourds interdits sur la RN 10", authority=PREFECTURE)
    own = await web_env.add(title="Salage en cours sur la RD 957")
    assert (await web_env.store.alert(relayed.id)).authority == PREFECTURE  # stored and read back

    page = await (await web_env.client.get("/t/41")).text()
    sources = re.findall(r'<p class="source">Source : ([^<]+)</p>', page)
    assert sorted(sources) == sorted([PREFECTURE, OWN])

    feed = feedparser.parse(await (await web_env.client.get("/t/41/alertes.atom")).read())
    authors = {e.title: e.author for e in feed.entries}
    assert authors == {"Poids lourds interdits sur la RN 10": PREFECTURE, "Salage en cours sur la RD 957": OWN}

    cap = etree.fromstring(await (await web_env.client.get(f"/alertes/{relayed.id}.cap.xml")).read())
    assert cap.find(f"{CAP}info").findtext(f"{CAP}senderName") == f"{PREFECTURE}, relayé par {OWN}"
    own_cap = etree.fromstring(await (await web_env.client.get(f"/alertes/{own.id}.cap.xml")).read())
    assert own_cap.find(f"{CAP}info").findtext(f"{CAP}senderName") == OWN

    api = await (await web_env.client.get("/api/v1/alerts?territory=41")).json()
    by_title = {a["title"]: a for a in api["alerts"]}
    assert by_title["Poids lourds interdits sur la RN 10"]["authority"] == PREFECTURE
    assert by_title["Poids lourds interdits sur la RN 10"]["relayed"] is True
    assert by_title["Salage en cours sur la RD 957"]["authority"] == OWN
    assert by_title["Salage en cours sur la RD 957"]["relayed"] is False

    from alerts.web.wall import Wall

    posts = await Wall(web_env.crieur).posts("#route41", [relayed, own], author=OWN)
    assert {p.author for p in posts if p.ours} == {f"{PREFECTURE} (relayé par {OWN})", OWN}

    ending = await web_env.crieur.end_alert(relayed.id, by="camille")  # FIN D'ALERTE keeps the origin
    assert ending.authority == PREFECTURE


def test_a_yaml_test_item_may_name_its_authority():
    from rules.itemfile import item_from_dict

    item = item_from_dict({"source": "prefecture-41", "title": "Poids lourds", "authority": PREFECTURE})
    assert item.authority == PREFECTURE
