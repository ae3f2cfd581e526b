"""The console's per-recipient page, on SQLite and PostgreSQL: Twilio's status callbacks (signed, sent by
the fake Twilio to the real route) end as "Remis", "Non remis" with the carrier's reason, and numbers put
aside; each view lists only its recipients, the counts cover them all."""

from __future__ import annotations

import pathlib
from typing import Any

import aiohttp
import pytest

from alerts.citizens.ovh import attach as attach_ovh_receipts
from alerts.delivery import DeliveryWorker
from alerts.web.accounts import add_user
from alerts.web.delivery_progress import mask
from channels.ovh import OvhChannel
from tests.fakes.ovh import FakeOvh
from tests.test_web_subscriptions import closure, publish, running_site
from tests.test_web_support import PASSWORD, Web, quick_argon2

ALICE, BRUNO, CLAIRE = "+33612345631", "+33612345632", "+33612345633"


async def test_receipts_page_per_recipient(
    store: Any, fake_twilio: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick_argon2(monkeypatch)
    async with running_site(store, fake_twilio, tmp_path, monkeypatch) as site:
        await add_user(store, "camille", PASSWORD, "cm")
        for phone in (ALICE, BRUNO, CLAIRE):
            await store.subscribe(phone, ["41"])
        alert = await publish(site, closure(channels=("sms",)))
        sid = {m["to"]: m["sid"] for m in fake_twilio.messages if "D957 fermée" in m["body"]}
        assert sorted(sid) == [ALICE, BRUNO, CLAIRE]
        assert await fake_twilio.send_status_callback(sid[ALICE], "delivered") == 204
        assert await fake_twilio.send_status_callback(sid[BRUNO], "undelivered", error_code=30005) == 204
        assert await fake_twilio.send_status_callback(sid[CLAIRE], "failed", error_code=30003) == 204

        await Web(site.crieur, site.client).login("camille")
        page = await site.client.get(f"/console/alerts/{alert.id}/receipts")
        assert page.status == 200
        html = await page.text()
        assert "Tous (3)" in html and "Remis (1)" in html and "Échecs (2)" in html and "Mis de côté (1)" in html
        assert mask(ALICE) in html and ALICE not in html  # numbers are masked

        async def view(name: str) -> str:
            response = await site.client.get(f"/console/alerts/{alert.id}/receipts?vue={name}")
            assert response.status == 200
            return await response.text()

        # a row is its masked number's cell (the times beside them, "0 h 32", must not pass for a number)
        alice, bruno, claire = (f"{mask(phone)}</td>" for phone in (ALICE, BRUNO, CLAIRE))
        delivered = await view("delivered")
        assert f"{alice}<td>Remis" in delivered and bruno not in delivered and claire not in delivered
        failed = await view("failed")
        assert f"{bruno}<td>Non remis" in failed and f"{claire}<td>Non remis" in failed and alice not in failed
        assert "Twilio 30005" in failed and "Twilio 30003" in failed  # the carrier's reasons
        aside = await view("aside")
        assert f"{bruno}<td>Non remis<br><strong>mis de côté : numéro invalide</strong>" in aside
        assert claire not in aside  # 30003 (unreachable for now) keeps the number

        old = await site.client.get(f"/console/alerts/{alert.id}/failures", allow_redirects=False)
        assert old.status == 301 and old.headers["Location"].endswith("/receipts?vue=failed")
        assert (await site.client.get(f"/console/alerts/{alert.id}/receipts?vue=tout")).status == 400
        dashboard = await (await site.client.get("/console")).text()
        assert f"/console/alerts/{alert.id}/receipts" in dashboard


async def test_ovhcloud_receipts_reach_the_deliveries_and_the_page(
    store: Any, fake_twilio: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second provider's receipts: the OVHcloud account's callBack is set at start to Crieur's signed
    /ovh/status URL; the fake OVHcloud calls it as the real one does (GET, job id and dlr code)."""
    quick_argon2(monkeypatch)
    async with running_site(store, fake_twilio, tmp_path, monkeypatch) as site, FakeOvh() as ovh:
        site.crieur.config.undelivered_limit = 1  # one message back undelivered puts the number aside
        channel = OvhChannel(
            "sms",
            {
                "application_key": "ak-test",
                "application_secret": "as-test",
                "consumer_key": "ck-test",
                "service_name": "sms-ab12345-1",
                "sender": "CD41",
                "endpoint": f"{ovh.base_url}/1.0",
                "receipts": True,
                "rate": 200,
            },
        )
        attach_ovh_receipts(site.crieur.config, {"sms": channel})
        async with aiohttp.ClientSession() as session:
            await channel.start(session)
            assert ovh.callback.startswith(site.crieur.config.public_url + "/ovh/status?c=")
            site.crieur.channels["sms"] = channel
            site.worker = DeliveryWorker(store, site.crieur.channels, worker_id="ovh-worker")
            for phone in (ALICE, BRUNO):
                await store.subscribe(phone, ["41"])
            alert = await publish(site, closure(channels=("sms",)))
            job = {m["receiver"]: m["id"] for m in ovh.messages}
            assert sorted(job) == [ALICE, BRUNO]
            assert await ovh.send_receipt(job[ALICE], 1) == 200
            assert await ovh.send_receipt(job[BRUNO], 2, "Absent subscriber") == 200
        assert (await store.delivery(f"{alert.id}:sms:Alert:{ALICE}")).provider_status == "delivered"
        bruno = await store.delivery(f"{alert.id}:sms:Alert:{BRUNO}")
        assert bruno.provider_status == "undelivered" and bruno.last_error == "OVHcloud dlr 2: Absent subscriber"
        assert await store.opted_out(BRUNO) and not await store.opted_out(ALICE)

        forged = ovh.callback.split("?c=")[0] + f"?c=x.1.y&id={job[ALICE]}&dlr=2"
        assert (await site.client.get(forged.removeprefix(site.crieur.config.public_url))).status == 403
        assert (await store.delivery(f"{alert.id}:sms:Alert:{ALICE}")).provider_status == "delivered"

        await add_user(store, "camille", PASSWORD, "cm")
        await Web(site.crieur, site.client).login("camille")
        html = await (await site.client.get(f"/console/alerts/{alert.id}/receipts?vue=aside")).text()
        assert "Non remis<br><strong>mis de côté : plusieurs messages de suite non remis</strong>" in html
        assert "OVHcloud dlr 2: Absent subscriber" in html
