"""One test per document in ../shared/samples (read in place), with field-level assertions: ids,
msgType, references, sent with its zone, the language chosen (French when offered), areas and the
départements they designate, roads, issuing authority, French title and text.

providers/ (Mastodon and Bluesky payloads, used by the channel tests) and schemas/ (CAP XSD, Atom RELAX
NG) are not feeds: their tests check that a CM pointing a source at them gets a clear refusal naming
the file. A missing samples folder fails every test here (no skip)."""

from __future__ import annotations

import pathlib
from datetime import datetime, timedelta, timezone

import pytest

from alerts.domain import Area, Certainty, MsgType, Road, Severity, Urgency
from alerts.ingest import ParseError, SourceSpec, parse
from alerts.ingest.datex2 import parse_at

SAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "samples"
UTC = timezone.utc
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))
FR_DEPS = "departement"


def sample(path: str) -> bytes:
    file = SAMPLES / path
    assert file.is_file(), f"shared sample missing: {file}"
    return file.read_bytes()


def read(path: str, kind: str, **options):
    return parse(SourceSpec(name=pathlib.Path(path).name, kind=kind, url="file:unused", options=options), sample(path))


def deps(item) -> list[str]:
    return [a.code for a in item.areas if a.kind == FR_DEPS]


def by_id(items):
    return {i.external_id: i for i in items}


# --------------------------------------------------------------------------------------------- CAP


def test_cap_meteofrance_update_with_references_french_info_and_nuts3():
    (item,) = read("cap/meteofrance-vigilance-avalanches-update-references-fr-en.xml", "cap")
    assert item.external_id == "2.49.0.0.250.0.FR.20221207060126.964028"
    assert item.msg_type is MsgType.UPDATE
    assert item.references == ("2.49.0.0.250.0.FR.20221206160108.315028",)
    assert item.sent == datetime(2022, 12, 7, 6, 1, 26, tzinfo=CET) and item.sent.utcoffset() == timedelta(hours=1)
    assert item.language == "fr-FR"  # fr-FR chosen over en-GB
    assert item.title == "Vigilance jaune avalanches"
    assert item.text.startswith("Des phenomenes habituels dans la region")
    assert item.authority == "Météo-France"  # senderName METEO-FRANCE
    assert item.areas[:2] == (Area("NUTS3", "FR821"), Area("departement", "04"))
    assert deps(item) == ["04", "05", "06", "38", "73", "74"]  # NUTS 2013 codes, FR718 = Haute-Savoie
    assert item.attributes["colour"] == "jaune" and item.attributes["phenomenon"] == "avalanches"
    assert item.severity is Severity.MODERATE and item.roads == ()


def test_cap_metoffice_english_only_with_emma_ids():
    (item,) = read("cap/metoffice-uk-yellow-ice-warning-snow-ice.xml", "cap")
    assert item.external_id == "2.49.0.0.826.0.GB_221207102835_a705d176.v1.0.SI"
    assert item.msg_type is MsgType.ALERT and item.references == ()
    assert item.sent == datetime(2022, 12, 7, 10, 28, 35, tzinfo=UTC)
    assert item.language == "en-GB" and item.title == "Some disruption is likely due to icy surfaces."
    assert item.authority == "UK Met Office"
    assert Area("EMMA_ID", "UK113") in item.areas and deps(item) == []  # not French: no département
    assert item.attributes["awareness_type"] == "2; Snow-Ice" and item.attributes["colour"] == "jaune"
    assert item.expires == datetime(2022, 12, 9, 12, 0, tzinfo=UTC)


def test_cap_environment_canada_update_allclear_french_block():
    (item,) = read("cap/envcanada-thunderstorm-update-allclear-en-fr.cap", "cap")
    assert item.external_id == "2.49.0.1.124.6bddbc91.2012"
    assert item.msg_type is MsgType.UPDATE
    assert item.references == ("2.49.0.1.124.a3f342a4.2012", "2.49.0.1.124.60f31a3a.2012")
    assert item.sent == datetime(2012, 5, 2, 23, 21, 4, tzinfo=UTC)
    assert item.language == "fr-CA" and item.title == "veille d'orages violents"
    assert item.text.startswith("C'est l'épreuve")
    assert item.authority == "Environnement Canada"  # the French block's senderName
    assert item.attributes["area_desc"].startswith("Windsor - Leamington - comté d'Essex")
    assert Area("layer:EC-MSC-SMC:1.0:CLC", "041420") in item.areas and deps(item) == []


