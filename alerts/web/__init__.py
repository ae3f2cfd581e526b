"""The web side of Crieur: citizens' pages, feeds, the JSON API and the community managers' console.

`make_app(crieur)` builds the aiohttp application; `Crieur.start()` serves it. Other parts add their own
routes (Twilio webhooks...) through `crieur.extra_routes(app)` without editing this package; they reach the service as `app[CRIEUR]`
(`from alerts.web import CRIEUR`).
"""

from __future__ import annotations

import pathlib
from typing import Any, Awaitable, Callable

import jinja2
from aiohttp import web

from alerts.domain import web_link
from alerts.security import RequestLimits, install_request_limits

from . import account_pages, alert_page, api, console, public, subscribe_pages, who_does_what
from .site import CRIEUR, SECURE_COOKIES, SEVERITY_FR, TEMPLATES, WALL, paris, paris_iso
from .wall import Wall

HERE = pathlib.Path(__file__).resolve().parent

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["paris"] = paris
    env.filters["paris_iso"] = paris_iso
    env.filters["web_link"] = web_link
    env.filters["severity_fr"] = lambda s: SEVERITY_FR.get(int(s), "Information")
    env.filters["euros"] = console.euros
    env.filters["severity_class"] = lambda s: ("info", "minor", "moderate", "severe", "extreme")[int(s)]
    return env


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def make_app(crieur: Any) -> web.Application:
    """The whole web application for a running (or test) Crieur, request limits included (the same app
    in production and in tests: the limits are part of what is tested)."""
    app = web.Application(middlewares=[security_headers, console.auth_middleware], client_max_size=256 * 1024)
    app[CRIEUR] = crieur
    app[TEMPLATES] = templates()
    app[WALL] = Wall(crieur)
    app[SECURE_COOKIES] = str(getattr(crieur.config, "public_url", "")).startswith("https://")
    public.setup(app)
    subscribe_pages.setup(app)
    who_does_what.setup(app)
    alert_page.setup(app)
    api.setup(app)
    console.setup(app)
    account_pages.setup(app)
    app.router.add_static("/static/", HERE / "static", name="static", append_version=True)
    extra = getattr(crieur, "extra_routes", None)
    if callable(extra):
        extra(app)
    trusted = tuple(getattr(crieur.config, "trusted_proxies", ()) or ())
    install_request_limits(app, RequestLimits(trusted_proxies=trusted))
    return app


__all__ = ["CRIEUR", "make_app"]
