"""Conversations end to end, on SQLite and PostgreSQL, through the real routes and the fake providers:
questions about the same road arriving by SMS, Bluesky, Mastodon, Facebook (comments and Messenger) and
e-mail (a real SMTP exchange with Crieur's endpoint) fall in one group; one CM answer reaches each asker
once, in their thread, fitted to each provider's limits and signed; a road question with a current
Département item is answered automatically; a forged Facebook webhook is refused."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from types import SimpleNamespace
from typing import Any

import aiohttp
import aiosmtplib
import grapheme
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP

from alerts.citizens import Citizens, FloodLimits
from alerts.config import ServiceConfig
from alerts.delivery import DeliveryWorker, WorkerSettings
from alerts.domain import Item
from alerts.metrics import Metrics
from alerts.storage import DeliveryState
from channels.base import Message
from channels.bluesky import BlueskyChannel
from channels.facebook import FacebookChannel
from rules.competence import Directory
from rules.fitting import sms_measure
from rules.territories import load_territories
from tests.test_citizens_e2e import (
    DATA,
    MENTION,
    SECRET,
    SECRET_ENV,
    TOKEN_ENV,
    Mailbox,
    World,
    _authorities,
    citizen_channels,
)

APP_SECRET_ENV = "CRIEUR_TEST_FACEBOOK_APP_SECRET"
VERIFY_ENV = "CRIEUR_TEST_FACEBOOK_VERIFY_TOKEN"
INBOUND = "questions@departement-41.example"
# A long answer: Bluesky (300 graphemes) and Mastodon (500 characters) get it shortened, signature kept.
ANSWER = (
    "La D957 est rouverte entre Blois et Vendôme depuis 18 h après le passage des saleuses ; la chaussée "
    "reste glissante dans la forêt de Blois et aux abords de Villiers-sur-Loir, où un chasse-neige repasse "
    "cette nuit. Roulez à 70 km/h au plus, gardez vos distances et évitez de doubler les engins de "
    "déneigement. Les poids lourds de plus de 7,5 tonnes restent interdits par arrêté préfectoral jusqu'à "
    "demain 10 h. Nous publierons la prochaine information sur route41 vers 6 h du matin, ou plus tôt si la "
    "situation change. Merci de votre patience."
)
QUESTIONS = [
    "Bonjour, la D957 est-elle ouverte ?",
    "la RD 957 est-elle praticable ce soir ?",
    "Est-ce que la route départementale 957 est déneigée ?",
    "D957 fermée ou pas ??",
    "On passe sur la D957 vers Vendôme ?",
]


@dataclass
class Conversation(World):
    bluesky: Any = None
    facebook: Any = None
    inbound_port: int = 0

    async def facebook_event(self, payload: dict[str, Any], *, secret: str | None = None) -> int:
        body, headers = self.facebook.signed(payload, secret)
        response = await self.client.post("/facebook/webhook", data=body, headers=headers)
        return response.status

    async def mail(self, sender: str, subject: str, body: str, **headers: str) -> str:
        """A citizen's mail to the questions' address, through Crieur's SMTP endpoint; its Message-ID."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = INBOUND
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="example.org")
        for name, value in headers.items():
            message[name.replace("_", "-")] = value
        message.set_content(body)
        await aiosmtplib.send(message, hostname="127.0.0.1", port=self.inbound_port, local_hostname="citizen.test")
        return str(message["Message-ID"])

    async def drain(self) -> None:
        worker = DeliveryWorker(
            self.store, self.channels, worker_id="test-worker", settings=WorkerSettings(retry_initial=0.05)
        )
        await worker.drain(30)


