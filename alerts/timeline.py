"""One snow episode's timeline (page /t/{code}/episode, API /api/v1/episodes/{code}/timeline): its start, what
the sources published meanwhile (vigilance colour changes, road states, arrêtés: every version received), the
Département's own posts (alerts, updates, ends), and its end, in order.

The episode is the territory's current one, else its last, or the one chosen (`?episode=ID`, from the list at
/api/v1/episodes/{code} and on the page; table `episode_history`); what arrived up to
`LEAD` before its start or after its end is included: the vigilance that opened it came just before, the
"fin d'alerte" its closing warning made just after. Exercises are
never shown (alerts.exercise).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .storage.records import alert_from_row, item_from_dict

LEAD = 15 * 60  # seconds before the start that belong to the episode
_COLOURS = {"1": "vert", "2": "jaune", "3": "orange", "4": "rouge"}
_PUBLIC = ("published", "ended", "expired")


def episode_summary(row: dict[str, Any]) -> dict[str, Any]:
    """One episode of the list: id, start, end (None while it is on), who started it and why."""
    return {
        "id": row["id"],
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
        "active": row["ended_at"] is None,
        "started_by": row["started_by"],
        "reason": row["reason"],
    }


async def episode_timeline(crieur: Any, territory: str, episode: int | None = None) -> dict[str, Any] | None:
    """The timeline of `territory`'s episode `episode`, by default its current or last one; None when there
    is no such episode."""
    store = crieur.store
    history = await store.episode_history(territory)
    row = next((r for r in history if episode is None or r["id"] == episode), None)
    if row is None:
        return None
    active = row["ended_at"] is None
    start, end = float(row["started_at"]), row["ended_at"]
    # what follows the end within LEAD is its aftermath (the "fin d'alerte" the ending warning made)
    until = float(end) + LEAD if not active else time.time()
    entries: list[dict[str, Any]] = [
        {
            "at": start,
            "kind": "debut-episode",
            "title": "Début de l'épisode neigeux",
            "by": row["started_by"],
            "detail": row["reason"],
        }
    ]
    territories = getattr(getattr(crieur, "rules", None), "territories", None)
    versions = await store.db.fetch(
        "SELECT v.received_at, v.version, i.source, i.data FROM item_versions v JOIN items i ON i.id = v.item_id"
        " WHERE v.received_at >= $1 AND v.received_at <= $2 ORDER BY v.received_at, v.id",
        start - LEAD,
        until,
    )
    for version in versions:
        item = item_from_dict(json.loads(version["data"]))
        if territories is not None and territory not in territories.resolve(item):
            continue
        entries.append(_item_entry(item, version))
    alerts = await store.db.fetch(
        "SELECT * FROM alerts WHERE created_at >= $1 AND created_at <= $2 ORDER BY id", start - LEAD, until
    )
    for alert_row in alerts:
        alert = alert_from_row(alert_row)
        if territory not in alert.territories or alert.exercise or alert.status.value not in _PUBLIC:
            continue
        entries.append(
            {
                "at": alert_row["created_at"],
                "kind": "publication-departement",
                "title": alert.title,
                "msg_type": alert.msg_type.value,
                "alert_id": alert.id,
                "channels": list(alert.channels),
                "detail": alert.text[:280],
            }
        )
    if not active:
        entries.append(
            {
                "at": float(end),
                "kind": "fin-episode",
                "title": "Fin de l'épisode neigeux",
                "by": row["ended_by"],
                "detail": row["end_reason"],
            }
        )
    entries.sort(key=lambda e: (e["at"], e["kind"] != "debut-episode"))
    for entry in entries:
        entry["time"] = datetime.fromtimestamp(entry["at"], timezone.utc).isoformat(timespec="seconds")
    return {
        "territory": territory,
        "episode": row["id"],
        "active": active,
        "started_at": _iso(start),
        "ended_at": _iso(end),
        "entries": entries,
        "episodes": [episode_summary(r) for r in history],  # every episode of the territory, newest first
    }


def _item_entry(item: Any, version: dict[str, Any]) -> dict[str, Any]:
    attributes = item.attributes
    entry: dict[str, Any] = {
        "at": version["received_at"],
        "source": version["source"],
        "title": item.title,
        "msg_type": item.msg_type.value,
        "authority": item.authority,
    }
    if "colour" in attributes:
        colour_id = str(version["version"]).rsplit(":", 1)[-1]  # vigilance versions end with the colour id
        entry.update(kind="vigilance", colour=_COLOURS.get(colour_id, attributes["colour"]))
    elif item.roads or attributes.get("record_type") or attributes.get("state"):
        entry.update(
            kind="etat-route",
            roads=[r.label for r in item.roads],
            code=str(attributes.get("state") or attributes.get("record_type") or ""),
        )
    else:
        entry.update(kind="publication", detail=item.text[:280])
    return entry


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds") if epoch else None


# ------------------------------------------------------------------------------------------ web


def install_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/episodes/{code}", episodes_api)
    app.router.add_get("/api/v1/episodes/{code}/timeline", timeline_api)
    app.router.add_get("/t/{code}/episode", timeline_page)


def _territory_code(request: web.Request) -> str:
    from .web.site import CRIEUR, territory

    code = request.match_info["code"]
    if territory(request.app[CRIEUR], code) is None:
        raise web.HTTPNotFound(text=f"Territoire inconnu : {code}")
    return code


async def _timeline(request: web.Request) -> dict[str, Any]:
    from .web.site import CRIEUR, parse_id

    code = _territory_code(request)
    given = request.query.get("episode")
    episode = parse_id(given) if given is not None else None
    if given is not None and episode is None:
        raise web.HTTPBadRequest(
            text=f"episode={given!r} : un numéro d'épisode est attendu (liste : /api/v1/episodes/{code})."
        )
    found = await episode_timeline(request.app[CRIEUR], code, episode)
    if found is None:
        which = f"d'épisode neigeux n° {episode}" if episode is not None else "d'épisode neigeux enregistré"
        raise web.HTTPNotFound(text=f"Pas {which} pour le territoire {code}.")
    return found


async def episodes_api(request: web.Request) -> web.Response:
    """Every snow episode of the territory, newest first (ids for ?episode= on the timeline)."""
    from .web.site import CRIEUR

    code = _territory_code(request)
    rows = await request.app[CRIEUR].store.episode_history(code)
    body = {"territory": code, "episodes": [episode_summary(r) for r in rows]}
    return web.json_response(body, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def timeline_api(request: web.Request) -> web.Response:
    found = await _timeline(request)
    return web.json_response(found, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def timeline_page(request: web.Request) -> web.Response:
    from .web.rendering import render
    from .web.site import CRIEUR, paris, territory

    found = await _timeline(request)
    crieur = request.app[CRIEUR]
    info = territory(crieur, request.match_info["code"])
    history = await crieur.store.episode_history(request.match_info["code"])
    return render(request, "episode_timeline.html", timeline=found, territory=info, paris=paris, history=history)
