"""The subscription pages: the form under /t/CODE, the SMS code, the e-mail link's confirmation and the
one-click unsubscribe (alerts.citizens.subscriptions does the work; these pages only read forms and show
outcomes). No login and no CSRF token: the code and the signed links are what authenticates."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from alerts.phones import mask
from alerts.security import client_of

from . import site
from .rendering import render
from .site import CRIEUR

UNAVAILABLE = "L'abonnement est momentanément indisponible : merci de réessayer plus tard."
BAD_LINK = "Ce lien est invalide ou a expiré."


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/t/{code}/abonnement", form_page, name="subscribe")
    r.add_post("/t/{code}/abonnement", form_submit)
    r.add_get("/abonnement/code", code_page)
    r.add_post("/abonnement/code", code_submit)
    r.add_get("/abonnement/confirmer", confirm_page)
    r.add_post("/abonnement/confirmer", confirm_submit)
    r.add_get("/abonnement/desabonner", unsubscribe_page)
    r.add_post("/abonnement/desabonner", unsubscribe_submit)


def _subscriptions(request: web.Request) -> Any:
    citizens = getattr(request.app[CRIEUR], "citizens", None)
    if citizens is None:
        raise web.HTTPServiceUnavailable(text=UNAVAILABLE)
    return citizens.subscriptions


def _page(request: web.Request, heading: str, step: str = "", status: int = 200, **context: Any) -> web.Response:
    context.setdefault("message", "")
    context.setdefault("problem", "")
    context.setdefault("errors", {})
    context.setdefault("back", "/")
    response = render(request, "subscribe.html", status=status, heading=heading, step=step, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _territory(request: web.Request) -> site.TerritoryInfo:
    found = site.territory(request.app[CRIEUR], request.match_info["code"])
    if found is None:
        raise web.HTTPNotFound(text=f"Territoire inconnu : {request.match_info['code']}")
    return found


def _form(request: web.Request, territory: site.TerritoryInfo, values: dict[str, Any], **context: Any) -> web.Response:
    crieur = request.app[CRIEUR]
    number = site.sms_number(crieur)
    return _page(
        request,
        f"S'abonner aux alertes — {territory.name}",
        "form",
        territory=territory,
        form=values,
        consent=_subscriptions(request).consent(),
        sms_keyword=territory.sms_keyword if number else "",
        sms_number=number,
        back=f"/t/{territory.code}",
        **context,
    )


async def form_page(request: web.Request) -> web.Response:
    territory = _territory(request)
    return _form(request, territory, {"contact": "", "commune": "", "roads": "", "consent": False})


async def form_submit(request: web.Request) -> web.Response:
    territory = _territory(request)
    subscriptions = _subscriptions(request)
    data = await request.post()
    values = {
        "contact": str(data.get("contact", ""))[:254],
        "commune": str(data.get("commune", ""))[:80],
        "roads": str(data.get("roads", ""))[:80],
        "consent": data.get("consent") == "oui",
    }
    outcome = await subscriptions.ask(
        territory.code,
        values["contact"],
        values["commune"],
        values["roads"],
        consent=values["consent"],
        client=client_of(request),
    )
    if not outcome.ok:
        return _form(request, territory, values, errors=outcome.errors, status=400)
    if outcome.token:
        raise web.HTTPSeeOther(f"/abonnement/code?t={outcome.token}")
    return _page(request, "Vérifiez votre messagerie", message=outcome.message, back=f"/t/{territory.code}")


async def _code_form(request: web.Request, token: str, status: int = 200, **context: Any) -> web.Response:
    pending = await _subscriptions(request).code_page(token)
    if pending is None:
        return _page(request, "Confirmer l'abonnement", problem=BAD_LINK, status=404)
    return _page(
        request, "Confirmer l'abonnement", "code", status, token=token, phone=mask(pending["address"]), **context
    )


async def code_page(request: web.Request) -> web.Response:
    return await _code_form(request, request.query.get("t", ""))


async def code_submit(request: web.Request) -> web.Response:
    data = await request.post()
    token = str(data.get("t", ""))
    outcome = await _subscriptions(request).confirm_code(token, str(data.get("code", ""))[:16])
    if not outcome.ok:
        return await _code_form(request, token, status=400, errors=outcome.errors)
    return _page(request, "Abonnement confirmé", message=outcome.message)


async def confirm_page(request: web.Request) -> web.Response:
    """The e-mail's link: a button, so that a mail scanner opening the link confirms nothing."""
    token = request.query.get("t", "")
    pending = await _subscriptions(request).link_page(token)
    if pending is None:
        return _page(request, "Confirmer l'abonnement", problem=BAD_LINK, status=404)
    return _page(request, "Confirmer l'abonnement", "confirm", token=token, labels=pending["labels"])


async def confirm_submit(request: web.Request) -> web.Response:
    data = await request.post()
    outcome = await _subscriptions(request).confirm_link(str(data.get("t", "")))
    if not outcome.ok:
        return _page(request, "Confirmer l'abonnement", problem=BAD_LINK, status=404)
    return _page(request, "Abonnement confirmé", message=outcome.message)


async def unsubscribe_page(request: web.Request) -> web.Response:
    token = request.query.get("t", "")
    address = _subscriptions(request).unsubscribe_address(token)
    if address is None:
        return _page(request, "Se désabonner", problem=BAD_LINK, status=404)
    return _page(request, "Se désabonner", "unsubscribe", token=token, address=address)


async def unsubscribe_submit(request: web.Request) -> web.Response:
    """The page's button, or a mail client's one-click POST (RFC 8058: body "List-Unsubscribe=One-Click",
    sent to the URL of the List-Unsubscribe header, without cookies): the token is the authentication."""
    address = await _subscriptions(request).unsubscribe(request.query.get("t", ""))
    if address is None:
        return _page(request, "Se désabonner", problem=BAD_LINK, status=404)
    return _page(
        request,
        "Désabonnement confirmé",
        message=f"L'adresse {address} ne recevra plus nos alertes. Vous pouvez vous réabonner à tout moment.",
    )
