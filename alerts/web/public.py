"""Citizens' side: the alert pages, the question form, Atom and CAP feeds, health checks. No JavaScript."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from alerts.security import client_of

from . import site
from .feeds import ATOM_MEDIA_TYPE, CAP_MEDIA_TYPE, FeedContext, atom_feed, cap_alert, source_item
from .limits import QuestionLimits
from .map import map_view
from .rendering import render
from .site import CRIEUR, WALL, TerritoryInfo

QA_WINDOW = 24 * 3600.0  # questions and answers shown outside a snow episode: the last day
log = logging.getLogger("crieur.web.public")

MAX_QUESTION = 1000
TOO_MANY = "Vous avez envoyé beaucoup de questions : merci de réessayer dans quelques minutes."
UNAVAILABLE = (
    "Le service de questions est momentanément indisponible. Pour une urgence, appelez le 112 ; "
    "pour l'état des routes, consultez les alertes ci-dessus."
)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index, name="index")
    r.add_get("/t/{code}", territory_page, name="territory")
    r.add_post("/questions", ask_question, name="questions")
    r.add_get("/alertes.atom", atom_all)
    r.add_get("/t/{code}/alertes.atom", atom_territory)
    r.add_get("/t/{code}/alertes.cap.xml", cap_index)
    r.add_get("/t/{code}/exercice", exercise_page)
    r.add_get("/t/{code}/exercice.cap.xml", exercise_cap_index)
    r.add_get("/alertes/{id:" + site.ID_PATTERN + "}.cap.xml", cap_message)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)


def _territory_or_404(crieur: Any, code: str) -> TerritoryInfo:
    found = site.territory(crieur, code)
    if found is None:
        raise web.HTTPNotFound(text=f"Territoire inconnu : {code}")
    return found


async def _page_context(crieur: Any, territory: TerritoryInfo | None) -> dict[str, Any]:
    known = site.territories(crieur)
    alerts = await site.current_alerts(crieur, territory.code if territory else None)
    return {
        "territory": territory,
        "territories": known,
        "alerts": [(a, site.commune_names(a, known)) for a in alerts],
        "last_change": await crieur.store.last_change(),
        "sms_number": site.sms_number(crieur),
        "now": datetime.now(timezone.utc),
        "publisher": crieur.config.name,  # "Source : ..." of the département's own alerts
        "answers": await crieur.store.inbox.published_answers(
            await _episode_start(crieur, territory), territory.code if territory else None
        ),
    }


async def _episode_start(crieur: Any, territory: TerritoryInfo | None) -> float:
    """Questions and answers shown are those of the snow episode under way (of the territory, else any),
    else of the last day."""
    episodes = [e for e in await crieur.store.episodes() if e["active"] and e["started_at"]]
    if territory is not None:
        episodes = [e for e in episodes if e["territory"] == territory.code] or episodes
    return min((float(e["started_at"]) for e in episodes), default=time.time() - QA_WINDOW)


async def index(request: web.Request) -> web.StreamResponse:
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    crieur = request.app[CRIEUR]
    context = await _page_context(crieur, None)
    return site.with_cache_headers(render(request, "public.html", **context, wall=None, question=None), etag)


async def territory_page(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    territory = _territory_or_404(crieur, request.match_info["code"])
    wall = request.app[WALL]
    partner_posts = await wall.partner_posts(territory.hashtag)  # refreshes the cache at most once a minute
    etag, not_modified = await site.cached(request, wall.generation(territory.hashtag))
    if not_modified:
        return not_modified
    context = await _page_context(crieur, territory)
    own = [a for a, _ in context["alerts"]]
    posts = await wall.posts(territory.hashtag, own, author=crieur.config.name)
    context["wall"] = {"posts": posts, "partners": len(partner_posts)}
    context["map"] = await map_view(crieur, territory, own)
    context["exercise_running"] = bool(await site.current_alerts(crieur, territory.code, exercises="only"))
    return site.with_cache_headers(render(request, "public.html", **context, question=None), etag)


async def exercise_page(request: web.Request) -> web.StreamResponse:
    """The exercises in progress that a web channel carries (`exercise.channels` names one), under an
    EXERCICE banner: never in the territory's list, feeds or API (site.current_alerts)."""
    crieur = request.app[CRIEUR]
    territory = _territory_or_404(crieur, request.match_info["code"])
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    known = site.territories(crieur)
    alerts = await site.current_alerts(crieur, territory.code, exercises="only")
    response = render(
        request,
        "exercise.html",
        territory=territory,
        alerts=[(a, site.commune_names(a, known)) for a in alerts],
        publisher=crieur.config.name,
    )
    return site.with_cache_headers(response, etag)


