"""Turn a published alert into outbox rows: one per channel and recipient, each text fitted to its channel."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from channels.base import Channel

from .domain import Alert, MsgType
from .places import Audience, Gazetteer, Target, targets
from .storage import Delivery, DeliveryState, NewDelivery, Store, delivery_key

log = logging.getLogger("crieur.fanout")


@dataclass(frozen=True, slots=True)
class Text:
    """A channel's rendering of an alert: the text, and any channel payload (Bluesky facets)."""

    text: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""


Renderer = Callable[[Alert, Channel], Text]


class Fanout:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        render: Renderer,
        *,
        exercise_recipients: Sequence[str] = (),
        gazetteer: Gazetteer | None = None,
    ):
        self.store = store
        self.channels = channels
        self.render = render
        self.exercise_recipients = tuple(exercise_recipients)  # an exercise's only SMS numbers
        self.gazetteer = gazetteer  # commune outlines: an alert's geometry reaches the communes it touches

    def targets(self, alert: Alert) -> list[Target]:
        """Whom the alert's subscriber channels reach, and why (alerts.places)."""
        return targets(alert, self.gazetteer)

    async def audience(self, alert: Alert, medium: str = "sms") -> Audience:
        """How many subscribers (reached by `medium`) the alert will reach, and for which reasons (the
        console's preview)."""
        return await self.store.audience(self.targets(alert), medium)

    async def plan(self, alert: Alert) -> dict[str, int]:
        """Queue the alert on each of its channels; returns deliveries queued per channel. Planning the same
        alert twice queues nothing new."""
        assert alert.id is not None
        kind = alert.msg_type.value
        priority = await self._priority(alert)
        subscription_keys: list[str] | None = None
        queued: dict[str, int] = {}
        for name in alert.channels:
            channel = self.channels.get(name)
            if channel is None:
                log.warning("alert %s names channel %r, which is not configured", alert.id, name)
                continue
            rendered = self.render(alert, channel)
            if channel.subscribers and not alert.exercise:
                if subscription_keys is None:
                    by_target = await self.store.target_keys(self.targets(alert))
                    subscription_keys = list(dict.fromkeys(k for keys in by_target.values() for k in keys))
                queued[name] = await self.store.enqueue_subscribers(
                    alert.id,
                    name,
                    subscription_keys,
                    kind,
                    rendered.text,
                    priority,
                    alert.supersedes,
                    medium=channel.medium,
                    subject=rendered.subject or alert.title,
                    link=alert.link,
                )
                continue
            reply_to, root, after = await self._thread(alert, name)
            extra = dict(rendered.extra) | ({"reply_root": root} if root and root != reply_to else {})
            if after:  # see _thread
                extra["reply_after"] = after
            if channel.subscribers:  # an exercise: the exercise numbers, never the subscribers' lists
                email = channel.medium == "email"
                recipients = [r for r in self.exercise_recipients if ("@" in r) == email]
            else:
                recipients = list(channel.options.get("recipients", [])) if channel.per_recipient else [""]
            queued[name] = await self.store.enqueue(
                [
                    NewDelivery(
                        key=delivery_key(alert.id, name, kind, recipient),
                        alert_id=alert.id,
                        channel=name,
                        recipient=recipient,
                        kind=kind,
                        text=rendered.text,
                        subject=rendered.subject or alert.title,
                        link=alert.link,
                        reply_to=reply_to,
                        extra=json.dumps(extra, ensure_ascii=False),
                        priority=priority,
                    )
                    for recipient in recipients
                ],
                supersedes=alert.supersedes,
            )
        log.info("alert %s queued: %s", alert.id, queued)
        return queued

    async def _priority(self, alert: Alert) -> int:
        """The alert's severity; an update or an end goes at least as fast as the version it replaces
        (an "all clear" must not wait behind information messages)."""
        priority = int(alert.severity)
        if alert.supersedes is not None:
            previous = await self.store.alert(alert.supersedes)
            if previous is not None:
                priority = max(priority, int(previous.severity))
        return priority

    async def _thread(self, alert: Alert, channel: str) -> tuple[str, str, str]:
        """For an update or an end: the provider ids of the post it follows (parent) and of the thread's
        first post (root), so it is threaded under them (Bluesky's reply names both); ("", "", "") when the
        alert starts a thread or the channel has no sent post to follow.

        The third is the key of the version it replaces when that one is still being sent on the channel
        (an update published seconds after its alert, a provider slow to answer): the new version waits
        for it (see Outbox.claim), and the worker threads it under that post if it went
        (DeliveryWorker._under_parent); the parent and root found here serve if it did not."""
        if alert.msg_type is MsgType.ALERT or alert.supersedes is None:
            return "", "", ""
        in_flight = await self._delivery(alert.supersedes, channel, DeliveryState.SENDING)
        after = in_flight.key if in_flight is not None else ""
        parent = root = ""
        ancestor: int | None = alert.supersedes
        seen: set[int] = set()
        while ancestor is not None and ancestor not in seen:  # up the chain of updates to the first alert
            seen.add(ancestor)
            posted = await self._posted(ancestor, channel)
            if posted:
                parent = parent or posted
                root = posted
            previous = await self.store.alert(ancestor)
            ancestor = previous.supersedes if previous is not None else None
        return parent, root, after

    async def _posted(self, alert_id: int, channel: str) -> str:
        sent = await self._delivery(alert_id, channel, DeliveryState.SENT)
        return str(sent.provider_id) if sent is not None else ""

    async def _delivery(self, alert_id: int, channel: str, state: DeliveryState) -> Delivery | None:
        """A delivery of the alert on the channel in that state (a sent one with its provider's id)."""
        for row in await self.store.deliveries(alert_id=alert_id, state=state, limit=50):
            if row.channel == channel and (row.provider_id or state is not DeliveryState.SENT):
                return row
        return None
