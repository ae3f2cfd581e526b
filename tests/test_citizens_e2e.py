"""Citizens end to end, through the real aiohttp routes, on SQLite and PostgreSQL: SMS conversations
signed like Twilio signs them, alerts delivered by the fake Twilio, STOP during a fan-out, questions
answered or escalated to a webmaster through a real SMTP server (aiosmtpd), acknowledgement links, status
callbacks, flood limits and Mastodon mentions answered in the thread."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import pathlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP
from twilio.request_validator import RequestValidator

from alerts.acks import sign_ack
from alerts.citizens import MENTIONS_STATE, Citizens, FloodLimits
from alerts.config import ServiceConfig
from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.ingest import SourceSpec
from alerts.ingest.rss import parse as parse_rss
from channels.email import EmailChannel
from channels.mastodon import MastodonChannel
from channels.twilio import TwilioChannel
from channels.webhook import WebhookChannel
from rules.competence import Directory
from rules.territories import load_territories

DATA = pathlib.Path(__file__).resolve().parent / "data" / "citizens"
TOKEN_ENV = "CRIEUR_TEST_TWILIO_AUTH_TOKEN"
SECRET_ENV = "CRIEUR_TEST_SECRET_KEY"
SECRET = "citizens-test-secret-0123456789abcdef"
ALICE, BRUNO, CLAIRE, DAVID = "+33612345601", "+33612345602", "+33612345603", "+33612345604"
HGV = "Les poids lourds peuvent-ils circuler ?"


@dataclass
class Mailbox:
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    def mails(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in self.received]


@dataclass
class World:
    citizens: Citizens
    client: TestClient
    store: Any
    config: ServiceConfig
    channels: dict
    twilio: Any
    mastodon: Any
    webhook: Any
    mailbox: Mailbox

    @property
    def public(self) -> str:
        return self.config.public_url

    def signature(self, path: str, params: dict[str, str], url: str | None = None) -> str:
        return RequestValidator(self.twilio.auth_token).compute_signature(url or self.public + path, params)

    async def sms(
        self, sender: str, body: str, *, sid: str | None = None, signature: str | None = None, expect: int = 200
    ) -> str:
        """Post an inbound SMS as Twilio does; returns the text of the TwiML <Message> ("" if none)."""
        params = {
            "AccountSid": self.twilio.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": sender,
            "FromCountry": "FR",
            "MessageSid": sid or f"SM{time.time_ns():032x}"[:34],
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "To": "+33757000041",
            "ToCountry": "FR",
        }
        headers = {"X-Twilio-Signature": signature if signature is not None else self.signature("/twilio/sms", params)}
        response = await self.client.post("/twilio/sms", data=params, headers=headers)
        assert response.status == expect, await response.text()
        if expect != 200:
            return ""
        assert response.content_type == "text/xml"
        document = await response.text()
        assert document.startswith('<?xml version="1.0" encoding="UTF-8"?><Response')
        found = re.search(r"<Message>(.*)</Message>", document, re.S)
        return _unescape(found.group(1)) if found else ""

    def worker(self, **settings: Any) -> DeliveryWorker:
        return DeliveryWorker(
            self.store, self.channels, worker_id="test-worker", settings=WorkerSettings(retry_initial=0.05, **settings)
        )


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


def _authorities(tmp_path: pathlib.Path, webhook_base: str) -> pathlib.Path:
    path = tmp_path / "authorities.yaml"
    text = (DATA / "authorities.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("http://127.0.0.1:9", webhook_base), encoding="utf-8")
    return path


def citizen_channels(fake_twilio: Any, fake_mastodon: Any, fake_webhook: Any, smtp_port: int) -> dict[str, Any]:
    """SMS, e-mail, Mastodon and webhook channels on the fakes and a local SMTP server, at 200/s each."""
    return {
        "sms": TwilioChannel(
            "sms",
            {
                "account_sid": fake_twilio.account_sid,
                "auth_token": fake_twilio.auth_token,
                "from": "+33757000041",
                "api_base": fake_twilio.base_url,
                "rate": 200,
            },
        ),
        "email": EmailChannel(
            "email",
            {
                "host": "127.0.0.1",
                "port": smtp_port,
                "starttls": False,
                "from": "route41@departement-41.example",
                "local_hostname": "crieur.test",
                "rate": 200,
            },
        ),
        "mastodon": MastodonChannel(
            "mastodon", {"base_url": fake_mastodon.base_url, "access_token": "test-token", "rate": 200}
        ),
        "webhook": WebhookChannel("webhook", {"secret": fake_webhook.secret, "rate": 200, "allow": ["127.0.0.1"]}),
    }


@pytest.fixture
def limits() -> FloodLimits:
    """Overridden by `@pytest.mark.parametrize("limits", [...])` in the flood tests."""
    return FloodLimits(per_number=5, replies=100)


@pytest.fixture
async def world(store, fake_twilio, fake_mastodon, fake_webhook, tmp_path, monkeypatch, limits):
    monkeypatch.setenv(TOKEN_ENV, fake_twilio.auth_token)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(mailbox, hostname="mx.test"), "127.0.0.1", 0)
    smtp_port = smtp.sockets[0].getsockname()[1]

    config = ServiceConfig(
        path=tmp_path / "crieur.yaml",
        name="Département de Loir-et-Cher",
        sms_channel="sms",
        email_channel="email",
        twilio_auth_token_env=TOKEN_ENV,
        secret_key_env=SECRET_ENV,
    )
    channels = citizen_channels(fake_twilio, fake_mastodon, fake_webhook, smtp_port)
    crieur = SimpleNamespace(
        config=config,
        store=store,
        channels=channels,
        directory=Directory.load(_authorities(tmp_path, fake_webhook.base_url)),
        rules=SimpleNamespace(territories=load_territories(DATA / "territories.yaml")),
        route_installers=[],
        metrics=None,
    )
    citizens = Citizens(crieur, limits=limits)
    crieur.citizens = citizens
    crieur.route_installers.append(citizens.install_routes)
    app = web.Application()
    for install in crieur.route_installers:
        install(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    config.public_url = str(client.server.make_url("")).rstrip("/")
    channels["sms"].status_callback = config.public_url + "/twilio/status"
    async with aiohttp.ClientSession() as session:
        for channel in channels.values():
            await channel.start(session)
        yield World(citizens, client, store, config, channels, fake_twilio, fake_mastodon, fake_webhook, mailbox)
        await client.close()
        smtp.close()
        await smtp.wait_closed()


def sms_to(fake_twilio, number: str) -> list[str]:
    return [m["body"] for m in fake_twilio.messages if m["to"] == number]


async def ingest_prefecture(store) -> None:
    spec = SourceSpec(name="prefecture-41", kind="rss", url="file:prefecture41_rss.xml")
    await store.ingest(parse_rss(spec, (DATA / "prefecture41_rss.xml").read_bytes()))


# ----------------------------------------------------------------------------------- subscriptions


async def test_subscribe_by_sms_then_receive_an_alert(world: World):
    reply = await world.sms(ALICE, "ROUTE41")
    assert "Abonnement confirm" in reply and "41 Loir-et-Cher" in reply and "STOP" in reply
    reply = await world.sms(BRUNO, "ABONNER 41 28")
    assert "41 Loir-et-Cher, 28 Eure-et-Loir" in reply
    assert "déjà abonné" in await world.sms(ALICE, "route 41 merci")
    assert "Territoire 99 inconnu" in await world.sms(CLAIRE, "ABONNER 99")
    assert await world.store.subscriptions(ALICE) == ["41"]
    assert await world.store.subscriptions(BRUNO) == ["28", "41"]
    assert await world.store.subscriptions(CLAIRE) == []

    queued = await world.store.enqueue_subscribers(
        7, "sms", ["28"], "Alert", "Neige : RD 939 fermee a Chartres. #route28"
    )
    assert queued == 1
    await world.worker().drain(10)
    assert sms_to(world.twilio, BRUNO) == ["Neige : RD 939 fermee a Chartres. #route28"]
    assert sms_to(world.twilio, ALICE) == []


async def test_national_number_format_and_help(world: World):
    assert "ROUTE41 (Loir-et-Cher)" in await world.sms("06 12 34 56 05", "aide")
    await world.sms("06 12 34 56 05", "ROUTE41")
    assert await world.store.subscriptions("+33612345605") == ["41"]


async def test_forged_or_unsigned_webhook_is_refused_and_nothing_is_stored(world: World):
    params = {"From": ALICE, "Body": "ROUTE41", "MessageSid": "SM" + "1" * 32}
    await world.sms(ALICE, "ROUTE41", signature="forged", expect=403)
    response = await world.client.post("/twilio/sms", data=params)  # no signature at all
    assert response.status == 403
    # Signed for the URL a forger's Host header would produce, not the configured public URL.
    evil = world.signature("", params, url="http://evil.example/twilio/sms")
    response = await world.client.post(
        "/twilio/sms", data=params, headers={"X-Twilio-Signature": evil, "Host": "evil.example"}
    )
    assert response.status == 403
    # A valid signature over other parameters (Body changed in transit).
    good = world.signature("/twilio/sms", params)
    response = await world.client.post(
        "/twilio/sms", data=params | {"Body": "STOP"}, headers={"X-Twilio-Signature": good}
    )
    assert response.status == 403
    assert await world.store.subscriptions(ALICE) == []
    assert not await world.store.opted_out(ALICE)
    assert await world.store.questions() == []


async def test_signature_check_can_be_disabled_for_demos(world: World):
    world.config.verify_twilio_signature = False
    assert "Abonnement confirm" in await world.sms(ALICE, "ROUTE41", signature="")


async def test_a_retried_webhook_is_handled_once(world: World):
    first = await world.sms(ALICE, HGV, sid="SM" + "a" * 32)
    again = await world.sms(ALICE, HGV, sid="SM" + "a" * 32)
    assert first and again == ""
    assert len(await world.store.questions()) == 1


async def test_a_webhook_replayed_after_a_restart_or_to_another_process_is_handled_once(world: World):
    from alerts.shared_limits import REPLAY_TTL, first_delivery

    sid = "SM" + "b" * 32
    assert await world.sms(ALICE, HGV, sid=sid)
    restarted = Citizens(world.citizens.crieur, limits=world.citizens.limits)  # a new process, same database
    app = web.Application()
    restarted.install_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as other:
        params = {"AccountSid": world.twilio.account_sid, "Body": HGV, "From": ALICE, "MessageSid": sid}
        url = world.public + "/twilio/sms"
        signature = RequestValidator(world.twilio.auth_token).compute_signature(url, params)
        response = await other.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
        assert response.status == 200 and "<Message>" not in await response.text()
    assert len(await world.store.questions()) == 1
    # the memory lasts a day, then the id may be used again
    later = time.time() + REPLAY_TTL + 60
    assert await first_delivery(world.store.db, f"twilio:{sid}", now=later)
    assert not await first_delivery(world.store.db, f"twilio:{sid}", now=later + 1)


async def test_stop_during_a_fanout_stops_the_sms_to_that_number(world: World):
    for number in (ALICE, BRUNO, CLAIRE, DAVID):
        await world.sms(number, "ROUTE41")
    assert await world.store.enqueue_subscribers(12, "sms", ["41"], "Alert", "Verglas sur la RD 957.") == 4
    worker = world.worker(batch=1)
    assert await worker.run_once("sms")  # the fan-out has started: one SMS sent
    served = {m["to"] for m in world.twilio.messages if m["body"] == "Verglas sur la RD 957."}
    assert len(served) == 1
    stopping = next(n for n in (DAVID, CLAIRE, BRUNO) if n not in served)

    reply = await world.sms(stopping, "Stop svp")
    assert "Désabonnement confirmé" in reply and "ROUTE41" in reply
    await worker.drain(10)

    alert_sms = [m for m in world.twilio.messages if m["body"] == "Verglas sur la RD 957."]
    assert len(alert_sms) == 3
    assert stopping not in {m["to"] for m in alert_sms}
    assert sms_to(world.twilio, stopping) == []  # replies go back as TwiML: nothing was ever sent to it
    row = await world.store.delivery(f"12:sms:Alert:{stopping}")
    assert row.state == "cancelled"
    assert await world.store.subscriptions(stopping) == []
    # A later alert does not reach the number either.
    await world.store.enqueue_subscribers(13, "sms", ["41"], "Alert", "Fin de l'alerte.")
    await worker.drain(10)
    assert "Fin de l'alerte." not in sms_to(world.twilio, stopping)


# ---------------------------------------------------------------------------------------- questions


async def test_in_scope_question_goes_to_the_team_queue(world: World):
    reply = await world.sms(ALICE, "La RD 957 est-elle déneigée entre Blois et Vendôme ?")
    assert "votre question est transmise" in reply
    [question] = await world.store.questions(status="queued")
    assert question["sender"] == ALICE and question["authority"] == "cd41" and question["in_scope"] == 1
    assert question["answer"] == reply
    assert await world.store.escalations() == []


async def test_hgv_question_quotes_the_current_prefecture_publication(world: World):
    await ingest_prefecture(world.store)
    reply = await world.sms(ALICE, HGV)
    assert reply.startswith("Les interdictions de circulation des poids lourds relèvent de la Préfecture")
    assert "interdiction de circulation des poids lourds sur l'A10" in reply
    assert "https://www.loir-et-cher.gouv.fr/Actualites/Episode-neigeux-interdiction-poids-lourds" in reply
    [question] = await world.store.questions()
    assert question["status"] == "answered" and question["authority"] == "prefecture-41"
    assert question["escalation_id"] is None
    assert await world.store.escalations() == []
    await world.worker().drain(5)
    assert world.mailbox.received == []


async def test_hgv_question_without_publication_escalates_once_by_real_email(world: World):
    replies = [await world.sms(number, HGV) for number in (ALICE, BRUNO)]
    replies.append(await world.sms(CLAIRE, "Un camion peut-il rouler vers Blois ce soir ?"))
    for reply in replies:
        assert "La Préfecture n'a rien publié à ce sujet" in reply and "signalé votre question" in reply
        assert all(ch not in reply for ch in "êâîôûç«»’")  # GSM-7: one SMS segment is 160 characters
    [escalation] = await world.store.escalations()
    assert escalation["authority"] == "prefecture-41" and escalation["topic"] == "poids-lourds"
    assert escalation["question_count"] == 3 and escalation["state"] == "sent"
    questions = await world.store.questions(status="escalated")
    assert len(questions) == 3 and {q["escalation_id"] for q in questions} == {escalation["id"]}

    await world.worker().drain(10)
    [mail] = world.mailbox.mails()
    assert mail["To"] == "webmestre@prefecture-41.example"
    assert mail["Subject"] == (
        "[Crieur] 1 question de citoyens sur les interdictions de circulation des poids"
        " lourds – aucune information publiée"
    )
    body = mail.get_content()
    assert "1 citoyen a interrogé le Conseil départemental de Loir-et-Cher" in body
    assert f"« {HGV} »" in body
    assert f"{world.public}/escalations/ack?token={escalation['id']}." in body
    # A later question in the same window only counts.
    result = await world.citizens.ask("web", "", HGV, territories=["41"])
    assert result["escalation_id"] == escalation["id"] and result["escalation_count"] == 4
    await world.worker().drain(5)
    assert len(world.mailbox.received) == 1


async def test_a_new_window_opens_a_new_escalation(world: World):
    first = await world.citizens.ask("web", "", HGV)
    later = datetime.now(timezone.utc) + timedelta(seconds=world.config.escalation_window)
    world.citizens._now = lambda: later
    second = await world.citizens.ask("web", "", HGV)
    assert first["escalation_id"] != second["escalation_id"]
    assert second["escalation_count"] == 1


async def test_webmaster_acknowledges_with_the_signed_link(world: World):
    await world.sms(ALICE, HGV)
    await world.worker().drain(10)
    body = world.mailbox.mails()[0].get_content()
    link = re.search(r"(http://\S+/escalations/ack\?token=\S+)", body).group(1)
    parts = urlsplit(link)
    token = parts.query.split("=", 1)[1]
    escalation_id = int(token.split(".")[0])

    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_id = f"{escalation_id + 1}.{token.split('.', 1)[1]}"
    expired = sign_ack(escalation_id, SECRET, ttl=timedelta(days=7), now=time.time() - 8 * 86400)
    for bad in (tampered, other_id, expired, "", "garbage"):
        response = await world.client.get("/escalations/ack", params={"token": bad})
        assert response.status == 403
        assert "Lien invalide ou expiré" in await response.text()
    assert (await world.store.escalation(escalation_id))["state"] == "sent"

    for method in ("GET", "HEAD"):  # what a mail scanner does: shows the page, acknowledges nothing
        response = await world.client.request(method, f"{parts.path}?{parts.query}")
        assert response.status == 200 and response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"
    assert (await world.store.escalation(escalation_id))["state"] == "sent"
    form = await (await world.client.get(f"{parts.path}?{parts.query}")).text()
    assert 'method="post"' in form and "Confirmer la réception" in form
    for bad in (tampered, "garbage"):
        assert (await world.client.post("/escalations/ack", data={"token": bad})).status == 403
    response = await world.client.post("/escalations/ack", data={"token": token})
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    assert '<html lang="fr">' in page and "Signalement bien reçu" in page and "1 question" in page
    assert "poids lourds" in page
    row = await world.store.escalation(escalation_id)
    assert row["state"] == "acknowledged" and row["acknowledged_at"] is not None
    again = await world.client.post("/escalations/ack", data={"token": token})
    assert again.status == 200
    assert (await world.store.escalation(escalation_id))["acknowledged_at"] == row["acknowledged_at"]


async def test_escalation_to_a_webhook_contact(world: World):
    result = await world.citizens.ask("web", "", "La N10 est-elle dégagée vers Vendôme ?", territories=["41"])
    assert result["routing"].authority.id == "dir-centre-ouest"
    assert "La DIR Centre-Ouest n'a rien publié" in result["reply"]
    await world.worker().drain(10)
    [received] = world.webhook.verified
    assert received.path == "/dir-centre-ouest/crieur"
    event = json.loads(received.body)
    assert event["type"] == "escalation.opened"
    assert event["data"]["question_count"] == 1 and event["data"]["topic"] == "routes-nationales"
    assert event["data"]["ack_url"].startswith(f"{world.public}/escalations/ack?token={result['escalation_id']}.")


async def test_web_form_question_is_routed_with_its_territory(world: World):
    result = await world.citizens.ask(channel="web", sender="", text=HGV, territories=["28"])
    assert result["routing"].authority.id == "prefecture-28"
    assert "Préfecture d'Eure-et-Loir" in result["reply"]
    [question] = await world.store.questions()
    assert question["channel"] == "web" and json.loads(question["territories"]) == ["28"]
    with pytest.raises(ValueError):
        await world.citizens.ask("web", "", "   ")


async def test_sms_question_is_routed_within_the_senders_territories(world: World):
    await world.sms(ALICE, "ROUTE28")
    reply = await world.sms(ALICE, HGV)
    assert "Préfecture d'Eure-et-Loir" in reply
    [escalation] = await world.store.escalations()
    assert escalation["authority"] == "prefecture-28"


# ------------------------------------------------------------------------------- status callbacks


async def test_status_callbacks_update_deliveries_and_act_on_numbers(world: World):
    for number in (ALICE, BRUNO):
        await world.sms(number, "ROUTE41")
    await world.store.enqueue_subscribers(21, "sms", ["41"], "Alert", "Routes glissantes ce matin.")
    await world.worker().drain(10)
    sid = {m["to"]: m["sid"] for m in world.twilio.messages if m["body"] == "Routes glissantes ce matin."}

    assert await world.twilio.send_status_callback(sid[ALICE], "delivered") == 204
    row = await world.store.delivery(f"21:sms:Alert:{ALICE}")
    assert row.provider_status == "delivered"

    assert await world.twilio.send_status_callback(sid[BRUNO], "undelivered", error_code=21610) == 204
    row = await world.store.delivery(f"21:sms:Alert:{BRUNO}")
    assert row.provider_status == "undelivered" and "21610" in row.last_error
    assert await world.store.opted_out(BRUNO)
    assert await world.store.subscriptions(BRUNO) == []

    # A forged callback changes nothing.
    callback = f"{world.public}/twilio/status?d=21:sms:Alert:%2B{ALICE[1:]}"
    params = {"MessageSid": sid[ALICE], "MessageStatus": "failed", "To": ALICE, "ErrorCode": "30006"}
    async with aiohttp.ClientSession() as session:
        async with session.post(callback, data=params, headers={"X-Twilio-Signature": "forged"}) as response:
            assert response.status == 403
    assert (await world.store.delivery(f"21:sms:Alert:{ALICE}")).provider_status == "delivered"
    assert not await world.store.opted_out(ALICE)

    # The same callback properly signed, with the key percent-encoded (%2B for "+"), is taken.
    params["ErrorCode"] = "30003"  # handset unreachable: transient, the number is kept
    headers = {"X-Twilio-Signature": world.signature("", params, url=callback)}
    async with aiohttp.ClientSession() as session:
        async with session.post(callback, data=params, headers=headers) as response:
            assert response.status == 204
    row = await world.store.delivery(f"21:sms:Alert:{ALICE}")
    assert row.provider_status == "failed" and row.last_error == "Twilio 30003"
    assert not await world.store.opted_out(ALICE)


async def test_a_number_whose_messages_keep_coming_back_undelivered_is_put_aside(world: World):
    """citizens.undelivered_limit (3) receipts in a row saying undelivered (not a permanent code): the number
    gets nothing more until it texts us again; the console's progress counts the receipts."""
    for number in (ALICE, BRUNO):
        await world.sms(number, "ROUTE41")
    for alert_id in (31, 32, 33):
        await world.store.enqueue_subscribers(alert_id, "sms", ["41"], "Alert", f"Message {alert_id}.")
        await world.worker().drain(10)
        sids = {m["to"]: m["sid"] for m in world.twilio.messages if m["body"] == f"Message {alert_id}."}
        assert await world.twilio.send_status_callback(sids[BRUNO], "delivered") == 204
        assert await world.twilio.send_status_callback(sids[ALICE], "undelivered", error_code=30003) == 204
        assert await world.store.opted_out(ALICE) == (alert_id == 33)  # not after one or two
    assert not await world.store.opted_out(BRUNO)
    [progress] = await world.store.progress(alert_id=33)
    assert (progress["delivered"], progress["undelivered"]) == (1, 1)
    await world.store.enqueue_subscribers(34, "sms", ["41"], "Alert", "Message 34.")
    await world.worker().drain(10)
    assert [m["to"] for m in world.twilio.messages if m["body"] == "Message 34."] == [BRUNO]
    await world.sms(ALICE, "ROUTE41")  # the number works again: it texted us
    assert not await world.store.opted_out(ALICE)


