"""Who answers a citizen's question — the routing policy as a table a community manager can read.

Each row: the question as a citizen writes it, who answers, the step of the policy that decided
(rules/routing.py) and why. Steps are tried in order; the first that matches decides:

    1 subject keyword       a decision (HGV bans, school transport, streets), whatever road it is about
    2 named road            the road's manager answers for its state
    3 road-manager keyword  no road named: who runs the roads ("salée", "chasse-neige")
    4 the team              nothing matched: the département's own team answers

Within a step: the authority whose place is named wins, then the longer keyword (or, for roads, an
explicit reference like "A10" over a road kind like "A"), then the one sharing a territory with the
département, then the earlier in the authorities file.
"""

from __future__ import annotations

import pathlib

import pytest

from rules.authorities import Reason
from rules.competence import Directory
from rules.routing import POLICY, named_road, road_manager_keyword, subject_keyword

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "loir-et-cher" / "authorities.yaml"
STEP = {
    "subject keyword": Reason.KEYWORD,
    "named road": Reason.ROAD,
    "road-manager keyword": Reason.KEYWORD,
    "the team": Reason.NONE,
}

TABLE = [
    # question                                              who answers          step                  why
    (
        "Les poids lourds peuvent-ils circuler ?",
        "prefecture-41",
        "subject keyword",
        "HGV bans are the préfet's decision",
    ),
    (
        "Les poids lourds sont-ils interdits sur l'A10 ?",
        "prefecture-41",
        "subject keyword",
        "a decision beats the road it is about",
    ),
    ("camions bloqués sur la RN10", "prefecture-41", "subject keyword", "same, on a national road"),
    (
        "Le car scolaire passe-t-il demain ?",
        "region-cvl",
        "subject keyword",
        "school coaches are the Région's (loi NOTRe)",
    ),
    (
        "ma rue n'est pas déneigée à Blois",
        "ville-blois",
        "subject keyword",
        "the commune named answers for its streets",
    ),
    ("ma rue n'est pas déneigée", "mairies", "subject keyword", "no town named: 'votre mairie'"),
    ("les camions en Eure-et-Loir ?", "prefecture-28", "subject keyword", "naming a place picks its préfecture"),
    ("La RN10 est-elle fermée ?", "dir-centre-ouest", "named road", "national roads: the DIR"),
    ("l'A71 est-elle déneigée ?", "vinci-cofiroute", "named road", "a named road beats a road-manager word"),
    ("A10 puis D957 ?", "vinci-cofiroute", "named road", "the first road named decides"),
    (
        "La D957 est fermée depuis 7 h ?",
        "cd41",
        "named road",
        'an hour is no keyword ("7,5 tonnes" is one keyword, quoted in the file)',
    ),
    ("la D939 à Chartres est-elle salée ?", "cd28", "named road", "a D road in Eure-et-Loir: that département"),
    ("La route est-elle salée vers Vendôme ?", "cd41", "road-manager keyword", "no road named: who runs most roads"),
    ("quand passe le chasse neige", "cd41", "road-manager keyword", "same"),
    ("à quelle heure ouvre la déchetterie ?", None, "the team", "nothing matched: the team answers"),
    ("A28 fermée ?", None, "the team", "a road nobody in the file runs: no guess"),
]


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.load(EXAMPLE)


def test_the_policy_is_tried_in_this_order() -> None:
    assert POLICY == (subject_keyword, named_road, road_manager_keyword)


@pytest.mark.parametrize("question, answers, step, why", TABLE, ids=[row[3] for row in TABLE])
def test_who_answers(directory: Directory, question: str, answers: str | None, step: str, why: str) -> None:
    routing = directory.route(question)
    assert (routing.authority.id if routing.authority else None) == answers
    assert routing.reason is STEP[step]
    if routing.reason is Reason.KEYWORD:  # a subject topic has keywords only; a road manager's lists roads too
        assert routing.topic is not None and routing.topic.manages_roads is (step == "road-manager keyword")
    assert routing.in_scope is (answers in (None, "cd41"))
