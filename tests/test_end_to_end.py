"""One snow alert through the whole service: a préfecture RSS feed → rules → SMS (fake Twilio), Mastodon
(fake Mastodon), the other social fakes, the public page and Atom feed; and a citizen's SMS question that
is the préfecture's business → a TwiML answer naming the préfecture and an escalation email to its webmaster
over real SMTP (aiosmtpd)."""

from __future__ import annotations

import asyncio
import pathlib
import socket
import textwrap

import aiohttp
import feedparser
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from twilio.request_validator import RequestValidator

from alerts.config import load_config
from alerts.service import Crieur
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "loir-et-cher"

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Préfecture de Loir-et-Cher</title><link>https://prefecture-41.example/</link>
<description>Actualités</description>
<item>
  <title>Neige : chaussées glissantes sur la RD 957</title>
  <link>https://prefecture-41.example/neige-rd957</link>
  <guid isPermaLink="false">pref41-neige-1</guid>
  <pubDate>Wed, 25 Nov 2026 05:40:00 +0100</pubDate>
  <description>Loir-et-Cher : neige et verglas ce matin sur la RD 957 entre Blois et Vendôme. Prudence.</description>
</item>
</channel></rss>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
async def feed_server():
    async def prefecture(request: web.Request) -> web.Response:
        return web.Response(body=FEED.encode(), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/prefecture.xml", prefecture)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def write_config(
    tmp_path: pathlib.Path, port: int, feeds: str, fakes: dict, smtp_port: int, database: str
) -> pathlib.Path:
    twilio, mastodon, x, bluesky, facebook = (fakes[k] for k in ("twilio", "mastodon", "x", "bluesky", "facebook"))
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent(f"""
        service:
          name: Département de Loir-et-Cher (test)
          public_url: http://127.0.0.1:{port}
          host: 127.0.0.1
          port: {port}
          data_dir: {tmp_path / "data"}
          database: {database}
          territories: {EXAMPLE / "territories.yaml"}
          rules: [{EXAMPLE / "rules.yaml"}]
          templates: {EXAMPLE / "templates"}
          authorities: {EXAMPLE / "authorities.yaml"}
          workers: 1
        sources:
          - name: prefecture-41
            kind: rss
            url: {feeds}/prefecture.xml
            interval: 1s
            authority: prefecture-41
        channels:
          mastodon: {{kind: mastodon, base_url: "{mastodon.base_url}", access_token: test-token, rate: 50}}
          x: {{kind: x, api_base: "{x.base_url}", consumer_key: ck, consumer_secret: cs, access_token: at,
               access_token_secret: ats, rate: 50}}
          bluesky: {{kind: bluesky, service: "{bluesky.base_url}", identifier: "{bluesky.identifier}",
                     app_password: "{bluesky.password}", rate: 50}}
          facebook: {{kind: facebook, api_base: "{facebook.base_url}", page_id: "{facebook.page_id}",
                      page_token: "{facebook.token}", rate: 50}}
          sms: {{kind: twilio, api_base: "{twilio.base_url}", account_sid: "{twilio.account_sid}",
                 auth_token: "{twilio.auth_token}", from: "+33757000041", rate: 100}}
          email: {{kind: email, host: 127.0.0.1, port: {smtp_port}, starttls: false,
                   from: "route41@departement-41.example"}}
          web: {{kind: web}}
        citizens:
          sms_channel: sms
          email_channel: email
          twilio_auth_token_env: CRIEUR_TEST_TWILIO_TOKEN
        security:
          allow: [127.0.0.1]   # the test's feed server is on loopback, which the SSRF guard refuses otherwise
    """)
    )
    return path


async def wait_for(condition, timeout: float = 15.0, step: float = 0.1):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")


