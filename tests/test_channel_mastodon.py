"""Mastodon adapter against the fake Mastodon server."""

from __future__ import annotations

import time

import pytest

from channels.base import AuthError, ConfigurationError, Limits, Message, PermanentError, RateLimited, TransientError
from channels.mastodon import MastodonChannel
from tests.fakes.mastodon import FakeMastodon

pytest_plugins = ["tests.fakes.fixtures"]

TEXT = "❄️ RD 957 fermée entre Blois et Vendôme : neige et verglas. #route41"


@pytest.fixture
async def mastodon(fake_mastodon, http_session):
    channel = MastodonChannel(
        "masto41", {"base_url": fake_mastodon.base_url, "access_token": "test-token", "timeout": 0.5}
    )
    await channel.start(http_session)
    return channel


def message(key: str = "d-1", **kw) -> Message:
    return Message(key=key, alert_id=7, text=kw.pop("text", TEXT), **kw)


async def test_posts_status_with_bearer_language_and_idempotency_key(mastodon, fake_mastodon):
    receipt = await mastodon.send(message())
    [req] = fake_mastodon.received("POST", "/api/v1/statuses")
    assert req.header("Authorization") == "Bearer test-token"
    assert req.header("Idempotency-Key") == "d-1"
    assert req.json == {"status": TEXT, "visibility": "public", "language": "fr"}
    assert receipt.provider_id == fake_mastodon.statuses[0]["id"]
    assert receipt.detail.endswith(f"/@cd41/{receipt.provider_id}")


async def test_retry_with_same_key_does_not_post_twice(mastodon, fake_mastodon):
    first = await mastodon.send(message("d-9"))
    second = await mastodon.send(message("d-9"))
    assert first.provider_id == second.provider_id
    assert len(fake_mastodon.statuses) == 1
    assert len(fake_mastodon.received("POST")) == 2


async def test_update_replies_to_previous_status(mastodon, fake_mastodon):
    first = await mastodon.send(message("d-1"))
    await mastodon.send(message("d-2", text="Fin de l'alerte : RD 957 rouverte. #route41", reply_to=first.provider_id))
    assert fake_mastodon.received("POST")[-1].json["in_reply_to_id"] == first.provider_id
    assert fake_mastodon.statuses[-1]["in_reply_to_id"] == first.provider_id


async def test_visibility_option(fake_mastodon, http_session):
    channel = MastodonChannel(
        "m", {"base_url": fake_mastodon.base_url, "access_token": "test-token", "visibility": "unlisted"}
    )
    await channel.start(http_session)
    await channel.send(message())
    assert fake_mastodon.received("POST", "/api/v1/statuses")[0].json["visibility"] == "unlisted"


async def test_the_servers_own_character_limit_is_read_at_start(http_session, caplog):
    """A server allowing 1000 characters: the channel fits texts to 1000, and a 700-character status is
    accepted by the server (the fake counts as Mastodon does)."""
    async with FakeMastodon(max_characters=1000) as fake:
        channel = MastodonChannel("m", {"base_url": fake.base_url, "access_token": "test-token"})
        assert channel.limits.max_length == 500  # Mastodon's default, until the server says
        await channel.start(http_session)
        assert channel.limits == Limits(counting="chars", max_length=1000)
        assert fake.received("GET", "/api/v2/instance")[0].header("Authorization") == ""  # public endpoint
        await channel.send(message(text="❄ " + "neige " * 116))
        assert fake.statuses[-1]["content"].startswith("<p>❄ neige")
    async with FakeMastodon(max_characters=300) as fake:
        channel = MastodonChannel("m", {"base_url": fake.base_url, "access_token": "test-token"})
        await channel.start(http_session)
        assert channel.limits.max_length == 300
        with pytest.raises(PermanentError, match="character limit of 300"):
            await channel.send(message(text="x" * 301))
        assert fake.take_refused() == []  # refused by the server's rule, not by the description


async def test_an_unreadable_instance_keeps_the_configured_limit(http_session, caplog):
    async with FakeMastodon() as fake:
        fake.fail_next(1, status=503)
        channel = MastodonChannel("m", {"base_url": fake.base_url, "access_token": "test-token", "max_characters": 480})
        await channel.start(http_session)
        assert channel.limits.max_length == 480
        assert "instance limits not read" in caplog.text or "without configuration" in caplog.text
    with pytest.raises(ConfigurationError, match="max_characters"):
        MastodonChannel("m", {"base_url": "https://m.example", "access_token": "t", "max_characters": "beaucoup"})


async def test_bad_token_is_auth_error(fake_mastodon, http_session):
    channel = MastodonChannel("m", {"base_url": fake_mastodon.base_url, "access_token": "wrong"})
    await channel.start(http_session)
    with pytest.raises(AuthError) as err:
        await channel.send(message())
    assert "access token is invalid" in str(err.value)
    assert "wrong" not in str(err.value)


