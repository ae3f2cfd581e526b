"""The on-call rota and the pager, on SQLite and PostgreSQL: a Saturday-night orange vigilance nobody in
the console sees pages the CM on call, then the back-up, who approves by SMS (signed like Twilio signs
inbound SMS) and the alert goes out; the same where the rule's `approve.otherwise: publish` decides. SMS go
through the fake Twilio, e-mail through a real SMTP server (aiosmtpd). Time is an injected clock."""

from __future__ import annotations

import email
import email.policy
import html
import pathlib
import re
import socket
import textwrap
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from twilio.request_validator import RequestValidator

from alerts.config import load_config
from alerts.domain import AlertStatus, Area, Certainty, Item, MsgType, Severity
from alerts.oncall import OnCall, french_holidays, load_rota
from alerts.oncall.holidays import easter
from alerts.service import Crieur
from alerts.web import accounts
from rules.loader import load_rules
from rules.yamlcheck import ValidationFailed
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "loir-et-cher"
PARIS = ZoneInfo("Europe/Paris")
ALICE, BRUNO, CLAIRE, CITIZEN = "+33612345601", "+33612345602", "+33612345603", "+33698765432"
PINS = {"CRIEUR_TEST_PIN_ALICE": "1357", "CRIEUR_TEST_PIN_BRUNO": "2468", "CRIEUR_TEST_PIN_CLAIRE": "9753"}
TOKEN_ENV = "CRIEUR_TEST_TWILIO_TOKEN"
SECRET = "clé-de-signature-du-département-41"
LINK = re.compile(r"https?://\S+(/astreinte/[A-Za-z0-9_.-]+)")
SATURDAY_23H = datetime(2026, 12, 5, 23, 0, tzinfo=PARIS)  # 5 December 2026 is a Saturday

ROTA = """\
people:
  alice: {name: Alice Martin, phone: "06 12 34 56 01", email: alice@cd41.example, pin_env: CRIEUR_TEST_PIN_ALICE}
  bruno: {name: Bruno Petit, phone: "+33612345602", email: bruno@cd41.example, pin_env: CRIEUR_TEST_PIN_BRUNO}
  claire: {name: Claire Roux, phone: "+33612345603", email: claire@cd41.example, pin_env: CRIEUR_TEST_PIN_CLAIRE}
head: claire
shifts:
  - period: {from: "2026-12-24 18:00", to: "2026-12-28 08:00"}
    cm: bruno
    backup: claire
  - when: [nights, weekends, holidays]
    cm: alice
    backup: bruno
paging:
  default: {after: 15m, next: 15m}
  alert.Severe: {after: 5m, next: 10m}
"""


def rules_text(otherwise: str, within: str) -> str:
    return textwrap.dedent(f"""\
        mode: first-match
        rules:
          - name: vigilance-orange-neige
            when:
              event: [neige-verglas]
              attributes: {{colour: [orange, rouge]}}
            then:
              channels: [mastodon]
              approve: {{within: {within}, otherwise: {otherwise}}}
        """)


# ------------------------------------------------------------------------------------------ the rota


def write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_holidays_follow_easter():
    assert easter(2026) == date(2026, 4, 5) and easter(2027) == date(2027, 3, 28) and easter(2024) == date(2024, 3, 31)
    days = french_holidays(2026)
    assert len(days) == 11
    assert days[date(2026, 4, 6)] == "Lundi de Pâques"
    assert days[date(2026, 5, 14)] == "Ascension"
    assert days[date(2026, 5, 25)] == "Lundi de Pentecôte"
    assert date(2026, 12, 26) not in days and date(2026, 12, 26) in french_holidays(2026, alsace_moselle=True)


