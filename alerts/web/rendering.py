"""Rendering a page of alerts/web/templates with what every page needs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .attention import ATTENTION
from .site import CRIEUR, SESSION, TEMPLATES


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page from alerts/web/templates, with what every page needs (site name, session, CSRF token)."""
    crieur = request.app[CRIEUR]
    context.setdefault("site_name", getattr(crieur.config, "name", "Crieur"))
    session = request.get(SESSION)
    context.setdefault("session", session)
    context.setdefault("csrf", session.csrf if session is not None else "")
    context.setdefault("attention", request.get(ATTENTION))  # console pages: what needs the CM
    context.setdefault("static", lambda name: str(request.app.router["static"].url_for(filename=name)))
    body = request.app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