def test_cap_environment_canada_naad_single_quoted_prolog():
    (item,) = read("cap/envcanada-naad-weather-en-fr-2019.xml", "cap")
    assert item.external_id == "urn:oid:2.49.0.1.124.3026064006.2019"
    assert item.msg_type is MsgType.ALERT and item.references == ()
    assert item.sent == datetime(2019, 7, 12, 17, 59, 29, tzinfo=UTC)
    assert item.language == "fr-CA" and item.title == "bulletin météorologique spécial en vigueur"
    assert "Environnement Canada" in item.text and item.authority == "Environnement Canada"
    assert item.geometry is not None and item.geometry["type"] in {"Polygon", "MultiPolygon"}


def test_cap_icelandic_no_french_block_keeps_the_first():
    (item,) = read("cap/icelandic-met-office-wind-is-en.cap", "cap")
    assert item.external_id == "is-IMO-2a4c2db8-07fd-4a0f-b372-9667280d46d1"
    assert item.sent == datetime(2021, 9, 10, 13, 30, 26, tzinfo=UTC)
    assert item.language == "is-IS" and item.title == "Hvöss suðaustanátt"
    assert item.authority == "IMO - Meteorologist on duty"
    assert item.areas == (Area("Spásvæði", "Höfuðborgarsvæðið"),)
    assert item.geometry["type"] == "Polygon" and item.severity is Severity.MODERATE


def test_cap_oasis_amber_alert_example():
    (item,) = read("cap/oasis-cap12-spec-amber-alert-example.xml", "cap")
    assert item.external_id == "KAR0-0306112239-SW" and item.msg_type is MsgType.ALERT
    assert item.sent == datetime(2003, 6, 11, 22, 39, tzinfo=timezone(timedelta(hours=-7)))
    assert item.language == "en-US" and item.title == "Amber Alert in Los Angeles County"
    assert item.authority == "Los Angeles Police Dept - LAPD"  # en-US block (no French one)
    assert item.areas == (Area("SAME", "006037"),)
    assert (item.severity, item.urgency, item.certainty) == (Severity.SEVERE, Urgency.IMMEDIATE, Certainty.LIKELY)


def test_cap_smhi_alerts_wrapper_holds_seventeen_alerts():
    items = read("cap/smhi-alerts-wrapper-alpine-snow-sv.cap", "cap")
    assert len(items) == 17 and len(by_id(items)) == 17
    first = items[0]
    assert first.external_id == "smhi-bpm-1552396920785" and first.msg_type is MsgType.ALERT
    assert first.sent == datetime(2019, 3, 12, 14, 51, 46, tzinfo=CET)
    assert first.language == "sv-SE" and first.title == "Västerbottens län,södra Lapplandsfjällen"
    assert first.text.startswith("När:Fram till onsdag kväll")
    assert all(i.authority == "SMHI, Swedish Meteorological and Hydrological Institute" for i in items)
    assert {i.event for i in items} >= {"alpine weather", "heavy snow SMHI-B"}


def test_cap_usgs_iso_8859_1_without_language_is_en_us():
    (item,) = read("cap/usgs-earthquake-iso-8859-1.cap", "cap")
    assert item.external_id == "USGS-earthquakes-usB000D5T4.3947362.7.20121014T225304.360Z.0"
    assert item.sent == datetime(2012, 10, 14, 22, 53, 4, tzinfo=UTC)
    assert item.title == "EQ 4.6 Usulután, Usulután, El Salvador - PRELIMINARY REPORT"  # Latin-1 decoded
    assert item.language == "en-US"  # no <language>: CAP's default, not French
    assert item.authority == "U.S. Geological Survey" and item.category == "Geo"


def test_cap_nws_atom_embedding_cap_1_1():
    (item,) = read("cap/nws-alerts-atom-with-embedded-cap11-2012.atom", "cap")
    assert item.external_id == "NOAA-NWS-ALERTS-MT20120830100700TFXFlashFloodWatchTFX20120830180000MT"
    assert item.sent == datetime(2012, 8, 30, 4, 7, tzinfo=timezone(timedelta(hours=-6)))
    assert item.language == "en-US" and item.title.startswith("Flash Flood Watch issued August 30")
    assert item.authority == "NWS GreatFalls (Central Montana)"
    assert item.areas == (Area("FIPS6", "030049"), Area("UGC", "MTZ014"))
    assert item.severity is Severity.SEVERE


