"""Competence directory: the shipped file, routing snow-night questions, what authorities published,
answers to citizens, escalation to webmasters and acknowledgement tokens."""

from __future__ import annotations

import pathlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.acks import sign_ack, verify_ack
from alerts.domain import Item, MsgType, Road
from alerts.replies import citizen_answer, escalation_email, question_received, routed_answer
from rules.authorities import Authority, Reason, Topic
from rules.competence import Directory, DirectoryError
from rules.escalation import Escalation, EscalationKey, escalation_key, escalation_window
from rules.fitting import sms_measure

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "loir-et-cher" / "authorities.yaml"
DATA = ROOT / "tests" / "data" / "competence"
SAMPLES = ROOT.parent / "shared" / "samples"

# Sunday 20 January 2013, 10:00 in Blois.
NOW = datetime(2013, 1, 20, 9, 0, tzinfo=timezone.utc)
SECRET = "un-secret-de-test-assez-long-0123456789"


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.load(EXAMPLE)


# ---------------------------------------------------------------------------------- shipped file


def test_example_file_loads(directory: Directory) -> None:
    assert directory.own.id == "cd41"
    assert directory.own.kind == "departement"
    kinds = {a.kind for a in directory}
    assert kinds == {"departement", "prefecture", "dir", "concessionnaire", "commune", "region"}
    for territory in ("41", "28"):
        assert any(a.kind == "prefecture" and territory in a.territories for a in directory)
        assert any(a.kind == "departement" and territory in a.territories for a in directory)
    assert directory["prefecture-41"].webmaster.email == "webmestre@prefecture-41.example"
    assert directory["dir-centre-ouest"].webmaster.webhook.startswith("https://")
    # contact addresses are illustrative only
    for authority in directory:
        if authority.webmaster:
            for address in (authority.webmaster.email, authority.webmaster.webhook):
                assert not address or ".example" in address
    assert directory.unknown_feeds({"prefecture-41", "departement-41"}) == sorted(
        {f for a in directory for f in a.feeds} - {"prefecture-41", "departement-41"}
    )