@pytest.fixture
async def conversation(
    store, fake_twilio, fake_mastodon, fake_bluesky, fake_facebook, fake_webhook, tmp_path, monkeypatch
):
    monkeypatch.setenv(TOKEN_ENV, fake_twilio.auth_token)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(APP_SECRET_ENV, fake_facebook.app_secret)
    monkeypatch.setenv(VERIFY_ENV, "verify-me")
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(mailbox, hostname="mx.test"), "127.0.0.1", 0)
    config = ServiceConfig(
        path=tmp_path / "crieur.yaml",
        name="Département de Loir-et-Cher",
        sms_channel="sms",
        email_channel="email",
        twilio_auth_token_env=TOKEN_ENV,
        secret_key_env=SECRET_ENV,
        facebook_app_secret_env=APP_SECRET_ENV,
        facebook_verify_token_env=VERIFY_ENV,
        inbound_email=INBOUND,
    )
    channels = citizen_channels(fake_twilio, fake_mastodon, fake_webhook, smtp.sockets[0].getsockname()[1])
    channels["bluesky"] = BlueskyChannel(
        "bluesky",
        {
            "identifier": fake_bluesky.identifier,
            "app_password": fake_bluesky.password,
            "service": fake_bluesky.base_url,
            "rate": 200,
        },
    )
    channels["facebook"] = FacebookChannel(
        "facebook",
        {
            "page_id": fake_facebook.page_id,
            "page_token": fake_facebook.token,
            "api_base": fake_facebook.base_url,
            "rate": 200,
        },
    )
    crieur = SimpleNamespace(
        config=config,
        store=store,
        channels=channels,
        directory=Directory.load(_authorities(tmp_path, fake_webhook.base_url)),
        rules=SimpleNamespace(territories=load_territories(DATA / "territories.yaml")),
        route_installers=[],
        metrics=None,
        workers=[],
        source_loop=None,
        started_at=0.0,
    )
    citizens = Citizens(crieur, limits=FloodLimits(per_number=5, replies=200))
    crieur.citizens = citizens
    app = web.Application()
    citizens.install_routes(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    config.public_url = str(client.server.make_url("")).rstrip("/")
    inbound = await citizens.mail.serve("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        for channel in channels.values():
            await channel.start(session)
        yield Conversation(
            citizens,
            client,
            store,
            config,
            channels,
            fake_twilio,
            fake_mastodon,
            fake_webhook,
            mailbox,
            bluesky=fake_bluesky,
            facebook=fake_facebook,
            inbound_port=inbound.sockets[0].getsockname()[1],
        )
        await client.close()
        inbound.close()
        smtp.close()
        await smtp.wait_closed()


def _department_item(title: str, *, hours_left: float = 6) -> Item:
    now = datetime.now(timezone.utc)
    return Item(
        source="departement-41",
        external_id=f"cd41-{abs(hash(title))}",
        sent=now - timedelta(minutes=20),
        expires=now + timedelta(hours=hours_left),
        title=title,
        text=title,
        link="https://www.route41.example/etat-des-routes",
    )


def _phone(index: int) -> str:
    return f"+336123457{index:02d}"


async def _fifty_questions(world: Conversation) -> dict[str, list[Any]]:
    """Ten askers on each of the five channels; returns what identifies each asker's thread."""
    askers: dict[str, list[Any]] = {
        "sms": [],
        "bluesky": [],
        "mastodon": [],
        "comment": [],
        "messenger": [],
        "email": [],
    }
    # a post of the département that Bluesky citizens reply to
    post = Message(key="post:1", alert_id=1, text="Neige : point sur les routes départementales ce soir #route41")
    receipt = await world.channels["bluesky"].send(post)
    ours = next(r for r in world.bluesky.records if f"{r['uri']}|{r['cid']}" == receipt.provider_id)
    for i in range(10):
        text = QUESTIONS[i % len(QUESTIONS)]
        reply = await world.sms(_phone(i), text)
        assert "transmise" in reply and "Département" in reply, reply
        askers["sms"].append(_phone(i))
        note = world.bluesky.add_mention(
            f"@cd41.bsky.social {text}", handle=f"habitant{i}.bsky.social", reply_to=ours if i % 2 else None
        )
        askers["bluesky"].append(note)
        mention = world.mastodon.add_mention(
            MENTION.format(base=world.mastodon.base_url, text=text), sender=f"habitant{i}@mastodon.example"
        )
        askers["mastodon"].append(mention)
        if i < 6:
            event = world.facebook.comment_event(text, user_id=f"10{i:04d}", name=f"Habitant {i}")
            assert await world.facebook_event(event) == 200
            askers["comment"].append(event["entry"][0]["changes"][0]["value"]["comment_id"])
        else:
            psid = f"2{i:015d}"
            assert await world.facebook_event(world.facebook.message_event(text, psid=psid)) == 200
            askers["messenger"].append(psid)
        sender = f"habitant{i}@example.org"
        askers["email"].append((sender, await world.mail(sender, "Question route", text)))
    assert await world.citizens.poll_mentions() == 10
    assert await world.citizens.bluesky.poll() == 10
    return askers


async def test_fifty_questions_on_five_channels_one_group_one_answer_each(conversation: Conversation):
    world = conversation
    # The Département has a current item, but on another road: no automatic answer for the D957.
    await world.store.ingest([_department_item("D956 : circulation rétablie entre Contres et Cellettes")])
    askers = await _fifty_questions(world)
    await world.drain()

    groups = await world.store.inbox.groups()
    assert [(g["key"], g["total"], g["waiting"]) for g in groups] == [("road:D957", 50, 50)]
    questions = await world.store.inbox.questions("road:D957")
    assert sorted({q["channel"] for q in questions}) == ["bluesky", "email", "facebook", "mastodon", "messenger", "sms"]
    acknowledged = [d for d in await world.store.deliveries(state=DeliveryState.SENT, limit=1000)]
    assert len(acknowledged) == 40  # the 40 non-SMS askers got the acknowledgement in their thread (SMS: TwiML)
    assert all("transmise" in d.text for d in acknowledged)

    answer_id, answered = await world.citizens.conversations.answer_group(
        "road:D957", ANSWER, author="jean.dupont", initials="JD"
    )
    assert answered == 50
    # Sent twice (a CM's double click, a second CM): the questions are already answered, nobody gets it again.
    assert (await world.citizens.conversations.answer_group("road:D957", ANSWER, author="x", initials="X"))[1] == 0
    await world.drain()

    sent = [d for d in await world.store.deliveries(limit=1000) if d.key.startswith(f"a{answer_id}:")]
    assert len(sent) == 50 and all(d.state is DeliveryState.SENT for d in sent)
    assert not [d for d in await world.store.deliveries(limit=1000) if d.state is not DeliveryState.SENT]

    for phone in askers["sms"]:
        got = [m["body"] for m in world.twilio.messages if m["to"] == phone and "J.D." in m["body"]]
        assert len(got) == 1, phone
        assert got[0].startswith("La D957 est rouverte entre Blois et Vendome")  # GSM-7
        assert got[0].endswith("- J.D.") and sms_measure(got[0]).encoding == "GSM-7"
    for note in askers["bluesky"]:
        replies = [
            r["record"]
            for r in world.bluesky.records
            if (r["record"].get("reply") or {}).get("parent", {}).get("uri") == note["uri"]
            and "J.D." in r["record"]["text"]
        ]
        assert len(replies) == 1, note["uri"]
        root = (note["record"].get("reply") or {}).get("root") or {"uri": note["uri"], "cid": note["cid"]}
        assert replies[0]["reply"]["root"] == root
        assert grapheme.length(replies[0]["text"]) <= 300 and replies[0]["text"].endswith("… — J.D.")
    for mention in askers["mastodon"]:
        status_id, acct = mention["status"]["id"], mention["account"]["acct"]
        replies = [s for s in world.mastodon.statuses if s["in_reply_to_id"] == status_id and "J.D." in s["content"]]
        assert len(replies) == 1
        assert re.sub("<[^>]+>", "", replies[0]["content"]).startswith(f"@{acct} La D957")
    for comment_id in askers["comment"]:
        replies = [c for c in world.facebook.replies_to(comment_id) if "J.D." in c["message"]]
        assert len(replies) == 1 and replies[0]["message"] == f"{ANSWER} — J.D."
    for psid in askers["messenger"]:
        got = [m for m in world.facebook.messages if m["recipient"] == psid and "J.D." in m["text"]]
        assert len(got) == 1 and got[0]["text"] == f"{ANSWER} — J.D."
    mails = [m for m in world.mailbox.mails() if "J.D." in m.get_content()]
    assert len(mails) == 10
    for sender, message_id in askers["email"]:
        mine = [m for m in mails if m["To"] == sender]
        assert len(mine) == 1 and mine[0]["In-Reply-To"] == message_id and mine[0]["Subject"].startswith("Re: ")

    groups = await world.store.inbox.groups()
    assert groups[0]["waiting"] == 0 and groups[0]["answered"] == 50 and groups[0]["state"] == "answered"
    times = {row["name"]: row for row in await world.store.inbox.first_answer_times("channel")}
    assert times["sms"]["answered"] == 10 and times["messenger"]["answered"] == 4
    assert all(row["mean_seconds"] is not None and row["mean_seconds"] >= 0 for row in times.values())
    metrics = Metrics(world.citizens.crieur)
    await metrics.refresh()
    exposed = metrics.render().decode()
    assert 'crieur_question_first_answer_seconds{by="channel",name="bluesky"}' in exposed
    assert 'crieur_questions_unanswered{by="group",name="road:D957"} 0.0' in exposed


async def test_road_question_with_a_current_departement_item_is_answered_automatically(conversation: Conversation):
    world = conversation
    await world.store.ingest(
        [
            _department_item("D957 : circulation difficile entre Blois et Vendôme, salage en cours"),
            _department_item("D957 : route fermée à Villiers (ancienne information)", hours_left=-1),
        ]
    )
    reply = await world.sms(_phone(1), "La D957 est-elle ouverte ?")
    assert reply.startswith("Réponse automatique du Conseil départemental de Loir-et-Cher sur la D957.")
    assert "circulation difficile entre Blois et Vendome" in reply and "ancienne" not in reply
    note = world.bluesky.add_mention("@cd41.bsky.social la RD 957 est praticable ?", handle="marie.bsky.social")
    assert await world.citizens.bluesky.poll() == 1
    # a road without a current item waits for the team
    await world.sms(_phone(2), "Et la D956 ?")
    await world.drain()
    replies = [
        r["record"]["text"]
        for r in world.bluesky.records
        if (r["record"].get("reply") or {}).get("parent", {}).get("uri") == note["uri"]
    ]
    assert len(replies) == 1 and "circulation difficile" in replies[0]
    by_group = {g["key"]: g for g in await world.store.inbox.groups()}
    assert by_group["road:D957"]["answered"] == 2 and by_group["road:D957"]["waiting"] == 0
    assert by_group["road:D956"]["waiting"] == 1
    answered = [q for q in await world.store.inbox.questions("road:D957")]
    assert all(q["status"] == "answered" and q["answered_at"] is not None for q in answered)


async def test_forged_facebook_webhook_gets_403_and_nothing_is_stored(conversation: Conversation):
    world = conversation
    event = world.facebook.comment_event("La D957 est-elle ouverte ?", user_id="100001")
    assert await world.facebook_event(event, secret="not-the-app-secret") == 403
    body, headers = world.facebook.signed(event)
    tampered = body.replace(b"D957", b"D956")
    assert (await world.client.post("/facebook/webhook", data=tampered, headers=headers)).status == 403
    unsigned = {"Content-Type": "application/json"}
    assert (await world.client.post("/facebook/webhook", data=body, headers=unsigned)).status == 403
    assert await world.store.questions() == []
    # the subscription check: the challenge echoed for the right verify token only
    ok = await world.client.get(
        "/facebook/webhook", params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    )
    assert ok.status == 200 and await ok.text() == "42"
    bad = await world.client.get(
        "/facebook/webhook", params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"}
    )
    assert bad.status == 403
    # the genuine event, delivered twice by Facebook, is one question
    assert await world.facebook_event(event) == 200
    assert await world.facebook_event(event) == 200
    assert len(await world.store.questions()) == 1


async def test_inbound_mail_only_for_the_questions_address_and_never_from_robots(conversation: Conversation):
    world = conversation
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "other@departement-41.example", "D957 ?"
    message.set_content("La D957 est-elle ouverte ?")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(message, hostname="127.0.0.1", port=world.inbound_port, local_hostname="c.test")
    await world.mail("robot@example.org", "Absence", "Je suis absent.", Auto_Submitted="auto-replied")
    assert await world.store.questions() == []
    await world.mail("b@example.org", "Re: Question route", "La D957 est-elle ouverte ?\n\n> ancien message\n-- \nB.")
    (question,) = await world.store.questions()
    assert question["text"] == "Question route — La D957 est-elle ouverte ?"
    assert question["recipient"] == "b@example.org" and question["thread"].startswith("<")


async def test_messenger_outside_the_24_hour_window_fails_for_that_person_only(conversation: Conversation):
    world = conversation
    old = world.facebook.message_event("La D957 ?", psid="3000000000000001", at=datetime.now().timestamp() - 25 * 3600)
    assert await world.facebook_event(old) == 200
    await world.sms(_phone(3), "La D957 ?")
    await world.citizens.conversations.answer_group("road:D957", "Rouverte.", author="jean.dupont", initials="JD")
    await world.drain()
    states = {d.channel: d for d in await world.store.deliveries(limit=100) if d.key.startswith("a")}
    assert states["facebook"].state is DeliveryState.FAILED and "2018278" in states["facebook"].last_error
    assert states["sms"].state is DeliveryState.SENT
    # the inbox shows the CM what went back to each asker, and what did not
    shown = {q["channel"]: q for q in await world.store.inbox.questions("road:D957")}
    assert shown["messenger"]["delivery_state"] == "failed" and "2018278" in shown["messenger"]["delivery_error"]
    assert shown["sms"]["delivery_state"] == "sent" and shown["sms"]["answer"] == "Rouverte."


async def test_two_cms_answering_at_once_reach_each_asker_once(conversation: Conversation):
    world = conversation
    for i in range(12):
        await world.sms(_phone(i), QUESTIONS[i % len(QUESTIONS)])
    first, second = await asyncio.gather(
        world.citizens.conversations.answer_group("road:D957", "Rouverte.", author="jean.dupont", initials="JD"),
        world.citizens.conversations.answer_group("road:D957", "Ouverte.", author="camille.durand", initials="CD"),
    )
    assert sorted([first[1], second[1]]) == [0, 12]  # one answer took every question, the other none
    await world.drain()
    for i in range(12):
        answers = [
            m["body"] for m in world.twilio.messages if m["to"] == _phone(i) and m["body"].endswith((".D.", "C.D."))
        ]
        assert len(answers) == 1, answers


async def test_bluesky_poll_takes_each_post_once_and_pages_through_a_burst(conversation: Conversation):
    world = conversation
    world.bluesky.add_mention("@cd41.bsky.social la D957 ?", handle="first.bsky.social")
    assert await world.citizens.bluesky.poll() == 1  # the first poll reads the latest page only
    for i in range(120):  # more than a page (50) between two polls
        world.bluesky.add_mention(f"@cd41.bsky.social la D957 ? ({i})", handle=f"h{i}.bsky.social")
    assert await world.citizens.bluesky.poll() == 120
    assert await world.citizens.bluesky.poll() == 0
    world.bluesky.add_mention("@cd41.bsky.social et la D956 ?", handle="late.bsky.social")
    assert await world.citizens.bluesky.poll() == 1
    listed = world.bluesky.received("GET", "listNotifications")
    assert all(dict(r.query).get("limit") == "50" for r in listed)
    assert len(await world.store.questions(limit=500)) == 122


def test_citizens_conversation_settings_are_read_and_checked(tmp_path):
    from alerts.config import load_config
    from rules.yamlcheck import ValidationFailed

    path = tmp_path / "crieur.yaml"
    path.write_text(
        "citizens:\n"
        "  facebook_app_secret_env: FB_SECRET\n"
        "  facebook_verify_token_env: FB_VERIFY\n"
        "  inbound_email: questions@departement-41.example\n"
        "  inbound_email_listen: 127.0.0.1:2525\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert (config.facebook_app_secret_env, config.inbound_email, config.inbound_email_listen) == (
        "FB_SECRET",
        "questions@departement-41.example",
        "127.0.0.1:2525",
    )
    path.write_text("citizens:\n  inbound_email: questions\n  inbound_email_listen: 2525\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as failure:
        load_config(path)
    message = str(failure.value)
    assert "citizens.inbound_email: not an e-mail address" in message and "crieur.yaml:2" in message
    assert "citizens.inbound_email_listen: expected host:port" in message


async def test_the_service_listens_for_questions_by_mail_and_answers_in_the_thread(tmp_path, db_url, monkeypatch):
    """The running service (alerts.service.Crieur): its SMTP endpoint takes a citizen's mail; the answer,
    through the dry-run e-mail channel, is In-Reply-To it."""
    from alerts.config import load_config
    from alerts.service import Crieur
    from tests.test_service import config_text

    monkeypatch.setenv("CRIEUR_SECRET_KEY", SECRET)
    path = tmp_path / "crieur.yaml"
    text = config_text(tmp_path, db_url).replace("  workers: 0\n", "  workers: 0\n  port: 18417\n", 1)
    text += f"citizens:\n  email_channel: email\n  inbound_email: {INBOUND}\n  inbound_email_listen: 127.0.0.1:0\n"
    path.write_text(text, encoding="utf-8")
    service = Crieur(load_config(path))
    await service.start(web=True, ingest=False, workers=0)
    try:
        assert service._mail_server is not None
        port = service._mail_server.sockets[0].getsockname()[1]
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "c@example.org", INBOUND, "Route"
        message["Message-ID"] = "<q1@example.org>"
        message.set_content("La D957 est-elle ouverte ?")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, local_hostname="c.test")
        (question,) = await service.store.questions()
        assert question["channel"] == "email" and question["group_key"] == "road:D957"
        (reply,) = [d for d in await service.store.deliveries(limit=10) if d.channel == "email"]
        assert reply.recipient == "c@example.org" and reply.reply_to == "<q1@example.org>"
        assert reply.subject == "Re: Route — La D957 est-elle ouverte ?"
    finally:
        await service.stop()
    assert service._mail_server is None


async def test_groups_by_road_then_commune_then_topic(conversation: Conversation):
    """Grouping reuses the road reader, the communes of `service.geo` (../shared/geo) and the routing."""
    from tests.shared_files import shared_path

    world = conversation
    world.config.geo = shared_path("geo")
    asked = {
        "La RD957 est-elle salée ?": "road:D957",
        "La route départementale 957 est-elle dégagée ?": "road:D957",
        "les routes sont-elles salées à Romorantin-Lanthenay ?": "commune:41194",
        "ça glisse à romorantin lanthenay ?": "commune:41194",
        "Le car scolaire passe-t-il demain ?": "topic:cd41:transport-scolaire",
        "Bonjour, merci pour votre travail": "other",
    }
    for i, (text, _) in enumerate(asked.items()):
        await world.sms(_phone(i), text)
    stored = {q["text"]: q["group_key"] for q in await world.store.questions()}
    assert stored == asked
    labels = {g["key"]: g["label"] for g in await world.store.inbox.groups()}
    assert labels["commune:41194"] == "Commune de Romorantin-Lanthenay"
    assert labels["road:D957"] == "Route D957" and labels["other"] == "Autres questions"


async def test_a_territorys_page_shows_only_the_answers_to_its_own_questions(store: Any) -> None:
    """A département running two territories: the answer to Loir-et-Cher's D957 questions is not shown on
    Eure-et-Loir's page, an answer to questions of no known territory is shown on both, and the index
    shows them all."""
    since = time.time() - 60
    asked = {"d957": ["41"], "n154": ["28"], "neige": []}
    for key, territories in asked.items():
        await store.inbox.note_group(key, key.upper(), time.time())
        await store.add_question(
            channel="web", sender="", text=f"Et la {key} ?", territories=territories, group_key=key, status="queued"
        )
        answer_id, answered = await store.inbox.answer_group(
            key, f"Réponse {key}", author="camille", initials="C.A.", deliveries_for=lambda questions, a: []
        )
        assert answered == 1
        await store.inbox.mark_published(answer_id)

    def groups(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(row["group_key"] for row in rows)

    assert groups(await store.inbox.published_answers(since, "41")) == ["d957", "neige"]
    assert groups(await store.inbox.published_answers(since, "28")) == ["n154", "neige"]
    assert groups(await store.inbox.published_answers(since)) == ["d957", "n154", "neige"]
    assert await store.inbox.published_answers(time.time() + 1, "41") == []  # another episode's are not shown