# ------------------------------------------------------------------------------------ flood limits


@pytest.mark.parametrize("limits", [FloodLimits(per_number=3, replies=100)])
async def test_per_number_limit_ignores_a_flooding_number_but_stop_still_works(world: World):
    answers = [await world.sms(ALICE, f"Question {i} sur la RD 957 ?") for i in range(5)]
    assert all(answers[:3]) and answers[3:] == ["", ""]  # empty <Response />
    assert len(await world.store.questions()) == 3
    await world.store.subscribe(ALICE, ["41"])
    await world.store.enqueue_subscribers(30, "sms", ["41"], "Alert", "Neige.")
    assert await world.sms(ALICE, "STOP") == ""  # honoured, not confirmed
    assert await world.store.opted_out(ALICE) and await world.store.subscriptions(ALICE) == []
    assert (await world.store.delivery(f"30:sms:Alert:{ALICE}")).state == "cancelled"
    assert "Abonnement confirm" in await world.sms(BRUNO, "ROUTE41")  # other numbers are unaffected


@pytest.mark.parametrize("limits", [FloodLimits(per_number=5, replies=2)])
async def test_global_reply_limit_withholds_replies_but_keeps_the_messages(world: World):
    assert await world.sms(ALICE, "ROUTE41")
    assert await world.sms(BRUNO, "ROUTE41")
    assert await world.sms(CLAIRE, "ROUTE41") == ""
    assert await world.sms(DAVID, HGV) == ""
    assert await world.store.subscriptions(CLAIRE) == ["41"]  # accepted data is kept
    assert len(await world.store.questions()) == 1
    await world.sms(DAVID, "STOP")
    assert await world.store.opted_out(DAVID)


