"""Exercise mode end to end, on SQLite and PostgreSQL: a CAP alert whose status is Exercise reaches only the
channels and numbers marked for exercises, every text starts with EXERCICE, no subscriber gets it and the
public page does not show it; the same document with status Actual goes out as usual. SMS through the fake
Twilio, Mastodon through its fake, e-mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import load_config
from alerts.domain import AlertStatus
from alerts.ingest import SourceSpec, parse
from alerts.service import Crieur
from alerts.web import site
from rules.yamlcheck import ValidationFailed
from tests.conftest import EXAMPLES, ROOT
from tests.test_oncall import Mailbox, free_port  # noqa: F401 (the mailbox fixture's parts)

EXAMPLE = EXAMPLES / "loir-et-cher"
CAP = ROOT / "tests" / "data" / "ingest" / "cap_41_alert.xml"
CELL, CITIZEN_1, CITIZEN_2 = "+33612345601", "+33698765401", "+33698765402"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
async def crieur(tmp_path, db_url, fake_twilio, fake_mastodon, smtp):
    _, smtp_port = smtp
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent("""\
        mode: first-match
        rules:
          - name: vigilance-cap
            when: {category: [Met], severity: Severe}
            then: {channels: [mastodon, sms, email, web], territories: ["41"]}
        """)
    )
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        service:
          data_dir: {tmp_path / "data"}
          database: "{db_url}"
          territories: {EXAMPLE / "territories.yaml"}
          templates: {EXAMPLE / "templates"}
          rules: [{rules}]
          workers: 0
        channels:
          mastodon: {{kind: mastodon, base_url: "{fake_mastodon.base_url}", access_token: test-token, rate: 50}}
          sms: {{kind: twilio, api_base: "{fake_twilio.base_url}", account_sid: "{fake_twilio.account_sid}",
                 auth_token: "{fake_twilio.auth_token}", from: "+33757000041", rate: 100}}
          email: {{kind: email, host: 127.0.0.1, port: {smtp_port}, starttls: false,
                   from: "route41@departement-41.example", recipients: [cellule-crise@departement-41.example]}}
          web: {{kind: web}}
        exercise:
          channels: [sms, email]
          recipients: ["06 12 34 56 01"]
        """)
    )
    service = Crieur(load_config(path))
    await service.open()
    await service.store.subscribe(CITIZEN_1, ["41"])
    await service.store.subscribe(CITIZEN_2, ["41"])
    yield service
    await service.stop(grace=5)


def cap(status: str):
    spec = SourceSpec(name="meteo", kind="cap", url="file:x")
    document = CAP.read_text(encoding="utf-8").replace("<status>Actual</status>", f"<status>{status}</status>")
    if status != "Actual":  # another identifier: a different alert from the real one
        document = document.replace("<identifier>", "<identifier>EX-", 1)
    items = parse(spec, document.encode(), "application/xml")
    for item in items:  # current now, so that the public page would show it if it were allowed to
        item.expires = datetime.now(timezone.utc) + timedelta(hours=6)
    return items


@pytest.mark.parametrize("status", ["Exercise", "Test"])
async def test_an_exercise_reaches_only_exercise_channels_and_numbers(crieur, fake_twilio, fake_mastodon, smtp, status):
    mailbox, _ = smtp
    [alert] = await crieur.process_items(cap(status))
    assert alert.exercise and alert.channels == ("sms", "email")
    await crieur.drain(10)
    assert fake_mastodon.statuses == []  # not an exercise channel: never
    assert [m["to"] for m in fake_twilio.messages] == [CELL]  # the exercise number, no subscriber
    assert fake_twilio.messages[0]["body"].startswith("EXERCICE")
    [mail] = mailbox.received
    assert mail["To"] == "cellule-crise@departement-41.example" and mail["Subject"].startswith("EXERCICE")
    assert mail.get_body(("plain",)).get_content().startswith("EXERCICE")
    assert await site.current_alerts(crieur) == [] and await site.recent_alerts(crieur) == []
    stored = await crieur.store.alert(alert.id)
    assert stored.exercise  # kept in storage: an approval or an end later stays an exercise
    ending = await crieur.end_alert(alert.id, by="test")
    assert ending.exercise and ending.channels == ("sms", "email")
    await crieur.drain(10)
    assert {m["to"] for m in fake_twilio.messages} == {CELL} and fake_mastodon.statuses == []


async def test_the_real_alert_still_goes_to_everyone(crieur, fake_twilio, fake_mastodon):
    [alert] = await crieur.process_items(cap("Actual"))
    assert not alert.exercise
    await crieur.drain(10)
    assert len(fake_mastodon.statuses) == 1 and not fake_mastodon.statuses[0]["content"].startswith("EXERCICE")
    assert sorted(m["to"] for m in fake_twilio.messages) == [CITIZEN_1, CITIZEN_2]
    assert [a.id for a in await site.current_alerts(crieur)] == [alert.id]


def test_exercise_settings_are_checked(tmp_path):
    path = tmp_path / "crieur.yaml"
    path.write_text(
        textwrap.dedent("""\
        channels:
          web: {kind: web}
        exercise:
          channels: [sms-exercice]
          recipients: ["12"]
        """)
    )
    with pytest.raises(ValidationFailed) as failed:
        load_config(path)
    text = "\n".join(str(e) for e in failed.value.errors)
    assert "crieur.yaml:4:14: exercise.channels[0]: no channel named 'sms-exercice'" in text
    assert "crieur.yaml:5:16: exercise.recipients[0]: not a phone number" in text


# ------------------------------------------------------------------------------------ from the console


