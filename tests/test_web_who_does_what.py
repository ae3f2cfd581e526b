"""« Qui fait quoi ? »: the public page generated from the example authorities.yaml — every kind of question
with who decides, their site and feed, and the latest current item they published (the same choice as the
automatic answers), per territory; linked from the public pages."""

from __future__ import annotations

import pathlib
import re
from datetime import datetime, timedelta, timezone

from alerts.domain import Item, MsgType
from alerts.ingest import SourceSpec
from rules.competence import Directory
from tests.test_web_support import Web, web_env  # noqa: F401  (fixture)

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "loir-et-cher" / "authorities.yaml"
NOW = datetime.now(timezone.utc)


def _section(html: str, topic_id: str) -> str:
    found = re.search(rf'<section class="competence" aria-labelledby="sujet-{topic_id}">(.*?)</section>', html, re.S)
    assert found, f"no section for {topic_id}"
    return found.group(1)


async def _with_directory(web_env: Web) -> None:
    web_env.crieur.directory = Directory.load(EXAMPLE)
    web_env.crieur.config.sources = [
        SourceSpec("prefecture-41", "rss", "https://www.prefecture-41.example/rss.xml"),
        SourceSpec("remi", "rss", "file:feeds/remi.xml"),  # a local file is not a public feed: not shown
    ]
    await web_env.store.ingest(
        [
            Item(
                "prefecture-41",
                "arrete-pl-1",
                title="Arrêté : interdiction de circulation des poids lourds",
                link="https://www.prefecture-41.example/arrete-pl",
                sent=NOW - timedelta(hours=2),
            ),
            Item("prefecture-41", "arrete-pl-0", title="Ancien arrêté poids lourds", sent=NOW - timedelta(days=1)),
            Item(
                "prefecture-41",
                "vieux",
                title="Poids lourds : levée",
                sent=NOW - timedelta(hours=1),
                msg_type=MsgType.CANCEL,
            ),
            Item("remi", "scol-1", title="Transports scolaires suspendus demain matin", sent=NOW - timedelta(hours=3)),
        ]
    )


async def test_every_kind_of_question_has_its_authority(web_env: Web) -> None:
    await _with_directory(web_env)
    response = await web_env.client.get("/qui-fait-quoi")
    assert response.status == 200
    html = await response.text()
    headings = re.findall(r'<h2 id="sujet-([a-z-]+)">', html)
    for topic in (
        "poids-lourds",
        "routes-nationales",
        "autoroutes",
        "routes-departementales",
        "rues",
        "transport-scolaire",
        "transports-regionaux",
    ):
        assert topic in headings
    hgv = _section(html, "poids-lourds")
    assert "La Préfecture de Loir-et-Cher" in hgv and "La Préfecture d&#39;Eure-et-Loir" in hgv
    assert 'href="https://www.prefecture-41.example/"' in hgv  # its site
    assert 'href="https://www.prefecture-41.example/rss.xml"' in hgv  # its feed
    # what it published last, withdrawn items aside (the same choice as the automatic answers)
    assert (
        'href="https://www.prefecture-41.example/arrete-pl" rel="noopener">Arrêté : interdiction de circulation' in hgv
    )
    assert "Ancien arrêté" not in hgv and "levée" not in hgv
    assert "Rien de publié en ce moment sur ce sujet." in hgv  # the préfecture of 28 has nothing
    # school coaches: the Région since the loi NOTRe, not a Département
    school = _section(html, "transport-scolaire")
    assert "La Région Centre-Val de Loire (réseau Rémi)" in school
    assert "Conseil départemental" not in school
    assert "Transports scolaires suspendus demain matin" in school
    assert "file:feeds" not in html
    motorways = _section(html, "autoroutes")
    assert "Vinci Autoroutes" in motorways and "A10, A11, A71, A85" in motorways


async def test_territory_page_keeps_its_authorities(web_env: Web) -> None:
    await _with_directory(web_env)
    html = await (await web_env.client.get("/t/28/qui-fait-quoi")).text()
    assert "La Préfecture d&#39;Eure-et-Loir" in _section(html, "poids-lourds")
    assert "Loir-et-Cher</strong>" not in html
    assert "la Ville de Blois" not in html.lower().replace("<strong>", "")
    assert (await web_env.client.get("/t/99/qui-fait-quoi")).status == 404


async def test_without_a_directory_the_page_says_so(web_env: Web) -> None:
    html = await (await web_env.client.get("/qui-fait-quoi")).text()
    assert "L'annuaire des compétences n'est pas configuré." in html


async def test_public_pages_link_to_it(web_env: Web) -> None:
    assert 'href="/t/41/qui-fait-quoi"' in await (await web_env.client.get("/t/41")).text()
    assert 'href="/qui-fait-quoi"' in await (await web_env.client.get("/")).text()
