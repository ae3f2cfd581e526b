"""The CMs' inbox in a real headless Chromium: questions grouped by road, a group taken in charge, a saved
answer reused, one answer sent to every asker and published on the territory's page; screenshots at 1280 px and 360 px (test-artifacts/) and
axe-core on each page."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.citizens import Citizens, Thread
from channels.twilio import TwilioChannel
from tests.browser.test_web_browser import ARTIFACTS, axe_violations, login, page, site  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
ASKERS = ("+33612340001", "+33612340002", "+33612340003")


async def _questions(crieur: Any) -> None:
    crieur.channels["sms"] = TwilioChannel.for_dry_run("sms", {"from": "+33757000041"})
    crieur.citizens = Citizens(crieur)
    for number, text in zip(
        ASKERS, ("La D957 est-elle ouverte ?", "RD 957 déneigée ?", "D957 praticable vers Blois ?"), strict=True
    ):
        await crieur.citizens.ask("sms", number, text, thread=Thread("sms", channel="sms", recipient=number))
    await crieur.citizens.ask("web", "", "Et la D956 vers Contres ?", thread=Thread("web"))


@pytest.mark.parametrize("width", [1280, 360])
async def test_inbox_groups_assign_saved_answer_and_answer_once(site: dict[str, Any], page: Any, width: int) -> None:
    base, crieur = site["base"], site["crieur"]
    await _questions(crieur)
    await page.set_viewport_size({"width": width, "height": 900})
    await login(page, base)
    ARTIFACTS.mkdir(exist_ok=True)

    await page.get_by_role("link", name="Questions", exact=True).click()
    row = page.locator("tbody tr", has_text="Route D957")
    assert "nouvelle" in await row.inner_text()
    cells = await row.locator("td").all_inner_texts()
    assert cells[1:3] == ["3", "3"]  # questions, waiting
    assert await page.locator("tbody tr", has_text="Route D956").count() == 1
    await page.screenshot(path=str(ARTIFACTS / f"console-questions-{width}.png"), full_page=True)
    assert await axe_violations(page) == []

    await row.get_by_role("link").click()
    await page.get_by_role("button", name="Prendre en charge").click()
    await page.get_by_text("Vous avez pris ce groupe en charge.").wait_for()
    await page.get_by_text("Enregistrer une réponse réutilisable").click()
    await page.get_by_label("Nom").fill("D957 rouverte")
    await page.get_by_label("Texte", exact=True).fill("La D957 est rouverte, chaussée glissante : prudence.")
    await page.get_by_role("button", name="Enregistrer").click()
    await page.get_by_text("Réponse enregistrée.").wait_for()
    await page.get_by_role("link", name="D957 rouverte").click()
    answer = page.locator("#answer-text")
    assert await answer.input_value() == "La D957 est rouverte, chaussée glissante : prudence."
    await page.screenshot(path=str(ARTIFACTS / f"console-question-group-{width}.png"), full_page=True)
    assert await axe_violations(page) == []

    await page.get_by_label("Publier aussi la question et la réponse sur la page publique").check()
    await page.get_by_role("button", name="Envoyer la réponse à 3 personnes").click()
    await page.get_by_text("Réponse envoyée : chaque personne").wait_for()
    assert await page.get_by_role("button", name="Envoyer la réponse à 0 personne").is_disabled()
    # what went back to each asker, as queued in the outbox
    assert await page.locator("tbody tr", has_text="(en file)").count() == 3
    assert await axe_violations(page) == []

    sent = [d for d in await crieur.store.deliveries(limit=100) if d.key.startswith("a")]
    assert sorted(d.recipient for d in sent) == sorted(ASKERS)
    assert all(d.text == "La D957 est rouverte, chaussée glissante : prudence. - C.D." for d in sent)
    (group,) = [g for g in await crieur.store.inbox.groups() if g["key"] == "road:D957"]
    assert group["assigned_to"] == "camille.durand" and group["state"] == "answered"

    # published as a question and answer of the episode on the public page
    await page.goto(f"{base}/t/41")
    faq = page.locator("section", has=page.locator("#faq-titre"))
    text = await faq.inner_text()
    assert "Route D957 : « La D957 est-elle ouverte ? »" in text and "chaussée glissante" in text
    assert "Réponse de Département de Loir-et-Cher (CD)" in text
    assert await axe_violations(page) == []