def test_cap_dwd_zip_of_eight_language_alerts_reads_the_french_block():
    items = read("cap/dwd-cap-mul-8-languages-2023-06-23.zip", "cap")
    assert len(items) == 3
    update = by_id(items)["2.49.0.0.276.0.DWD.PVW.1687514160000.20999218-5d5e-4761-b271-6c243f695568.MUL"]
    assert update.msg_type is MsgType.UPDATE
    assert update.references == ("2.49.0.0.276.0.DWD.PVW.1687483260000.e335908e-7419-4d5f-8376-422c14b4f25c.MUL",)
    assert update.sent == datetime(2023, 6, 23, 11, 56, tzinfo=CEST)
    assert all(i.language == "fr" for i in items)  # of de-DE, en, fr, es, ar, ru, tr, pl
    assert update.title == "ALERTE officielle INTEMPÉRIES PRONONCÉES pour FORTES PLUIES"
    assert update.text.startswith("Il y a un risque de fortes pluies")
    assert all(i.authority == "Deutscher Wetterdienst" for i in items)
    assert any(a.kind == "WARNCELLID" for a in update.areas)
    assert all(len(a.code) <= 64 for i in items for a in i.areas)  # EXCLUDE_POLYGON coordinates are no code
    assert {i.msg_type for i in items} == {MsgType.UPDATE, MsgType.ALERT}


def test_cap_zip_bomb_is_refused_naming_the_source():
    spec = SourceSpec(name="dwd", kind="cap", url="file:unused", max_bytes=100_000)
    with pytest.raises(ParseError, match="source 'dwd'.*inflates to more than"):
        parse(spec, sample("cap/dwd-cap-mul-8-languages-2023-06-23.zip"))


# ---------------------------------------------------------------------------------------- MeteoAlarm


def test_meteoalarm_france_atom_entries_merge_per_warning_in_french():
    items = read("meteoalarm/meteoalarm-legacy-atom-france-2022-12-08.xml", "cap")
    assert [i.external_id for i in items] == [
        "2.49.0.0.250.0.FR.20221207160058.764028",
        "2.49.0.0.250.0.FR.20221207060126.964028",
    ]
    first, second = items
    assert first.msg_type is MsgType.ALERT and second.msg_type is MsgType.UPDATE
    assert first.sent == datetime(2022, 12, 7, 15, 0, 58, tzinfo=UTC)
    assert first.title == (
        "Vigilance jaune avalanches : Haute Savoie, Savoie, Isere, Alpes Maritimes, "
        "Hautes Alpes, Alpes de Haute Provence"
    )
    assert first.language == "fr" and first.attributes["source_title"].startswith("Yellow Avalanches Warning")
    assert sorted(deps(first)) == ["04", "05", "06", "38", "73", "74"]
    assert Area("EMMA_ID", "FR035") in first.areas and Area("NUTS3", "FR718") in first.areas
    assert first.attributes["cap_link"] == (
        "https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/04d497d4-d114-4d6b-93ba-13fa7ed577fe"
    )
    assert first.authority == "meteoalarm.org"  # until the linked CAP names Météo-France
    assert first.expires == datetime(2022, 12, 8, 15, 0, tzinfo=UTC)


def test_meteoalarm_uk_atom_entries():
    items = read("meteoalarm/meteoalarm-legacy-atom-uk-2022-12.xml", "cap")
    assert len(items) == 4  # 25 entries, 4 warnings
    assert all(i.title.startswith("Vigilance jaune neige-verglas : ") for i in items)
    ice = by_id(items)["2.49.0.0.826.0.GB_221207102835_a705d176.v1.0.SI"]
    assert ice.msg_type is MsgType.ALERT and ice.event == "Yellow ice warning"
    assert Area("EMMA_ID", "UK113") in ice.areas and deps(ice) == []
    assert {i.msg_type for i in items} == {MsgType.ALERT, MsgType.UPDATE}


# ------------------------------------------------------------------------------------------- DATEX II


def test_datex2_bison_fute_tipi_vehicle_obstruction_in_french():
    (item,) = read("datex2/bisonfute-tipi-v2-situation-vehicleobstruction-fr.xml", "datex2")
    assert item.external_id == "260724-000456-1" and item.version == "1"
    assert item.sent == datetime(2026, 7, 24, 8, 6, 4, 287000, tzinfo=CEST)
    assert item.title == "Véhicule en panne sur l'A 4"  # never "VehicleObstruction A 4"
    assert item.text.splitlines()[0] == (
        "Véhicule en panne sur l'A 4 en direction de l'ouest, à Charenton-le-Pont, près de Paris - Porte de Bercy."
    )
    assert "De Strasbourg vers Paris" in item.text
    assert item.roads == (Road("A", "4"),) and item.language == "fr"
    assert item.authority == "DIR Île-de-France"
    assert item.attributes["detail"] == "brokenDownVehicle" and item.severity is Severity.MODERATE


