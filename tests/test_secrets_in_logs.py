"""No configured secret ever appears in a log line or in an HTTP answer.

A whole service runs in-process on SQLite, every channel configured with distinctive secrets (read from the
environment, as in production) and pointed at a fake provider that refuses it (401) or fails (500), so the
error paths — the ones that log provider answers and exceptions — all run. Every log record, at DEBUG and
for every logger, is formatted both as a terminal line and as a JSON line (`--log-json`), tracebacks
included; the answers of the web app (error pages, API, metrics, health) are collected too. None may
contain a secret, nor its Basic-auth, URL-encoded or JSON-escaped form.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import pathlib
import socket
import sys
import textwrap
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from alerts.config import load_config
from alerts.logs import JsonFormatter, setup_logging
from alerts.security import install_log_redaction
from alerts.service import Crieur
from tests.conftest import EXAMPLES
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.facebook import FakeFacebook
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.twilio import FakeTwilio
from tests.fakes.webhook import FakeWebhookReceiver
from tests.fakes.x import FakeX

EXAMPLE = EXAMPLES / "loir-et-cher"
TWILIO_SID = "AC" + "41" * 16

SECRETS = {
    "CRIEUR_SECRET_KEY": "sk-Crieur-1d9f6b0e2a7c4e83",
    "CRIEUR_METRICS_TOKEN": "mt-Scrape-5e0a9d2c71b84f36",
    "LEAK_MASTODON_TOKEN": "mastodon-Tok-8c1f02d9e7a34b65",
    "LEAK_X_CONSUMER_KEY": "xck-Consumer-4b7e91a0d2c3f658",
    "LEAK_X_CONSUMER_SECRET": "xcs-ConsumerSecret-0a6d3e9f1b2c4758",
    "LEAK_X_ACCESS_TOKEN": "xat-Access-9e2b5c8d0f1a3764",
    "LEAK_X_ACCESS_TOKEN_SECRET": "xats-AccessSecret-3f8a1d6b9c0e2475",
    "LEAK_BLUESKY_APP_PASSWORD": "bsky-AppPw-6d0c9b3e2f1a8457",
    "LEAK_FACEBOOK_PAGE_TOKEN": "EAAfb-PageToken-2c7e9a4d1b0f3866",
    "LEAK_TWILIO_AUTH_TOKEN": "twl-AuthToken-7a3e0d9c5b1f2468",
    "LEAK_SMTP_PASSWORD": "smtp-Passw0rd-5b9d2e7a0c4f1836",
    "LEAK_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"webhook-Secret-0e4c8a2f6d1b9357").decode(),
}
ATTEMPTED_PASSWORD = "console-Guess-4a1e7c9d0b3f2658"  # typed at the console login: never logged either
# the test's own servers (aiosmtpd logs the AUTH line it receives): not Crieur's output
FAKES_LOGGERS = ("mail.log", "tests.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def forms_of(secret: str) -> set[str]:
    """The ways a secret could be written out: as is, URL-encoded, JSON-escaped, in Basic auth."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    if secret.startswith("whsec_"):
        forms.add(base64.b64decode(secret[6:]).decode())
    return forms


class Mailbox:
    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook
        return "250 OK"


def refuse_login(server, session, envelope, mechanism, auth_data):
    """An SMTP server that refuses the credentials: 535, and the client's error path runs."""
    return AuthResult(success=False, handled=False)


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


class Capture(logging.Handler):
    """Crieur's own output, unredacted, every logger at DEBUG: each record formatted both as a terminal
    line and as a JSON line, and its raw arguments (what a structured handler would ship as fields)."""

    def __init__(self, skip: tuple[str, ...]) -> None:
        super().__init__(logging.DEBUG)
        self.skip = skip
        self.plain = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.json = JsonFormatter()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.skip):
            return
        self.lines.append(self.plain.format(record))
        self.lines.append(self.json.format(record))
        self.lines.append(repr(record.args))


class QuietAsConfigured(logging.Filter):
    """What setup_logging's per-logger levels do, as a handler filter (so that Capture, next to it,
    still sees everything)."""

    def __init__(self, levels: dict[str, int]) -> None:
        super().__init__()
        self.levels = levels

    def filter(self, record: logging.LogRecord) -> bool:
        for name, level in self.levels.items():
            if (record.name == name or record.name.startswith(name + ".")) and record.levelno < level:
                return False
        return True