def test_the_chain_depends_on_paris_time(tmp_path):
    rota = load_rota(write(tmp_path, "astreinte.yaml", ROTA))
    ids = lambda moment: [p.id for p in rota.chain(moment)]  # noqa: E731
    assert ids(SATURDAY_23H) == ["alice", "bruno", "claire"]
    assert ids(datetime(2026, 12, 8, 21, 30, tzinfo=PARIS)) == ["alice", "bruno", "claire"]  # a Tuesday night
    assert ids(datetime(2026, 12, 8, 7, 59, tzinfo=PARIS)) == ["alice", "bruno", "claire"]  # before 08:00
    assert ids(datetime(2026, 12, 8, 10, 0, tzinfo=PARIS)) == ["claire"]  # office hours: nobody on call
    assert ids(datetime(2026, 5, 14, 10, 0, tzinfo=PARIS)) == ["alice", "bruno", "claire"]  # Ascension
    assert ids(datetime(2026, 12, 25, 12, 0, tzinfo=PARIS)) == ["bruno", "claire"]  # the dated Christmas turn
    # Paris time, not UTC: 20:30 in Paris is 19:30 UTC
    assert ids(datetime(2026, 12, 8, 19, 30, tzinfo=timezone.utc)) == ["alice", "bruno", "claire"]
    assert rota.by_phone(ALICE).id == "alice"  # "06 12 34 56 01" was normalised
    assert rota.delays("alert", Severity.SEVERE).after == 300 and rota.delays("alert", Severity.MINOR).after == 900


def test_rota_errors_name_file_line_and_field(tmp_path):
    broken = (
        ROTA.replace('"+33612345602"', '"12"')
        .replace("backup: bruno", "backup: brunoo")
        .replace('"2026-12-28 08:00"', '"28/12/2026"')
        .replace("[nights, weekends", "[nuits, weekends")
    )
    with pytest.raises(ValidationFailed) as failed:
        load_rota(write(tmp_path, "astreinte.yaml", broken))
    text = "\n".join(str(e) for e in failed.value.errors)
    assert "astreinte.yaml:3:" in text and "people.bruno.phone" in text
    assert "astreinte.yaml:7:44: shifts[0].period.to: expected a Paris date and time" in text
    assert "astreinte.yaml:10:12: shifts[1].when[0]" in text and "got 'nuits'" in text
    assert "astreinte.yaml:12:13: shifts[1].backup: unknown person 'brunoo'" in text
    assert "unknown person 'bruno'" not in text  # an invalid person is still a known name
    assert [e.line for e in failed.value.errors] == [3, 7, 10, 12]


def test_rules_read_an_approval_deadline(tmp_path):
    [rule] = load_rules([write(tmp_path, "r.yaml", rules_text("publish", "20m"))]).rules
    assert rule.then.approve and rule.then.approve_within == 1200 and rule.then.approve_otherwise == "publish"
    with pytest.raises(ValidationFailed) as failed:
        load_rules([write(tmp_path, "bad.yaml", rules_text("publier", "vite"))])
    text = "\n".join(str(e) for e in failed.value.errors)
    assert "bad.yaml:9:" in text and "approve.within" in text and "approve.otherwise" in text
    assert "publish, discard, escalate" in text


# ------------------------------------------------------------------------------------------ end to end


class Mailbox:
    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.received.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.received if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