def test_datex2_dialog_v3_traffic_regulations():
    items = read("datex2/dialog-v3-traffic-regulation-fr.xml", "datex2")
    maisse, art = items
    assert maisse.external_id == "018a45df-58c3-740c-b712-37d3d2ca25f8" and maisse.version == "1"
    assert maisse.msg_type is MsgType.ALERT
    assert maisse.sent == datetime(2026, 7, 24, 14, 40, 9, tzinfo=UTC)
    assert maisse.onset == datetime(2004, 10, 17, 23, 0, tzinfo=UTC) and maisse.expires is None
    assert maisse.title.startswith("Interdiction aux véhicules de +7,5T de la traversée de l'agglomération de MAISSE")
    assert maisse.text.splitlines() == [
        "Accès interdit aux poids lourds (seuil de poids : 7,5 t), sauf véhicules de livraison, véhicules de "
        "secours, Déserte locale : Avenue du Général de Gaulle, Grande Rue, Rue de Milly, Rue d'Etampes, "
        "du lundi au vendredi de 7 h à 20 h.",
        "Arrêté pris par : Maisse.",
    ]
    assert maisse.authority == "Maisse" and maisse.attributes["publication_creator"] == "DiaLog"
    assert maisse.event == "restriction-poids-lourds" and maisse.attributes["hgv"] is True
    assert maisse.attributes["vehicle_types"] == ["poids lourds"] and maisse.attributes["weights"] == ["7,5 t"]
    assert maisse.attributes["regulation_types"] == ["noEntry"]
    assert maisse.attributes["regulation_id"] == "04/49#0189cf50-e505-7548-bea6-7164c06fb437"
    assert maisse.link == "http://localhost/regulations/018a45df-58c3-740c-b712-37d3d3924ca4"
    assert art.authority == "Art-sur-Meurthe" and art.attributes["weights"] == ["5 t"]
    assert art.attributes["places"] == ["Route de Saulxures"]
    assert "sauf véhicules de secours, Grumiers, Camions déchetterie" in art.text


def test_datex2_dialog_commune_insee_and_departement_option():
    body = sample("datex2/dialog-v3-traffic-regulation-fr.xml").replace(
        b"<loc:roadName>Route de Saulxures</loc:roadName>",
        b"<loc:roadName>Route de Saulxures</loc:roadName><loc:inseeCode>54025</loc:inseeCode>",
    )
    spec = SourceSpec(name="dialog", kind="datex2", url="file:unused")
    art = by_id(parse(spec, body))["018b19e9-7f21-7b21-9200-5b4a09b00fdd"]
    assert art.areas == (Area("commune", "54025"), Area("departement", "54"))


def test_datex2_digitraffic_v2_poor_environment_two_records():
    items = by_id(read("datex2/digitraffic-v2-poorenvironmentconditions-fi.xml", "datex2"))
    fire, smoke = items["GUID5041422201"], items["GUID5041422202"]
    assert fire.title == "Feu d'herbes" and fire.text.startswith("Feu d'herbes dans les deux sens.\nTie 7, Kotka.")
    assert fire.language == "fi"  # the comment is Finnish; the sentence before it is French
    assert smoke.title == "Fumée" and smoke.attributes["detail"] == "smokeHazard"
    assert fire.sent == datetime(2023, 5, 9, 13, 55, 47, 621000, tzinfo=UTC)
    assert fire.authority == "FTA" and fire.roads == ()


def test_datex2_digitraffic_v2_keeps_the_newest_version_of_each_record():
    items = by_id(read("datex2/digitraffic-v2-weatherrelatedroadconditions-laneclosure-fi.xml", "datex2"))
    assert sorted(items) == ["GUID5039603001", "GUID5039603002"]  # versions 14 and 1 of both: one each
    water, lanes = items["GUID5039603001"], items["GUID5039603002"]
    assert water.version == "14" and water.msg_type is MsgType.UPDATE
    assert water.title == "Eau sur la chaussée" and water.attributes["direction"] == "positive"
    assert water.text.startswith("Eau sur la chaussée dans le sens croissant.")
    assert lanes.title == "Voie fermée" and lanes.event == "fermeture"


