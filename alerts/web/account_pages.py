"""The console's account pages besides the list (alerts.web.console.users_page): an admin disables,
enables, removes or unlocks an account or resets its password; every user changes their own password.
Each of these ends the sessions of the account concerned (a departed CM is out at once)."""

from __future__ import annotations

from aiohttp import web

from . import accounts, console
from .accounts import AccountError
from .rendering import render
from .site import CRIEUR

ACTIONS = ("disable", "enable", "remove", "unlock", "password")
console.MESSAGES.update(
    {
        "user-disable": "Compte désactivé : ses sessions sont fermées.",
        "user-enable": "Compte réactivé.",
        "user-remove": "Compte supprimé : ses sessions sont fermées.",
        "user-unlock": "Attente levée : le compte peut se connecter de nouveau.",
        "user-password": "Mot de passe changé : les sessions du compte sont fermées.",
    }
)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post(r"/console/users/{username:[a-z0-9][a-z0-9._-]{1,39}}/{action:" + "|".join(ACTIONS) + "}", user_action)
    r.add_get("/console/password", password_form)
    r.add_post("/console/password", password_submit)


async def user_action(request: web.Request) -> web.StreamResponse:
    session = console._require(request, "admin")
    store = request.app[CRIEUR].store
    username, action = request.match_info["username"], request.match_info["action"]
    if username == session.user.username and action in ("disable", "remove"):
        return await console.users_page(
            request,
            error="Vous ne pouvez pas désactiver ni supprimer votre propre "
            "compte : demandez-le à un autre administrateur.",
            status=400,
        )
    try:
        if action in ("disable", "enable"):
            await accounts.set_active(store, username, action == "enable")
        elif action == "remove":
            await accounts.remove_user(store, username)
        elif action == "unlock":
            await accounts.unlock_user(store, username)
        else:
            await accounts.set_password(store, username, str((await request.post()).get("password", "")))
    except AccountError as exc:
        return await console.users_page(request, error=_french(str(exc)), status=400)
    await accounts.audit(store, session.user.username, f"user-{action}", f"user:{username}")
    raise console._back("/console/users", msg=f"user-{action}")


async def password_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    return render(request, "console_password.html", status=status, error=error, page="password")


async def password_submit(request: web.Request) -> web.StreamResponse:
    session = console._session(request)
    store = request.app[CRIEUR].store
    form = await request.post()
    new = str(form.get("new", ""))
    if new != str(form.get("confirm", "")):
        return await password_form(request, error="Les deux nouveaux mots de passe diffèrent.", status=400)
    try:
        await accounts.change_own_password(store, session.user.username, str(form.get("current", "")), new)
    except AccountError as exc:
        return await password_form(request, error=_french(str(exc)), status=400)
    await accounts.audit(store, session.user.username, "password-change", f"user:{session.user.username}")
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(console.SESSION_COOKIE, path="/console")
    raise response


def _french(message: str) -> str:
    known: dict[str, str] = {
        "current password: incorrect": "Mot de passe actuel incorrect.",
        f"password: at least {accounts.MIN_PASSWORD_LENGTH} characters": f"Le mot de passe doit compter au moins {accounts.MIN_PASSWORD_LENGTH} caractères.",
        "server busy: try again in a moment": "Le serveur est très sollicité : réessayez dans un instant.",
    }
    if message.startswith("no user"):
        return "Ce compte n'existe pas."
    return known.get(message, message)