class Night:
    """A Crieur with the rota, a clock the test moves, and the Twilio inbound SMS route."""

    def __init__(self, crieur: Crieur, client: TestClient, twilio, mastodon, mailbox: Mailbox, clock: list[float]):
        self.crieur, self.client, self.twilio, self.mastodon, self.mailbox = crieur, client, twilio, mastodon, mailbox
        self._clock = clock

    @property
    def oncall(self) -> OnCall:
        assert self.crieur.oncall is not None
        return self.crieur.oncall

    async def at(self, hour: int, minute: int) -> None:
        """Move the clock to that Paris time of Saturday night, then let the pager and the workers act."""
        self._clock[0] = SATURDAY_23H.replace(hour=hour, minute=minute).timestamp()
        await self.oncall.tick()
        await self.crieur.drain(10)

    def sms_to(self, number: str) -> list[str]:
        return [m["body"] for m in self.twilio.messages if m["to"] == number]

    async def sms(self, sender: str, body: str) -> str:
        """An inbound SMS posted and signed as Twilio does; the TwiML reply's text."""
        config = self.crieur.config
        params = {
            "AccountSid": self.twilio.account_sid,
            "Body": body,
            "From": sender,
            "To": "+33757000041",
            "MessageSid": f"SM{time.time_ns():032x}"[:34],
            "NumMedia": "0",
            "SmsStatus": "received",
        }
        signature = RequestValidator(self.twilio.auth_token).compute_signature(
            config.public_url + "/twilio/sms", params
        )
        response = await self.client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
        assert response.status == 200
        text = await response.text()
        return text.split("<Message>", 1)[1].split("</Message>", 1)[0] if "<Message>" in text else ""

    async def audit(self) -> list[tuple[str, str, str, str, str]]:
        """(Paris time, who, action, target, detail), oldest first."""
        rows = await accounts.audit_log(self.crieur.store)
        return [
            (
                datetime.fromtimestamp(r["at"], PARIS).strftime("%H:%M"),
                r["username"],
                r["action"],
                r["target"],
                r["detail"],
            )
            for r in reversed(rows)
        ]


@pytest.fixture
def night_factory(tmp_path, db_url, fake_twilio, fake_mastodon, mailbox, monkeypatch):
    for name, pin in PINS.items():
        monkeypatch.setenv(name, pin)
    monkeypatch.setenv("CRIEUR_SECRET_KEY", SECRET)
    monkeypatch.setenv(TOKEN_ENV, fake_twilio.auth_token)
    box, smtp_port = mailbox

    async def make(otherwise: str, within: str) -> Night:
        rules = write(tmp_path, "rules.yaml", rules_text(otherwise, within))
        rota = write(tmp_path, "astreinte.yaml", ROTA)
        config_path = write(
            tmp_path,
            "crieur.yaml",
            textwrap.dedent(f"""\
            service:
              data_dir: {tmp_path / "data"}
              database: "{db_url}"
              territories: {EXAMPLE / "territories.yaml"}
              templates: {EXAMPLE / "templates"}
              rules: [{rules}]
              oncall: {rota}
              workers: 0
            channels:
              mastodon: {{kind: mastodon, base_url: "{fake_mastodon.base_url}", access_token: test-token, rate: 50}}
              sms: {{kind: twilio, api_base: "{fake_twilio.base_url}", account_sid: "{fake_twilio.account_sid}",
                     auth_token: "{fake_twilio.auth_token}", from: "+33757000041", rate: 100}}
              email: {{kind: email, host: 127.0.0.1, port: {smtp_port}, starttls: false,
                       from: "route41@departement-41.example"}}
            citizens:
              sms_channel: sms
              email_channel: email
              twilio_auth_token_env: {TOKEN_ENV}
            """),
        )
        crieur = Crieur(load_config(config_path))
        await crieur.open()
        clock = [SATURDAY_23H.timestamp()]
        assert crieur.oncall is not None
        crieur.oncall.clock = lambda: clock[0]
        app = web.Application()
        crieur.extra_routes(app)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        crieur.config.public_url = str(client.server.make_url("")).rstrip("/")
        return Night(crieur, client, fake_twilio, fake_mastodon, box, clock)

    return make  # each test closes its night (`close`) in its own event loop


def orange_vigilance(at: datetime) -> Item:
    return Item(
        source="meteo-vigilance",
        external_id="vigilance:41:5",
        version="1",
        msg_type=MsgType.ALERT,
        sent=at,
        expires=at + timedelta(hours=24),
        title="Vigilance orange neige-verglas (41)",
        text="Chutes de neige de 5 à 10 cm attendues cette nuit ; routes glissantes.",
        category="Met",
        event="neige-verglas",
        severity=Severity.SEVERE,
        certainty=Certainty.LIKELY,
        areas=(Area("departement", "41"),),
        authority="Météo-France",
        attributes={"colour": "orange", "colour_id": 3, "phenomenon": "neige-verglas", "phenomenon_id": 5},
    )