# ------------------------------------------------------------------------------------------ Mastodon


MENTION = (
    '<span class="h-card" translate="no"><a href="{base}/@cd41" class="u-url mention">@<span>cd41</span>'
    "</a></span> {text}"
)


async def test_mastodon_mention_is_answered_in_the_thread(world: World):
    await ingest_prefecture(world.store)
    note = world.mastodon.add_mention(
        MENTION.format(base=world.mastodon.base_url, text=HGV + " #route41"), sender="habitant@mastodon.example"
    )
    assert await world.citizens.poll_mentions() == 1
    [question] = await world.store.questions()
    assert question["channel"] == "mastodon" and question["sender"] == "habitant@mastodon.example"
    assert question["text"] == HGV + " #route41"
    assert json.loads(question["territories"]) == ["41"]
    await world.worker().drain(10)
    reply = world.mastodon.statuses[-1]
    assert reply["in_reply_to_id"] == note["status"]["id"]
    assert reply["content"].startswith("<p>@habitant@mastodon.example Les interdictions de circulation")
    assert "Episode-neigeux-interdiction-poids-lourds" in reply["content"]
    assert (await world.store.delivery(f"q{question['id']}:mastodon")).state == "sent"

    # Polling again answers nothing twice; a new mention is taken from where the last poll stopped.
    assert await world.citizens.poll_mentions() == 0
    assert (await world.store.load_source_state(MENTIONS_STATE))["since_id"] == note["id"]
    world.mastodon.add_mention(MENTION.format(base=world.mastodon.base_url, text="La RD 957 est-elle salée ?"))
    assert await world.citizens.poll_mentions() == 1
    await world.worker().drain(10)
    assert len([s for s in world.mastodon.statuses if s["in_reply_to_id"]]) == 2


