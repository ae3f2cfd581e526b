"""Citizens end to end: inbound SMS (Twilio webhook), questions from SMS, the web form and Mastodon
mentions, routed to the authority that decides, and escalations to that authority's webmaster.

    crieur.citizens = Citizens(crieur)                       # in Crieur.open()
    crieur.route_installers.append(crieur.citizens.install_routes)

Routes: POST /twilio/sms (inbound SMS, answered in TwiML), POST /twilio/status (delivery status
callbacks), GET /escalations/ack?token=... (a page whose button POSTs the token: a webmaster acknowledges
an escalation without an account; a mail scanner opening the link acknowledges nothing).

Also POST/GET /facebook/webhook (Page comments and Messenger, signed X-Hub-Signature-256), and an SMTP
endpoint for questions by e-mail (citizens.inbound_email_listen).

One module per concern: desk.py (SMS commands and questions, routed), flood.py (flood limits),
escalations.py (webmasters warned, acknowledgement links), mentions.py (Mastodon mentions), bluesky.py
(Bluesky mentions and replies), facebook.py (the Page webhook), mail.py (questions by e-mail), sms.py
(Twilio's webhooks and TwiML), conversations.py (threads, groups, answers to a group).
"""

from .base import NO_ALERT
from .conversations import Thread, signed
from .desk import Citizens
from .flood import FloodLimits
from .mentions import MENTIONS_STATE, mention_text
from .sms import query_value

__all__ = [
    "MENTIONS_STATE",
    "NO_ALERT",
    "Citizens",
    "FloodLimits",
    "Thread",
    "mention_text",
    "query_value",
    "signed",
]