async def close(night: Night) -> None:
    await night.client.close()
    await night.crieur.stop(grace=5)


async def test_saturday_night_the_backup_approves_by_sms(night_factory):
    night = await night_factory("escalate", "45m")
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        assert alert.status is AlertStatus.PENDING_APPROVAL
        await night.at(23, 0)
        assert night.twilio.messages == [] and night.mastodon.statuses == []  # 5 minutes' grace for the console
        await night.at(23, 5)  # the CM on call is paged, by SMS and e-mail
        [page] = night.sms_to(ALICE)
        assert f"l'alerte {alert.id} attend une validation depuis 23:00" in page and f"OUI {alert.id} <code>" in page
        [mail] = night.mailbox.to("alice@cd41.example")
        assert mail["Subject"].startswith(f"[Astreinte] Alerte {alert.id} à valider")
        await night.at(23, 10)
        assert night.sms_to(BRUNO) == []  # Alice still has until 23:15
        await night.at(23, 15)  # no answer: the back-up is paged
        assert len(night.sms_to(BRUNO)) == 1 and len(night.mailbox.to("bruno@cd41.example")) == 1
        assert len(night.sms_to(ALICE)) == 1  # exactly once each

        # a citizen's "OUI" is a question, not a decision; a wrong PIN does nothing
        await night.sms(CITIZEN, f"OUI {alert.id} 2468")
        assert "Code incorrect" in await night.sms(BRUNO, f"OUI {alert.id} 0000")
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PENDING_APPROVAL

        night._clock[0] = SATURDAY_23H.replace(minute=17).timestamp()
        assert await night.sms(BRUNO, f"oui {alert.id} 2468") == f"Alerte {alert.id} publiée."
        await night.at(23, 18)
        [status] = night.mastodon.statuses
        assert "Vigilance orange neige-verglas" in status["content"]
        await night.at(23, 40)  # decided: nobody else is paged, the deadline does not escalate
        assert night.sms_to(CLAIRE) == [] and night.mailbox.to("claire@cd41.example") == []
        assert "n'attend plus de validation (publiée)" in await night.sms(ALICE, f"OUI {alert.id} 1357")

        log = [entry for entry in await night.audit() if entry[3] == f"alert:{alert.id}"]
        assert [(at, who, action) for at, who, action, _, _ in log] == [
            ("23:00", "crieur", "oncall-open"),
            ("23:05", "crieur", "oncall-page"),
            ("23:15", "crieur", "oncall-page"),
            ("23:15", "astreinte:bruno", "oncall-sms-refused"),
            ("23:17", "astreinte:bruno", "approve"),
        ]
        assert "alice (Alice Martin)" in log[1][4] and "bruno (Bruno Petit)" in log[2][4]
        assert "par SMS depuis" in log[4][4] and "1602" not in log[4][4]  # the number is masked
        pages = [
            d
            for d in await night.crieur.store.deliveries(limit=50)
            if d.kind == "Page" and d.extra["page"] == f"alert:{alert.id}"
        ]  # (the citizen's "OUI" is paged too)
        assert sorted((d.channel, d.recipient, d.state.value) for d in pages) == [
            ("email", "alice@cd41.example", "sent"),
            ("email", "bruno@cd41.example", "sent"),
            ("sms", ALICE, "sent"),
            ("sms", BRUNO, "sent"),
        ]
        [case] = [c for c in await night.oncall.cases() if c["subject"] == f"alert:{alert.id}"]
        assert (case["state"], case["closed_by"], case["how"]) == ("decided", "bruno", "sms")
    finally:
        await close(night)