async def test_a_direct_mention_is_answered_privately_and_an_empty_one_not_at_all(world: World):
    """A direct mention is a private message: its answer is a direct status, in its thread, that mentions
    its author only; a mention with no text is no question."""
    world.mastodon.add_mention(MENTION.format(base=world.mastodon.base_url, text=""))
    note = world.mastodon.add_mention(MENTION.format(base=world.mastodon.base_url, text=HGV))
    note["status"]["visibility"] = "direct"
    assert await world.citizens.poll_mentions() == 1
    [question] = await world.store.questions()
    assert question["recipient"] == "habitant@example.org"
    await world.worker().drain(5)
    [reply] = [s for s in world.mastodon.statuses if s["in_reply_to_id"]]
    assert reply["in_reply_to_id"] == note["status"]["id"]
    assert reply["visibility"] == "direct"
    assert reply["content"].startswith("<p>@habitant@example.org Les interdictions de circulation")
    # and so is what a CM answers it (a group's answer goes to each asker through the same delivery)
    answer = world.citizens.conversations.delivery(await world.store.question(question["id"]), "Vu.", "a1", "CM")
    assert answer is not None and json.loads(answer.extra) == {"visibility": "direct"}
    assert answer.reply_to == note["status"]["id"] and answer.text.startswith("@habitant@example.org Vu.")


async def test_run_mentions_loop_survives_a_failing_provider_and_stops(world: World):
    world.mastodon.fail_next(1, status=500)
    task = asyncio.create_task(world.citizens.run_mentions(interval=0.05))
    world.mastodon.add_mention(MENTION.format(base=world.mastodon.base_url, text=HGV))
    for _ in range(100):
        if await world.store.questions():
            break
        await asyncio.sleep(0.02)
    world.citizens.stop()
    await asyncio.wait_for(task, 2)
    assert len(await world.store.questions()) == 1
