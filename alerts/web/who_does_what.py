"""« Qui fait quoi ? »: the competence directory (authorities.yaml) as a public page.

For each kind of question (heavy-goods bans, national roads, motorways, departmental roads, streets, school
and regional coaches...) the page says who decides, their site and public feed, and the latest current item
they published on it — the same directory and the same `latest_publication` the automatic answers use, so
the page and the answers never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from alerts.domain import Item

from . import site
from .rendering import render
from .site import CRIEUR

PAGE_CACHE = "public, max-age=60"


@dataclass(frozen=True, slots=True)
class Responsible:
    """One authority answering one kind of question, with what it published last on it."""

    authority: Any  # rules.competence.Authority
    topic: Any  # rules.competence.Topic
    feed_urls: tuple[str, ...] = ()
    latest: Item | None = None


@dataclass(slots=True)
class Question:
    """A kind of question (a topic id) and every authority that answers it, in the directory's order."""

    id: str
    label: str
    keywords: tuple[str, ...] = ()
    roads: tuple[str, ...] = ()
    responsible: list[Responsible] = field(default_factory=list)


def setup(app: web.Application) -> None:
    app.router.add_get("/qui-fait-quoi", who_does_what, name="who_does_what")
    app.router.add_get("/t/{code}/qui-fait-quoi", who_does_what, name="territory_who_does_what")


def _road_specs(topic: Any) -> tuple[str, ...]:
    kinds = {
        "D": "routes départementales",
        "N": "routes nationales",
        "A": "autoroutes",
        "C": "voies communales",
        "VC": "voies communales",
        "M": "routes métropolitaines",
    }
    named = sorted(kinds.get(k, k) for k in topic.road_kinds)
    return tuple(dict.fromkeys([*named, *sorted(str(r) for r in topic.road_refs)]))


async def questions(crieur: Any, territory: str | None = None, now: datetime | None = None) -> list[Question]:
    """The directory grouped by kind of question, restricted to authorities of `territory` when given."""
    directory = getattr(crieur, "directory", None)
    if directory is None:
        return []
    now = now or datetime.now(timezone.utc)
    urls = {spec.name: spec.url for spec in getattr(crieur.config, "sources", ())}
    grouped: dict[str, Question] = {}
    for authority in directory:
        if territory and territory not in authority.territories:
            continue
        items = list(await crieur.store.items(sources=list(authority.feeds))) if authority.feeds else []
        feed_urls = tuple(urls[f] for f in authority.feeds if _public_url(urls.get(f, "")))
        for topic in authority.topics:
            question = grouped.setdefault(
                topic.id, Question(topic.id, topic.label, topic.keywords[:6], _road_specs(topic))
            )
            latest = directory.latest_publication(authority, topic, items, now) if items else None
            question.responsible.append(Responsible(authority, topic, feed_urls, latest))
    return list(grouped.values())


def _public_url(url: str) -> bool:
    """Only web addresses are shown: a `file:` source is a local demo file, not a feed citizens can read."""
    return url.startswith(("https://", "http://"))


async def who_does_what(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    code = request.match_info.get("code")
    territory = site.territory(crieur, code) if code else None
    if code and territory is None:
        raise web.HTTPNotFound(text=f"Territoire inconnu : {code}")
    directory = getattr(crieur, "directory", None)
    found = await questions(crieur, territory.code if territory else None)
    response = render(
        request,
        "who_does_what.html",
        territory=territory,
        territories=site.territories(crieur),
        questions=found,
        own=directory.own if directory is not None else None,
    )
    response.headers["Cache-Control"] = PAGE_CACHE
    return response