async def test_saturday_night_nobody_answers_and_the_rule_publishes(night_factory):
    night = await night_factory("publish", "20m")
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        for hour, minute in ((23, 0), (23, 5), (23, 15), (23, 19)):
            await night.at(hour, minute)
        assert night.mastodon.statuses == []
        page = night.sms_to(ALICE)[0]
        assert "Sans décision à 23:20, elle sera publiée." in page
        await night.at(23, 20)  # the deadline: the rule decides
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PUBLISHED
        assert len(night.mastodon.statuses) == 1
        await night.at(23, 45)
        assert night.sms_to(CLAIRE) == []
        log = [(at, who, action) for at, who, action, target, _ in await night.audit() if target == f"alert:{alert.id}"]
        assert log == [
            ("23:00", "crieur", "oncall-open"),
            ("23:05", "crieur", "oncall-page"),
            ("23:15", "crieur", "oncall-page"),
            ("23:20", "règle:vigilance-orange-neige", "approve"),
        ]
    finally:
        await close(night)


async def test_escalate_pages_the_head_of_communication_at_the_deadline(night_factory):
    night = await night_factory("escalate", "10m")
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        await night.at(23, 0)
        await night.at(23, 5)
        await night.at(23, 10)  # deadline: Claire is paged at once, Bruno is skipped
        assert len(night.sms_to(CLAIRE)) == 1 and night.sms_to(BRUNO) == []
        assert (
            await night.sms(CLAIRE, f"VU {alert.id} 9753")
            == f"Alerte {alert.id} prise en charge : plus personne d'autre n'est appelé."
        )
        await night.at(23, 50)
        assert len(night.sms_to(CLAIRE)) == 1 and night.sms_to(BRUNO) == []
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PENDING_APPROVAL
    finally:
        await close(night)


async def test_a_minor_item_nobody_answers_is_discarded_after_the_whole_chain(night_factory):
    night = await night_factory("discard", "45m")
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        for minute in (0, 5, 15, 25, 35, 44):
            await night.at(23, minute)
        assert [len(night.sms_to(n)) for n in (ALICE, BRUNO, CLAIRE)] == [1, 1, 1]
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PENDING_APPROVAL
        await night.at(23, 45)
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.REJECTED
        assert night.mastodon.statuses == []
        actions = [(at, action) for at, _, action, target, _ in await night.audit() if target == f"alert:{alert.id}"]
        assert actions[-2:] == [("23:35", "oncall-unanswered"), ("23:45", "reject")]
    finally:
        await close(night)


def test_the_bundled_rota_loads():
    rota = load_rota(EXAMPLE / "astreinte.yaml")
    assert [p.id for p in rota.chain(SATURDAY_23H)] == ["camille", "yanis", "helene"]
    assert [p.id for p in rota.chain(datetime(2026, 12, 23, 10, 0, tzinfo=PARIS))] == ["yanis", "camille", "helene"]
    assert rota.delays("alert", Severity.EXTREME).after == 0


async def test_the_console_shows_who_is_on_call_and_the_cases(night_factory, monkeypatch):
    from argon2 import PasswordHasher

    from alerts.web import make_app
    from tests.test_web_support import PASSWORD, Web

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    night = await night_factory("publish", "20m")
    client = TestClient(TestServer(make_app(night.crieur), host="127.0.0.1"))
    await client.start_server()
    try:
        await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        await night.at(23, 0)
        await night.at(23, 5)
        assert (await client.get("/console/astreinte", allow_redirects=False)).status == 302  # login first
        await accounts.add_user(night.crieur.store, "camille", PASSWORD, "cm")
        await Web(night.crieur, client).login("camille")
        page = await client.get("/console/astreinte")
        text = await page.text()
        assert page.status == 200
        assert text.index("Alice Martin") < text.index("Bruno Petit") < text.index("Claire Roux")
        assert "appel en cours" in text and "sam. 05/12 23:20 : publish" in text
    finally:
        await client.close()
        await close(night)


