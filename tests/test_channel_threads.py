"""Updates and ends of an alert are threaded under its first post on Mastodon, Bluesky (root and parent
strongRefs) and X, through the real service and adapters against the fakes (which check every request
against the providers' descriptions)."""

from __future__ import annotations

import textwrap

import pytest

from alerts.config import load_config
from alerts.delivery import message_of
from alerts.service import Crieur
from alerts.storage import DeliveryState
from tests.test_service import cap_items, config_text

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
async def crieur(tmp_path, db_url, fake_mastodon, fake_bluesky, fake_x, fake_facebook):
    channels = textwrap.dedent(f"""\
        mastodon: {{kind: mastodon, base_url: "{fake_mastodon.base_url}", access_token: test-token, rate: 50}}
        bluesky: {{kind: bluesky, service: "{fake_bluesky.base_url}", identifier: "{fake_bluesky.identifier}",
                   app_password: "{fake_bluesky.password}", rate: 50}}
        x: {{kind: x, api_base: "{fake_x.base_url}", consumer_key: ck, consumer_secret: cs, access_token: at,
             access_token_secret: ats, rate: 50}}
        facebook: {{kind: facebook, api_base: "{fake_facebook.base_url}", page_id: "{fake_facebook.page_id}",
                    page_token: test-token, rate: 50}}
        sms: {{kind: twilio, account_sid: AC1, auth_token: t, from: "+33757000041"}}
        web: {{kind: web}}
        """)
    path = tmp_path / "crieur.yaml"
    path.write_text(config_text(tmp_path, db_url, dry_run=False, channels=channels))
    service = Crieur(load_config(path))
    await service.open()
    yield service
    await service.stop()


async def test_update_and_end_are_threaded_on_each_network(crieur, fake_mastodon, fake_bluesky, fake_x):
    for name in ("cap_41_alert.xml", "cap_41_update.xml", "cap_41_cancel.xml"):
        await crieur.on_items(None, cap_items(name))
        await crieur.drain()

    first, update, end = fake_mastodon.statuses
    assert first["in_reply_to_id"] is None
    assert update["in_reply_to_id"] == first["id"] and end["in_reply_to_id"] == update["id"]

    first, update, end = fake_x.tweets
    assert first["in_reply_to"] is None
    assert update["in_reply_to"] == first["id"] and end["in_reply_to"] == update["id"]

    first, update, end = fake_bluesky.records
    ref = {"uri": first["uri"], "cid": first["cid"]}
    assert "reply" not in first["record"]
    assert update["record"]["reply"] == {"root": ref, "parent": ref}
    assert end["record"]["reply"] == {"root": ref, "parent": {"uri": update["uri"], "cid": update["cid"]}}


async def test_an_update_published_while_its_alert_is_still_being_posted_is_threaded_under_it(
    crieur, fake_mastodon, fake_bluesky, fake_x
):
    """The update comes while another worker is still posting the alert (past its last check: it goes
    out): the update waits for it, then is threaded under it, although the alert had no post yet when the
    update was queued."""
    await crieur.on_items(None, cap_items("cap_41_alert.xml"))
    social = ["mastodon", "bluesky", "x"]
    in_flight = await crieur.store.outbox.claim("other-worker", 10, 60.0, social)
    assert sorted(d.channel for d in in_flight) == sorted(social)
    await crieur.on_items(None, cap_items("cap_41_update.xml"))
    await crieur.drain()  # the update waits for the alert's posts
    assert not fake_mastodon.statuses and not fake_x.tweets and not fake_bluesky.records
    posted = [(d, await crieur.channels[d.channel].send(message_of(d))) for d in in_flight]
    await crieur.store.outbox.mark_sent("other-worker", [(d.id, r.provider_id, r.status) for d, r in posted])
    await crieur.drain()

    first, update = fake_mastodon.statuses
    assert first["in_reply_to_id"] is None and update["in_reply_to_id"] == first["id"]
    first, update = fake_x.tweets
    assert first["in_reply_to"] is None and update["in_reply_to"] == first["id"]
    first, update = fake_bluesky.records
    ref = {"uri": first["uri"], "cid": first["cid"]}
    assert update["record"]["reply"] == {"root": ref, "parent": ref}


async def test_an_update_whose_alert_was_withheld_at_the_last_moment_starts_the_thread(crieur, fake_mastodon):
    """The alert's post was being sent when the update came, and its worker's last check withheld it: the
    update, which waited for it, goes out as the thread's first post."""
    await crieur.on_items(None, cap_items("cap_41_alert.xml"))
    [in_flight] = await crieur.store.outbox.claim("other-worker", 10, 60.0, ["mastodon"])
    await crieur.on_items(None, cap_items("cap_41_update.xml"))
    await crieur.store.outbox.mark_ended(in_flight, "other-worker", DeliveryState.CANCELLED, "superseded")
    await crieur.drain()
    [update] = fake_mastodon.statuses
    assert update["in_reply_to_id"] is None and "MISE" in update["content"]


async def test_preview_says_how_long_the_sms_fan_out_takes(tmp_path, db_url):
    """The console's preview: 3 subscribers of 41, one sender at 0.5 segment/s: 6 s."""
    path = tmp_path / "crieur.yaml"
    path.write_text(
        config_text(tmp_path, db_url).replace('from: "+33757000041"}', 'from: "+33757000041", sender_rate: 0.5}')
    )
    service = Crieur(load_config(path))
    await service.open()
    try:
        await service.store.add_subscribers([("+33600000001", "41"), ("+33600000002", "41"), ("+33600000003", "41")])
        rows = await service.preview("Neige sur la RD 957", ["41"], ["sms", "mastodon"], "CM")
        sms = next(r for r in rows if r["channel"] == "sms")
        assert (sms["subscribers"], sms["segments"], sms["duration_s"]) == (3, 1, 6.0)
        assert "duration_s" not in next(r for r in rows if r["channel"] == "mastodon")
    finally:
        await service.stop()
