"""The on-call web pages: the console's /console/astreinte (who is on call now and over the coming week, and
the cases being paged; behind the console's login, like every /console page), and the phone-sized page a
signed link opens (/astreinte/<token>, alerts.oncall.links) where the person paged decides without a login."""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

from aiohttp import web

from alerts.errors import CrieurError
from alerts.shared_limits import first_delivery

from . import links
from .rota import PARIS, paris
from .swaps import Swap, SwapRefused, add_swap, cancel_swap, swaps

log = logging.getLogger("crieur.oncall")

STATES_FR = {
    "open": "appel en cours",
    "acknowledged": "pris en charge",
    "unanswered": "sans réponse",
    "decided": "décidé",
}


def install_routes(app: web.Application) -> None:
    app.router.add_get("/console/astreinte", oncall_page)
    app.router.add_post("/console/astreinte/remplacements", swap_add)
    app.router.add_post("/console/astreinte/remplacements/{id:[0-9]{1,18}}/annuler", swap_cancel)
    app.router.add_get(links.PATH + "{token}", link_page)
    app.router.add_post(links.PATH + "{token}", link_page)


def week(rota: Any, today: date, swaps: Sequence[Swap] = ()) -> list[tuple[str, list[str]]]:
    """(moment, names of the chain) at 12:00 and 23:00, Paris time, for seven days from `today`."""
    rows = []
    shifts = [s.shift() for s in swaps]
    for offset in range(7):
        day = today + timedelta(days=offset)
        for hour in (12, 23):
            moment = datetime(day.year, day.month, day.day, hour, 0, tzinfo=PARIS)
            rows.append((paris(moment), [p.name for p in rota.chain(moment, shifts)]))
    return rows


async def oncall_page(
    request: web.Request, *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None
) -> web.Response:
    from alerts.web.rendering import render
    from alerts.web.site import CRIEUR

    crieur = request.app[CRIEUR]
    oncall = getattr(crieur, "oncall", None)
    if oncall is None:
        return render(request, "console_oncall.html", rota=None, page="astreinte")
    now = datetime.fromtimestamp(oncall.clock(), timezone.utc)
    upcoming = await swaps(oncall.db, now.timestamp())
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
        chain=await oncall.chain(now),
        week=week(oncall.rota, now.astimezone(PARIS).date(), upcoming),
        swaps=[(s, paris(s.starts_at), paris(s.ends_at)) for s in upcoming],
        errors=errors or {},
        form=form or {},
        flash=MESSAGES.get(request.query.get("msg", ""), ""),
        cases=cases[:50],
        page="astreinte",
        generated=time.time(),
        status=400 if errors else 200,
    )


MESSAGES = {"swap-added": "Remplacement enregistré.", "swap-cancelled": "Remplacement annulé."}


async def swap_add(request: web.Request) -> web.StreamResponse:
    """A swap from the page's form (approvers and admins): Paris-time period, CM, back-up, reason."""
    from alerts.web.console import _audit, _require, paris_moment
    from alerts.web.site import CRIEUR

    session = _require(request, "approve")
    oncall = getattr(request.app[CRIEUR], "oncall", None)
    if oncall is None:
        raise web.HTTPNotFound(text="Aucune astreinte configurée.")
    posted = await request.post()
    form = {k: str(posted.get(k, "")).strip()[:200] for k in ("starts", "ends", "cm", "backup", "reason")}
    moments: dict[str, datetime | None] = {}
    for field in ("starts", "ends"):
        try:
            moments[field] = paris_moment(form[field][:16])
        except ValueError:
            moments[field] = None
    missing = [f for f in ("starts", "ends") if moments[f] is None]
    if missing:
        message = "Indiquez le début et la fin du remplacement (date et heure de Paris)."
        return await oncall_page(request, errors={missing[0]: message}, form=form)
    try:
        swap = await add_swap(
            oncall.db,
            oncall.rota,
            starts=moments["starts"],  # type: ignore[arg-type]
            ends=moments["ends"],  # type: ignore[arg-type]
            cm=form["cm"],
            backup=form["backup"],
            reason=form["reason"],
            by=session.user.username,
            now=oncall.clock(),
        )
    except SwapRefused as refused:
        return await oncall_page(request, errors={refused.field: str(refused)}, form=form)
    people = oncall.rota.people
    backup = f" (suppléant·e : {people[swap.backup].name})" if swap.backup else ""
    await _audit(
        request,
        "oncall-swap",
        f"swap:{swap.id}",
        f"{people[swap.cm].name}{backup} du {paris(swap.starts_at)} au {paris(swap.ends_at)}"
        + (f" : {swap.reason}" if swap.reason else ""),
    )
    raise web.HTTPSeeOther("/console/astreinte?msg=swap-added")


