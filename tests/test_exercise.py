"""Exercise mode end to end, on SQLite and PostgreSQL: a CAP alert whose status is Exercise reaches only the
channels and numbers marked for exercises, every text starts with EXERCICE, no subscriber gets it and the
public page does not show it; the same document with status Actual goes out as usual. SMS through the fake
Twilio, Mastodon through its fake, e-mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import load_config
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