async def test_429_with_retry_after(mastodon, fake_mastodon):
    fake_mastodon.rate_limit_next(1, retry_after="7")
    with pytest.raises(RateLimited) as err:
        await mastodon.send(message())
    assert err.value.retry_after == 7


async def test_429_with_only_iso_reset_header(mastodon, fake_mastodon):
    fake_mastodon.rate_limit_next(1, retry_after=None)
    with pytest.raises(RateLimited) as err:
        await mastodon.send(message())
    assert 25 <= err.value.retry_after <= 31  # fake resets 30 s ahead, as an ISO 8601 date


async def test_500_is_transient_then_next_attempt_succeeds(mastodon, fake_mastodon):
    fake_mastodon.fail_next(1)
    with pytest.raises(TransientError) as err:
        await mastodon.send(message())
    assert not isinstance(err.value, RateLimited)
    assert (await mastodon.send(message())).provider_id


async def test_hanging_server_times_out_as_transient(mastodon, fake_mastodon):
    fake_mastodon.hang_next(1)
    started = time.monotonic()
    with pytest.raises(TransientError) as err:
        await mastodon.send(message())
    assert err.value.code == "timeout"
    assert time.monotonic() - started < 2


async def test_validation_error_is_permanent(mastodon):
    with pytest.raises(PermanentError) as err:
        await mastodon.send(message(text="x" * 501))
    assert not err.value.retryable
    assert "500" in str(err.value)


async def test_notifications_and_tag_timeline(mastodon, fake_mastodon):
    fake_mastodon.add_mention("@cd41 la RD 924 est-elle dégagée ?")
    second = fake_mastodon.add_mention("@cd41 et les cars scolaires demain ?")
    found = await mastodon.notifications(since_id="1")
    assert [n["id"] for n in found] == [second["id"]]
    assert fake_mastodon.requests[-1].query == [("types[]", "mention"), ("limit", "40"), ("since_id", "1")]
    await mastodon.send(message())
    tagged = await mastodon.tag_timeline("#route41", limit=5)
    assert [s["id"] for s in tagged] == [fake_mastodon.statuses[-1]["id"]]


def test_configuration_errors_name_the_channel(monkeypatch):
    with pytest.raises(ConfigurationError, match="'masto41'.*base_url"):
        MastodonChannel("masto41", {"access_token": "t"})
    monkeypatch.delenv("MASTO_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="'masto41'.*MASTO_TOKEN"):
        MastodonChannel("masto41", {"base_url": "https://social.example", "access_token_env": "MASTO_TOKEN"})
    with pytest.raises(ConfigurationError, match="visibility"):
        MastodonChannel("masto41", {"base_url": "https://social.example", "access_token": "t", "visibility": "loud"})


def test_secret_not_in_repr(monkeypatch):
    monkeypatch.setenv("MASTO_TOKEN", "s3cr3t-token")
    channel = MastodonChannel("masto41", {"base_url": "https://social.example", "access_token_env": "MASTO_TOKEN"})
    assert "s3cr3t" not in repr(channel)


async def test_the_servers_own_link_weight_is_read_at_start_and_used_to_fit(http_session):
    """An instance that counts each link as 40 characters: the channel learns it at start, fitting counts
    links as the server does, and a status that fits by Mastodon's default (23) but not by 40 is refused by
    the server — which Crieur no longer sends."""
    from rules.fitting import fits, measure

    link = "https://www.loir-et-cher.fr/actualites/neige-rd957-" + "x" * 60
    text = "a" * 470 + " " + link  # 470 + 1 + 23 = 494 ≤ 500, but 470 + 1 + 40 = 511 > 500
    async with FakeMastodon(url_length=40) as fake:
        channel = MastodonChannel("m", {"base_url": fake.base_url, "access_token": "test-token"})
        assert channel.limits.url_weight == 23  # Mastodon's default, until the server says
        await channel.start(http_session)
        assert channel.limits == Limits(counting="chars", max_length=500, url_weight=40)
        assert measure(text, channel.limits).length == 511
        assert not fits(measure(text, channel.limits), channel.limits)
        with pytest.raises(PermanentError, match="character limit of 500"):
            await channel.send(message(text=text))
    configured = MastodonChannel(
        "m", {"base_url": "https://m.example", "access_token": "t", "characters_reserved_per_url": 30}
    )
    assert configured.limits.url_weight == 30
    with pytest.raises(ConfigurationError, match="characters_reserved_per_url"):
        MastodonChannel("m", {"base_url": "https://m.example", "access_token": "t", "characters_reserved_per_url": 0})
