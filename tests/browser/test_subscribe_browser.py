"""Subscribing on the web in a real headless Chromium, on SQLite and PostgreSQL: from /t/41, a phone
confirmed with the code the fake Twilio received, an e-mail confirmed with the link aiosmtpd received, an
alert e-mail, and the unsubscribe link it carries; axe-core finds no violation on the pages."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from alerts.web.accounts import add_user
from tests.browser.test_web_browser import ARTIFACTS, axe_violations, login, page  # noqa: F401  (the page fixture)
from tests.test_web_subscriptions import VENDOME, closure, publish, running_site
from tests.test_web_support import PASSWORD, quick_argon2

pytestmark = pytest.mark.browser


async def test_subscribe_by_phone_and_by_email_then_unsubscribe(
    page: Any,  # noqa: F811
    store: Any,
    fake_twilio: Any,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    quick_argon2(monkeypatch)
    async with running_site(store, fake_twilio, tmp_path, monkeypatch) as site:
        base = site.crieur.config.public_url

        # ------------------------------------------------------------------ by phone, with the SMS code
        await page.goto(f"{base}/t/41")
        await page.get_by_role("link", name=re.compile("S'abonner en ligne")).click()
        await page.wait_for_url(f"{base}/t/41/abonnement")
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="Recevoir les alertes").click()  # nothing filled in
        assert await page.get_by_text("Indiquez un numéro de mobile ou une adresse e-mail.").is_visible()
        assert await axe_violations(page) == []  # the page with its errors
        await page.get_by_label("Numéro de mobile ou adresse e-mail").fill("06 12 34 56 21")
        await page.get_by_label("Commune").fill("Vendôme")
        await page.get_by_label("Routes").fill("D957")
        await page.get_by_label(re.compile("J'accepte de recevoir")).check()
        await page.get_by_role("button", name="Recevoir les alertes").click()
        await page.wait_for_url(re.compile(r"/abonnement/code\?t="))
        assert await axe_violations(page) == []
        await site.drain()  # the outbox sends the code through the fake Twilio
        await page.get_by_label("Code reçu par SMS").fill(site.last_code("+33612345621"))
        await page.get_by_role("button", name="Confirmer l'abonnement").click()
        await page.get_by_role("heading", name="Abonnement confirmé").wait_for()
        assert await page.get_by_text("commune de Vendôme (41), route D957 (41)").is_visible()
        assert await axe_violations(page) == []
        await page.screenshot(path=str(ARTIFACTS / f"subscribe-phone-{store.dialect}.png"), full_page=True)
        assert sorted(await site.crieur.store.subscriptions("+33612345621")) == ["41:commune:41269", "41:route:D957"]

        # --------------------------------------------------------------- by e-mail, with the link
        await page.goto(f"{base}/t/41/abonnement")
        await page.get_by_label("Numéro de mobile ou adresse e-mail").fill("dominique@exemple.fr")
        await page.get_by_label("Commune").fill("Vendôme")
        await page.get_by_label(re.compile("J'accepte de recevoir")).check()
        await page.get_by_role("button", name="Recevoir les alertes").click()
        await page.get_by_role("heading", name="Vérifiez votre messagerie").wait_for()
        assert await axe_violations(page) == []
        await site.drain()
        mail = site.last_mail("dominique@exemple.fr")
        link = re.search(r"(http://\S+/abonnement/confirmer\?t=\S+)", mail.get_content())
        assert link is not None
        await page.goto(link.group(1))
        assert await axe_violations(page) == []
        assert await site.crieur.store.subscriptions("dominique@exemple.fr") == []  # opening confirms nothing
        await page.get_by_role("button", name="Confirmer mon abonnement").click()
        await page.get_by_role("heading", name="Abonnement confirmé").wait_for()
        assert await site.crieur.store.subscriptions("dominique@exemple.fr") == [f"41:commune:{VENDOME}"]

        # ------------------------------------------------- an alert e-mail, unsubscribed from its link
        alert = await publish(site, closure())
        alert_mail = [m for m in site.mailbox.mails() if m["Subject"] == "D957 fermée à Vendôme"]
        assert len(alert_mail) == 1 and alert_mail[0]["To"] == "dominique@exemple.fr"
        unsubscribe = alert_mail[0]["List-Unsubscribe"].strip("<>")
        assert f"Se désabonner : {unsubscribe}" in alert_mail[0].get_content()
        await page.goto(unsubscribe)
        assert await axe_violations(page) == []
        assert await site.crieur.store.subscriptions("dominique@exemple.fr") != []  # opening the link is not enough
        await page.get_by_role("button", name="Me désabonner").click()
        await page.get_by_role("heading", name="Désabonnement confirmé").wait_for()
        assert await axe_violations(page) == []
        await page.screenshot(path=str(ARTIFACTS / f"unsubscribe-email-{store.dialect}.png"), full_page=True)
        assert await site.crieur.store.subscriptions("dominique@exemple.fr") == []
        # the phone's subscription is untouched
        assert await site.crieur.store.subscriptions("+33612345621") != []

        # ------------------------------------------- the CM sees each recipient of the alert, and why
        await add_user(store, "camille.durand", PASSWORD, "cm")
        await login(page, base)
        await page.get_by_role("link", name=re.compile("chaque destinataire")).first.click()
        await page.wait_for_url(f"{base}/console/alerts/{alert.id}/receipts")
        assert await page.get_by_role("heading", name=f"Destinataires — alerte n° {alert.id}").is_visible()
        assert await axe_violations(page) == []