# ----------------------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "question, authority, topic, reason",
    [
        # the 2013 question
        ("Les poids lourds peuvent-ils circuler aujourd'hui ?", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        ("LES POIDS LOURDS SONT ILS INTERDITS", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        ("poids-lourd interdit ??", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        ("est ce que les PL peuvent rouler", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        ("Je suis chauffeur routier, je peux partir ?", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        # keyword beats road: an HGV ban on a motorway is still the préfecture's decision
        ("Les poids lourds sont-ils interdits sur l'A10 ?", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        ("camions bloqués sur la RN10", "prefecture-41", "poids-lourds", Reason.KEYWORD),
        # roads go to their manager
        ("La RN10 est-elle fermée ?", "dir-centre-ouest", "routes-nationales", Reason.ROAD),
        ("N 10 a vendome ca passe ?", "dir-centre-ouest", "routes-nationales", Reason.ROAD),
        ("A10 bloquée vers Orléans ?", "vinci-cofiroute", "autoroutes", Reason.ROAD),
        ("l'A71 est-elle déneigée ?", "vinci-cofiroute", "autoroutes", Reason.ROAD),  # road beats "déneigée"
        ("la RD 957 est elle dégagée", "cd41", "routes-departementales", Reason.ROAD),
        ("D957 verglacée ?", "cd41", "routes-departementales", Reason.ROAD),
        ("route départementale 2152 coupée ?", "cd41", "routes-departementales", Reason.ROAD),
        ("la D939 à Chartres est-elle salée ?", "cd28", "routes-departementales", Reason.ROAD),
        # road-manager keyword without a road: the département
        ("La route est-elle salée vers Vendôme ?", "cd41", "routes-departementales", Reason.KEYWORD),
        ("quand passe le chasse neige", "cd41", "routes-departementales", Reason.KEYWORD),
        # school and interurban coaches are the Région's since the loi NOTRe (1 September 2017)
        ("Le car scolaire passe-t-il demain matin ?", "region-cvl", "transport-scolaire", Reason.KEYWORD),
        ("Les transports scolaires sont-ils suspendus à Vendôme ?", "region-cvl", "transport-scolaire", Reason.KEYWORD),
        ("le ramassage scolaire est maintenu sur la D957 ?", "region-cvl", "transport-scolaire", Reason.KEYWORD),
        ("le TER Blois-Paris roule ?", "region-cvl", "transports-regionaux", Reason.KEYWORD),
        ("les cars Remi circulent ?", "region-cvl", "transports-regionaux", Reason.KEYWORD),
        # communes: the one named, otherwise "votre mairie"
        ("ma rue n'est pas déneigée à Blois", "ville-blois", "rues", Reason.KEYWORD),
        ("MA RUE N EST PAS DENEIGEE A BLOIS", "ville-blois", "rues", Reason.KEYWORD),
        ("les trottoirs de chartres sont glissants", "ville-chartres", "rues", Reason.KEYWORD),
        ("ma rue n'est pas déneigée", "mairies", "rues", Reason.KEYWORD),
        # a named département picks its préfecture
        ("les camions en Eure-et-Loir ?", "prefecture-28", "poids-lourds", Reason.KEYWORD),
    ],
)
def test_snow_night_questions(directory: Directory, question: str, authority: str, topic: str, reason: Reason) -> None:
    routing = directory.route(question)
    assert routing.authority is not None, question
    assert (routing.authority.id, routing.topic.id, routing.reason) == (authority, topic, reason)
    assert routing.in_scope is (authority == "cd41")


def test_unmatched_question_goes_to_the_team(directory: Directory) -> None:
    routing = directory.route("Bonjour, à quelle heure ouvre la déchetterie ?")
    assert routing.authority is None and routing.in_scope and routing.reason is Reason.NONE
    # A28 is not Cofiroute's: no guess
    assert directory.route("A28 fermée ?").authority is None


def test_territories_restrict_candidates(directory: Directory) -> None:
    assert directory.route("poids lourds ?", territories=["28"]).authority.id == "prefecture-28"
    assert directory.route("RD 921 fermée ?", territories=["28"]).authority.id == "cd28"
    assert directory.route("poids lourds ?", territories=["41", "28"]).authority.id == "prefecture-41"


def test_roads_given_by_the_caller(directory: Directory) -> None:
    routing = directory.route("c'est fermé ?", roads=[Road("N", "10")])
    assert routing.authority.id == "dir-centre-ouest" and routing.evidence == "N10"
    # the first road named decides
    assert directory.route("A10 puis D957").authority.id == "vinci-cofiroute"


def test_minimal_directory() -> None:
    directory = Directory.load(DATA / "minimal.yaml")
    assert directory.route("poids lourds sur la D957").authority.id == "prefecture-41"
    assert directory.route("la D957").authority.id == "cd41"
    assert directory.own.territories == ("41",)  # [41] and ["41"] read alike


def test_explicit_reference_beats_road_kind() -> None:
    def authority(ident: str, kind: str, topic: Topic) -> Authority:
        return Authority(ident, f"l'exploitant {ident}", kind, ("41",), (topic,))

    own = authority("cd41", "departement", Topic("routes", "Les routes", road_kinds=frozenset({"D"})))
    any_motorway = authority("aprr", "concessionnaire", Topic("a", "Les autoroutes", road_kinds=frozenset({"A"})))
    a10 = authority("cofiroute", "concessionnaire", Topic("a10", "L'A10", road_refs=frozenset({Road("A", "10")})))
    directory = Directory([own, any_motorway, a10], "cd41")
    assert directory.route("A10 fermée ?").authority.id == "cofiroute"
    assert directory.route("A19 fermée ?").authority.id == "aprr"
    with pytest.raises(ValueError):
        Directory([own, own], "cd41")
    with pytest.raises(ValueError):
        Directory([a10], "cd41")


# ---------------------------------------------------------------------------- latest publication


def _item(external_id: str, title: str, *, source: str = "prefecture-41", hours_ago: float = 2, **kw) -> Item:
    return Item(
        source=source,
        external_id=external_id,
        sent=NOW - timedelta(hours=hours_ago),
        title=title,
        link=f"https://www.{source}.example/actualites/{external_id}",
        **kw,
    )


HGV_BAN = _item(
    "arrete-pl-20130120",
    "Neige-verglas : interdiction de circulation des poids lourds de plus de 7,5 t sur l’ensemble du "
    "réseau routier de Loir-et-Cher",
    expires=NOW + timedelta(hours=10),
)


def test_latest_publication_picks_current_item_on_topic(directory: Directory) -> None:
    routing = directory.route("Les poids lourds peuvent-ils circuler ?")
    older = _item("arrete-pl-20130119", "Interdiction de circulation des PL levée", hours_ago=20)
    other_topic = _item("grand-froid", "Plan grand froid : hébergement d'urgence", hours_ago=1)
    foreign = _item("pl-28", "Interdiction des poids lourds en Eure-et-Loir", source="prefecture-28", hours_ago=0.5)
    items = [older, HGV_BAN, other_topic, foreign]
    assert directory.latest_publication(routing.authority, routing.topic, items, NOW) is HGV_BAN


def test_publication_for_routing(directory: Directory) -> None:
    assert directory.publication_for(directory.route("poids lourds ?"), [HGV_BAN], NOW) is HGV_BAN
    assert directory.publication_for(directory.route("bonjour"), [HGV_BAN], NOW) is None
    # what the operator itself published on another authority's topic, for the escalation email
    ours = _item("d1", "Interdiction des poids lourds : itinéraires de délestage", source="departement-41")
    topic = directory.route("poids lourds ?").topic
    assert directory.latest_publication(directory.own, topic, [HGV_BAN, ours], NOW) is ours


def test_information_gap_when_nothing_current(directory: Directory) -> None:
    routing = directory.route("poids lourds ?")
    expired = _item("old", "Interdiction des poids lourds", hours_ago=30, expires=NOW - timedelta(hours=1))
    cancelled = _item("cancel", "Fin de l'interdiction des poids lourds", msg_type=MsgType.CANCEL, hours_ago=1)
    withdrawn_target = _item("ban", "Interdiction des poids lourds", hours_ago=3)
    cancel_ref = _item(
        "cancel2",
        "Annulation",
        msg_type=MsgType.CANCEL,
        hours_ago=1,
        references=("prefecture-41@example,ban,2013-01-20T07:00:00+01:00",),
    )
    items = [expired, cancelled, withdrawn_target, cancel_ref]
    assert directory.latest_publication(routing.authority, routing.topic, items, NOW) is None


def test_update_supersedes_earlier_version(directory: Directory) -> None:
    routing = directory.route("poids lourds ?")
    first = _item("v1", "Interdiction des poids lourds jusqu'à 12 h", hours_ago=3)
    update = _item(
        "v2", "Interdiction des PL prolongée jusqu'à 18 h", hours_ago=1, msg_type=MsgType.UPDATE, references=("v1",)
    )
    assert directory.latest_publication(routing.authority, routing.topic, [update, first], NOW) is update
    # the newest current version wins even when listed first, and an item with a road of the topic counts
    road_item = _item("rn10", "Circulation difficile", source="dir-centre-ouest", roads=(Road("N", "10"),))
    dir_routing = directory.route("RN10 ?")
    assert directory.latest_publication(dir_routing.authority, dir_routing.topic, [road_item], NOW) is road_item


# ------------------------------------------------------------------------------- citizen answers


def test_hgv_answer_with_current_prefecture_item(directory: Directory) -> None:
    routing = directory.route("Les poids lourds sont-ils interdits sur l'A10 ?")
    publication = directory.latest_publication(routing.authority, routing.topic, [HGV_BAN], NOW)
    text = citizen_answer(routing, publication)
    assert text.startswith(
        "Les interdictions de circulation des poids lourds relèvent de la Préfecture de Loir-et-Cher. "
        'Dernière information : "Neige-verglas : interdiction de circulation des poids lourds'
    )
    assert text.endswith(HGV_BAN.link)
    measured = sms_measure(text)
    assert measured.encoding == "GSM-7" and measured.segments <= 2, (measured, text)


def test_hgv_answer_without_prefecture_item(directory: Directory) -> None:
    routing = directory.route("Les poids lourds peuvent-ils circuler ?")
    publication = directory.latest_publication(routing.authority, routing.topic, [], NOW)
    assert publication is None
    assert citizen_answer(routing, None) == (
        "Les interdictions de circulation des poids lourds relèvent de la Préfecture de Loir-et-Cher. "
        "La Préfecture n'a rien publié à ce sujet pour l'instant ; nous lui avons signalé votre question."
    )


def test_answers_use_french_contractions_and_agreement(directory: Directory) -> None:
    school = routed_answer(directory.route("car scolaire ?", territories=["28"]), None)
    assert school.startswith("Le transport scolaire relève de la Région Centre-Val de Loire (réseau Rémi).")
    street = routed_answer(directory.route("ma rue n'est pas déneigée"), None)
    assert street == (
        "Le déneigement des rues et des trottoirs relève de votre mairie. Renseignez-vous auprès de votre mairie."
    )
    assert "relèvent de Vinci Autoroutes (réseau Cofiroute)" in routed_answer(directory.route("A10 ?"), None)


LONG_TITLE = "Épisode neigeux : fermeture de la bretelle d’accès et interdiction de dépasser pour tous les véhicules"
LONG_LINK = (
    "https://www.prefecture-41.example/Publications/Communiques-de-presse/2013/Janvier/Episode-neigeux-20-janvier"
)


@pytest.mark.parametrize(
    "question",
    [
        "poids lourds ?",
        "RN10 ?",
        "A10 ?",
        "ma rue à Blois",
        "ma rue",
        "le TER roule ?",
        "car scolaire ?",
        "D957 ?",
        "bonjour",
        "les camions en Eure-et-Loir",
    ],
)
@pytest.mark.parametrize("with_item", [False, True])
def test_every_answer_fits_two_gsm7_segments(directory: Directory, question: str, with_item: bool) -> None:
    routing = directory.route(question)
    item = Item("x", "1", title=LONG_TITLE + " 🚛 « » ô", link=LONG_LINK) if with_item else None
    text = citizen_answer(routing, item)
    measured = sms_measure(text)
    assert measured.encoding == "GSM-7", text
    assert measured.segments <= 2, (measured, text)
    if item is not None:
        assert LONG_LINK in text  # the title is shortened, never the link


def test_question_received_fits_one_segment() -> None:
    assert sms_measure(question_received()).segments == 1


# ------------------------------------------------------------------------------------ escalation


def test_escalation_window_and_key(directory: Directory) -> None:
    assert escalation_window(datetime(2013, 1, 20, 9, 59, tzinfo=timezone.utc)) == datetime(
        2013, 1, 20, 6, tzinfo=timezone.utc
    )
    paris = timezone(timedelta(hours=1))
    assert escalation_window(datetime(2013, 1, 20, 13, 0, tzinfo=paris)) == datetime(
        2013, 1, 20, 12, tzinfo=timezone.utc
    )
    assert escalation_window(NOW, timedelta(hours=1)) == NOW
    with pytest.raises(ValueError, match="aware"):
        escalation_window(datetime(2013, 1, 20, 9))
    routing = directory.route("poids lourds ?")
    key = escalation_key(routing, NOW)
    assert key == EscalationKey("prefecture-41", "poids-lourds", datetime(2013, 1, 20, 6, tzinfo=timezone.utc))
    assert escalation_key(routing, NOW + timedelta(hours=2, minutes=59)) == key
    assert escalation_key(routing, NOW + timedelta(hours=3)) != key
    # in scope, unmatched, or nobody to warn: no escalation
    assert escalation_key(directory.route("D957 ?"), NOW) is None
    assert escalation_key(directory.route("bonjour"), NOW) is None
    assert escalation_key(directory.route("ma rue"), NOW) is None


def test_repeated_questions_make_one_escalation_with_a_count(directory: Directory) -> None:
    questions = [
        ("Les poids lourds peuvent-ils circuler ?", 0),
        ("les PL sont interdits ??", 10),
        ("Les poids lourds peuvent-ils circuler ?", 20),
        ("camion bloqué à Blois, je peux repartir ?", 130),
        ("La RN10 est fermée ?", 30),
    ]
    escalations: dict[EscalationKey, Escalation] = {}
    for text, minutes in questions:
        at = NOW + timedelta(minutes=minutes)
        routing = directory.route(text)
        key = escalation_key(routing, at)
        escalations.setdefault(key, Escalation(key)).add(text, at, gap=True)
    assert len(escalations) == 2
    hgv = escalations[EscalationKey("prefecture-41", "poids-lourds", datetime(2013, 1, 20, 6, tzinfo=timezone.utc))]
    assert hgv.count == 4
    assert hgv.samples == [
        "Les poids lourds peuvent-ils circuler ?",
        "les PL sont interdits ??",
        "camion bloqué à Blois, je peux repartir ?",
    ]
    assert hgv.first_at == NOW and hgv.last_at == NOW + timedelta(minutes=130) and hgv.gap


def test_escalation_email(directory: Directory) -> None:
    routing = directory.route("poids lourds ?")
    escalation = Escalation(escalation_key(routing, NOW))
    for i in range(7):
        escalation.add(f"Question {i} sur les poids lourds", NOW + timedelta(minutes=i), gap=True)
    ours = [_item("d1", "Routes enneigées : circulation très difficile sur tout le réseau", source="departement-41")]
    token = sign_ack(42, SECRET, now=NOW.timestamp())
    ack_url = f"https://crieur.departement-41.example/accuse-reception/{token}"
    email = escalation_email(
        escalation, routing.authority, routing.topic, directory.own, ack_url=ack_url, our_publications=ours
    )
    assert email.subject == (
        "[Crieur] 7 questions de citoyens sur les interdictions de circulation des poids lourds"
        " – aucune information publiée"
    )
    assert "7 citoyens ont interrogé le Conseil départemental de Loir-et-Cher" in email.body
    assert "relève de la Préfecture de Loir-et-Cher" in email.body
    assert "aucune information à jour" in email.body
    assert email.body.count("« Question ") == 5  # samples are capped
    assert "Routes enneigées : circulation très difficile" in email.body
    assert ack_url in email.body
    assert "20/01/2013 à 10:00" in email.body  # Paris time
    with_item = escalation_email(
        escalation, routing.authority, routing.topic, directory.own, ack_url=ack_url, their_publication=HGV_BAN
    )
    assert "aucune information publiée" not in with_item.subject
    assert HGV_BAN.link in with_item.body


# -------------------------------------------------------------------------------- acknowledgement


def test_ack_token_round_trip_and_rejections() -> None:
    now = NOW.timestamp()
    token = sign_ack(42, SECRET, now=now)
    assert all(c.isalnum() or c in "-_." for c in token)  # URL-safe as is
    assert verify_ack(token, SECRET, now=now + 3600) == 42
    assert verify_ack(token, SECRET, now=now + 8 * 86400) is None  # expired (7 days by default)
    assert verify_ack(token, "un-autre-secret-tout-aussi-long-987", now=now) is None
    ident, expiry, signature = token.split(".")
    assert verify_ack(f"43.{expiry}.{signature}", SECRET, now=now) is None
    assert verify_ack(f"{ident}.{int(expiry) + 86400}.{signature}", SECRET, now=now) is None
    assert verify_ack(token[:-1] + ("A" if token[-1] != "A" else "B"), SECRET, now=now) is None
    short = sign_ack(7, SECRET, ttl=timedelta(minutes=5), now=now)
    assert verify_ack(short, SECRET, now=now + 299) == 7 and verify_ack(short, SECRET, now=now + 301) is None
    with pytest.raises(ValueError):
        sign_ack(1, "court")
    with pytest.raises(ValueError):
        sign_ack(-1, SECRET)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_garbage_tokens_are_rejected(token: str) -> None:
    assert verify_ack(token, SECRET) is None


# ------------------------------------------------------------------------------------ file errors


@pytest.mark.parametrize(
    "name, expected",
    [
        ("bad_kind.yaml", ["bad_kind.yaml:11:11: authorities[1](ministere).kind: expected one of departement"]),
        ("unknown_self.yaml", ["unknown_self.yaml:1:7: self: no authority has id 'cd99'"]),
        ("self_not_departement.yaml", ["self_not_departement.yaml:1:7: self: 'prefecture-41' is a prefecture"]),
        ("duplicate_id.yaml", ["duplicate_id.yaml:9:5: authorities[1].id: duplicate authority id 'cd41'"]),
        ("syntax_error.yaml", ["syntax_error.yaml:4:1: YAML syntax"]),
        (
            "bad_fields.yaml",
            [
                "bad_fields.yaml:6:23: authorities[0](cd41).territories[1]: 'Loir' is not a département code",
                "bad_fields.yaml:10:20: authorities[0](cd41).topics[0](routes).roads[1]: 'Z12' is not a road",
                "bad_fields.yaml:11:9: authorities[0](cd41).topics[1](vide): a topic needs keywords or roads",
                "bad_fields.yaml:15:20: authorities[0](cd41).topics[2](ponctuation).keywords[0]: '?!' has no word",
                "bad_fields.yaml:20:11: authorities[1](prefecture-41).site: 'www.prefecture-41.example' is not",
                "bad_fields.yaml:22:14: authorities[1](prefecture-41).webmaster.email: 'webmestre@' is not an email",
                "bad_fields.yaml:26:9: authorities[1](prefecture-41).topics[0].keyword: unknown key",
            ],
        ),
    ],
)
def test_file_errors_name_file_line_and_field(name: str, expected: list[str]) -> None:
    with pytest.raises(DirectoryError) as caught:
        Directory.load(DATA / name)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, message
    assert len(caught.value.errors) >= len(expected)


def test_missing_file_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DirectoryError, match="absent.yaml:0:0: cannot read file"):
        Directory.load(tmp_path / "absent.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DirectoryError, match="empty file"):
        Directory.load(empty)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples are not present")
def test_shared_authorities_files_load() -> None:
    for path in sorted(SAMPLES.rglob("authorities*.yaml")):
        assert len(Directory.load(path)) > 0, path
