"""One snow episode's timeline (page /t/{code}/episode, API /api/v1/episodes/{code}/timeline): its start, what
the sources published meanwhile (vigilance colour changes, road states, arrêtés: every version received), the
Département's own posts (alerts, updates, ends), and its end, in order.

The episode is the territory's current one, else its last (table `episodes`); what arrived up to
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


async def episode_timeline(crieur: Any, territory: str) -> dict[str, Any] | None:
    """The timeline of `territory`'s current or last episode; None when it never had one."""
    store = crieur.store
    row = await store.db.fetchrow("SELECT * FROM episodes WHERE territory = $1", territory)
    if row is None or row["started_at"] is None:
        return None
    start, end = float(row["started_at"]), row["ended_at"]
    # what follows the end within LEAD is its aftermath (the "fin d'alerte" the ending warning made)
    until = float(end) + LEAD if end is not None and not row["active"] else time.time()
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
    if end is not None and not row["active"]:
        entries.append(
            {
                "at": float(end),
                "kind": "fin-episode",
                "title": "Fin de l'épisode neigeux",
                "by": "",
                "detail": row["reason"],
            }
        )
    entries.sort(key=lambda e: (e["at"], e["kind"] != "debut-episode"))
    for entry in entries:
        entry["time"] = datetime.fromtimestamp(entry["at"], timezone.utc).isoformat(timespec="seconds")
    return {
        "territory": territory,
        "active": bool(row["active"]),
        "started_at": _iso(start),
        "ended_at": _iso(end) if not row["active"] else None,
        "entries": entries,
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
    app.router.add_get("/api/v1/episodes/{code}/timeline", timeline_api)
    app.router.add_get("/t/{code}/episode", timeline_page)


async def _timeline(request: web.Request) -> dict[str, Any]:
    from .web.site import CRIEUR, territory

    crieur = request.app[CRIEUR]
    code = request.match_info["code"]
    if territory(crieur, code) is None:
        raise web.HTTPNotFound(text=f"Territoire inconnu : {code}")
    found = await episode_timeline(crieur, code)
    if found is None:
        raise web.HTTPNotFound(text=f"Aucun épisode neigeux enregistré pour le territoire {code}.")
    return found


async def timeline_api(request: web.Request) -> web.Response:
    found = await _timeline(request)
    return web.json_response(found, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def timeline_page(request: web.Request) -> web.Response:
    from .web.rendering import render
    from .web.site import CRIEUR, paris, territory

    found = await _timeline(request)
    info = territory(request.app[CRIEUR], request.match_info["code"])
    return render(request, "episode_timeline.html", timeline=found, territory=info, paris=paris)