async def test_a_question_for_the_departement_pages_until_someone_takes_it(night_factory):
    night = await night_factory("publish", "20m")
    try:
        assert night.crieur.citizens is not None
        asked = await night.crieur.citizens.ask("sms", CITIZEN, "La RD 957 est-elle déneigée vers Vendôme ?", ["41"])
        qid = asked["question_id"]
        await night.at(23, 0)
        await night.at(23, 14)
        assert night.sms_to(ALICE) == []  # questions wait 15 minutes (paging.default)
        await night.at(23, 15)
        [page] = night.sms_to(ALICE)
        assert "question d'un citoyen" in page and "La RD 957 est-elle déneigée" in page and f"VU Q{qid} <code>" in page
        night._clock[0] = SATURDAY_23H.replace(minute=20).timestamp()
        assert "se prend en charge" in await night.sms(ALICE, f"OUI Q{qid} 1357")
        assert (
            await night.sms(ALICE, f"VU Q{qid} 1357")
            == f"Question Q{qid} prise en charge : plus personne d'autre n'est appelé."
        )
        await night.at(23, 59)
        assert night.sms_to(BRUNO) == []
        [case] = await night.oncall.cases()
        assert (case["subject"], case["state"], case["closed_by"]) == (f"question:{qid}", "acknowledged", "alice")
    finally:
        await close(night)


async def test_an_escalation_no_webmaster_acknowledged_pages_the_rota(night_factory):
    night = await night_factory("publish", "20m")
    try:
        store = night.crieur.store
        row, _ = await store.count_escalation("prefecture-41", "poids-lourds", SATURDAY_23H.timestamp())
        await store.set_escalation_state(row["id"], "sent")
        eid = row["id"]
        await night.at(23, 0)
        await night.at(23, 15)
        [page] = night.sms_to(ALICE)
        assert f"l'escalade E{eid} vers prefecture-41" in page and f"VU E{eid} <code>" in page
        night._clock[0] = SATURDAY_23H.replace(minute=16).timestamp()
        assert (
            await night.sms(ALICE, f"VU E{eid} 1357")
            == f"L'escalade E{eid} prise en charge : plus personne d'autre n'est appelé."
        )
        await store.set_escalation_state(eid, "acknowledged")  # the webmaster's link, later
        await night.at(23, 40)
        assert night.sms_to(BRUNO) == []
        [case] = await night.oncall.cases()
        assert (case["subject"], case["state"]) == (f"escalation:{eid}", "decided")
    finally:
        await close(night)


async def test_a_source_failing_during_an_episode_pages_until_it_answers(night_factory):
    night = await night_factory("publish", "20m")
    try:
        store = night.crieur.store
        failing = {
            "last_status": "error",
            "consecutive_failures": 4,
            "last_error": "HTTP 503 from the server",
            "last_success": "2026-12-05T20:00:00+00:00",
        }
        await store.save_source_state("meteo-vigilance", failing)
        await night.at(23, 0)
        await night.at(23, 20)
        assert night.sms_to(ALICE) == []  # no snow episode: a failing feed is for office hours
        await store.set_episode("41", True, by="test")
        await night.at(23, 21)
        await night.at(23, 36)
        [page] = night.sms_to(ALICE)
        assert "la source meteo-vigilance ne répond plus (4 échecs" in page and "HTTP 503" in page
        await store.save_source_state("meteo-vigilance", {**failing, "last_status": "ok", "consecutive_failures": 0})
        await night.at(23, 59)
        assert night.sms_to(BRUNO) == []  # it answers again: nobody else is called
        [case] = await night.oncall.cases()
        assert case["state"] == "decided" and case["subject"].startswith("source:meteo-vigilance:")
    finally:
        await close(night)


# ------------------------------------------------------------------------------------------ signed links


