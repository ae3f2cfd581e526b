"""The community managers' console (/console): login, dashboard, compose with preview, approvals, episodes,
users and the audit log.

Every /console request but the login page needs a session (else 302 to the login page); every POST needs
the session's CSRF token (form field `csrf` or header X-CSRF-Token), else 403. The login form, which has no
session yet, is protected by a double-submit token in a SameSite=Strict cookie.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import secrets
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Awaitable, Callable, Sequence

from aiohttp import web
from yarl import URL

from alerts.domain import Alert, AlertStatus, MsgType, Severity
from alerts.errors import AlertNotFound, NotAwaitingApproval
from alerts.seams import ConsoleService
from alerts.security import client_of

from . import accounts, attention, delivery_progress, near_duplicates, now_view, site, source_health
from .accounts import AccountError, Session
from .rendering import render
from .site import CRIEUR, LOGIN_NAME, SECURE_COOKIES, SESSION

log = logging.getLogger("crieur.web.console")

SESSION_COOKIE = "crieur_session"
LOGIN_COOKIE = "crieur_login"
MAX_TEXT = 2000
MESSAGES = {
    "published": "Alerte publiée : l'envoi est en cours.",
    "pending": "Alerte enregistrée : elle attend une validation.",
    "approved": "Alerte validée et publiée.",
    "rejected": "Alerte rejetée.",
    "ended": "Fin d'alerte publiée.",
    "updated": "Mise à jour publiée, à la suite de l'alerte précédente.",
    "episode-started": "Épisode neigeux ouvert.",
    "episode-ended": "Épisode neigeux clos.",
    "user-added": "Compte créé.",
    "rules-reloaded": "Règles rechargées.",
    "not-pending": "Cette alerte n'attend plus de validation.",
    "not-found": "Alerte introuvable.",
    "not-published": "Cette alerte n'est pas en cours.",
}
QUESTION_STATES = {
    "new": "nouvelle",
    "answered": "répondue automatiquement",
    "escalated": "transmise à l'autorité",
    "queued": "à traiter par l'équipe",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STREAMS: web.AppKey[attention.Streams] = web.AppKey("console_streams", attention.Streams)
EVENT_CHECK_SECONDS = 2.0  # how often an open /console/events stream looks for something new
EVENT_STREAM_SECONDS = 300.0  # then the browser reconnects (and its session is checked again)
HEARTBEAT_SECONDS = 15.0
RECEIPTS_SHOWN = 500  # recipients listed per page view (the counts cover all of them)
# Pages whose requests compute the attention badge themselves (or need none).
NO_BADGE = ("/console/events", "/console/attention", "/console/preview")


def setup(app: web.Application) -> None:
    streams = attention.Streams()
    app[STREAMS] = streams
    app.on_shutdown.append(streams.on_shutdown)
    r = app.router
    r.add_get("/console/login", login_form)
    r.add_post("/console/login", login_submit)
    r.add_post("/console/logout", logout)
    r.add_get("/console", dashboard)
    r.add_get("/console/", dashboard)
    r.add_get("/console/now", now_page)
    r.add_get("/console/attention", attention_json)
    r.add_post("/console/attention/seen", attention_seen)
    r.add_get("/console/events", attention_events)
    r.add_get("/console/compose", compose_form)
    r.add_post("/console/compose", compose_submit)
    r.add_post("/console/preview", preview_fragment)
    r.add_post("/console/alerts/{id:" + site.ID_PATTERN + "}/{action:approve|reject|end}", alert_action)
    r.add_get("/console/alerts/{id:" + site.ID_PATTERN + "}/receipts", receipts_page)
    r.add_get("/console/alerts/{id:" + site.ID_PATTERN + "}/failures", failures_page)
    r.add_post("/console/episodes", episode_action)
    r.add_get("/console/users", users_page)
    r.add_post("/console/users", users_add)
    r.add_get("/console/audit", audit_page)
    r.add_post("/console/rules/reload", rules_reload)


# ------------------------------------------------------------------------------------------- guards


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not (path == "/console" or path.startswith("/console/")) or path == "/console/login":
        return await handler(request)
    crieur = request.app[CRIEUR]
    session = await accounts.session(crieur.store, request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        raise web.HTTPFound("/console/login")
    if request.method not in ("GET", "HEAD"):
        given = request.headers.get("X-CSRF-Token")
        if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            given = str((await request.post()).get("csrf", ""))
        if not accounts.csrf_ok(session.csrf, given):
            await accounts.audit(
                crieur.store, session.user.username, "csrf-refused", path, initials=session.user.initials
            )
            raise web.HTTPForbidden(text="Jeton CSRF absent ou invalide : rechargez la page et recommencez.")
    request[SESSION] = session
    if request.method == "GET" and path not in NO_BADGE:
        request[attention.ATTENTION] = await attention.gather(crieur, session.user.username)
    response = await handler(request)
    response.headers["Cache-Control"] = "no-store"
    return response


def _session(request: web.Request) -> Session:
    return request[SESSION]


def _require(request: web.Request, permission: str) -> Session:
    session = _session(request)
    if not session.user.can(permission):
        raise web.HTTPForbidden(text="Votre rôle ne permet pas cette action.")
    return session


async def _audit(request: web.Request, action: str, target: str = "", detail: str = "") -> None:
    """An audit entry by the session's account, with the initials it signs with."""
    user = _session(request).user
    await accounts.audit(request.app[CRIEUR].store, user.username, action, target, detail, initials=user.initials)


