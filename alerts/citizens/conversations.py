"""Conversations: a question keeps the thread it came in (SMS number, Mastodon status, Bluesky post,
Facebook comment or Messenger sender, e-mail), and falls in a group with the questions about the same
road, commune or topic; an answer, automatic or a CM's, goes back into each thread through the outbox,
fitted to the channel and, for a CM's, signed with the CM's initials.

    thread = Thread("bluesky", channel="bluesky", reply_to="at://…|bafy…", root="at://…|bafy…")
    result = await citizens.conversations.receive(thread, "alice.bsky.social", "la D957 est-elle ouverte ?")
    await citizens.conversations.answer_group("road:D957", "La D957 est rouverte.", author="jean.dupont",
                                              initials="JD")
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.base import Channel, Limits
from rules.authorities import Routing
from rules.fitting import fit_body

from ..places import gazetteer_for
from ..replies import gsm7
from ..roads import parse_roads
from ..storage import NewDelivery, answer_delivery_key
from ..storage.outbox import group_answer_delivery_key
from .base import NO_ALERT, Part

if TYPE_CHECKING:
    from .desk import Citizens

log = logging.getLogger("crieur.citizens")

# Limits of the reply edges that are not the channel's own posts (Graph API reference: a comment's
# message, Messenger's text message).
FACEBOOK_COMMENT = Limits(counting="chars", max_length=8000)
MESSENGER_TEXT = Limits(counting="chars", max_length=2000)
OTHER_GROUP = ("other", "Autres questions")


@dataclass(frozen=True, slots=True)
class Thread:
    """Where the answer to a question goes back.

    medium: how the question came (questions.channel): sms, web, mastodon, bluesky, facebook, messenger,
    email. channel: the configured channel the answer goes through ("" when there is no way back).
    recipient: a phone, an e-mail address, a Messenger PSID or, for a direct mention, the Mastodon account
    answered privately ("" for a public reply). reply_to / root:
    the provider's reference of the message answered and of its thread's first one."""

    medium: str
    channel: str = ""
    recipient: str = ""
    reply_to: str = ""
    root: str = ""

    def columns(self) -> dict[str, str]:
        return {
            "reply_channel": self.channel,
            "recipient": self.recipient,
            "thread": self.reply_to,
            "thread_root": self.root,
        }


def signed(initials: str) -> str:
    """ "JD" → "J.D.": how a civic account signs a CM's answer."""
    letters = [c for c in initials.strip() if c.isalnum()]
    return "".join(f"{c.upper()}." for c in letters)


class Conversations(Part):
    def __init__(self, desk: Citizens):
        super().__init__(desk.crieur)
        self.desk = desk

    # ------------------------------------------------------------------ where a question belongs

    def group_of(self, text: str, routing: Routing) -> tuple[str, str]:
        """(key, label) of the group a question falls in: the first road it names, else the commune, else
        the topic it was routed to, else "other"."""
        roads = parse_roads(text)
        if roads:
            return f"road:{roads[0]}", f"Route {roads[0]}"
        gazetteer = gazetteer_for(self.config.geo)
        commune = gazetteer.named_in(text) if gazetteer is not None else None
        if commune is not None:
            return f"commune:{commune.code}", f"Commune de {commune.name}"
        if routing.authority is not None and routing.topic is not None:
            return f"topic:{routing.authority.id}:{routing.topic.id}", routing.topic.label
        return OTHER_GROUP

    def channel_of(self, kind: str, preferred: str = "") -> Channel | None:
        """The configured channel answers of `kind` go through: `preferred` when it is one, else the first
        channel of that kind."""
        if preferred and preferred in self.channels and self.channels[preferred].kind == kind:
            return self.channels[preferred]
        return next((ch for ch in self.channels.values() if ch.kind == kind), None)

    # ------------------------------------------------------------------ receiving

    async def receive(
        self, thread: Thread, sender: str, text: str, territories: Sequence[str] = (), *, reply: bool = True
    ) -> dict[str, Any]:
        """A question from any channel: routed and stored by the desk with its thread, and its automatic
        answer queued into the thread (unless `reply` is False: the SMS webhook answers in TwiML)."""
        result = await self.desk.ask(thread.medium, sender, text, territories=territories, thread=thread)
        if reply and thread.channel:
            question = await self.store.question(result["question_id"])
            if question is not None:
                delivery = self.delivery(question, result["reply"], answer_delivery_key(question["id"], thread.channel))
                if delivery is not None:
                    await self.store.enqueue([delivery])
        return result

    # ------------------------------------------------------------------ answering

    def delivery(self, question: Mapping[str, Any], text: str, key: str, signature: str = "") -> NewDelivery | None:
        """What carries `text` back into the question's thread, fitted to the channel (None when the
        question has no way back)."""
        channel = self.channels.get(str(question.get("reply_channel") or ""))
        if channel is None:
            return None
        medium = str(question["channel"])
        limits = channel.limits
        prefix, extra, subject = "", {}, ""
        if channel.kind == "mastodon":
            prefix = f"@{question['sender']} "
            if question.get("recipient"):  # a direct mention: answered as one, to its author only
                extra["visibility"] = "direct"
        elif channel.kind == "bluesky":
            extra["reply_root"] = question["thread_root"] or question["thread"]
        elif channel.kind == "facebook":
            extra["reply"] = "messenger" if medium == "messenger" else "comment"
            limits = MESSENGER_TEXT if medium == "messenger" else FACEBOOK_COMMENT
        elif channel.kind == "email":
            first_line = " ".join(str(question["text"]).split())[:60]
            subject = f"Re: {first_line}"
        suffix = f" — {signature}" if signature else ""
        sms = limits.counting == "sms"
        if sms:
            text, suffix = gsm7(text), gsm7(suffix.replace("—", "-"))
        fitted = fit_body(text, lambda body: f"{prefix}{body}{suffix}", limits, "..." if sms else "…")
        if fitted is None:
            log.error("question %s: even an empty answer does not fit %s", question["id"], channel.name)
            return None
        return NewDelivery(
            key=key,
            alert_id=NO_ALERT,
            channel=channel.name,
            text=fitted[0],
            recipient=str(question.get("recipient") or ""),
            kind="Reply",
            subject=subject,
            reply_to=str(question.get("thread") or ""),
            extra=json.dumps(extra),
        )

    async def answer_group(self, key: str, text: str, *, author: str, initials: str) -> tuple[int, int]:
        """A CM's answer to every waiting question of the group: one delivery per asker (the latest
        question of an asker who asked twice), in the thread, signed. Returns (answer id, questions
        answered)."""
        text = " ".join(text.split()) if "\n" not in text else text.strip()
        if not text:
            raise ValueError("empty answer")
        signature = signed(initials)

        def deliveries(questions: Sequence[Mapping[str, Any]], answer_id: int) -> list[NewDelivery]:
            latest: dict[tuple[str, str], Mapping[str, Any]] = {}
            for question in questions:  # in order: the latest question of an asker wins
                latest[(str(question["reply_channel"]), str(question["recipient"] or question["sender"]))] = question
            found = []
            for question in latest.values():
                key = group_answer_delivery_key(answer_id, int(question["id"]))
                delivery = self.delivery(question, text, key, signature)
                if delivery is not None:
                    found.append(delivery)
            return found

        answer_id, count = await self.store.inbox.answer_group(
            key, text, author=author, initials=initials, deliveries_for=deliveries
        )
        log.info("answer %s by %s to group %s: %d questions", answer_id, author, key, count)
        return answer_id, count