async def test_the_backup_approves_through_the_signed_link_in_the_page(night_factory):
    from alerts.web import make_app

    night = await night_factory("escalate", "45m")
    client = TestClient(TestServer(make_app(night.crieur), host="127.0.0.1"))
    await client.start_server()
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        for minute in (0, 5, 15):
            await night.at(23, minute)
        [alice_page], [bruno_page] = night.sms_to(ALICE), night.sms_to(BRUNO)
        alice_link, bruno_link = LINK.search(alice_page)[1], LINK.search(bruno_page)[1]
        assert alice_link != bruno_link  # each link is bound to the person paged
        [mail] = night.mailbox.to("bruno@cd41.example")
        assert bruno_link in mail.get_body().get_content() and "valable 60 minutes" in mail.get_body().get_content()

        # a forged or altered link: a French page, nothing done
        for forged in (bruno_link[:-2] + ("AA" if not bruno_link.endswith("AA") else "BB"), "/astreinte/12.abc.1.x"):
            refused = await client.get(forged)
            assert refused.status == 403 and "Lien invalide" in await refused.text()
            assert (await client.post(forged, data={"action": "approve"})).status == 403
        # the same alert and person signed with another key, or for another alert
        from alerts.oncall.links import link_token

        other = link_token(alert.id, "bruno", b"une-autre-cle-tout-aussi-longue", SATURDAY_23H.timestamp())
        assert (await client.post(f"/astreinte/{other}", data={"action": "approve"})).status == 403

        night._clock[0] = SATURDAY_23H.replace(minute=16).timestamp()
        shown = await client.get(bruno_link)  # opening the link decides nothing (a mail scanner may open it)
        text = html.unescape(await shown.text())
        assert shown.status == 200 and "Vigilance orange neige-verglas" in text and "Publier l'alerte" in text
        assert shown.headers["Cache-Control"] == "no-store" and shown.headers["Referrer-Policy"] == "no-referrer"
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PENDING_APPROVAL

        taken = html.unescape(await (await client.post(bruno_link, data={"action": "ack"})).text())
        assert (
            "Prise en charge : plus personne d'autre n'est appelé." in taken and "Je la prends en charge" not in taken
        )
        await night.at(23, 16)
        [case] = [c for c in await night.oncall.cases() if c["subject"] == f"alert:{alert.id}"]
        assert (case["state"], case["closed_by"], case["how"]) == ("acknowledged", "bruno", "lien signé")

        night._clock[0] = SATURDAY_23H.replace(minute=17).timestamp()
        decided = await client.post(bruno_link, data={"action": "approve"})  # the same link still decides
        assert decided.status == 200 and f"Alerte {alert.id} publiée." in await decided.text()
        again = await client.post(bruno_link, data={"action": "reject"})  # single use
        assert again.status == 410 and "Lien déjà utilisé" in await again.text()
        late = await client.post(alice_link, data={"action": "reject"})  # decided already: nothing changes
        assert "n'attend plus de validation (publiée)" in html.unescape(await late.text())
        await night.at(23, 18)
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PUBLISHED
        assert len(night.mastodon.statuses) == 1

        night._clock[0] = SATURDAY_23H.replace(minute=30).timestamp() + 3600  # past the link's hour
        expired = await client.get(bruno_link)
        body = html.unescape(await expired.text())
        assert expired.status == 403 and "Lien expiré" in body and "valable jusqu'au" in body

        log = [entry for entry in await night.audit() if entry[3] == f"alert:{alert.id}"]
        assert [(at, who, action) for at, who, action, _, _ in log][-3:] == [
            ("23:16", "astreinte:bruno", "oncall-ack"),
            ("23:17", "astreinte:bruno", "approve"),
            ("00:30", "astreinte:bruno", "oncall-link-refused"),
        ]
        assert log[-2][4] == "par lien signé (page mobile)"
        [case] = [c for c in await night.oncall.cases() if c["subject"] == f"alert:{alert.id}"]
        assert (case["state"], case["closed_by"], case["how"]) == ("decided", "bruno", "lien signé")
    finally:
        await client.close()
        await close(night)


