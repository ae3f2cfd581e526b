"""The community managers' console (/console): login, dashboard, compose with preview, approvals, episodes,
users and the audit log.

Every /console request but the login page needs a session (else 302 to the login page); every POST needs
the session's CSRF token (form field `csrf` or header X-CSRF-Token), else 403. The login form, which has no
session yet, is protected by a double-submit token in a SameSite=Strict cookie.
"""

from __future__ import annotations

import inspect
import logging
import secrets
from typing import Any, Awaitable, Callable, Sequence

from aiohttp import web
from yarl import URL

from alerts.domain import Alert, AlertStatus, Severity
from alerts.errors import AlertNotFound, NotAwaitingApproval
from alerts.seams import ConsoleService

from . import accounts, site
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
    "episode-started": "Épisode neigeux ouvert.",
    "episode-ended": "Épisode neigeux clos.",
    "user-added": "Compte créé.",
    "rules-reloaded": "Règles rechargées.",
    "not-pending": "Cette alerte n'attend plus de validation.",
    "not-found": "Alerte introuvable.",
    "not-published": "Cette alerte n'est pas en cours.",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/login", login_form)
    r.add_post("/console/login", login_submit)
    r.add_post("/console/logout", logout)
    r.add_get("/console", dashboard)
    r.add_get("/console/", dashboard)
    r.add_get("/console/compose", compose_form)
    r.add_post("/console/compose", compose_submit)
    r.add_post("/console/preview", preview_fragment)
    r.add_post(r"/console/alerts/{id:\d+}/{action:approve|reject|end}", alert_action)
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
            await accounts.audit(crieur.store, session.user.username, "csrf-refused", path)
            raise web.HTTPForbidden(text="Jeton CSRF absent ou invalide : rechargez la page et recommencez.")
    request[SESSION] = session
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


def _back(path: str, **query: Any) -> web.HTTPSeeOther:
    location = URL(path).with_query({k: str(v) for k, v in query.items() if v is not None})
    return web.HTTPSeeOther(str(location))


def _flash(request: web.Request) -> str:
    return MESSAGES.get(request.query.get("msg", ""), "")


# ------------------------------------------------------------------------------------------- login