async def console(crieur, monkeypatch):
    """A console client logged in as a CM on the real service."""
    from aiohttp.test_utils import TestClient, TestServer

    from alerts.web import accounts, make_app
    from tests.test_web_support import PASSWORD, Web, quick_argon2

    quick_argon2(monkeypatch)
    await accounts.add_user(crieur.store, "camille", PASSWORD, "cm")
    client = TestClient(TestServer(make_app(crieur), host="127.0.0.1"))
    await client.start_server()
    return client, await Web(crieur, client).login("camille")


EXERCISE_TEXT = "Neige : RD 957 coupée à Vendôme\nDéviation par la RD 917, exercice préfectoral."
REAL_TEXT = "Neige : RD 2152 glissante à Mer\nSalage en cours."


async def compose(client, csrf, text, *, exercise: bool, channels=("mastodon", "sms", "email", "web"), **more):
    form = [("csrf", csrf), ("text", text), ("territories", "41"), ("severity", "3"), ("action", "send")]
    form += [("channels", c) for c in channels] + ([("exercise", "1")] if exercise else [])
    form += list(more.items())
    return await client.post("/console/compose", data=form, allow_redirects=False)


async def test_an_exercise_declared_in_the_console_reaches_no_public_recipient(
    crieur, fake_twilio, fake_mastodon, smtp, monkeypatch
):
    """Composed as an exercise, with every channel ticked: only the exercise channels and number get it; the
    subscribers, Mastodon, the public page's list, Atom, the public CAP feed and the API never show it; the
    exercise page and the alert's own CAP (status Exercise) do, since the web channel is an exercise one."""
    mailbox, _ = smtp
    crieur.config.exercise_channels = ["sms", "email", "web"]
    client, csrf = await console(crieur, monkeypatch)
    try:
        assert (await compose(client, csrf, REAL_TEXT, exercise=False)).status == 303
        sent = await compose(client, csrf, EXERCISE_TEXT, exercise=True)
        assert sent.status == 303 and sent.headers["Location"] == "/console?msg=published"
        real, exercise = sorted(await crieur.store.alerts(limit=10), key=lambda a: a.id)
        assert not real.exercise and exercise.exercise
        assert exercise.channels == ("sms", "email", "web") and exercise.title.startswith("EXERCICE : ")
        await crieur.drain(10)

        # the recipients: the real alert reached the two subscribers and Mastodon; the exercise only the cell
        exercise_sms = [m for m in fake_twilio.messages if "RD 957" in m["body"]]
        assert [m["to"] for m in exercise_sms] == [CELL] and exercise_sms[0]["body"].startswith("EXERCICE")
        assert sorted(m["to"] for m in fake_twilio.messages if "Mer" in m["body"]) == [CITIZEN_1, CITIZEN_2]
        assert [s["content"] for s in fake_mastodon.statuses if "RD 957" in s["content"]] == []
        assert [m["Subject"][:8] for m in mailbox.received if "RD 957" in m.get_body().get_content()] == ["EXERCICE"]

        # every public list: the real alert is there, the exercise is not
        for path in ("/", "/t/41", "/alertes.atom", "/t/41/alertes.atom", "/t/41/alertes.cap.xml", "/api/v1/alerts"):
            response = await client.get(path)
            body = await response.text()
            assert response.status == 200 and "RD 2152" in body, path
            assert "RD 957" not in body and "EXERCICE :" not in body, path
        territory_page = await client.get("/t/41")
        assert "EXERCICE en cours" in await territory_page.text()  # the banner, pointing to the exercise page

        # where an exercise is shown: its page (banner), its CAP feed and message (status Exercise), the API by id
        page = await (await client.get("/t/41/exercice")).text()
        assert "EXERCICE" in page and "RD 957 coupée à Vendôme" in page and "RD 2152" not in page
        feed = await (await client.get("/t/41/exercice.cap.xml")).text()
        assert f"/alertes/{exercise.id}.cap.xml" in feed and f"/alertes/{real.id}.cap.xml" not in feed
        cap_exercise = await (await client.get(f"/alertes/{exercise.id}.cap.xml")).text()
        assert "<status>Exercise</status>" in cap_exercise
        assert "<status>Actual</status>" in await (await client.get(f"/alertes/{real.id}.cap.xml")).text()
        assert (await (await client.get(f"/api/v1/alerts/{exercise.id}")).json())["exercise"] is True

        # the web channel no longer carries exercises: the exercise is nowhere public, even by id
        crieur.config.exercise_channels = ["sms", "email"]
        crieur.config.channels["web"]["kind"] = "webhook-retired"
        for path in (f"/alertes/{exercise.id}", f"/alertes/{exercise.id}.cap.xml", f"/api/v1/alerts/{exercise.id}"):
            assert (await client.get(path)).status == 404, path
        assert "EXERCICE en cours" not in await (await client.get("/t/41")).text()
    finally:
        await client.close()


async def test_an_exercise_needs_an_exercise_channel(crieur, monkeypatch):
    client, csrf = await console(crieur, monkeypatch)
    try:
        refused = await compose(client, csrf, EXERCISE_TEXT, exercise=True, channels=("mastodon",))
        assert (
            refused.status == 400 and "choisissez au moins un canal d&#39;exercice (sms, email)" in await refused.text()
        )
        assert await crieur.store.alerts(tuple(AlertStatus), limit=5) == []
        preview = await client.post(
            "/console/preview",
            data=[("csrf", csrf), ("text", EXERCISE_TEXT), ("territories", "41"), ("exercise", "1")]
            + [("channels", c) for c in ("mastodon", "sms")],
        )
        shown = await preview.text()  # the exercise's preview: the SMS only, to the one exercise number
        assert "EXERCICE" in shown and "mastodon" not in shown and "1 abonné" in shown
    finally:
        await client.close()
