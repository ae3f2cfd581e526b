"""Who answers a citizen's question: the routing policy, as an ordered list of steps.

A question ("les poids lourds peuvent-ils rouler ?", "l'A10 est-elle fermée ?", "ma rue n'est pas
déneigée à Blois") is routed to the authority that decides on it. The steps are tried in this order; the
first that finds a match decides:

1. `subject_keyword` — a *subject* topic (keywords only: the préfecture's heavy-goods-vehicle bans, school
   transport, a commune's streets) matched by a keyword. The question is about a decision, whichever road
   it is taken on: "les poids lourds sont-ils interdits sur l'A10 ?" → the préfecture.
2. `named_road` — a road named in the question, through the topics that list road patterns, in the order
   the question names them. The manager of the road answers for its state: "l'A10 est-elle déneigée ?" →
   the motorway company, although "déneigée" is also a département word.
3. `road_manager_keyword` — a *road manager* topic (keywords and road patterns) matched by a keyword,
   no road named: "la route de Vendôme est-elle salée ?" → the département, which runs most roads.
4. Nothing matched: the operator's team answers (`in_scope`).

Within a step, several matches are narrowed by tie-breakers, in order, each keeping only the best:
`KEYWORD_TIES` (the question names one of the authority's places, "Blois"; the longer keyword; the
authority shares a territory with the operator's own département; the earlier in the file) and
`ROAD_TIES` (an explicit reference, "A10", beats a road kind, "A"; then the same last three).

Who may match at all: with `territories` given, only the authorities of those territories; an authority
of kind "commune" that lists places only when one of them is named, so "ma rue" without a town goes to a
generic "votre mairie" entry if the file has one.

tests/test_routing_policy.py is the table of examples a community manager can read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from alerts.domain import Road
from rules.roads import roads_in_text
from rules.text import normalise, normalise_phrase

from .authorities import Authority, Reason, Routing, Topic


@dataclass(frozen=True, slots=True)
class Candidate:
    """An authority that may answer this question."""

    authority: Authority
    order: int  # position in the authorities file
    names_place: bool  # the question names one of its places
    home: bool  # it shares a territory with the operator's own département


@dataclass(frozen=True, slots=True)
class Match:
    """A candidate's topic that matches the question, and by what."""

    candidate: Candidate
    topic: Topic
    reason: Reason
    evidence: str  # the keyword or the road ("A10")
    keyword_length: int = 0  # words and letters of the keyword, normalised
    road_strength: int = 0  # 2 for an explicit reference ("A10"), 1 for a road kind ("A")


@dataclass(frozen=True, slots=True)
class Question:
    text: str  # normalised (rules.text.normalise)
    roads: tuple[Road, ...]  # in the order named
    candidates: tuple[Candidate, ...]


TieBreaker = Callable[[Match], int]


def names_a_place(match: Match) -> int:
    return int(match.candidate.names_place)


def longer_keyword(match: Match) -> int:
    return match.keyword_length


def explicit_road(match: Match) -> int:
    return match.road_strength


def shares_a_territory_with_the_operator(match: Match) -> int:
    return int(match.candidate.home)


def earlier_in_the_file(match: Match) -> int:
    return -match.candidate.order


KEYWORD_TIES: tuple[TieBreaker, ...] = (
    names_a_place,
    longer_keyword,
    shares_a_territory_with_the_operator,
    earlier_in_the_file,
)
ROAD_TIES: tuple[TieBreaker, ...] = (
    explicit_road,
    names_a_place,
    shares_a_territory_with_the_operator,
    earlier_in_the_file,
)


def best(matches: Sequence[Match], ties: Sequence[TieBreaker]) -> Match:
    """The match the tie-breakers pick: each keeps only the matches that score best on it; among
    matches still equal after all of them (two topics of one authority), the first."""
    remaining = list(matches)
    for tie in ties:
        top = max(tie(m) for m in remaining)
        remaining = [m for m in remaining if tie(m) == top]
    return remaining[0]


def _keyword_matches(question: Question, *, manages_roads: bool) -> list[Match]:
    found = []
    for candidate in question.candidates:
        for topic in candidate.authority.topics:
            if topic.manages_roads is not manages_roads:
                continue
            keyword = topic.keyword_in(question.text)
            if keyword is not None:
                found.append(
                    Match(candidate, topic, Reason.KEYWORD, keyword, keyword_length=len(normalise_phrase(keyword)))
                )
    return found


def subject_keyword(question: Question) -> Match | None:
    matches = _keyword_matches(question, manages_roads=False)
    return best(matches, KEYWORD_TIES) if matches else None


def named_road(question: Question) -> Match | None:
    for road in question.roads:
        matches = [
            Match(candidate, topic, Reason.ROAD, str(road), road_strength=topic.road_match(road))
            for candidate in question.candidates
            for topic in candidate.authority.topics
            if topic.road_match(road)
        ]
        if matches:
            return best(matches, ROAD_TIES)
    return None


def road_manager_keyword(question: Question) -> Match | None:
    matches = _keyword_matches(question, manages_roads=True)
    return best(matches, KEYWORD_TIES) if matches else None


Step = Callable[[Question], "Match | None"]
POLICY: tuple[Step, ...] = (subject_keyword, named_road, road_manager_keyword)


def route(
    authorities: Sequence[Authority],
    own: Authority,
    text: str,
    territories: Collection[str] = (),
    roads: Collection[Road] = (),
) -> Routing:
    """Decide who answers `text`: the first step of POLICY that matches, else the operator's team."""
    norm = normalise(text or "")
    wanted = set(territories)
    home = set(own.territories)
    candidates = []
    for order, authority in enumerate(authorities):
        if wanted and not wanted.intersection(authority.territories):
            continue
        named = authority.place_in(norm)
        if authority.kind == "commune" and authority.places and not named:
            continue
        candidates.append(Candidate(authority, order, named, bool(home.intersection(authority.territories))))
    question = Question(norm, tuple(dict.fromkeys([*roads, *roads_in_text(text or "")])), tuple(candidates))
    for step in POLICY:
        match = step(question)
        if match is not None:
            authority = match.candidate.authority
            return Routing(authority, match.topic, authority.id == own.id, match.reason, match.evidence)
    return Routing(None, None, True, Reason.NONE)