async def ask_question(request: web.Request) -> web.StreamResponse:
    """The form under each page: answered at once when the question is ours, else routed to whoever is
    responsible (the citizens module decides; this handler only validates and shows the reply)."""
    crieur = request.app[CRIEUR]
    form = await request.post()
    text = str(form.get("text", "")).strip()
    phone_raw = str(form.get("phone", "")).strip()
    code = str(form.get("territory", "")).strip()
    territory = site.territory(crieur, code) if code else None
    errors: dict[str, str] = {}
    if not text:
        errors["text"] = "Écrivez votre question."
    elif len(text) > MAX_QUESTION:
        errors["text"] = f"Votre question dépasse {MAX_QUESTION} caractères."
    if code and territory is None:
        errors["territory"] = "Territoire inconnu."
    phone = ""
    if phone_raw:
        from alerts.phones import InvalidPhone, normalise_phone

        try:
            phone = normalise_phone(phone_raw, mobile_only=True)
        except InvalidPhone:
            errors["phone"] = "Numéro de mobile non reconnu (exemple : 06 12 34 56 78)."
    question: dict[str, Any] = {"text": text, "phone": phone_raw, "errors": errors, "reply": "", "status": ""}
    status = 400 if errors else 200
    if not errors and not await QuestionLimits(crieur.store.db).allow(client_of(request), phone):
        question["status"], question["reply"], status = "limited", TOO_MANY, 429
    elif not errors:
        citizens = getattr(crieur, "citizens", None)
        if citizens is None or not hasattr(citizens, "ask"):
            question["status"], question["reply"], status = "unavailable", UNAVAILABLE, 503
        else:
            try:
                from alerts.citizens import Thread

                # an asker who left a mobile number gets the team's answer by SMS
                thread = Thread("web", channel=crieur.config.sms_channel if phone else "", recipient=phone)
                answer = await citizens.ask(
                    channel="web",
                    sender=phone,
                    text=text,
                    territories=[territory.code] if territory else [],
                    thread=thread,
                )
                question["status"], question["reply"] = "answered", str((answer or {}).get("reply", ""))
                question["text"] = ""
            except Exception:
                log.exception("question from the web form could not be handled")
                question["status"], question["reply"], status = "unavailable", UNAVAILABLE, 503
    context = await _page_context(crieur, territory)
    context["wall"] = None
    response = render(request, "public.html", status=status, **context, question=question)
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------------------------------- feeds


def _feed_context(crieur: Any) -> FeedContext:
    return FeedContext(site.public_url(crieur), crieur.config.name, site.territories(crieur))


def _xml(body: bytes, media_type: str, etag: str) -> web.StreamResponse:
    response = web.Response(body=body, content_type=media_type, charset="utf-8")
    return site.with_cache_headers(response, etag)


async def atom_all(request: web.Request) -> web.StreamResponse:
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    crieur = request.app[CRIEUR]
    alerts = await site.recent_alerts(crieur)
    body = atom_feed(_feed_context(crieur), alerts, path=request.path, title=f"Alertes — {crieur.config.name}")
    return _xml(body, ATOM_MEDIA_TYPE, etag)


async def atom_territory(request: web.Request) -> web.StreamResponse:
    return await _territory_feed(request, "Alertes routières", cap_index=False)


async def cap_index(request: web.Request) -> web.StreamResponse:
    """The Atom index of a territory's CAP messages (each entry links to /alertes/ID.cap.xml)."""
    return await _territory_feed(request, "Alertes CAP", cap_index=True)


async def exercise_cap_index(request: web.Request) -> web.StreamResponse:
    """The Atom index of a territory's exercise CAP messages (each with status Exercise)."""
    return await _territory_feed(request, "EXERCICE — Messages CAP", cap_index=True, exercises="only")


async def _territory_feed(
    request: web.Request, title: str, *, cap_index: bool, exercises: str = "none"
) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    territory = _territory_or_404(crieur, request.match_info["code"])
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    alerts = await site.recent_alerts(crieur, territory.code, exercises=exercises)
    body = atom_feed(
        _feed_context(crieur), alerts, path=request.path, title=f"{title} — {territory.name}", cap_index=cap_index
    )
    return _xml(body, ATOM_MEDIA_TYPE, etag)


async def cap_message(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    alert_id = site.parse_id(request.match_info["id"])
    if alert_id is None:
        raise web.HTTPNotFound(text="Alerte inconnue")
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    alert = await crieur.store.alert(alert_id)
    if alert is None or not site.shown_by_id(crieur, alert):
        raise web.HTTPNotFound(text="Alerte inconnue")
    superseded = await crieur.store.alert(alert.supersedes) if alert.supersedes is not None else None
    if superseded is not None and superseded.status not in site.PUBLIC_STATUSES:
        superseded = None
    body = cap_alert(_feed_context(crieur), alert, superseded, await source_item(crieur, alert))
    return _xml(body, CAP_MEDIA_TYPE, etag)


# ------------------------------------------------------------------------------------------- health


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and, if this process ingests, its source loop still runs."""
    crieur = request.app[CRIEUR]
    problems = []
    try:
        await crieur.store.db.fetchval("SELECT 1")
    except Exception:  # the details go to the log, not to whoever asks
        log.exception("readiness: the database does not answer")
        problems.append("database: unavailable")
    loop = getattr(crieur, "source_loop", None)
    if loop is not None:
        task = next((t for t in getattr(crieur, "_tasks", []) if t.get_name() == "sources"), None)
        task = getattr(loop, "task", None) or task
        if task is not None and task.done():
            problems.append("sources: the ingest loop has stopped")
    if problems:
        return web.Response(status=503, text="\n".join(problems))
    return web.Response(text="ready")