async def login_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "console_login.html", status=status, login_csrf=token, error=error,
                      username=request.get(LOGIN_NAME, ""))
    response.set_cookie(LOGIN_COOKIE, token, path="/console/login", httponly=True, samesite="Strict",
                        secure=request.app[SECURE_COOKIES], max_age=3600)
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    form = await request.post()
    if not accounts.csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="Jeton CSRF absent ou invalide : rechargez la page de connexion.")
    username = str(form.get("username", "")).strip().lower()
    request[LOGIN_NAME] = username
    result = await accounts.login(crieur.store, username, str(form.get("password", "")))
    if result.session is None:
        await accounts.audit(crieur.store, username or "?", f"login-{result.reason}", request.remote or "")
        if result.reason == "locked":
            message = (f"Trop d'essais : ce compte est bloqué jusqu'à {site.paris(result.locked_until)}"
                       " (heure de Paris).")
            return await login_form(request, error=message, status=429)
        return await login_form(request, error="Identifiant ou mot de passe incorrect.", status=401)
    await accounts.audit(crieur.store, username, "login", request.remote or "")
    response = web.HTTPSeeOther("/console")
    response.set_cookie(SESSION_COOKIE, result.session.token, path="/console", httponly=True, samesite="Strict",
                        secure=request.app[SECURE_COOKIES], max_age=accounts.SESSION_SECONDS)
    response.del_cookie(LOGIN_COOKIE, path="/console/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    session = _session(request)
    await accounts.end_session(crieur.store, session.token)
    await accounts.audit(crieur.store, session.user.username, "logout")
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


# ------------------------------------------------------------------------------------------- dashboard


async def dashboard(request: web.Request) -> web.Response:
    crieur = request.app[CRIEUR]
    store = crieur.store
    known = site.territories(crieur)
    episodes = {row["territory"]: row for row in await store.episodes()}
    return render(
        request,
        "console_dashboard.html",
        flash=_flash(request),
        current=await site.current_alerts(crieur),
        pending=await store.alerts((AlertStatus.PENDING_APPROVAL,), limit=50),
        territories=known,
        episodes=episodes,
        progress=await store.progress(),
        sources=await store.source_states(),
        questions=await store.questions(limit=20),
        escalations=await store.escalations(limit=20),
        page="dashboard",
    )


async def alert_action(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    session = _session(request)
    action = request.match_info["action"]
    alert_id = int(request.match_info["id"])
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
    await accounts.audit(crieur.store, username, action, f"alert:{alert_id}")
    raise _back("/console", msg=message)


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
    await accounts.audit(crieur.store, by, "episode-start" if start else "episode-end", f"territory:{code}", reason)
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
        "signature": str(form.get("signature", session.user.initials)).strip()[:20],
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
        rows = await _maybe_await(preview(draft["text"], draft["territories"], draft["channels"], draft["signature"]))
    except Exception as exc:
        log.exception("preview failed")
        return [], f"La prévisualisation a échoué : {exc}"
    return [_preview_row(row) for row in rows or []], ""


def _preview_row(row: dict[str, Any]) -> dict[str, Any]:
    """One channel's preview with every key the template reads (the engine leaves some out: no
    subscribers for a post, no length when rendering failed, whose reason is in "error")."""
    text = str(row.get("text") or "")
    return {
        "channel": str(row.get("channel", "")),
        "kind": str(row.get("kind", "")),
        "text": text,
        "length": row.get("length") if row.get("length") is not None else len(text),
        "max_length": row.get("max_length"),
        "segments": row.get("segments"),
        "encoding": row.get("encoding"),
        "subscribers": row.get("subscribers"),
        "audience": str(row.get("audience") or ""),
        "error": str(row.get("error") or ""),
    }


def _compose_context(crieur: Any, session: Session, draft: dict[str, Any] | None) -> dict[str, Any]:
    draft = draft or {"title": "", "text": "", "territories": [], "channels": _channel_names(crieur),
                      "severity": "2", "signature": session.user.initials}
    known = site.territories(crieur)
    hashtags = [t.hashtag for t in known if t.code in draft["territories"]]
    return {"draft": draft, "territories": known, "channels": _channel_names(crieur), "hashtags": hashtags,
            "severities": [(str(int(s)), site.SEVERITY_FR[int(s)]) for s in Severity], "page": "compose"}


async def compose_form(request: web.Request) -> web.Response:
    crieur = request.app[CRIEUR]
    context = _compose_context(crieur, _session(request), None)
    return render(request, "console_compose.html", errors={}, preview=[], preview_error="", **context)


async def compose_submit(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    session = _session(request)
    form = await request.post()
    draft, errors = _read_compose(crieur, form, session)
    if form.get("action") == "send" and not errors:
        alert = _compose_alert(crieur, draft)
        stored = await crieur.publish(alert, created_by=session.user.username)
        await accounts.audit(crieur.store, session.user.username, "publish", f"alert:{stored.id}",
                             f"{','.join(draft['territories'])} → {','.join(draft['channels'])}: {draft['text'][:200]}")
        raise _back("/console", msg="published" if stored.status is AlertStatus.PUBLISHED else "pending")
    preview, preview_error = await _preview(crieur, draft) if not errors.get("text") else ([], "")
    context = _compose_context(crieur, session, draft)
    status = 400 if errors and form.get("action") == "send" else 200
    return render(request, "console_compose.html", status=status, errors=errors, preview=preview,
                  preview_error=preview_error, **context)


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
    context = _compose_context(crieur, session, draft)
    return render(request, "console_preview.html", preview=preview, preview_error=preview_error, errors=errors,
                  **context)


# ------------------------------------------------------------------------------------------- admin


async def users_page(request: web.Request, *, error: str = "", status: int = 200, flash: str = "",
                     rules_report: Sequence[str] = ()) -> web.Response:
    _require(request, "admin")
    crieur = request.app[CRIEUR]
    return render(request, "console_users.html", status=status, users=await accounts.users(crieur.store),
                  roles=accounts.ROLES, error=error, flash=flash or _flash(request), page="users",
                  rules_report=rules_report)


async def users_add(request: web.Request) -> web.StreamResponse:
    session = _require(request, "admin")
    crieur = request.app[CRIEUR]
    form = await request.post()
    try:
        user = await accounts.add_user(crieur.store, str(form.get("username", "")), str(form.get("password", "")),
                                       str(form.get("role", "")), str(form.get("initials", "")))
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
    await accounts.audit(crieur.store, session.user.username, "rules-reload", "rules",
                         "ok" if not errors else f"{len(errors)} error(s)")
    from rules.report import french_report, stored_coverage  # what `crieur rules check` says, in French

    coverage = await stored_coverage(crieur.rules, crieur.store, crieur.config.sources)
    report = french_report(crieur.rules, coverage)
    if errors:
        return await users_page(request, error="Règles non rechargées, les précédentes restent en vigueur.",
                                rules_report=report, status=400)
    return await users_page(request, flash=MESSAGES["rules-reloaded"], rules_report=report)


async def audit_page(request: web.Request) -> web.Response:
    _require(request, "admin")
    crieur = request.app[CRIEUR]
    return render(request, "console_audit.html", entries=await accounts.audit_log(crieur.store), page="audit")
