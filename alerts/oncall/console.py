"""The console's on-call page (/console/astreinte): who is on call now and over the coming week, and the
cases being paged (behind the console's login, like every /console page)."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from .rota import PARIS, paris

STATES_FR = {
    "open": "appel en cours",
    "acknowledged": "pris en charge",
    "unanswered": "sans réponse",
    "decided": "décidé",
}


def install_routes(app: web.Application) -> None:
    app.router.add_get("/console/astreinte", oncall_page)


def week(rota: Any, today: date) -> list[tuple[str, list[str]]]:
    """(moment, names of the chain) at 12:00 and 23:00, Paris time, for seven days from `today`."""
    rows = []
    for offset in range(7):
        day = today + timedelta(days=offset)
        for hour in (12, 23):
            moment = datetime(day.year, day.month, day.day, hour, 0, tzinfo=PARIS)
            rows.append((paris(moment), [p.name for p in rota.chain(moment)]))
    return rows


async def oncall_page(request: web.Request) -> web.Response:
    from alerts.web.rendering import render
    from alerts.web.site import CRIEUR

    crieur = request.app[CRIEUR]
    oncall = getattr(crieur, "oncall", None)
    if oncall is None:
        return render(request, "console_oncall.html", rota=None, page="astreinte")
    now = datetime.fromtimestamp(oncall.clock(), timezone.utc)
    cases = []
    for case in reversed(await oncall.cases()):
        chain = [oncall.rota.people[i].name if i in oncall.rota.people else i for i in json.loads(case["chain"])]
        cases.append(
            {
                "subject": case["subject"],
                "opened": paris(datetime.fromtimestamp(case["opened_at"], timezone.utc)),
                "chain": chain,
                "paged": chain[: int(case["step"]) + 1],
                "state": STATES_FR.get(case["state"], case["state"]),
                "closed_by": case["closed_by"],
                "how": case["how"],
                "deadline": paris(datetime.fromtimestamp(case["deadline"], timezone.utc)) if case["deadline"] else "",
                "otherwise": case["otherwise"],
            }
        )
    return render(
        request,
        "console_oncall.html",
        rota=oncall.rota,
        now=paris(now),
        chain=oncall.rota.chain(now),
        week=week(oncall.rota, now.astimezone(PARIS).date()),
        cases=cases[:50],
        page="astreinte",
        generated=time.time(),
    )
