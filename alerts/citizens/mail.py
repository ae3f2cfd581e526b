"""Questions by e-mail: Crieur's own SMTP endpoint (aiosmtpd) takes the mail citizens send to the
configured address (citizens.inbound_email; the département's mail server forwards or relays it there),
and the answers go back by the e-mail channel, in the thread (In-Reply-To the citizen's Message-ID).

Mail to any other address is refused at RCPT (550), so the endpoint is no open relay. Automatic mail
(Auto-Submitted other than "no", Precedence bulk/junk/list, bounces with an empty sender) is accepted and
dropped: answering an auto-responder would start a loop.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ..shared_limits import first_delivery, forget_delivery
from .base import Part
from .conversations import Thread

if TYPE_CHECKING:
    from .desk import Citizens

log = logging.getLogger("crieur.citizens")

MAX_MAIL = 512 * 1024  # bytes of a citizen's mail accepted (SIZE announced in EHLO)


def question_of(mail: EmailMessage) -> str:
    """The subject and the plain-text body of a mail, without the quoted lines of earlier messages nor
    the signature after "-- "."""
    part = mail.get_body(preferencelist=("plain",))
    body = part.get_content() if part is not None else ""
    lines = []
    for line in str(body).splitlines():
        if line.rstrip() == "--":
            break
        if line.lstrip().startswith(">") or (line.startswith("Le ") and line.rstrip().endswith("a écrit :")):
            continue
        lines.append(line)
    subject = " ".join(str(mail.get("Subject") or "").split())
    text = " ".join(" ".join(lines).split())
    if subject.lower().startswith(("re:", "tr:", "fwd:")):
        subject = subject.split(":", 1)[1].strip()
    return f"{subject} — {text}" if subject and text and subject not in text else (text or subject)


def automatic(mail: EmailMessage, mail_from: str | None) -> bool:
    if not mail_from or mail_from == "<>":
        return True
    if str(mail.get("Auto-Submitted") or "no").strip().lower() != "no":
        return True
    return str(mail.get("Precedence") or "").strip().lower() in ("bulk", "junk", "list")


class InboundMail(Part):
    """The aiosmtpd handler (handle_RCPT, handle_DATA) of the questions' address."""

    def __init__(self, desk: Citizens):
        super().__init__(desk.crieur)
        self.desk = desk

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        wanted = self.config.inbound_email.strip().lower()
        if not wanted or address.strip().lower() != wanted:
            return "550 5.1.1 Adresse inconnue"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail: Any = email.message_from_bytes(raw, policy=email.policy.default)
        if automatic(mail, envelope.mail_from):
            log.info("automatic mail to the questions' address dropped")
            return "250 OK"
        sender = parseaddr(str(mail.get("From") or ""))[1] or str(envelope.mail_from)
        message_id = str(mail.get("Message-ID") or "").strip()
        text = question_of(mail)
        if "@" not in sender or not text:
            return "250 OK"
        key = f"email:{message_id or hash(raw)}"
        if not await first_delivery(self.store.db, key):
            return "250 OK"  # the same mail again
        thread = Thread("email", channel=self.config.email_channel, recipient=sender, reply_to=message_id)
        try:
            await self.desk.conversations.receive(thread, sender, text, self.desk.territories_in(text))
        except Exception:
            await forget_delivery(self.store.db, key)
            log.exception("question by e-mail not handled")
            return "451 4.3.0 Erreur temporaire, réessayez plus tard"
        return "250 Message accepted"

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        """Listen for mail on host:port (port 0: any free port)."""
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: SMTP(self, hostname="crieur", data_size_limit=MAX_MAIL, enable_SMTPUTF8=True), host, port
        )
