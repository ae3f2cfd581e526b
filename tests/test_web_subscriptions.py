"""Subscribing on the web from /t/41, on SQLite and PostgreSQL, through the real aiohttp app: a phone
confirmed by the code the fake Twilio received, an e-mail confirmed by the link a real SMTP server
(aiosmtpd) received, the consent kept, the code's attempt limit and expiry, forged links, and e-mail alerts
sent exactly once with a one-click unsubscribe (RFC 8058) that works without login or CSRF token."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import pathlib
import re
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP

from alerts.citizens import Citizens, FloodLimits
from alerts.citizens.subscriptions import MAX_ATTEMPTS
from alerts.config import ServiceConfig
from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.domain import Alert, Area, Road, Severity
from alerts.fanout import Fanout, Text
from alerts.phones import normalise_phone
from alerts.places import commune_key, gazetteer_for, road_key
from alerts.service import Crieur
from alerts.web import make_app
from channels.email import EmailChannel
from channels.twilio import TwilioChannel
from rules.territories import load_territories

DATA = pathlib.Path(__file__).resolve().parent / "data" / "web"
GEO = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "geo"
SECRET_ENV = "CRIEUR_TEST_SECRET_KEY"
SECRET = "subscriptions-test-secret-0123456789"
VENDOME, ROMORANTIN = "41269", "41194"


@dataclass
class Mailbox:
    received: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.original_content)
        return "250 Message accepted for delivery"

    def mails(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.received]  # type: ignore[misc]


@dataclass
class Site:
    crieur: Crieur
    client: TestClient
    twilio: Any
    mailbox: Mailbox
    worker: DeliveryWorker

    async def drain(self) -> None:
        await self.worker.drain(10)

    def last_code(self, phone: str) -> str:
        bodies = [m["body"] for m in self.twilio.messages if m["to"] == normalise_phone(phone)]
        found = re.search(r"code de confirmation est ([0-9]{6})", bodies[-1])
        assert found, bodies[-1]
        return found.group(1)

    def last_mail(self, to: str) -> email.message.EmailMessage:
        return [m for m in self.mailbox.mails() if m["To"] == to][-1]


def render(alert: Alert, channel: Any) -> Text:
    return Text(f"{alert.title} — Département de Loir-et-Cher", subject=alert.title)


def browser_crieur_config(tmp_path: pathlib.Path, store_url: str, smtp_port: int) -> ServiceConfig:
    return ServiceConfig(
        path=tmp_path / "crieur.yaml",
        name="Département de Loir-et-Cher",
        database=store_url,
        data_dir=tmp_path,
        sms_channel="sms",
        email_channel="email",
        secret_key_env=SECRET_ENV,
        geo=GEO,
        channels={"sms": {"kind": "twilio", "from": "+33757000041"}},
    )


@pytest.fixture
async def subscription_site(
    store: Any, fake_twilio: Any, tmp_path: pathlib.Path, monkeypatch: Any
) -> AsyncIterator[Site]:
    async with running_site(store, fake_twilio, tmp_path, monkeypatch) as found:
        yield found


class running_site:
    """The real web app around a Crieur whose citizens' desk, fan-out and outbox are the real ones; the
    SMS go to the fake Twilio, the e-mails to aiosmtpd. Shared with tests/browser."""

    def __init__(self, store: Any, twilio: Any, tmp_path: pathlib.Path, monkeypatch: Any, *, serve: bool = False):
        self.store, self.twilio, self.tmp_path, self.monkeypatch, self.serve = (
            store,
            twilio,
            tmp_path,
            monkeypatch,
            serve,
        )

    async def __aenter__(self) -> Site:
        self.monkeypatch.setenv(SECRET_ENV, SECRET)
        self.mailbox = Mailbox()
        loop = asyncio.get_running_loop()
        self.smtp = await loop.create_server(lambda: SMTP(self.mailbox, hostname="mx.test"), "127.0.0.1", 0)
        port = self.smtp.sockets[0].getsockname()[1]
        config = browser_crieur_config(self.tmp_path, "", port)
        crieur = Crieur(config, store=self.store)
        crieur.rules = SimpleNamespace(territories=load_territories(DATA / "territories.yaml"))  # type: ignore[assignment]
        crieur.channels = {
            "sms": TwilioChannel(
                "sms",
                {
                    "account_sid": self.twilio.account_sid,
                    "auth_token": self.twilio.auth_token,
                    "from": "+33757000041",
                    "api_base": self.twilio.base_url,
                    "rate": 200,
                },
            ),
            "email": EmailChannel(
                "email",
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "starttls": False,
                    "from": "route41@departement-41.example",
                    "local_hostname": "crieur.test",
                    "subscribers": True,
                    "rate": 200,
                },
            ),
        }
        crieur.citizens = Citizens(crieur, limits=FloodLimits(per_number=50, replies=500))
        crieur.citizens.subscriptions.attach(crieur.channels)
        crieur.route_installers.append(crieur.citizens.install_routes)  # /twilio/sms and /twilio/status
        crieur.fanout = Fanout(crieur.store, crieur.channels, render, gazetteer=gazetteer_for(GEO))
        self.server = TestServer(make_app(crieur), host="127.0.0.1", port=0)
        self.client = TestClient(self.server)
        await self.client.start_server()
        config.public_url = str(self.server.make_url("")).rstrip("/")
        crieur.channels["sms"].status_callback = config.public_url + "/twilio/status"  # type: ignore[attr-defined]
        self.session = aiohttp.ClientSession()
        for channel in crieur.channels.values():
            await channel.start(self.session)
        worker = DeliveryWorker(
            crieur.store, crieur.channels, worker_id="test-worker", settings=WorkerSettings(retry_initial=0.05)
        )
        return Site(crieur, self.client, self.twilio, self.mailbox, worker)

    async def __aexit__(self, *exc: Any) -> None:
        await self.session.close()
        await self.client.close()
        self.smtp.close()
        await self.smtp.wait_closed()


async def post_form(client: TestClient, path: str, data: dict[str, str], expect: int = 200) -> str:
    response = await client.post(path, data=data, allow_redirects=True)
    text = await response.text()
    assert response.status == expect, text
    return text


async def subscribe_phone(site: Site, phone: str, commune: str = "", roads: str = "") -> str:
    """Ask on /t/41/abonnement, type back the code the SMS carried; returns the confirmation page."""
    response = await site.client.post(
        "/t/41/abonnement",
        data={"contact": phone, "commune": commune, "roads": roads, "consent": "oui"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    code_page = response.headers["Location"]
    assert code_page.startswith("/abonnement/code?t=")
    await site.drain()
    token = code_page.split("t=", 1)[1]
    return await post_form(site.client, "/abonnement/code", {"t": token, "code": site.last_code(phone)})


async def subscribe_email(site: Site, address: str, commune: str = "", roads: str = "") -> str:
    """Ask with an e-mail address, open the link the mail carried, press its button."""
    page = await post_form(
        site.client,
        "/t/41/abonnement",
        {"contact": address, "commune": commune, "roads": roads, "consent": "oui"},
    )
    assert "Un lien de confirmation a été envoyé" in page
    await site.drain()
    local, _, domain = address.rpartition("@")
    mail = site.last_mail(f"{local}@{domain.lower()}")
    link = re.search(r"(http://\S+/abonnement/confirmer\?t=\S+)", mail.get_content()).group(1)
    path = urlsplit(link)
    shown = await site.client.get(f"{path.path}?{path.query}")
    assert shown.status == 200
    assert await site.crieur.store.subscriptions(mail["To"]) == []  # opening the link confirms nothing
    return await post_form(site.client, "/abonnement/confirmer", {"t": path.query.split("t=", 1)[1]})


def closure(**fields: Any) -> Alert:
    values: dict[str, Any] = dict(
        title="D957 fermée à Vendôme",
        text="La D957 est fermée entre Vendôme et Blois.",
        territories=("41",),
        hashtags=("#route41",),
        channels=("sms", "email"),
        severity=Severity.SEVERE,
        roads=(Road("D", "957"),),
        areas=(Area("commune", VENDOME),),
    )
    values.update(fields)
    return Alert(**values)


async def publish(site: Site, alert: Alert) -> Alert:
    stored = await site.crieur.store.add_alert(alert)
    await site.crieur.fanout.plan(stored)  # type: ignore[union-attr]
    await site.drain()
    return stored


# --------------------------------------------------------------------------------------------- phone


async def test_phone_subscription_confirmed_by_the_sms_code(subscription_site: Site) -> None:
    site = subscription_site
    form = await site.client.get("/t/41/abonnement")
    assert form.status == 200 and "Numéro de mobile ou adresse e-mail" in await form.text()
    page = await subscribe_phone(site, "06 12 34 56 11", commune="Vendôme", roads="D957")
    assert "Abonnement confirmé" in page
    assert "commune de Vendôme (41)" in page and "route D957 (41)" in page
    phone = "+33612345611"
    assert sorted(await site.crieur.store.subscriptions(phone)) == sorted(
        [commune_key(VENDOME), road_key("41", "D957")]
    )
    code_sms = [m for m in site.twilio.messages if m["to"] == phone][0]
    assert code_sms["body"].startswith("Département de Loir-et-Cher : votre code de confirmation est ")
    [consent] = await site.crieur.store.consents(phone)
    assert consent["medium"] == "sms" and consent["via"] == "web" and consent["withdrawn_at"] is None
    assert consent["text_version"] and "Département de Loir-et-Cher" in consent["text"]
    assert consent["given_at"] >= consent["asked_at"] and consent["ip"] == "127.0.0.1"
    assert json.loads(consent["places"]) == [commune_key(VENDOME), road_key("41", "D957")]

    await publish(site, closure())  # reaches the commune and road subscriber by SMS, once
    alerts = [m for m in site.twilio.messages if m["to"] == phone and "D957 fermée" in m["body"]]
    assert len(alerts) == 1
    await publish(site, closure(title="Neige à Romorantin", roads=(), areas=(Area("commune", ROMORANTIN),)))
    assert not [m for m in site.twilio.messages if m["to"] == phone and "Romorantin" in m["body"]]


async def test_wrong_codes_are_limited_and_a_code_expires(subscription_site: Site) -> None:
    site = subscription_site
    response = await site.client.post(
        "/t/41/abonnement", data={"contact": "0612345612", "consent": "oui"}, allow_redirects=False
    )
    token = response.headers["Location"].split("t=", 1)[1]
    await site.drain()
    good = site.last_code("+33612345612")
    wrong = f"{(int(good) + 1) % 10**6:06d}"
    page = await post_form(site.client, "/abonnement/code", {"t": token, "code": wrong}, expect=400)
    assert f"encore {MAX_ATTEMPTS - 1} essais" in page
    for _ in range(MAX_ATTEMPTS - 1):
        await post_form(site.client, "/abonnement/code", {"t": token, "code": wrong}, expect=400)
    page = await post_form(site.client, "/abonnement/code", {"t": token, "code": good}, expect=400)
    assert "trop souvent mal saisi" in page  # the right code no longer works after MAX_ATTEMPTS wrong ones
    assert await site.crieur.store.subscriptions("+33612345612") == []

    response = await site.client.post(
        "/t/41/abonnement", data={"contact": "0612345613", "consent": "oui"}, allow_redirects=False
    )
    token = response.headers["Location"].split("t=", 1)[1]
    await site.drain()
    await site.crieur.store.db.execute("UPDATE pending_subscriptions SET expires_at = $1", time.time() - 1)
    page = await post_form(
        site.client, "/abonnement/code", {"t": token, "code": site.last_code("+33612345613")}, expect=400
    )
    assert "expiré" in page
    assert await site.crieur.store.subscriptions("+33612345613") == []


async def test_form_errors_name_the_field(subscription_site: Site) -> None:
    site = subscription_site
    page = await post_form(site.client, "/t/41/abonnement", {"contact": "01 23", "consent": "oui"}, expect=400)
    assert "Numéro de mobile non reconnu" in page and 'aria-invalid="true"' in page
    page = await post_form(site.client, "/t/41/abonnement", {"contact": "0612345614"}, expect=400)
    assert "Cochez la case" in page
    page = await post_form(
        site.client, "/t/41/abonnement", {"contact": "0612345614", "commune": "Atlantide", "consent": "oui"}, expect=400
    )
    assert "Commune « Atlantide » introuvable" in page
    assert (
        not site.twilio.messages
        and await site.crieur.store.db.fetchval("SELECT COUNT(*) FROM pending_subscriptions") == 0
    )
    assert (await site.client.get("/t/99/abonnement")).status == 404
    forged = await site.client.get("/abonnement/code?t=1.9999999999.AAAA")
    assert forged.status == 404


async def test_confirmations_to_one_number_are_limited(subscription_site: Site) -> None:
    """The form sends an SMS to whatever number is typed: three codes an hour to one number, no more."""
    site = subscription_site
    for _ in range(3):
        response = await site.client.post(
            "/t/41/abonnement", data={"contact": "0612345617", "consent": "oui"}, allow_redirects=False
        )
        assert response.status == 303
    page = await post_form(site.client, "/t/41/abonnement", {"contact": "0612345617", "consent": "oui"}, expect=400)
    assert "Trop de demandes" in page
    await site.drain()
    assert len([m for m in site.twilio.messages if m["to"] == "+33612345617"]) == 3


async def test_a_number_that_sent_stop_is_told_to_text_again(subscription_site: Site) -> None:
    site = subscription_site
    await site.crieur.store.opt_out("+33612345615", reason="stop")
    page = await post_form(site.client, "/t/41/abonnement", {"contact": "0612345615", "consent": "oui"}, expect=400)
    assert "STOP" in page and "envoyez ROUTE41 par SMS" in page and not site.twilio.messages


# --------------------------------------------------------------------------------------------- e-mail


async def test_email_subscription_alerts_and_one_click_unsubscribe(subscription_site: Site) -> None:
    site = subscription_site
    address = "Camille@exemple.fr"
    page = await subscribe_email(site, "Camille@Exemple.FR", commune="Vendôme")
    assert "Abonnement confirmé" in page and "commune de Vendôme (41)" in page
    assert await site.crieur.store.subscriptions(address) == [commune_key(VENDOME)]
    [consent] = await site.crieur.store.consents(address)
    assert consent["medium"] == "email" and consent["via"] == "web"
    again = await post_form(
        site.client, "/abonnement/confirmer", {"t": site.last_mail(address).get_content().split("t=", 1)[1].split()[0]}
    )
    assert "déjà confirmé" in again  # a second click subscribes nothing twice

    first = await publish(site, closure())
    mails = [m for m in site.mailbox.mails() if m["To"] == address and m["Subject"] == "D957 fermée à Vendôme"]
    assert len(mails) == 1  # exactly once
    mail = mails[0]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(site.crieur.config.public_url + "/abonnement/desabonner?t=")
    assert unsubscribe in mail.get_content()
    # a planned second time (a retry, a second worker), nothing more is queued or sent
    await site.crieur.fanout.plan(first)  # type: ignore[union-attr]
    await site.drain()
    assert len([m for m in site.mailbox.mails() if m["Subject"] == "D957 fermée à Vendôme"]) == 1
    # SMS subscribers are not e-mailed and e-mail subscribers get no SMS
    assert not [m for m in site.twilio.messages if m["to"] == address]

    # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click", without cookies or CSRF token
    target = urlsplit(unsubscribe)
    async with aiohttp.ClientSession() as anonymous:
        response = await anonymous.post(
            str(site.client.make_url(f"{target.path}?{target.query}")),
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 200, await response.text()
    assert await site.crieur.store.subscriptions(address) == []
    [consent] = await site.crieur.store.consents(address)
    assert consent["withdrawn_at"] is not None
    await publish(site, closure(title="D957 rouverte"))
    assert not [m for m in site.mailbox.mails() if m["Subject"] == "D957 rouverte"]

    tampered = target.query[:-2] + ("AA" if not target.query.endswith("AA") else "BB")
    assert (await site.client.post(f"{target.path}?{tampered}")).status == 404
    assert (await site.client.get(f"{target.path}?{target.query}")).status == 200  # the page, with its button


async def test_escalation_mails_carry_no_unsubscribe_link(subscription_site: Site) -> None:
    """Only alert mails to subscribers have List-Unsubscribe: a webmaster's escalation is not a list."""
    from channels.base import Message

    channel = site_channel = subscription_site.crieur.channels["email"]
    mail = channel.build(Message(key="escalation:1:email:w@x.fr", alert_id=0, text="x", recipient="w@x.fr"))  # type: ignore[attr-defined]
    assert "List-Unsubscribe" not in mail
    mail = site_channel.build(Message(key="1:email:Alert:w@x.fr", alert_id=1, text="x", recipient="w@x.fr"))  # type: ignore[attr-defined]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_rgpd_export_and_erasure_cover_consents(subscription_site: Site) -> None:
    site = subscription_site
    await subscribe_phone(site, "0612345616")
    exported = await site.crieur.store.export_subscriber("+33612345616")
    assert exported["subscriptions"] and len(exported["consents"]) == 1
    await site.crieur.store.delete_subscriber("+33612345616")
    assert await site.crieur.store.consents("+33612345616") == []
    assert (
        await site.crieur.store.db.fetchval(
            "SELECT COUNT(*) FROM pending_subscriptions WHERE address = $1", "+33612345616"
        )
        == 0
    )


async def test_an_exercise_mails_only_the_exercise_addresses(subscription_site: Site) -> None:
    """An e-mail subscriber channel in an exercise: the exercise's addresses, never the subscribers, and no
    phone number given to the mail server (nor an address to the SMS provider)."""
    site = subscription_site
    await site.crieur.store.subscribe("abonne@exemple.fr", ["41"], medium="email")
    drill = Fanout(
        site.crieur.store,
        site.crieur.channels,
        render,
        exercise_recipients=["+33612345699", "astreinte@departement-41.example"],
    )
    alert = await site.crieur.store.add_alert(closure(exercise=True))
    assert await drill.plan(alert) == {"sms": 1, "email": 1}
    recipients = {(d.channel, d.recipient) for d in await site.crieur.store.deliveries(alert_id=alert.id)}
    assert recipients == {("sms", "+33612345699"), ("email", "astreinte@departement-41.example")}
