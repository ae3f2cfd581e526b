"""One alert's own page (/alertes/ID): its text, its map, and the Open Graph card social networks show."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from alerts.domain import Alert

from . import site
from .card import alert_card, card_alt
from .map import map_view
from .rendering import render
from .site import CRIEUR


def setup(app: web.Application) -> None:
    app.router.add_get(r"/alertes/{id:\d+}", alert_page, name="alert_page")
    app.router.add_get(r"/alertes/{id:\d+}/carte.png", alert_card_png, name="alert_card")


async def public_alert(crieur: Any, alert_id: int) -> Alert:
    """A published (or ended, or expired) alert, else 404: pending and rejected ones never leave the console,
    an exercise only when a web channel carried it (site.shown_by_id)."""
    alert: Alert | None = await crieur.store.alert(alert_id)
    if alert is None or not site.shown_by_id(crieur, alert):
        raise web.HTTPNotFound(text="Alerte inconnue")
    return alert


async def alert_page(request: web.Request) -> web.StreamResponse:
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    crieur = request.app[CRIEUR]
    alert = await public_alert(crieur, int(request.match_info["id"]))
    known = site.territories(crieur)
    territory = next((t for t in known if t.code in alert.territories), None)
    shown = territory is not None and site.is_current(alert)
    view = (
        await map_view(crieur, territory, [alert] if shown else [], map_id=f"carte-{alert.id}") if territory else None
    )
    base = site.public_url(crieur)
    response = render(
        request,
        "alert.html",
        alert=alert,
        territory=territory,
        territories=known,
        communes=site.commune_names(alert, known),
        current=site.is_current(alert),
        map=view,
        page_url=f"{base}/alertes/{alert.id}",
        card_url=f"{base}/alertes/{alert.id}/carte.png",
        card_alt=card_alt(alert, view.marks if view else [], territory.name if territory else ""),
    )
    return site.with_cache_headers(response, etag)


async def alert_card_png(request: web.Request) -> web.StreamResponse:
    """The alert's PNG card (its Open Graph image)."""
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    crieur = request.app[CRIEUR]
    card = await alert_card(crieur, await public_alert(crieur, int(request.match_info["id"])))
    return site.with_cache_headers(web.Response(body=card.png, content_type=card.media_type), etag)
