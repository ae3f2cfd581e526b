"""The public web page and feeds read published alerts from storage; delivering to "web" only records
that the alert is live there. Kept trivial on purpose: the integrator may replace it."""

from __future__ import annotations

from .base import Channel, Limits, Message, Receipt, register


@register
class WebChannel(Channel):
    kind = "web"
    limits = Limits(counting="none")
    per_recipient = False
    idempotent = True
    default_rate = 1000.0

    @classmethod
    def for_dry_run(cls, name: str, options: dict | None = None) -> "WebChannel":
        return cls(name, options)

    async def send(self, message: Message) -> Receipt:
        return Receipt(provider_id=f"web:{message.alert_id}", status="published")
