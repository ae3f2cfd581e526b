"""E-mail through an SMTP relay (aiosmtplib): to subscribers, and to webmasters for escalations.

One message per recipient, UTF-8, with a Message-ID that is the Receipt's provider_id. SMTP 4xx replies
and connection failures are transient, 5xx permanent (a refused recipient is marked invalid).

The Message-ID is made from the delivery's key, the same at every attempt: an SMTP server cannot be asked
whether it took a message, so a worker that died mid-send sends the mail again, and the second copy then
carries the first one's Message-ID, by which mail systems and clients recognise a copy (several drop it).

With `subscribers: true` the channel sends alerts to the e-mail subscribers of the places an alert
reaches; each such mail carries a one-click unsubscribe link (RFC 8058: List-Unsubscribe and
List-Unsubscribe-Post), which the service provides by setting `unsubscribe_link`.
"""

from __future__ import annotations

import hashlib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Callable, Mapping

import aiosmtplib

from ._http import DryRunnable, no_credentials, timeout_option
from .base import (
    RECIPIENTS,
    TIMEOUT,
    AuthError,
    Channel,
    ConfigurationError,
    Limits,
    Message,
    Option,
    PermanentError,
    Receipt,
    TransientError,
    register,
)


def _flag(channel: Channel, option: str, default: bool) -> bool:
    value = channel.options.get(option, default)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "on", "1"):
        return True
    if str(value).lower() in ("false", "no", "off", "0"):
        return False
    raise ConfigurationError(f"channel {channel.name!r}: option {option!r} must be true or false, not {value!r}")


def message_id(key: str, domain: str) -> str:
    """The Message-ID of a delivery's mail: the same for every attempt (see the module's docstring), unique
    per delivery (the key names the alert or escalation, the channel and the recipient)."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.crieur@{domain}>"


@register
class EmailChannel(DryRunnable, Channel):
    kind = "email"
    declared_options = (
        Option("host", "text", required=True, description="the SMTP server"),
        Option("port", "integer", default=587, description="the SMTP port"),
        Option("starttls", "boolean", default=True, description="upgrade the connection with STARTTLS"),
        Option("from", "text", required=True, description="the sender, Route 41 <route41@departement-41.example>"),
        Option("from_name", "text", description="the sender's display name"),
        Option("username", "text", description="the SMTP login (with password)"),
        Option("password", "secret", description="the SMTP password"),
        Option("ca_file", "text", description="a CA bundle to verify the server with"),
        Option("local_hostname", "text", description="the name given in EHLO"),
        Option("subscribers", "boolean", default=False, description="send alerts to the e-mail subscribers"),
        RECIPIENTS,
        TIMEOUT,
    )
    limits = Limits(counting="none")
    per_recipient = True
    idempotent = False
    default_rate = 5.0
    medium = "email"

    def __init__(self, name: str, options: Mapping[str, Any] | None = None, *, credentials: bool = True):
        super().__init__(name, options)
        self.host = self.require("host")
        try:
            self.port = int(self.options.get("port", 587))
        except (TypeError, ValueError):
            raise ConfigurationError(f"channel {name!r}: port must be an integer") from None
        self.starttls = _flag(self, "starttls", True)
        self.sender = self.require("from")
        if "@" not in self.sender:
            raise ConfigurationError(f"channel {name!r}: 'from' must be an e-mail address")
        self.sender_name = str(self.options.get("from_name", ""))
        self.timeout = timeout_option(self)
        self.ca_file = str(self.options.get("ca_file") or "") or None
        # EHLO name; without it aiosmtplib asks the resolver for this host's FQDN (slow on some hosts).
        self.local_hostname = str(self.options.get("local_hostname") or "") or None
        self.username = str(self.options.get("username") or "")
        self._password = self.secret("password") if credentials and self.username else ""
        self._ready = credentials
        self.subscribers = _flag(self, "subscribers", False)
        # address -> its one-click unsubscribe URL (alerts.citizens.subscriptions), set by the service
        self.unsubscribe_link: Callable[[str], str] | None = None

    def build(self, message: Message) -> EmailMessage:
        """The e-mail for one recipient (public so previews and dry runs can show it)."""
        mail = EmailMessage()
        domain = self.sender.rsplit("@", 1)[1]
        mail["From"] = Address(self.sender_name, addr_spec=self.sender) if self.sender_name else self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or message.text.split("\n", 1)[0][:78]
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = message_id(message.key, domain)
        if message.reply_to:  # an answer to a citizen's e-mail: in its thread
            mail["In-Reply-To"] = message.reply_to
            mail["References"] = message.reply_to
        mail["Content-Language"] = "fr"
        mail["Auto-Submitted"] = "auto-generated"
        body = message.text
        if message.link and message.link not in body:
            body = f"{body}\n\n{message.link}"
        if self.subscribers and message.alert_id and self.unsubscribe_link is not None:
            url = self.unsubscribe_link(message.recipient)
            mail["List-Unsubscribe"] = f"<{url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            body = f"{body}\n\n--\nVous recevez ce message parce que vous êtes abonné(e) à ces alertes.\nSe désabonner : {url}"
        mail.set_content(body + "\n", charset="utf-8")
        return mail

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    async def send(self, message: Message) -> Receipt:
        if not self._ready:
            raise no_credentials(self)
        if "@" not in message.recipient:
            raise PermanentError(
                f"{self.name}: recipient is not an e-mail address", code="address", recipient_action="invalid"
            )
        mail = self.build(message)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self._password or None,
                start_tls=self.starttls,
                tls_context=self._tls_context() if self.starttls else None,
                timeout=self.timeout,
                local_hostname=self.local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            raise self._reply_error(refusal.code, refusal.message, recipient=True) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise AuthError(f"{self.name}: SMTP login refused: {exc.code} {exc.message}", code=str(exc.code)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise self._reply_error(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientError(f"{self.name}: {type(exc).__name__}: {exc}", code="connection") from None
        return Receipt(provider_id=str(mail["Message-ID"]), detail=message.recipient)

    def _reply_error(self, code: int, text: str, *, recipient: bool = False) -> Exception:
        detail = f"{self.name}: SMTP {code} {text}"
        if 400 <= code < 500:
            return TransientError(detail, code=str(code))
        if code in (530, 534, 535):
            return AuthError(detail, code=str(code))
        unknown_mailbox = recipient and code in (550, 551, 553)
        return PermanentError(detail, code=str(code), recipient_action="invalid" if unknown_mailbox else "")