def _back(path: str, **query: Any) -> web.HTTPSeeOther:
    location = URL(path).with_query({k: str(v) for k, v in query.items() if v is not None})
    return web.HTTPSeeOther(str(location))


def _flash(request: web.Request) -> str:
    return MESSAGES.get(request.query.get("msg", ""), "")


# ------------------------------------------------------------------------------------------- login


async def login_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "console_login.html",
        status=status,
        login_csrf=token,
        error=error,
        username=request.get(LOGIN_NAME, ""),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path="/console/login",
        httponly=True,
        samesite="Strict",
        secure=request.app[SECURE_COOKIES],
        max_age=3600,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    form = await request.post()
    if not accounts.csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="Jeton CSRF absent ou invalide : rechargez la page de connexion.")
    username = str(form.get("username", "")).strip().lower()
    request[LOGIN_NAME] = username
    address = client_of(request)
    result = await accounts.login(crieur.store, username, str(form.get("password", "")), address=address)
    if result.session is None:
        await accounts.audit(crieur.store, username or "?", f"login-{result.reason}", address)
        if result.reason == "busy":
            response = await login_form(
                request, error="Le serveur est très sollicité : réessayez dans un instant.", status=503
            )
            response.headers["Retry-After"] = "5"
            return response
        if result.retry_at is None:
            return await login_form(request, error="Identifiant ou mot de passe incorrect.", status=401)
        wait = max(1, math.ceil(result.retry_at - time.time()))
        later = f"Trop d'essais depuis cette adresse : réessayez dans {wait} seconde{'s' if wait > 1 else ''}."
        if result.reason == "throttled":
            response = await login_form(request, error=later, status=429)
        else:
            response = await login_form(request, error=f"Identifiant ou mot de passe incorrect. {later}", status=401)
        response.headers["Retry-After"] = str(wait)
        return response
    await accounts.audit(crieur.store, username, "login", address, initials=result.session.user.initials)
    response = web.HTTPSeeOther("/console")
    response.set_cookie(
        SESSION_COOKIE,
        result.session.token,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=request.app[SECURE_COOKIES],
        max_age=accounts.SESSION_SECONDS,
    )
    response.del_cookie(LOGIN_COOKIE, path="/console/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    session = _session(request)
    await accounts.end_session(crieur.store, session.token)
    await _audit(request, "logout")
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


# ------------------------------------------------------------------------------------------- dashboard


async def dashboard(request: web.Request) -> web.Response:
    crieur = request.app[CRIEUR]
    store = crieur.store
    username = _session(request).user.username
    known = site.territories(crieur)
    episodes = {row["territory"]: row for row in await store.episodes()}
    questions = await store.questions(limit=20)
    # the dashboard shows the questions: they are seen now, and the ones new to this CM are marked
    before = request.get(attention.ATTENTION)
    seen_before = before.seen_question_id if before is not None else 0
    await attention.mark_seen(store, username, max((q["id"] for q in questions), default=0))
    request[attention.ATTENTION] = await attention.gather(crieur, username)
    return render(
        request,
        "console_dashboard.html",
        flash=_flash(request),
        current=await site.current_alerts(crieur),
        pending=await store.alerts((AlertStatus.PENDING_APPROVAL,), limit=50),
        territories=known,
        episodes=episodes,
        progress=await delivery_progress.recent(store),
        sources=source_health.views(await store.source_states(), getattr(crieur.config, "sources", ())),
        questions=questions,
        new_question_ids={q["id"] for q in questions if q["id"] > seen_before},
        question_states=QUESTION_STATES,
        escalations=await store.escalations(limit=20),
        page="dashboard",
    )


async def now_page(request: web.Request) -> web.Response:
    """ "En ce moment" for one territory (?territoire=41; the first configured one by default)."""
    crieur = request.app[CRIEUR]
    known = site.territories(crieur)
    code = request.query.get("territoire", "")
    chosen = next((t for t in known if t.code == code), None) if code else (known[0] if known else None)
    if chosen is None:
        raise web.HTTPNotFound(text=f"Territoire inconnu : {code}" if code else "Aucun territoire configuré.")
    return render(
        request, "console_now.html", now=await now_view.territory_now(crieur, chosen), territories=known, page="now"
    )


async def attention_json(request: web.Request) -> web.Response:
    """The badge's state as JSON, for browsers without server-sent events (polled by console.js)."""
    found = await attention.gather(request.app[CRIEUR], _session(request).user.username)
    return web.json_response(found.as_json())


async def attention_seen(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    found = await attention.gather(crieur, _session(request).user.username)
    await attention.mark_seen(crieur.store, _session(request).user.username, found.latest_question_id)
    raise _back("/console")


async def attention_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the badge's state whenever it changes (checked every EVENT_CHECK_SECONDS),
    a comment line as heartbeat. Ends after EVENT_STREAM_SECONDS, when the session ends, or at shutdown;
    the browser's EventSource reconnects by itself."""
    crieur = request.app[CRIEUR]
    session = _session(request)
    closing = request.app[STREAMS].closing
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    started = last_write = loop.time()
    last = b""
    try:
        await response.write(b"retry: 3000\n\n")
        while not closing.is_set() and loop.time() - started < EVENT_STREAM_SECONDS:
            if await accounts.session(crieur.store, session.token) is None:
                break  # logged out or expired: the reconnection will meet the login page
            payload = attention.event(await attention.gather(crieur, session.user.username))
            if payload != last:
                await response.write(payload)
                last, last_write = payload, loop.time()
            elif loop.time() - last_write >= HEARTBEAT_SECONDS:
                await response.write(b": ping\n\n")
                last_write = loop.time()
            try:
                await asyncio.wait_for(closing.wait(), EVENT_CHECK_SECONDS)
            except TimeoutError:
                pass
    except ConnectionError:  # the browser went away
        pass
    return response


async def alert_action(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    session = _session(request)
    action = request.match_info["action"]
    alert_id = site.parse_id(request.match_info["id"])
    if alert_id is None:
        raise _back("/console", msg="not-found")
    username = session.user.username
    if action in ("approve", "reject"):
        _require(request, "approve")
    try:
        if action == "approve":
            await crieur.approve(alert_id, by=username)
            message = "approved"
        elif action == "reject":
            await crieur.reject(alert_id, by=username)
            message = "rejected"
        else:
            alert = await crieur.store.alert(alert_id)
            if alert is None:
                raise AlertNotFound(f"no alert {alert_id}")
            if alert.status is not AlertStatus.PUBLISHED:
                raise _back("/console", msg="not-published")
            text = str((await request.post()).get("text", "")).strip()[:MAX_TEXT]
            await crieur.end_alert(alert_id, by=username, text=text)
            message = "ended"
    except AlertNotFound:
        raise _back("/console", msg="not-found") from None
    except NotAwaitingApproval:
        raise _back("/console", msg="not-pending") from None
    await _audit(request, action, f"alert:{alert_id}")
    raise _back("/console", msg=message)


async def receipts_page(request: web.Request) -> web.Response:
    """Per recipient of one alert: delivered, failed with the carrier's or provider's reason, put aside
    (linked from "Progression des envois"); ?vue= picks one view (delivery_progress.VIEWS_FR)."""
    crieur = request.app[CRIEUR]
    alert_id = site.parse_id(request.match_info["id"])
    if alert_id is None:
        raise web.HTTPNotFound(text="Alerte inconnue.")
    view = request.query.get("vue", "all")
    if view not in delivery_progress.VIEWS_FR:
        raise web.HTTPBadRequest(text=f"Vue inconnue : {view} ({', '.join(delivery_progress.VIEWS_FR)}).")
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for row in await delivery_progress.recipients(crieur.store, alert_id, view, RECEIPTS_SHOWN):
        by_channel.setdefault(row["channel"], []).append(row)
    return render(
        request,
        "console_receipts.html",
        alert_id=alert_id,
        alert=await crieur.store.alert(alert_id),
        by_channel=by_channel,
        view=view,
        views=delivery_progress.VIEWS_FR,
        counts=await crieur.store.outbox.recipient_counts(alert_id),
        shown=RECEIPTS_SHOWN,
        page="dashboard",
    )


async def failures_page(request: web.Request) -> web.StreamResponse:
    """The former failures page: the receipts page's failures view."""
    raise web.HTTPMovedPermanently(f"/console/alerts/{request.match_info['id']}/receipts?vue=failed")


async def episode_action(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    session = _session(request)
    form = await request.post()
    code = str(form.get("territory", ""))
    start = form.get("action") == "start"
    if site.territory(crieur, code) is None:
        raise web.HTTPBadRequest(text=f"Territoire inconnu : {code}")
    reason = str(form.get("reason", "")).strip()[:200]
    by = session.user.username
    if start:
        await crieur.start_episode(code, by=by, reason=reason)
    else:
        await crieur.end_episode(code, by=by, reason=reason)
    await _audit(request, "episode-start" if start else "episode-end", f"territory:{code}", reason)
    raise _back("/console", msg="episode-started" if start else "episode-ended")


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


# ------------------------------------------------------------------------------------------- compose


def _channel_names(crieur: Any) -> list[str]:
    return list(crieur.config.channels)


def _read_compose(crieur: Any, form: Any, session: Session) -> tuple[dict[str, Any], dict[str, str]]:
    known = {t.code for t in site.territories(crieur)}
    channels = set(_channel_names(crieur))
    draft = {
        "title": str(form.get("title", "")).strip()[:200],
        "text": str(form.get("text", "")).strip(),
        "territories": [c for c in form.getall("territories", []) if c in known],
        "channels": [c for c in form.getall("channels", []) if c in channels],
        "severity": str(form.get("severity", "2")),
        # every post is signed by the person who wrote it: an emptied field falls back to their initials
        "signature": str(form.get("signature", "")).strip()[:20] or session.user.initials,
    }
    errors = {}
    if not draft["text"]:
        errors["text"] = "Écrivez le texte de l'alerte."
    elif len(draft["text"]) > MAX_TEXT:
        errors["text"] = f"Le texte dépasse {MAX_TEXT} caractères."
    if not draft["territories"]:
        errors["territories"] = "Choisissez au moins un territoire."
    if not draft["channels"]:
        errors["channels"] = "Choisissez au moins un canal."
    if draft["severity"] not in {str(int(s)) for s in Severity}:
        errors["severity"] = "Sévérité inconnue."
    return draft, errors


async def _preview(crieur: Any, draft: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Per-channel rendering from the rules engine (crieur.preview), or why there is none."""
    if not draft["text"] or not draft["territories"] or not draft["channels"]:
        return [], ""
    preview = getattr(crieur, "preview", None)
    if not callable(preview):
        return [], "La prévisualisation n'est pas disponible sur ce serveur."
    try:
        rows = await _maybe_await(
            preview(draft["text"], draft["territories"], draft["channels"], draft["signature"], draft["title"])
        )
    except Exception as exc:
        log.exception("preview failed")
        return [], f"La prévisualisation a échoué : {exc}"
    return [_preview_row(row, crieur.config.channels.get(str(row.get("channel", "")), {})) for row in rows or []], ""


def segment_price(channel: str, options: dict[str, Any]) -> float | None:
    """The configured price of one SMS segment in euros (channels.<name>.price_per_segment), or None.
    A value that is not a price raises ValueError naming the setting."""
    value = options.get("price_per_segment")
    if value is None or value == "":
        return None
    try:
        price = float(str(value).replace(",", "."))
    except ValueError:
        price = -1.0
    if not price >= 0:
        raise ValueError(f"channels.{channel}.price_per_segment : {value!r} n'est pas un prix en euros (ex. 0.0725)")
    return price


def euros(amount: float) -> str:
    """ "1 234,56 €", as French invoices write it."""
    rounded = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)  # cents as invoiced
    whole, cents = f"{rounded:,.2f}".split(".")
    return whole.replace(",", "\u202f") + "," + cents + "\u00a0€"


def _preview_row(row: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One channel's preview with every key the template reads (the engine leaves some out: no
    subscribers for a post, no length when rendering failed, whose reason is in "error"), and the cost
    in euros of an SMS sent to every subscriber when the channel has a price per segment."""
    text = str(row.get("text") or "")
    error = str(row.get("error") or "")
    billed = (row.get("segments") or 0) * (row.get("subscribers") or 0) if row.get("encoding") else 0
    cost, price_error = None, ""
    try:
        price = segment_price(str(row.get("channel", "")), options or {})
    except ValueError as exc:
        price, price_error = None, f"Coût en euros inconnu : {exc}"
    if price is not None and billed:
        cost = billed * price
    return {
        "channel": str(row.get("channel", "")),
        "kind": str(row.get("kind", "")),
        "text": text,
        "length": row.get("length") if row.get("length") is not None else len(text),
        "max_length": row.get("max_length"),
        "segments": row.get("segments"),
        "encoding": row.get("encoding"),
        "subscribers": row.get("subscribers"),
        "duration_s": row.get("duration_s"),
        "billed": billed,
        "cost": cost,
        "price_error": price_error,
        "error": error,
        "audience": str(row.get("audience") or ""),
    }


def _compose_context(crieur: Any, session: Session, draft: dict[str, Any] | None) -> dict[str, Any]:
    draft = draft or {
        "title": "",
        "text": "",
        "territories": [],
        "channels": _channel_names(crieur),
        "severity": "2",
        "signature": session.user.initials,
    }
    known = site.territories(crieur)
    hashtags = [t.hashtag for t in known if t.code in draft["territories"]]
    return {
        "draft": draft,
        "territories": known,
        "channels": _channel_names(crieur),
        "hashtags": hashtags,
        "severities": [(str(int(s)), site.SEVERITY_FR[int(s)]) for s in Severity],
        "page": "compose",
    }


async def compose_form(request: web.Request) -> web.Response:
    crieur = request.app[CRIEUR]
    context = _compose_context(crieur, _session(request), None)
    return render(request, "console_compose.html", errors={}, preview=[], preview_error="", duplicate=None, **context)


async def compose_submit(request: web.Request) -> web.StreamResponse:
    """Preview (the no-script path), send, or update a published alert. A send that nearly repeats an
    alert still out is held once: the CM chooses to update that alert or to send a new one anyway."""
    crieur = request.app[CRIEUR]
    session = _session(request)
    form = await request.post()
    action = str(form.get("action", ""))
    draft, errors = _read_compose(crieur, form, session)
    duplicate = await near_duplicates.check(crieur.store, draft) if not errors.get("text") else None
    if action == "update" and not errors:
        previous = await _updatable(crieur, str(form.get("supersedes", "")))
        if previous is None:
            errors["supersedes"] = "L'alerte à mettre à jour n'est plus en cours : envoyez une nouvelle alerte."
        else:
            stored = await _publish_update(crieur, draft, previous, session.user.username)
            await _audit(
                request,
                "publish-update",
                f"alert:{stored.id}",
                f"met à jour alert:{previous.id}, signé {draft['signature'] or '—'} : {draft['text'][:200]}",
            )
            raise _back("/console", msg="updated")
    if action in ("send", "send-anyway") and not errors and (duplicate is None or action == "send-anyway"):
        alert = _compose_alert(crieur, draft)
        stored = await crieur.publish(alert, created_by=session.user.username)
        await _audit(
            request,
            "publish",
            f"alert:{stored.id}",
            f"{','.join(draft['territories'])} →"
            f" {','.join(draft['channels'])}, signé {draft['signature'] or '—'} : {draft['text'][:200]}",
        )
        raise _back("/console", msg="published" if stored.status is AlertStatus.PUBLISHED else "pending")
    preview, preview_error = await _preview(crieur, draft) if not errors.get("text") else ([], "")
    context = _compose_context(crieur, session, draft)
    if errors and action in ("send", "send-anyway", "update"):
        status = 400
    elif duplicate is not None and action == "send":
        status = 409  # held: the warning and its two choices are on the page
    else:
        status = 200
    request[attention.ATTENTION] = await attention.gather(crieur, session.user.username)
    return render(
        request,
        "console_compose.html",
        status=status,
        errors=errors,
        preview=preview,
        preview_error=preview_error,
        duplicate=duplicate,
        **context,
    )


async def _updatable(crieur: Any, alert_id: str) -> Alert | None:
    """The published alert a CM asked to update, or None."""
    if not alert_id.isdigit():
        return None
    alert = await crieur.store.alert(int(alert_id))
    return alert if alert is not None and alert.status is AlertStatus.PUBLISHED else None


async def _publish_update(crieur: Any, draft: dict[str, Any], previous: Alert, username: str) -> Alert:
    """The draft as a "MISE À JOUR" of `previous`, threaded under it on every channel that threads; the
    previous alert ends (as an update from a source does, Crieur.process)."""
    alert = _compose_alert(crieur, draft)
    alert.msg_type = MsgType.UPDATE
    alert.supersedes = previous.id
    await crieur.store.set_alert_status(previous.id, AlertStatus.ENDED)
    return await crieur.publish(alert, created_by=username)


def _compose_alert(crieur: ConsoleService, draft: dict[str, Any]) -> Alert:
    """The Alert a CM sends, built by the service (`crieur.compose`, which knows the channels' templates)."""
    alert = crieur.compose(draft["text"], draft["territories"], draft["channels"], draft["signature"], draft["title"])
    alert.severity = Severity(int(draft["severity"]))
    alert.status = AlertStatus.PUBLISHED
    return alert


async def preview_fragment(request: web.Request) -> web.Response:
    """The preview block alone, for the compose page's script (same template as the no-JS page)."""
    crieur = request.app[CRIEUR]
    session = _session(request)
    draft, errors = _read_compose(crieur, await request.post(), session)
    preview, preview_error = await _preview(crieur, draft)
    duplicate = await near_duplicates.check(crieur.store, draft) if not errors.get("text") else None
    context = _compose_context(crieur, session, draft)
    return render(
        request,
        "console_preview.html",
        preview=preview,
        preview_error=preview_error,
        errors=errors,
        duplicate=duplicate,
        **context,
    )


# ------------------------------------------------------------------------------------------- admin


async def users_page(
    request: web.Request, *, error: str = "", status: int = 200, flash: str = "", rules_report: Sequence[str] = ()
) -> web.Response:
    _require(request, "admin")
    crieur = request.app[CRIEUR]
    return render(
        request,
        "console_users.html",
        status=status,
        users=await accounts.users(crieur.store),
        roles=accounts.ROLES,
        error=error,
        flash=flash or _flash(request),
        page="users",
        rules_report=rules_report,
    )


async def users_add(request: web.Request) -> web.StreamResponse:
    session = _require(request, "admin")
    crieur = request.app[CRIEUR]
    form = await request.post()
    try:
        user = await accounts.add_user(
            crieur.store,
            str(form.get("username", "")),
            str(form.get("password", "")),
            str(form.get("role", "")),
            str(form.get("initials", "")),
        )
    except AccountError as exc:
        return await users_page(request, error=str(exc), status=400)
    await accounts.audit(crieur.store, session.user.username, "user-add", f"user:{user.username}", user.role)
    raise _back("/console/users", msg="user-added")


async def rules_reload(request: web.Request) -> web.StreamResponse:
    """Re-read rules, territories and templates (as SIGHUP does); on error the rules in force stay and the
    errors, with file:line:column, are shown."""
    session = _require(request, "admin")
    crieur = request.app[CRIEUR]
    errors = await crieur.reload_rules()
    await accounts.audit(
        crieur.store, session.user.username, "rules-reload", "rules", "ok" if not errors else f"{len(errors)} error(s)"
    )
    from rules.report import french_report, stored_coverage  # what `crieur rules check` says, in French

    coverage = await stored_coverage(crieur.rules, crieur.store, crieur.config.sources)
    report = french_report(crieur.rules, coverage)
    if errors:
        return await users_page(
            request, error="Règles non rechargées, les précédentes restent en vigueur.", rules_report=report, status=400
        )
    return await users_page(request, flash=MESSAGES["rules-reloaded"], rules_report=report)


async def audit_page(request: web.Request) -> web.Response:
    _require(request, "admin")
    crieur = request.app[CRIEUR]
    return render(request, "console_audit.html", entries=await accounts.audit_log(crieur.store), page="audit")
