"""Rendering a page of alerts/web/templates with what every page needs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .site import CRIEUR, TEMPLATES


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page from alerts/web/templates, with what every page needs (site name, session, CSRF token)."""
    crieur = request.app[CRIEUR]
    context.setdefault("site_name", getattr(crieur.config, "name", "Crieur"))
    context.setdefault("session", request.get("session"))
    context.setdefault("csrf", request["session"].csrf if request.get("session") else "")
    context.setdefault("static", lambda name: str(request.app.router["static"].url_for(filename=name)))
    body = request.app[TEMPLATES].get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