@pytest.fixture
def all_logs(monkeypatch):
    """Two captures of the same records: `production` is exactly `crieur --log-json --log-level DEBUG`
    (setup_logging's handler and levels, plus a terminal-format handler) with the secret redaction the
    CLI installs; `raw` is everything at DEBUG, unredacted, but for the test's own servers and oauthlib
    (which logs OAuth consumer keys and tokens at DEBUG: the reason the redaction exists)."""
    root = logging.getLogger()
    saved = (
        root.level,
        list(root.handlers),
        {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)},
    )
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging("DEBUG", json_lines=True)
    monkeypatch.undo()
    json_handler = root.handlers[0]
    terminal = logging.StreamHandler(stream)
    terminal.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    levels = {
        name: logging.getLogger(name).level
        for name in list(logging.root.manager.loggerDict)
        if logging.getLogger(name).level > logging.DEBUG
    }
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for handler in (json_handler, terminal):
        handler.addFilter(QuietAsConfigured(levels))
    raw = Capture(skip=FAKES_LOGGERS + ("oauthlib",))
    root.handlers[:] = [json_handler, terminal, raw]
    yield stream, raw
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def write_config(tmp_path: pathlib.Path, port: int, fakes: dict, smtp_port: int, hook_url: str) -> pathlib.Path:
    m, x, b, f, t = (fakes[k] for k in ("mastodon", "x", "bluesky", "facebook", "twilio"))
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent(f"""
        service:
          name: Département de Loir-et-Cher (secrets)
          public_url: http://127.0.0.1:{port}
          host: 127.0.0.1
          port: {port}
          data_dir: {tmp_path / "data"}
          database: sqlite:///{tmp_path / "crieur.db"}
          territories: {EXAMPLE / "territories.yaml"}
          rules: [{EXAMPLE / "rules.yaml"}]
          templates: {EXAMPLE / "templates"}
          authorities: {EXAMPLE / "authorities.yaml"}
          workers: 1
        channels:
          mastodon: {{kind: mastodon, base_url: "{m.base_url}", access_token_env: LEAK_MASTODON_TOKEN, rate: 50}}
          x: {{kind: x, api_base: "{x.base_url}", consumer_key_env: LEAK_X_CONSUMER_KEY,
               consumer_secret_env: LEAK_X_CONSUMER_SECRET, access_token_env: LEAK_X_ACCESS_TOKEN,
               access_token_secret_env: LEAK_X_ACCESS_TOKEN_SECRET, rate: 50}}
          bluesky: {{kind: bluesky, service: "{b.base_url}", identifier: route41.test,
                     app_password_env: LEAK_BLUESKY_APP_PASSWORD, rate: 50}}
          facebook: {{kind: facebook, api_base: "{f.base_url}", page_id: "41", page_token_env: LEAK_FACEBOOK_PAGE_TOKEN,
                      rate: 50}}
          sms: {{kind: twilio, api_base: "{t.base_url}", account_sid: "{TWILIO_SID}",
                 auth_token_env: LEAK_TWILIO_AUTH_TOKEN, from: "+33757000041", rate: 100}}
          email: {{kind: email, host: 127.0.0.1, port: {smtp_port}, starttls: false, username: route41,
                   password_env: LEAK_SMTP_PASSWORD, from: "route41@departement-41.example", timeout: 2,
                   recipients: ["astreinte@departement-41.example"]}}
          hooks: {{kind: webhook, secret_env: LEAK_WEBHOOK_SECRET, recipients: ["{hook_url}"], rate: 50, allow: ["127.0.0.1"]}}
          web: {{kind: web}}
        citizens:
          sms_channel: sms
          email_channel: email
          twilio_auth_token_env: LEAK_TWILIO_AUTH_TOKEN
    """),
        encoding="utf-8",
    )
    return path