async def test_snow_alert_from_feed_to_every_channel_and_a_routed_question(
    tmp_path,
    db_url,
    feed_server,
    smtp_server,
    fake_twilio,
    fake_mastodon,
    fake_x,
    fake_bluesky,
    fake_facebook,
    monkeypatch,
):
    controller, mailbox = smtp_server
    monkeypatch.setenv("CRIEUR_TEST_TWILIO_TOKEN", fake_twilio.auth_token)
    monkeypatch.setenv("CRIEUR_SECRET_KEY", "end-to-end-test-signing-key")
    port = free_port()
    fakes = {
        "twilio": fake_twilio,
        "mastodon": fake_mastodon,
        "x": fake_x,
        "bluesky": fake_bluesky,
        "facebook": fake_facebook,
    }
    config = load_config(write_config(tmp_path, port, feed_server, fakes, controller.port, db_url))
    crieur = Crieur(config)
    await crieur.open()
    await crieur.store.add_subscribers([("+33600000001", "41"), ("+33600000002", "41"), ("+33600000028", "28")])
    await crieur.start_episode("41", by="jd", reason="vigilance orange neige-verglas")
    await crieur.start()
    try:
        # SMS: each subscriber of 41 once, nobody of 28
        await wait_for(lambda: _async(len(fake_twilio.messages) >= 2))
        await asyncio.sleep(0.5)
        assert sorted(m["to"] for m in fake_twilio.messages) == ["+33600000001", "+33600000002"]
        body = fake_twilio.messages[0]["body"]
        assert "RD 957" in body and "Neige" in body

        # Mastodon: one status with the territory hashtag, sent with an idempotency key
        await wait_for(lambda: _async(fake_mastodon.received("POST", "/api/v1/statuses")))
        [post] = fake_mastodon.received("POST", "/api/v1/statuses")
        status = post.json["status"] if post.json else post.form["status"]
        assert "#route41" in status and "RD 957" in status
        assert post.header("Idempotency-Key")
        await wait_for(
            lambda: _async(
                fake_x.received("POST", "/2/tweets")
                and fake_facebook.posts
                and fake_bluesky.received("POST", "createRecord")
            )
        )
        assert "#route41" in fake_facebook.posts[0]["message"]
        # Bluesky: the alert's card (map and headline) as an image with its alt text (checked against the
        # lexicon); a post has one embed, so the picture takes the place of the link card
        embed = fake_bluesky.records[0]["record"]["embed"]
        assert embed["$type"] == "app.bsky.embed.images"
        [image] = embed["images"]
        assert image["alt"].startswith("Alerte « ") and "RD 957" in image["alt"]
        assert image["aspectRatio"] == {"width": 1200, "height": 630}

        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.get(f"{base}/t/41") as answer:
                page = await answer.text()
                assert answer.status == 200
            assert "#route41" in page and "RD 957" in page and "ROUTE41" in page
            async with http.get(f"{base}/alertes.atom") as answer:
                atom = feedparser.parse(await answer.read())
            assert any("RD 957" in e.title for e in atom.entries)

            # A citizen asks about heavy goods vehicles: the préfecture's business, and its feed says nothing
            form = {
                "From": "+33611111111",
                "To": "+33757000041",
                "Body": "Les poids lourds peuvent-ils circuler ?",
                "MessageSid": "SM" + "1" * 32,
                "AccountSid": fake_twilio.account_sid,
            }
            url = f"{config.public_url}/twilio/sms"
            signature = RequestValidator(fake_twilio.auth_token).compute_signature(url, form)
            async with http.post(url, data=form, headers={"X-Twilio-Signature": signature}) as answer:
                twiml = await answer.text()
                assert answer.status == 200
            assert "<Response>" in twiml and "fecture" in twiml
            async with http.post(url, data=form, headers={"X-Twilio-Signature": "forged"}) as answer:
                assert answer.status == 403

        await wait_for(lambda: _async(mailbox.messages), timeout=15)
        sender, recipients, content = mailbox.messages[0]
        assert any("prefecture-41" in r for r in recipients)
        assert "poids lourds" in content.lower() or "poids lourds" in _decoded(content).lower()
    finally:
        await crieur.stop()


async def _async(value):
    return value


def _decoded(raw: str) -> str:
    import email

    message = email.message_from_string(raw)
    parts = message.walk() if message.is_multipart() else [message]
    return "\n".join(
        p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8", "replace")
        for p in parts
        if p.get_content_maintype() == "text"
    )