async def test_wrong_pins_lock_the_number_in_every_process(night_factory):
    """The count of wrong PINs is in the database: a second pager (another process) refuses the number too."""
    night = await night_factory("publish", "45m")
    try:
        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        await night.at(23, 0)
        for _ in range(5):
            assert "Code incorrect" in await night.sms(ALICE, f"OUI {alert.id} 0000")
        other = OnCall(night.crieur, night.oncall.rota, clock=night.oncall.clock)
        reply = await other.handle_sms(ALICE, f"OUI {alert.id} 1357")  # the right PIN, too late
        assert reply is not None and reply.startswith("Trop d'essais : réessayez dans 12 min")
        assert (await night.crieur.store.alert(alert.id)).status is AlertStatus.PENDING_APPROVAL
        assert "Code incorrect" in await night.sms(BRUNO, f"OUI {alert.id} 0000")  # per number
        night._clock[0] = SATURDAY_23H.replace(minute=13).timestamp()  # one more try every 12 minutes
        assert await other.handle_sms(ALICE, f"OUI {alert.id} 1357") == f"Alerte {alert.id} publiée."
    finally:
        await close(night)


# ------------------------------------------------------------------------------------------ swaps


async def test_a_swap_entered_in_the_console_changes_who_is_paged(night_factory, monkeypatch):
    from alerts.web import make_app
    from tests.test_web_support import PASSWORD, Web, quick_argon2

    quick_argon2(monkeypatch)
    night = await night_factory("publish", "45m")
    client = TestClient(TestServer(make_app(night.crieur), host="127.0.0.1"))
    await client.start_server()
    try:
        await accounts.add_user(night.crieur.store, "helene", PASSWORD, "approver")
        await accounts.add_user(night.crieur.store, "camille", PASSWORD, "cm")
        web_ = Web(night.crieur, client)
        csrf = await web_.login("camille")
        swap = {"cm": "bruno", "backup": "claire", "starts": "2026-12-05T20:00", "ends": "2026-12-06T08:00"}
        refused = await client.post("/console/astreinte/remplacements", data={**swap, "csrf": csrf})
        assert refused.status == 403  # a CM may not change the rota; approvers and admins may
        csrf = await web_.login("helene")
        for wrong, message in (
            ({"ends": "2026-12-05T19:00"}, "La fin du remplacement doit suivre son début."),
            ({"backup": "bruno"}, "Le suppléant doit être une autre personne."),
            ({"starts": "samedi"}, "Indiquez le début et la fin du remplacement"),
        ):
            answer = await client.post("/console/astreinte/remplacements", data={**swap, **wrong, "csrf": csrf})
            assert answer.status == 400 and message in html.unescape(await answer.text())
        added = await client.post(
            "/console/astreinte/remplacements",
            data={**swap, "reason": "Alice malade", "csrf": csrf},
            allow_redirects=False,
        )
        assert added.status == 303 and added.headers["Location"] == "/console/astreinte?msg=swap-added"
        page = html.unescape(await (await client.get(added.headers["Location"])).text())
        assert "Remplacement enregistré." in page and "Bruno Petit</strong>, suppléé·e par Claire Roux" in page
        now = page.split("En ce moment", 1)[1]
        assert now.index("Bruno Petit") < now.index("Claire Roux") and "Alice Martin" not in now.split("</ol>")[0]

        [alert] = await night.crieur.process_items([orange_vigilance(SATURDAY_23H)])
        for minute in (0, 5, 15):
            await night.at(23, minute)
        assert night.sms_to(ALICE) == []  # replaced tonight
        assert len(night.sms_to(BRUNO)) == 1 and len(night.sms_to(CLAIRE)) == 1  # the swap's chain, in order
        log = [(who, action, target) for _, who, action, target, _ in await night.audit()]
        assert ("helene", "oncall-swap", "swap:1") in log

        [row] = await night.crieur.store.db.fetch("SELECT id FROM oncall_swaps")
        cancel = f"/console/astreinte/remplacements/{row['id']}/annuler"
        assert (await client.post(cancel, data={"csrf": csrf}, allow_redirects=False)).status == 303
        assert (await client.post(cancel, data={"csrf": csrf})).status == 404  # once
        assert [p.id for p in await night.oncall.chain(SATURDAY_23H)] == ["alice", "bruno", "claire"]
        assert alert.id is not None
    finally:
        await client.close()
        await close(night)