async def settled(crieur: Crieur, timeout: float = 20.0) -> list[dict]:
    """Wait until every delivery has been attempted at least once and none is being sent."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await crieur.store.deliveries(limit=1000)
        if rows and all(r.attempts >= 1 and r.state != "sending" for r in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"deliveries not attempted in time: {[(r.channel, r.state) for r in rows]}")
        await asyncio.sleep(0.1)


async def test_no_secret_in_logs_or_answers(tmp_path, monkeypatch, all_logs):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    fakes = {
        "mastodon": FakeMastodon(token="the-right-one"),
        "x": FakeX(),
        "bluesky": FakeBluesky(),
        "facebook": FakeFacebook(page_id="41"),
        "twilio": FakeTwilio(account_sid=TWILIO_SID),
    }
    receiver = FakeWebhookReceiver()
    for fake in [*fakes.values(), receiver]:
        await fake.start()
    smtp = Controller(
        Mailbox(), hostname="127.0.0.1", port=free_port(), authenticator=refuse_login, auth_require_tls=False
    )
    smtp.start()
    smtp_port = smtp.port
    receiver.fail_next(1000, 500)
    answers: list[str] = []
    crieur = None
    try:
        hook_url = f"{receiver.base_url}/hooks/cd41"
        config = load_config(write_config(tmp_path, port, fakes, smtp_port, hook_url))
        install_log_redaction(config)  # as the CLI does after loading the configuration
        crieur = Crieur(config)
        await crieur.open()
        await crieur.store.add_subscribers([("+33600000001", "41"), ("+33600000002", "41")])
        await crieur.start(ingest=False)
        alert = crieur.compose("Neige : RD 957 fermée entre Blois et Vendôme.", ["41"], list(config.channels))
        await crieur.publish(alert, created_by="test")
        rows = await settled(crieur)
        assert {r.channel for r in rows} >= {"mastodon", "x", "bluesky", "facebook", "sms", "email", "hooks"}
        assert all(r.state != "sent" for r in rows if r.channel != "web")  # every provider refused

        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def keep(method: str, path: str, **kwargs) -> int:
                async with http.request(method, base + path, **kwargs) as answer:
                    answers.append(f"{method} {path} {answer.status} {dict(answer.headers)}\n{await answer.text()}")
                    return answer.status

            form = {
                "From": "+33611111111",
                "To": "+33757000041",
                "Body": "ROUTE41",
                "MessageSid": "SM" + "2" * 32,
                "AccountSid": TWILIO_SID,
            }
            assert await keep("POST", "/twilio/sms", data=form, headers={"X-Twilio-Signature": "forged"}) == 403
            assert await keep("POST", "/twilio/status", data={"MessageSid": "SMx", "MessageStatus": "failed"}) == 403
            await keep("POST", "/console/login", data={"username": "cm41", "password": ATTEMPTED_PASSWORD})
            for path in (
                "/api/v1/deliveries/progress",
                "/api/v1/sources",
                "/api/v1/alerts",
                "/api/v1/alerts/99999",
                "/alertes/99999.cap.xml",
                "/readyz",
                "/healthz",
                "/nowhere",
                "/escalations/ack?token=x.y",
            ):
                await keep("GET", path)
            assert await keep("GET", "/metrics") == 401
            assert await keep("GET", "/metrics", headers={"Authorization": "Bearer wrong"}) == 401
            assert (
                await keep("GET", "/metrics", headers={"Authorization": f"Bearer {SECRETS['CRIEUR_METRICS_TOKEN']}"})
                == 200
            )
            answers.pop()  # the scraper sent the token itself; the answer must not echo it (checked below)
            assert (
                await keep("GET", "/metrics", headers={"Authorization": f"Bearer {SECRETS['CRIEUR_METRICS_TOKEN']}"})
                == 200
            )
        errors = await crieur.store.deliveries(limit=1000)
    finally:
        if crieur is not None:
            await crieur.stop()
        for fake in [*fakes.values(), receiver]:
            await fake.stop()
        smtp.stop()

    production, raw = all_logs
    production_text = production.getvalue()
    raw_text = "\n".join(raw.lines)
    # the error paths did run and log
    assert any("401" in (r.last_error or "") for r in errors)
    assert '"level": "warning"' in production_text and "WARNING" in production_text
    assert "signature" in raw_text.lower() and "401" in raw_text
    stored_errors = "\n".join(f"{r.key} {r.last_error}" for r in errors)

    leaks = []
    secrets = dict(SECRETS, ATTEMPTED_PASSWORD=ATTEMPTED_PASSWORD)
    secrets["TWILIO_BASIC"] = basic(TWILIO_SID, SECRETS["LEAK_TWILIO_AUTH_TOKEN"])
    secrets["SMTP_PLAIN"] = base64.b64encode(f"\0route41\0{SECRETS['LEAK_SMTP_PASSWORD']}".encode()).decode()
    for name, secret in secrets.items():
        for form in forms_of(secret):
            for where, haystack in (
                ("production log", production_text),
                ("raw log", raw_text),
                ("answers", "\n".join(answers)),
                ("deliveries.last_error", stored_errors),
            ):
                if form in haystack:
                    line = next(candidate for candidate in haystack.splitlines() if form in candidate)
                    leaks.append(f"{name} in {where}: {line[:300]}")
    assert not leaks, "\n".join(leaks)
    # the logs were captured (the Twilio library no longer logs each send: the adapter posts it itself)
    assert len(raw.lines) > 40 and production_text.count("\n") > 30
