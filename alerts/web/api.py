"""The public JSON API (/api/v1), described by the OpenAPI 3.1 document it serves itself."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from alerts.domain import web_link
from alerts.storage.records import alert_to_json

from . import site
from .site import CRIEUR

VOLATILE_CACHE = "no-cache"  # source health and progress change without any alert changing


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/alerts", list_alerts)
    r.add_get("/api/v1/alerts/{id}", get_alert)
    r.add_get("/api/v1/sources", sources)
    r.add_get("/api/v1/deliveries/progress", progress)
    r.add_get("/api/v1/openapi.json", openapi)


def _json(data: Any, status: int = 200) -> web.Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return web.Response(text=body, status=status, content_type="application/json", charset="utf-8")


def _problem(status: int, message: str) -> web.Response:
    response = _json({"error": message, "status": status}, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _alert_json(alert: Any, known: list[site.TerritoryInfo], publisher: str) -> dict[str, Any]:
    data = alert_to_json(alert)
    data["authority"] = alert.authority or publisher  # who issued it, always named
    data["relayed"] = bool(alert.authority and alert.authority != publisher)
    data["link"] = web_link(data.get("link"))
    data["communes"] = site.commune_names(alert, known)
    data["cap"] = f"/alertes/{alert.id}.cap.xml"
    return data


async def list_alerts(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    code = request.query.get("territory")
    if code is not None and site.territory(crieur, code) is None:
        return _problem(404, f"unknown territory {code!r}")
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    known = site.territories(crieur)
    alerts = await site.current_alerts(crieur, code)
    body = {
        "territory": code,
        "count": len(alerts),
        "alerts": [_alert_json(a, known, crieur.config.name) for a in alerts],
    }
    return site.with_cache_headers(_json(body), etag)


async def get_alert(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    alert_id = site.parse_id(request.match_info["id"])
    if alert_id is None:
        return _problem(404, "no such alert: an alert id is a whole number")
    etag, not_modified = await site.cached(request)
    if not_modified:
        return not_modified
    alert = await crieur.store.alert(alert_id)
    if alert is None or not site.shown_by_id(crieur, alert):
        return _problem(404, f"no alert {alert_id}")
    return site.with_cache_headers(_json(_alert_json(alert, site.territories(crieur), crieur.config.name)), etag)


def _by_content(request: web.Request, data: Any) -> web.Response:
    """A response whose ETag is its content's hash: still 304 for an unchanged answer."""
    response = _json(data)
    etag = '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'  # type: ignore[arg-type]
    headers = {"ETag": etag, "Cache-Control": VOLATILE_CACHE}
    if etag in [t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    response.headers.update(headers)
    return response


SOURCE_STATUSES = ("never", "ok", "not_modified", "error")


def public_source(name: str, state: dict[str, Any]) -> dict[str, Any]:
    """What the public may know of a source's health: whether it answers and when it last did. Never
    its raw error (internal host names, paths, provider messages), validators or failure counters."""
    status = str(state.get("last_status") or "never")
    return {
        "name": name,
        "status": status if status in SOURCE_STATUSES else "error",
        "last_success": state.get("last_success") if isinstance(state.get("last_success"), str) else None,
        "last_attempt": state.get("last_attempt") if isinstance(state.get("last_attempt"), str) else None,
    }


async def sources(request: web.Request) -> web.Response:
    states = await request.app[CRIEUR].store.source_states()
    return _by_content(request, {"sources": [public_source(name, state) for name, state in states.items()]})


async def progress(request: web.Request) -> web.Response:
    raw = request.query.get("alert")
    alert_id: int | None = None
    if raw is not None:
        alert_id = site.parse_id(raw)
        if alert_id is None:
            return _problem(400, "alert: expected an alert id (a whole number)")
    rows = await request.app[CRIEUR].store.progress(alert_id)
    return _by_content(request, {"alert": alert_id, "channels": rows})


async def openapi(request: web.Request) -> web.Response:
    crieur = request.app[CRIEUR]
    document = openapi_document(site.public_url(crieur), crieur.config.name)
    response = _json(document)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def openapi_document(server: str, title: str) -> dict[str, Any]:
    alert_ref = {"$ref": "#/components/schemas/Alert"}
    episode_ref = {"$ref": "#/components/schemas/Episode"}
    code_param = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
    not_modified = {"description": "Not modified since the ETag given in If-None-Match"}
    problem = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"Crieur — {title}",
            "version": "1.0.0",
            "description": "Alertes routières publiées (hiver, neige, verglas), santé des sources et progression "
            "des envois. Réponses en JSON UTF-8 ; ETag et If-None-Match pris en charge.",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": server or "/"}],
        "paths": {
            "/api/v1/alerts": {
                "get": {
                    "summary": "Current alerts (published, not expired), most severe first",
                    "operationId": "listAlerts",
                    "parameters": [
                        {
                            "name": "territory",
                            "in": "query",
                            "required": False,
                            "description": "Territory code, e.g. 41 (Loir-et-Cher)",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "Current alerts",
                            "headers": _cache_headers(),
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertList"}}},
                        },
                        "304": not_modified,
                        "404": problem,
                    },
                }
            },
            "/api/v1/alerts/{id}": {
                "get": {
                    "summary": "One published alert (current, ended or expired)",
                    "operationId": "getAlert",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "The alert",
                            "headers": _cache_headers(),
                            "content": {"application/json": {"schema": alert_ref}},
                        },
                        "304": not_modified,
                        "404": problem,
                    },
                }
            },
            "/api/v1/sources": {
                "get": {
                    "summary": "Health of each ingested source (last fetch, errors)",
                    "operationId": "listSources",
                    "responses": {
                        "200": {
                            "description": "Source states",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["sources"],
                                        "properties": {
                                            "sources": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["name", "status"],
                                                    "additionalProperties": False,
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "status": {"enum": list(SOURCE_STATUSES)},
                                                        "last_success": {
                                                            "type": ["string", "null"],
                                                            "format": "date-time",
                                                        },
                                                        "last_attempt": {
                                                            "type": ["string", "null"],
                                                            "format": "date-time",
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "304": not_modified,
                    },
                }
            },
            "/api/v1/episodes/{code}": {
                "get": {
                    "summary": "Every snow episode of a territory, newest first",
                    "operationId": "listEpisodes",
                    "parameters": [code_param],
                    "responses": {
                        "200": {
                            "description": "The territory's episodes",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["territory", "episodes"],
                                        "properties": {
                                            "territory": {"type": "string"},
                                            "episodes": {"type": "array", "items": episode_ref},
                                        },
                                    }
                                }
                            },
                        },
                        "404": {"description": "Unknown territory"},
                    },
                }
            },
            "/api/v1/episodes/{code}/timeline": {
                "get": {
                    "summary": "One snow episode in order: start, sources' items, the publisher's posts, end",
                    "operationId": "episodeTimeline",
                    "parameters": [
                        code_param,
                        {
                            "name": "episode",
                            "in": "query",
                            "required": False,
                            "description": "Episode id (listEpisodes); default: the current or last one",
                            "schema": {"type": "integer"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The timeline",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Timeline"}}},
                        },
                        "400": {"description": "episode is not a number"},
                        "404": {"description": "Unknown territory, or no such episode"},
                    },
                }
            },
            "/api/v1/deliveries/progress": {
                "get": {
                    "summary": "Fan-out progress per alert and channel",
                    "operationId": "deliveryProgress",
                    "parameters": [{"name": "alert", "in": "query", "required": False, "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "Progress",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Progress"}}},
                        },
                        "304": not_modified,
                        "400": problem,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Alert": {
                    "type": "object",
                    "required": ["id", "status", "msg_type", "title", "text", "territories", "severity"],
                    "properties": {
                        "id": {"type": "integer"},
                        "status": {"enum": ["published", "ended", "expired"]},
                        "msg_type": {"enum": ["Alert", "Update", "Cancel"]},
                        "title": {"type": "string"},
                        "text": {"type": "string"},
                        "territories": {"type": "array", "items": {"type": "string"}},
                        "hashtags": {"type": "array", "items": {"type": "string"}},
                        "severity": {"enum": ["Unknown", "Minor", "Moderate", "Severe", "Extreme"]},
                        "roads": {"type": "array", "items": {"type": "string"}, "examples": [["RD 957", "RN 10"]]},
                        "authority": {
                            "type": "string",
                            "description": "The authority that issued the alert "
                            "(the publisher itself for its own messages)",
                            "examples": ["Préfecture de Loir-et-Cher"],
                        },
                        "relayed": {
                            "type": "boolean",
                            "description": "true when the alert relays another authority's publication",
                        },
                        "communes": {"type": "array", "items": {"type": "string"}},
                        "link": {"type": "string"},
                        "expires": {"type": ["string", "null"], "format": "date-time"},
                        "supersedes": {"type": ["integer", "null"]},
                        "created_at": {"type": ["string", "null"], "format": "date-time"},
                        "updated_at": {"type": ["string", "null"], "format": "date-time"},
                        "cap": {"type": "string", "description": "Path of the CAP 1.2 message"},
                        "exercise": {
                            "type": "boolean",
                            "description": "true for an exercise message (shown only by id, never listed)",
                        },
                    },
                },
                "AlertList": {
                    "type": "object",
                    "required": ["count", "alerts"],
                    "properties": {
                        "territory": {"type": ["string", "null"]},
                        "count": {"type": "integer"},
                        "alerts": {"type": "array", "items": alert_ref},
                    },
                },
                "Progress": {
                    "type": "object",
                    "required": ["channels"],
                    "properties": {
                        "alert": {"type": ["integer", "null"]},
                        "channels": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "alert_id": {"type": "integer"},
                                    "channel": {"type": "string"},
                                    "total": {"type": "integer"},
                                    "sent": {"type": "integer"},
                                    "failed": {"type": "integer"},
                                    "queued": {"type": "integer"},
                                    "cancelled": {"type": "integer"},
                                    "rate_per_s": {"type": "number"},
                                    "eta_s": {"type": ["number", "null"]},
                                },
                            },
                        },
                    },
                },
                "Episode": {
                    "type": "object",
                    "required": ["id", "started_at", "active"],
                    "properties": {
                        "id": {"type": "integer"},
                        "started_at": {"type": "string", "format": "date-time"},
                        "ended_at": {"type": ["string", "null"], "format": "date-time"},
                        "active": {"type": "boolean"},
                        "started_by": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
                "Timeline": {
                    "type": "object",
                    "required": ["territory", "episode", "active", "entries", "episodes"],
                    "properties": {
                        "territory": {"type": "string"},
                        "episode": {"type": "integer"},
                        "active": {"type": "boolean"},
                        "started_at": {"type": "string", "format": "date-time"},
                        "ended_at": {"type": ["string", "null"], "format": "date-time"},
                        "entries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["at", "time", "kind", "title"],
                                "properties": {
                                    "at": {"type": "number", "description": "Unix time"},
                                    "time": {"type": "string", "format": "date-time"},
                                    "kind": {
                                        "enum": [
                                            "debut-episode",
                                            "vigilance",
                                            "etat-route",
                                            "publication",
                                            "publication-departement",
                                            "fin-episode",
                                        ]
                                    },
                                    "title": {"type": "string"},
                                },
                            },
                        },
                        "episodes": {"type": "array", "items": {"$ref": "#/components/schemas/Episode"}},
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                },
            }
        },
    }


def _cache_headers() -> dict[str, Any]:
    return {
        "ETag": {"schema": {"type": "string"}},
        "Cache-Control": {"schema": {"type": "string"}},
    }