def test_datex2_digitraffic_v3_5_payload_transit_information():
    spec = SourceSpec(name="fi", kind="datex2", url="file:unused")
    during = datetime(2025, 11, 27, 7, 30, tzinfo=UTC)
    (item,) = parse_at(spec, sample("datex2/digitraffic-v3_5-payload-transitinformation-fi.xml"), during)
    assert item.external_id == "GUID5046133001" and item.msg_type is MsgType.ALERT
    assert item.sent == datetime(2025, 11, 27, 6, 24, 59, 65000, tzinfo=UTC)
    assert item.title == "Liaison par bac retardée"
    assert item.text.startswith("Liaison par bac retardée dans le sens croissant, jusqu'au 27 novembre 2025 à 8 h 50.")
    assert item.severity is Severity.SEVERE and item.authority == "FTA"
    (later,) = parse_at(
        spec, sample("datex2/digitraffic-v3_5-payload-transitinformation-fi.xml"), during + timedelta(hours=1)
    )
    assert later.msg_type is MsgType.CANCEL  # its overallEndTime has passed


def test_datex2_highways_england_ntis_english_comment_lines():
    (item,) = read("datex2/highways-england-ntis-v2-abnormaltraffic.xml", "datex2")
    assert item.external_id == "949883"
    assert item.sent == datetime(2015, 4, 29, 9, 53, 46, 420000, tzinfo=CET)
    assert item.title == "Trafic perturbé" and item.language == "en"
    assert "From Location : The A628 westbound" in item.text and "Event Reason : Congestion" in item.text
    assert item.roads == ()  # "A628" in an English comment is no French autoroute
    assert item.authority == "NTIS"  # 'NTIS System' is a machine: the publication creator speaks


def test_datex2_unknown_record_type_gets_a_generic_french_phrase():
    body = (
        sample("datex2/bisonfute-tipi-v2-situation-vehicleobstruction-fr.xml")
        .replace(b'xsi:type="VehicleObstruction"', b'xsi:type="SomeFutureRecord"')
        .replace(b"<vehicleObstructionType>brokenDownVehicle</vehicleObstructionType>", b"")
    )
    (item,) = parse(SourceSpec(name="t", kind="datex2", url="file:unused"), body)
    assert item.title == "Événement sur la route sur l'A 4"
    assert "SomeFutureRecord" not in item.title + item.text


# ----------------------------------------------------------------------------------------------- RSS


def test_rss_google_actualites_fr_be():
    (item,) = read("rss/google-actualites-fr-be-rss2.xml", "rss")
    assert item.external_id == "52782335008021"
    assert item.sent == datetime(2020, 3, 8, 10, 32, 7, tzinfo=UTC)
    assert item.title.startswith("Coronavirus en Belgique: 200 cas détectés au total")
    assert item.language == "fr" and "31 nouvelles infections en Belgique" in item.text
    assert "<" not in item.text  # the HTML-escaped <ol> list is text now


def test_rss_jornal_de_noticias_iso_8859_1_crlf():
    items = read("rss/jn-pt-rss2-iso-8859-1-crlf.rss", "rss")
    assert len(items) == 40
    first = items[0]
    assert first.title == "Mãe de utente é a nova presidente da Raríssimas"
    assert first.sent == datetime(2018, 1, 3, 13, 47, tzinfo=UTC) and first.language == "pt-pt"
    assert first.external_id.startswith("http://feeds.jn.pt/~r/JN-ULTIMAS/")
    assert all(i.sent is not None for i in items)


def test_rss_ny_alert_index():
    items = read("rss/ny-alerts-index-rss2.rss", "rss")
    assert [i.external_id for i in items] == ["NYAlert-ALLHAZALERT-3167113", "NYAlert-ALLHAZALERT-3162202"]
    assert items[0].sent == datetime(2011, 2, 4, 20, 20, tzinfo=UTC)
    assert items[1].title.startswith("UPDATE: ROAD CLOSURE: State Hwy 218")
    assert items[0].roads == ()  # "I-81" is no French road


def test_rss_reporterre_spip_numeric_entities_dated_by_dc_date():
    (item,) = read("rss/reporterre-spip-rss2-fr-numeric-entities-dcdate.xml", "rss")
    assert item.external_id == "https://reporterre.net/Europe-vers-un-affaiblissement-historique-des-normes-ecologiques"
    assert item.sent == datetime(2025, 2, 26, 16, 42, 45, tzinfo=UTC)  # dc:date only
    assert item.title == "Europe : vers un « affaiblissement historique » des normes écologiques ?"
    assert item.text.startswith("Le 26 février, la Commission européenne")  # &#233; decoded
    assert item.language == "fr"


