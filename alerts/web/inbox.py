"""The console's inbox (/console/questions): citizens' questions grouped by road, commune or topic, with
their state (new, answered, routed), who is on it and how long the oldest has waited; one answer to a
group reaches every asker on their own channel (alerts.citizens.conversations); saved answers; and the
time to first answer per channel and per group.

Routes (behind the console's session and CSRF guard, alerts.web.console.auth_middleware):
    GET  /console/questions                      the groups, and the time to first answer per channel
    GET  /console/questions/{key}                a group: its questions, the answer form, saved answers
    POST /console/questions/{key}/answer         answer the group (and, if asked, publish the Q&A)
    POST /console/questions/{key}/assign         assign the group to oneself (or release it)
    POST /console/saved-answers                  keep a reusable answer
    POST /console/saved-answers/{id}/delete      forget one
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..citizens import signed
from ..phones import mask
from . import accounts
from .durations import duration_fr
from .rendering import render
from .site import CRIEUR, SESSION

MAX_ANSWER = 2000
STATE_LABELS = {"new": "nouvelle", "answered": "répondue", "routed": "transmise à l'autorité compétente"}
CHANNEL_LABELS = {
    "sms": "SMS",
    "web": "formulaire web",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "facebook": "commentaire Facebook",
    "messenger": "Messenger",
    "email": "e-mail",
}
DELIVERY_LABELS = {
    "queued": "en file",
    "sending": "en cours d'envoi",
    "sent": "envoyée",
    "failed": "échec",
    "dead": "échec",
    "cancelled": "annulée",
}
MESSAGES = {
    "answered": "Réponse envoyée : chaque personne la reçoit sur son canal.",
    "nothing": "Aucune question de ce groupe n'attendait de réponse : rien n'a été envoyé.",
    "assigned": "Groupe pris en charge.",
    "released": "Groupe libéré.",
    "saved": "Réponse enregistrée.",
    "deleted": "Réponse enregistrée supprimée.",
}


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/questions", groups_page)
    r.add_get("/console/questions/{key}", group_page)
    r.add_post("/console/questions/{key}/answer", answer_group)
    r.add_post("/console/questions/{key}/assign", assign_group)
    r.add_post("/console/saved-answers", save_answer)
    r.add_post("/console/saved-answers/{id:[0-9]{1,18}}/delete", delete_saved_answer)


def _path(key: str) -> str:
    return "/console/questions/" + quote(key, safe=":")


def _user(request: web.Request) -> accounts.User:
    user: accounts.User = request[SESSION].user
    return user


def _sender(channel: str, sender: str) -> str:
    """Who asked, as the inbox shows it: a phone number masked, the rest as given."""
    return mask(sender) if channel in ("sms", "web") and sender.startswith("+") else sender


def _times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["mean"] = duration_fr(row["mean_seconds"]) if row["mean_seconds"] is not None else "—"
        row["max"] = duration_fr(row["max_seconds"]) if row["max_seconds"] is not None else "—"
        row["label"] = CHANNEL_LABELS.get(str(row["name"]), str(row["name"]))
    return rows


async def groups_page(request: web.Request) -> web.Response:
    store = request.app[CRIEUR].store
    now = time.time()
    groups = await store.inbox.groups()
    timing = {row["name"]: row for row in _times(await store.inbox.first_answer_times("group_key"))}
    for group in groups:
        group["mean_answer"] = timing[group["key"]]["mean"] if group["key"] in timing else "—"
        group["state_label"] = STATE_LABELS[group["state"]]
        group["waiting_for"] = duration_fr(now - group["oldest_waiting"]) if group["oldest_waiting"] else ""
        group["href"] = _path(group["key"])
    return render(
        request,
        "console_questions.html",
        groups=groups,
        by_channel=_times(await store.inbox.first_answer_times("channel")),
        flash=MESSAGES.get(request.query.get("msg", ""), ""),
        page="questions",
    )


async def group_page(request: web.Request, *, error: str = "", status: int = 200, draft: str = "") -> web.Response:
    store = request.app[CRIEUR].store
    key = request.match_info["key"]
    group = await store.inbox.group(key)
    if group is None:
        raise web.HTTPNotFound(text="Groupe de questions introuvable.")
    now = time.time()
    questions = await store.inbox.questions(key)
    for question in questions:
        question["who"] = _sender(question["channel"], question["sender"])
        question["channel_label"] = CHANNEL_LABELS.get(question["channel"], question["channel"])
        question["state_label"] = STATE_LABELS[question["state"]]
        question["waited"] = duration_fr((question["answered_at"] or now) - question["created_at"])
        question["delivery_label"] = DELIVERY_LABELS.get(question["delivery_state"], "")
        if question["delivery_state"] in ("failed", "dead") and question["delivery_error"]:
            question["delivery_label"] += f" : {question['delivery_error'][:120]}"
        if question["answer_id"] and not question["reply_channel"]:
            question["delivery_label"] = "pas de canal de retour"
    saved = await store.inbox.saved_answers(_user(request).username)
    chosen = request.query.get("modele", "")
    if not draft and chosen.isdigit():
        draft = next((s["text"] for s in saved if s["id"] == int(chosen)), "")
    times = {row["name"]: row for row in _times(await store.inbox.first_answer_times("group_key"))}
    return render(
        request,
        "console_question_group.html",
        status=status,
        group=group,
        questions=questions,
        waiting=sum(1 for q in questions if q["state"] == "new"),
        answers=await store.inbox.answers(key),
        saved=saved,
        draft=draft,
        error=error,
        timing=times.get(key),
        flash=MESSAGES.get(request.query.get("msg", ""), ""),
        page="questions",
        action=_path(key),
        signature=signed(_user(request).initials),
    )


def _back(key: str, message: str) -> web.HTTPSeeOther:
    path = _path(key)
    return web.HTTPSeeOther(f"{path}?msg={message}")


async def answer_group(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    key = request.match_info["key"]
    if await crieur.store.inbox.group(key) is None:
        raise web.HTTPNotFound(text="Groupe de questions introuvable.")
    form = await request.post()
    text = str(form.get("text", "")).strip()
    if not text:
        return await group_page(request, error="Écrivez la réponse.", status=400)
    if len(text) > MAX_ANSWER:
        return await group_page(request, error=f"La réponse dépasse {MAX_ANSWER} caractères.", status=400, draft=text)
    user = _user(request)
    citizens = getattr(crieur, "citizens", None)
    if citizens is None:
        raise web.HTTPServiceUnavailable(text="Le service des questions n'est pas démarré.")
    answer_id, count = await citizens.conversations.answer_group(
        key, text, author=user.username, initials=user.initials
    )
    if form.get("publish") == "1" and count:
        await crieur.store.inbox.mark_published(answer_id)
    await accounts.audit(
        crieur.store, user.username, "answer-group", f"questions:{key}", f"{count} question(s)", initials=user.initials
    )
    raise _back(key, "answered" if count else "nothing")


async def assign_group(request: web.Request) -> web.StreamResponse:
    crieur = request.app[CRIEUR]
    key = request.match_info["key"]
    form = await request.post()
    user = _user(request)
    release = form.get("release") == "1"
    if not await crieur.store.inbox.assign(key, "" if release else user.username):
        raise web.HTTPNotFound(text="Groupe de questions introuvable.")
    raise _back(key, "released" if release else "assigned")


async def save_answer(request: web.Request) -> web.StreamResponse:
    store = request.app[CRIEUR].store
    form = await request.post()
    title, text = str(form.get("title", "")).strip()[:80], str(form.get("text", "")).strip()[:MAX_ANSWER]
    back = str(form.get("back", "")) or "/console/questions"
    if not back.startswith("/console/questions"):
        back = "/console/questions"
    if title and text:
        await store.inbox.save_answer(_user(request).username, title, text)
    raise web.HTTPSeeOther(back.split("?", 1)[0] + "?msg=saved")


async def delete_saved_answer(request: web.Request) -> web.StreamResponse:
    store = request.app[CRIEUR].store
    await store.inbox.delete_saved_answer(_user(request).username, int(request.match_info["id"]))
    raise web.HTTPSeeOther("/console/questions?msg=deleted")
