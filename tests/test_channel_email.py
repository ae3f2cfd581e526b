"""E-mail adapter against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS with a self-signed
certificate, login, 4xx/5xx replies and a server that never greets."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass, field

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from channels.base import AuthError, ConfigurationError, Message, PermanentError, TransientError
from channels.email import EmailChannel


@dataclass
class Mailbox:
    """aiosmtpd handler: keeps what it receives; some addresses are refused at RCPT."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"crieur" and auth_data.password == b"pw-smtp"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


async def smtp_server(handler: Mailbox, **smtp_kwargs):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="mx.test", **smtp_kwargs), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def mailbox():
    box = Mailbox()
    server, port = await smtp_server(box, authenticator=authenticator, auth_require_tls=False)
    box.port = port  # type: ignore[attr-defined]
    yield box
    server.close()
    await server.wait_closed()


def options(port: int, **extra):
    return {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "from": "alertes@loir-et-cher.fr",
        "from_name": "Département de Loir-et-Cher",
        "local_hostname": "crieur.test",
        "timeout": 0.5,
    } | extra


def message(to="habitant@example.org", key="d-1", **kw) -> Message:
    return Message(
        key=key,
        alert_id=4,
        recipient=to,
        subject=kw.pop("subject", "Neige : routes fermées"),
        text="La RD 957 est fermée entre Blois et Vendôme.",
        **kw,
    )


async def test_a_mail_sent_again_after_a_crash_carries_the_same_message_id(mailbox):
    """SMTP cannot be asked whether it took a mail: a worker that died mid-send sends it again. The copy has
    the first one's Message-ID, by which mail systems recognise it; another delivery has another."""
    channel = EmailChannel("mail41", options(mailbox.port))
    first = await channel.send(message(key="7:mail41:Alert:habitant@example.org"))
    again = await channel.send(message(key="7:mail41:Alert:habitant@example.org"))
    other = await channel.send(message(key="7:mail41:Alert:voisin@example.org", to="voisin@example.org"))
    ids = [email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for _, _, raw in mailbox.received]
    assert ids == [first.provider_id, again.provider_id, other.provider_id]
    assert ids[0] == ids[1] != ids[2]
    assert re.fullmatch(r"<[0-9a-f]{32}\.crieur@loir-et-cher\.fr>", ids[0])


async def test_sends_utf8_mail_with_subject_and_link(mailbox):
    channel = EmailChannel("mail41", options(mailbox.port))
    receipt = await channel.send(message(link="https://www.loir-et-cher.fr/routes"))
    [(sender, rcpts, raw)] = mailbox.received
    assert sender == "alertes@loir-et-cher.fr" and rcpts == ["habitant@example.org"]
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "Neige : routes fermées"
    assert mail["From"].addresses[0].display_name == "Département de Loir-et-Cher"
    assert mail["Message-ID"] == receipt.provider_id
    assert mail.get_content().splitlines() == [
        "La RD 957 est fermée entre Blois et Vendôme.",
        "",
        "https://www.loir-et-cher.fr/routes",
    ]
    assert mail.get_content_charset() == "utf-8"


async def test_login_when_username_given(mailbox):
    channel = EmailChannel("mail41", options(mailbox.port, username="crieur", password="pw-smtp"))
    await channel.send(message())
    assert len(mailbox.received) == 1
    wrong = EmailChannel("mail41", options(mailbox.port, username="crieur", password="nope"))
    with pytest.raises(AuthError) as err:
        await wrong.send(message())
    assert err.value.code == "535" and "nope" not in str(err.value)


async def test_refused_recipients(mailbox):
    mailbox.refuse["inconnu@example.org"] = "550 5.1.1 User unknown"
    mailbox.refuse["plein@example.org"] = "452 4.2.2 Mailbox full"
    channel = EmailChannel("mail41", options(mailbox.port))
    with pytest.raises(PermanentError) as err:
        await channel.send(message("inconnu@example.org"))
    assert err.value.code == "550" and err.value.recipient_action == "invalid"
    with pytest.raises(TransientError) as err:
        await channel.send(message("plein@example.org"))
    assert err.value.code == "452"
    assert mailbox.received == []


async def test_silent_server_times_out_and_closed_port_is_transient():
    async def never_greet(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(TransientError):
            await EmailChannel("mail41", options(port)).send(message())
        assert time.monotonic() - started < 2
    finally:
        server.close()
    with pytest.raises(TransientError):
        await EmailChannel("mail41", options(port)).send(message())


@pytest.fixture
def self_signed(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


async def test_starttls_with_self_signed_certificate(self_signed):
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    server, port = await smtp_server(
        box, tls_context=context, require_starttls=True, authenticator=authenticator, auth_require_tls=True
    )
    try:
        channel = EmailChannel(
            "mail41", options(port, starttls=True, ca_file=str(cert), username="crieur", password="pw-smtp")
        )
        await channel.send(message())
        assert len(box.received) == 1
        untrusting = EmailChannel("mail41", options(port, starttls=True))
        with pytest.raises(TransientError):  # certificate not trusted: never sent in clear
            await untrusting.send(message())
        plain = EmailChannel("mail41", options(port, starttls=False))
        with pytest.raises(PermanentError):  # server demands STARTTLS: 530
            await plain.send(message())
        assert len(box.received) == 1
    finally:
        server.close()
        await server.wait_closed()


def test_configuration(monkeypatch):
    with pytest.raises(ConfigurationError, match="'mail41'.*host"):
        EmailChannel("mail41", {"from": "a@b.fr"})
    with pytest.raises(ConfigurationError, match="'mail41'.*from"):
        EmailChannel("mail41", {"host": "smtp.example"})
    monkeypatch.delenv("SMTP_PW", raising=False)
    with pytest.raises(ConfigurationError, match="SMTP_PW"):
        EmailChannel("mail41", {"host": "smtp.example", "from": "a@b.fr", "username": "u", "password_env": "SMTP_PW"})
    with pytest.raises(ConfigurationError, match="starttls"):
        EmailChannel("mail41", {"host": "smtp.example", "from": "a@b.fr", "starttls": "peut-être"})
    EmailChannel("mail41", {"host": "smtp.example", "from": "a@b.fr"})  # no login: no password needed
