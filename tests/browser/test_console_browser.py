"""The CM's console in a real headless Chromium: the live badge, the compose page's duplicate warning and
the "En ce moment" view, with screenshots at 1280 px and 360 px (test-artifacts/) and axe-core checks."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.storage import DeliveryState
from tests.browser.test_web_browser import ARTIFACTS, axe_violations, login, page, site  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


async def test_a_question_arriving_shows_on_the_open_dashboard_within_5_s(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    await login(page, base)
    assert await page.locator("#attention-badge").is_hidden()
    assert not (await page.title()).startswith("(")
    await site["crieur"].store.add_question(
        channel="sms", sender="+33612345678", text="Les poids lourds peuvent-ils rouler sur la RD 957 ?"
    )
    # no reload: the open page learns it by itself (server-sent events)
    await (
        page.locator("#attention .attention-items")
        .get_by_text("poids lourds peuvent-ils rouler")
        .wait_for(timeout=5000)
    )
    assert (await page.title()).startswith("(1) Tableau de bord")
    assert await page.locator("#attention-badge").is_visible()
    assert await page.locator("#attention-badge .count").inner_text() == "1"
    assert "1 nouvelle question" in await page.locator("#attention .summary").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-badge.png"))
    assert await axe_violations(page) == []


async def snow_night(crieur: Any) -> None:
    """A snow night's state: deliveries half done with a failure, a source down, a pending alert, a
    question, an alert ended today."""
    from alerts.domain import AlertStatus, Severity
    from alerts.ingest import SourceSpec
    from alerts.storage.store import NewDelivery
    from tests.test_web_support import snow_alert

    store = crieur.store
    crieur.config.channels["sms"]["price_per_segment"] = 0.0725
    [first, *_] = await store.alerts((AlertStatus.PUBLISHED,), limit=10)
    await store.enqueue(
        [NewDelivery(f"{first.id}:mastodon", first.id, "mastodon", "t")]
        + [NewDelivery(f"{first.id}:sms:{n}", first.id, "sms", "t", recipient=f"+336000000{n:02d}") for n in range(40)]
    )
    claimed = await store.claim("w1", 30, 60.0)
    await store.outbox.mark_sent("w1", [(d.id, f"SM{d.id}", "queued") for d in claimed[:-1]])
    await store.outbox.mark_ended(claimed[-1], "w1", DeliveryState.FAILED, "Twilio 21211: numéro invalide")
    await store.outbox.release("w1")
    crieur.config.sources = [
        SourceSpec("prefecture-41", "rss", "https://prefecture-41.example/rss", interval=300),
        SourceSpec("dir-centre-ouest", "datex2", "https://dir.example/d2.xml", interval=300),
    ]
    await store.save_source_state(
        "prefecture-41",
        {"kind": "rss", "last_status": "ok", "consecutive_failures": 0, "last_success": "2999-01-01T00:00:00+00:00"},
    )
    await store.save_source_state(
        "dir-centre-ouest",
        {
            "kind": "datex2",
            "last_status": "error",
            "consecutive_failures": 5,
            "last_error": "HTTP 503 Service Unavailable",
        },
    )
    await store.add_alert(
        snow_alert(
            title="Fermeture du pont de Montrichard",
            status=AlertStatus.PENDING_APPROVAL,
            severity=Severity.MODERATE,
            roads=(),
        )
    )
    ended = await store.add_alert(snow_alert(title="Neige à Romorantin", roads=(), severity=Severity.MINOR))
    await store.set_alert_status(ended.id, AlertStatus.ENDED)
    await store.add_question(
        channel="sms",
        sender="+33612345678",
        text="Le car scolaire passe-t-il à Cour-Cheverny ?",
        authority="region",
        status="escalated",
    )


@pytest.mark.parametrize("width", [1280, 360])
async def test_dashboard_compose_and_now_screenshots_without_axe_violations(
    site: dict[str, Any], page: Any, width: int
) -> None:
    base = site["base"]
    await snow_night(site["crieur"])
    await page.set_viewport_size({"width": width, "height": 900})
    await login(page, base)
    ARTIFACTS.mkdir(exist_ok=True)

    await page.goto(f"{base}/console")
    assert "en panne" in await page.locator("#sources-title + ul").inner_text()
    assert await page.locator("progress").count() >= 2
    await page.screenshot(path=str(ARTIFACTS / f"console-dashboard-{width}.png"), full_page=True)
    assert await axe_violations(page) == []

    await page.goto(f"{base}/console/compose")
    await page.get_by_label("Loir-et-Cher (#route41)").check()
    await page.get_by_label("Texte de l'alerte").fill("La RD 957 reste coupée entre Blois et Vendôme.")
    warning = page.locator("#duplicate")
    await warning.wait_for(timeout=5000)  # the preview warns while the CM types
    assert "citant la RD 957" in await warning.inner_text()
    assert "1250 SMS facturés ≈ 90,63\u00a0€" in await page.locator("#preview").inner_text()
    await page.screenshot(path=str(ARTIFACTS / f"console-compose-{width}.png"), full_page=True)
    assert await axe_violations(page) == []

    await page.goto(f"{base}/console/now?territoire=41")
    assert "Neige à Romorantin" in await page.locator("main").inner_text()
    await page.screenshot(path=str(ARTIFACTS / f"console-now-{width}.png"), full_page=True)
    assert await axe_violations(page) == []


async def test_without_server_sent_events_polling_shows_the_question_within_5_s(
    site: dict[str, Any], page: Any
) -> None:
    base = site["base"]
    await page.add_init_script("delete window.EventSource;")  # an old browser, or a proxy that buffers streams
    await login(page, base)
    assert await page.evaluate("typeof window.EventSource") == "undefined"
    await site["crieur"].store.add_question(
        channel="mastodon", sender="@jean@example.org", text="Le pont de Montrichard est-il ouvert ?"
    )
    await page.locator("#attention .attention-items").get_by_text("pont de Montrichard").wait_for(timeout=5000)
    assert (await page.title()).startswith("(1) ")
    # the session ends elsewhere: the panel says so instead of polling the login page forever
    await site["crieur"].store.db.execute("DELETE FROM web_sessions")
    await page.get_by_text("session terminée").wait_for(timeout=5000)
