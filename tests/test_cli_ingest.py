"""`crieur ingest FILE|URL` shows what a real document becomes (its items, then what the rules make of
each); `crieur rules test` accepts a real CAP/Atom/DATEX/RSS file as well as a YAML item."""

from __future__ import annotations

import json
import pathlib

import pytest
from aiohttp import web

from alerts.cli import main
from alerts.ingest.document import guess_kind
from tests.test_cli import example, keep_logging  # noqa: F401  (fixtures)

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"
DATA = ROOT / "tests" / "data" / "ingest"
FOLDER_KINDS = {
    "cap": "cap",
    "meteoalarm": "cap",
    "datex2": "datex2",
    "rss": "rss",
    "roadstate": "geojson",
    "vigilance": "vigilance",
}


def feed_samples() -> list[pathlib.Path]:
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.parent.name in FOLDER_KINDS)


def test_every_real_sample_is_recognised_from_its_content():
    files = feed_samples()
    assert len(files) >= 25, f"shared samples missing in {SAMPLES}"
    wrong = {
        p.name: guess_kind(p.read_bytes(), p.name)
        for p in files
        if guess_kind(p.read_bytes(), p.name) != FOLDER_KINDS[p.parent.name]
    }
    assert wrong == {}
    for other in (
        "schemas/CAP-v1.2.xsd",
        "schemas/atom-rfc4287.rnc",
        "providers/mastodon/mastodon-status-edited-anonymised.json",
    ):
        assert guess_kind((SAMPLES / other).read_bytes(), other) is None


def test_ingest_a_real_dialog_document(example, capsys):
    path = SAMPLES / "datex2" / "dialog-v3-traffic-regulation-fr.xml"
    assert main(["ingest", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dialog-v3-traffic-regulation-fr.xml: datex2, 2 item(s)")
    assert "== 018a45df-58c3-740c-b712-37d3d2ca25f8 — Alert, 24 juillet 2026 à 16 h 40 (fr)" in out
    assert "   Source : Maisse" in out and "   Source : Art-sur-Meurthe" in out
    assert "Texte : Accès interdit aux poids lourds (seuil de poids : 7,5 t)" in out
    assert out.count("no rule fires: nothing would be published") == 2  # Essonne and Meurthe-et-Moselle


def test_ingest_shows_what_the_rules_make_of_each_item(example, capsys):
    assert main(["ingest", str(DATA / "cap_41_alert.xml")]) == 0
    out = capsys.readouterr().out
    assert "   Source : Météo-France" in out
    assert "territories 41" in out and "rule neige-hors-episode fires" in out
    assert "    | Source : Météo-France" in out  # in the rendered social message
    assert "  [x] template alerte" in out


def test_ingest_json_and_given_authority(example, capsys):
    path = SAMPLES / "rss" / "reporterre-spip-rss2-fr-numeric-entities-dcdate.xml"
    assert main(["ingest", str(path), "--json", "--authority", "Préfecture de Loir-et-Cher"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["authority"] == "Préfecture de Loir-et-Cher" and item["sent"] == "2025-02-26T16:42:45+00:00"


def test_ingest_refuses_what_it_cannot_read_naming_the_file(example, capsys):
    assert main(["ingest", str(SAMPLES / "schemas" / "atom-rfc4287.rnc")]) == 2
    err = capsys.readouterr().err
    assert "atom-rfc4287.rnc" in err and "format not recognised (give --kind" in err
    assert main(["ingest", str(SAMPLES / "schemas" / "CAP-v1.2.xsd"), "--kind", "cap"]) == 2
    assert "found <schema>" in capsys.readouterr().err


async def _serve(app: web.Application):
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def test_ingest_a_url_goes_through_the_ssrf_guard(example, capsys):
    import asyncio
    import threading

    body = (SAMPLES / "vigilance" / "meteofrance-app-warning-full-dept13.json").read_bytes()

    async def vigilance(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/warning", vigilance)
    loop = asyncio.new_event_loop()
    runner, port = loop.run_until_complete(_serve(app))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/warning"
        assert main(["ingest", url, "--no-rules"]) == 2  # loopback is not a public address
        assert "127.0.0.1" in capsys.readouterr().err
        config = example / "crieur.yaml"
        config.write_text(config.read_text(encoding="utf-8") + "\nsecurity:\n  allow: [127.0.0.1]\n", encoding="utf-8")
        assert main(["ingest", url, "--no-rules"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("warning: vigilance, 5 item(s)")
        assert "Titre : Fin de vigilance neige-verglas (13)" in out and "Source : Météo-France" in out
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_rules_test_accepts_a_real_document(example, capsys):
    meteoalarm = SAMPLES / "meteoalarm" / "meteoalarm-legacy-atom-france-2022-12-08.xml"
    assert main(["rules", "test", str(example / "rules.yaml"), str(meteoalarm)]) == 0
    out = capsys.readouterr().out
    assert out.count("item meteoalarm-legacy-atom-france-2022-12-08.xml:") == 2
    assert main(["rules", "test", str(example / "rules.yaml"), str(DATA / "cap_41_alert.xml")]) == 0
    assert "rule neige-hors-episode fires" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["does-not-exist.xml"])
def test_rules_test_names_an_unreadable_document(example, capsys, name):
    assert main(["rules", "test", str(example / "rules.yaml"), str(example / name)]) == 2
    assert name in capsys.readouterr().out