async def swap_cancel(request: web.Request) -> web.StreamResponse:
    from alerts.web.console import _audit, _require
    from alerts.web.site import CRIEUR

    _require(request, "approve")
    oncall = getattr(request.app[CRIEUR], "oncall", None)
    swap_id = int(request.match_info["id"])
    if oncall is None or not await cancel_swap(oncall.db, swap_id, oncall.clock()):
        raise web.HTTPNotFound(text="Remplacement inconnu ou déjà annulé.")
    await _audit(request, "oncall-swap-cancel", f"swap:{swap_id}")
    raise web.HTTPSeeOther("/console/astreinte?msg=swap-cancelled")


# ------------------------------------------------------------------------------------ the signed link's page

LINK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _link_response(request: web.Request, status: int, heading: str, **context: Any) -> web.Response:
    from alerts.web.rendering import render

    context.setdefault("alert", None)
    context.setdefault("message", "")
    context.setdefault("explain", "")
    response = render(request, "oncall_link.html", status=status, heading=heading, **context)
    response.headers.update(LINK_HEADERS)
    return response


async def link_page(request: web.Request) -> web.Response:
    """GET shows the alert and the two buttons; POST (action=approve|reject) decides, once per link."""
    from alerts.domain import AlertStatus
    from alerts.web.site import CRIEUR

    from .pager import status_fr

    crieur = request.app[CRIEUR]
    oncall = getattr(crieur, "oncall", None)
    if oncall is None:
        return _link_response(request, 404, "Astreinte non configurée", explain="Ce service n'a pas d'astreinte.")
    now = oncall.clock()
    try:
        secret = crieur.config.secret_key()
    except CrieurError:
        log.error("signed on-call link refused: the service has no secret key")
        return _link_response(request, 503, "Service indisponible", explain="Passez par la console ou par SMS.")
    link = links.read_link(request.match_info["token"], secret, now)
    person = oncall.rota.people.get(link.person_id) if link is not None else None
    if link is None or person is None:
        log.warning("on-call link refused: invalid signature or person no longer in the rota")
        return _link_response(
            request,
            403,
            "Lien invalide",
            explain="Ce lien n'est pas valide : il a pu être mal copié, ou la personne n'est plus d'astreinte. "
            "Rien n'a été fait. Répondez au SMS d'astreinte (OUI, NON ou VU, le numéro de l'alerte et votre "
            "code) ou connectez-vous à la console.",
        )
    alert = await crieur.store.alert(link.alert_id)
    if link.opened.expired:
        until = paris(datetime.fromtimestamp(link.opened.expires, timezone.utc))
        await oncall._audit(
            now,
            f"astreinte:{person.id}",
            "oncall-link-refused",
            f"alert:{link.alert_id}",
            f"lien signé expiré ({until})",
        )
        return _link_response(
            request,
            403,
            "Lien expiré",
            explain=f"Ce lien était valable jusqu'au {until} (heure de Paris) : rien n'a été fait. Répondez au SMS "
            f"d'astreinte (OUI {link.alert_id} <code> ou NON {link.alert_id} <code>) ou connectez-vous à la "
            "console.",
        )
    if alert is None:
        return _link_response(request, 404, "Alerte introuvable", explain=f"L'alerte {link.alert_id} n'existe plus.")
    message = ""
    if request.method == "POST":
        action = str((await request.post()).get("action", ""))
        if action not in ("approve", "reject", "ack"):
            return _link_response(request, 400, "Action inconnue", alert=alert, person=person, pending=False)
        if action == "ack":  # taking it over decides nothing: the link still serves for the decision
            taken = await oncall.acknowledge(
                f"alert:{alert.id}", person, how="lien signé", detail="prise en charge par lien signé (page mobile)"
            )
            message = "Prise en charge : plus personne d'autre n'est appelé." if taken else ""
        elif not await first_delivery(crieur.store.db, link.once_key):  # remembered a day; the link lasts an hour
            return _link_response(
                request,
                410,
                "Lien déjà utilisé",
                alert=alert,
                person=person,
                pending=False,
                explain="Une décision a déjà été prise avec ce lien ; il ne sert qu'une fois.",
            )
        else:
            message = await oncall.decide(
                link.alert_id, person, action == "approve", how="lien signé", detail="par lien signé (page mobile)"
            )
            alert = await crieur.store.alert(link.alert_id) or alert
    pending = alert.status is AlertStatus.PENDING_APPROVAL
    case = await crieur.store.db.fetchrow("SELECT * FROM oncall_cases WHERE subject = $1", f"alert:{alert.id}")
    deadline = ""
    if pending and case is not None and case["deadline"] is not None and case["otherwise"]:
        from .pager import POLICY_WORDS

        at = paris(datetime.fromtimestamp(case["deadline"], timezone.utc))
        deadline = f"Sans décision à {at[-5:]}, elle sera {POLICY_WORDS[case['otherwise']]}."
    return _link_response(
        request,
        200,
        f"Alerte {alert.id} à valider" if pending else f"Alerte {alert.id} : {status_fr(alert.status)}",
        alert=alert,
        person=person,
        pending=pending,
        message=message,
        deadline=deadline,
        can_ack=pending and case is not None and case["state"] in ("open", "unanswered"),
    )