def test_rss_source_authority_is_named_on_its_items():
    spec = SourceSpec(name="reporterre", kind="rss", url="file:unused", authority="Préfecture de Loir-et-Cher")
    (item,) = parse(spec, sample("rss/reporterre-spip-rss2-fr-numeric-entities-dcdate.xml"))
    assert item.authority == "Préfecture de Loir-et-Cher"


# ------------------------------------------------------------------------------------ road state, vigilance


def test_roadstate_digitraffic_traffic_announcements_geojson():
    items = read("roadstate/digitraffic-traffic-announcements-geojson-fi.json", "geojson")
    assert [i.external_id for i in items] == ["GUID50001238", "GUID12345678"]
    item = items[0]
    assert item.version == "1" and item.msg_type is MsgType.ALERT
    assert item.sent == datetime(2019, 12, 13, 14, 43, 18, 388000, tzinfo=CEST)
    assert item.title == "Tie 130, Lempäälä. Liikennetiedote." and item.language == "fi"
    assert item.text.startswith("Tie 130 välillä Hämeenlinna - Tampere, Lempäälä.")
    assert item.authority == "Liikenneviraston tieliikennekeskus Helsinki"
    assert item.attributes["road_numbers"] == ["130"] and item.geometry["type"] == "Point"


def test_roadstate_digitraffic_road_condition_forecast():
    items = read("roadstate/digitraffic-road-conditions-forecast-v2-fi.json", "geojson")
    assert [i.external_id for i in items] == [
        "00429_003_00000_0_0",
        "00945_014_00000_0_0",
        "00409_001_01796_0_0",
        "00004_229_00307_1_0",
    ]
    first = items[0]
    assert first.title == "Route 429 : état normal" and first.msg_type is MsgType.CANCEL  # normal ends alerts
    assert first.sent == datetime(2022, 10, 13, 11, 0, tzinfo=timezone(timedelta(hours=3)))
    assert first.text.startswith("Observé : état normal, chaussée à +5.5 °C, air à +4.8 °C.")
    assert first.severity is Severity.MINOR


def test_vigilance_meteofrance_app_warning_full():
    items = read("vigilance/meteofrance-app-warning-full-dept13.json", "vigilance")
    assert [i.external_id for i in items] == [f"vigilance:13:{p}" for p in (4, 5, 1, 3, 2)]
    snow = by_id(items)["vigilance:13:5"]
    assert snow.sent == datetime(2021, 10, 31, 5, 0, tzinfo=UTC)  # epoch seconds 1635656400
    assert snow.expires == datetime(2021, 11, 1, 5, 0, tzinfo=UTC)
    assert snow.msg_type is MsgType.CANCEL and snow.title == "Fin de vigilance neige-verglas (13)"
    assert snow.areas == (Area("departement", "13"),) and snow.attributes["phenomenon_id"] == 5
    assert snow.text.startswith("Coup de vent ce matin sur la Bretagne")
    assert snow.authority == "Météo-France" and snow.version == "1635656400:1"


# ------------------------------------------------------------------------ not feeds: a clear refusal


@pytest.mark.parametrize(
    "path, kind, message",
    [
        (
            "providers/bluesky/atproto-com-account-capture-post-records-with-facets.json",
            "geojson",
            "expected a GeoJSON FeatureCollection",
        ),
        ("providers/bluesky/bsky-thread-view-post-with-embed-media.json", "vigilance", "not a vigilance document"),
        (
            "providers/mastodon/mastodon-status-edited-anonymised.json",
            "geojson",
            "expected a GeoJSON FeatureCollection",
        ),
        (
            "providers/mastodon/mastodon-status-with-preview-card-fosstodon-2023.json",
            "vigilance",
            "not a vigilance document",
        ),
        ("providers/mastodon/mastodon-tag-timeline-2017-integer-ids.json", "vigilance", "expected a JSON object"),
        ("schemas/CAP-v1.2.xsd", "cap", "found <schema>"),
        ("schemas/atom-rfc4287.rnc", "rss", "not"),
    ],
)
def test_not_feeds_are_refused_naming_the_file(path, kind, message):
    with pytest.raises(ParseError, match=message) as refused:
        read(path, kind)
    assert pathlib.Path(path).name in str(refused.value)
