"""Bluesky adapter against the fake PDS, and facets_for()."""

from __future__ import annotations

import asyncio
import time

import pytest

from channels.base import AuthError, ConfigurationError, Message, PermanentError, RateLimited, TransientError
from channels.bluesky import BlueskyChannel, facets_for

pytest_plugins = ["tests.fakes.fixtures"]

TEXT = "Neige : la RD 957 est fermée à Vendôme. #route41 Infos : https://www.loir-et-cher.fr/routes"


@pytest.fixture
async def bsky(fake_bluesky, http_session):
    channel = BlueskyChannel(
        "bsky41",
        {
            "service": fake_bluesky.base_url,
            "identifier": "cd41.bsky.social",
            "app_password": "test-token",
            "timeout": 0.5,
        },
    )
    await channel.start(http_session)
    return channel


def message(key="d-1", **kw) -> Message:
    return Message(key=key, alert_id=1, text=kw.pop("text", TEXT), **kw)


def test_facets_use_utf8_byte_offsets():
    text = "Déneigement ❄️ #route41, voir https://exemple.fr/a?b=1. Et #Vendôme!"
    facets = facets_for(text)
    raw = text.encode("utf-8")
    spans = [raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in facets]
    assert spans == ["#route41", "https://exemple.fr/a?b=1", "#Vendôme"]
    assert facets[0]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "route41"}]
    assert facets[1]["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://exemple.fr/a?b=1"}]
    assert facets[0]["index"]["byteStart"] != text.index("#route41")  # bytes, not characters


def test_facets_skip_numbers_midword_and_url_fragments():
    assert facets_for("n°#41 et #2024 et a#b") == []
    facets = facets_for("voir https://ex.fr/page#section")
    assert [f["features"][0]["$type"] for f in facets] == ["app.bsky.richtext.facet#link"]


async def test_session_once_then_posts_with_facets_and_language(bsky, fake_bluesky):
    first = await bsky.send(message("d-1"))
    await bsky.send(message("d-2", text="Deuxième message #route41"))
    assert fake_bluesky.sessions_created == 1
    create = fake_bluesky.received("POST", "createRecord")[0]
    assert create.header("Authorization").startswith("Bearer acc-")
    record = create.json["record"]
    assert create.json["repo"] == fake_bluesky.did and create.json["collection"] == "app.bsky.feed.post"
    assert record["text"] == TEXT and record["langs"] == ["fr"] and record["createdAt"].endswith("Z")
    assert record["facets"] == facets_for(TEXT)
    uri, cid = first.provider_id.split("|")
    assert uri.startswith(f"at://{fake_bluesky.did}/app.bsky.feed.post/") and cid.startswith("bafyrei")


async def test_given_facets_are_used_as_is(bsky, fake_bluesky):
    given = [
        {"index": {"byteStart": 0, "byteEnd": 5}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "x"}]}
    ]
    await bsky.send(message(extra={"facets": given}))
    assert fake_bluesky.records[0]["record"]["facets"] == given


async def test_link_card_for_the_alerts_page(bsky, fake_bluesky):
    card = {
        "uri": "https://alertes.loir-et-cher.fr/t/41",
        "title": "Neige sur la RD 957",
        "description": "La RD 957 est fermée. " * 20,
    }
    await bsky.send(message("d-1", extra={"card": card}))
    embed = fake_bluesky.records[0]["record"]["embed"]
    assert embed["$type"] == "app.bsky.embed.external"
    assert embed["external"]["uri"] == card["uri"] and embed["external"]["title"] == card["title"]
    assert len(embed["external"]["description"]) == 300 and embed["external"]["description"].endswith("…")
    await bsky.send(message("d-2", text="Autre", link="https://www.loir-et-cher.fr/routes", subject="Routes"))
    assert fake_bluesky.records[1]["record"]["embed"]["external"] == {
        "uri": "https://www.loir-et-cher.fr/routes",
        "title": "Routes",
        "description": "",
    }
    await bsky.send(message("d-3", text="Sans lien", link="javascript:alert(1)"))
    assert "embed" not in fake_bluesky.records[2]["record"]


async def test_reply_refs(bsky, fake_bluesky):
    first = await bsky.send(message("d-1"))
    await bsky.send(message("d-2", text="Fin d'alerte #route41", reply_to=first.provider_id))
    uri, cid = first.provider_id.split("|")
    assert fake_bluesky.records[1]["record"]["reply"] == {
        "root": {"uri": uri, "cid": cid},
        "parent": {"uri": uri, "cid": cid},
    }


async def test_expired_token_is_refreshed_within_the_attempt(bsky, fake_bluesky):
    await bsky.send(message("d-1"))
    fake_bluesky.expire_tokens()
    receipt = await bsky.send(message("d-2", text="autre"))
    assert receipt.provider_id
    paths = [r.path.rsplit(".", 1)[-1] for r in fake_bluesky.requests]
    assert paths == ["createSession", "createRecord", "createRecord", "refreshSession", "createRecord"]
    assert fake_bluesky.sessions_created == 1


async def test_wrong_password_is_auth_error(fake_bluesky, http_session):
    channel = BlueskyChannel(
        "b", {"service": fake_bluesky.base_url, "identifier": "cd41.bsky.social", "app_password": "nope"}
    )
    await channel.start(http_session)
    with pytest.raises(AuthError) as err:
        await channel.send(message())
    assert err.value.code == "AuthenticationRequired" and "nope" not in str(err.value)


async def test_rate_limit_reset_header(bsky, fake_bluesky):
    await bsky.send(message("d-1"))
    fake_bluesky.rate_limit_next(1, retry_after=None)
    with pytest.raises(RateLimited) as err:
        await bsky.send(message("d-2"))
    assert 55 <= err.value.retry_after <= 61


async def test_500_and_hang_are_transient(bsky, fake_bluesky):
    await bsky.send(message("d-1"))
    fake_bluesky.fail_next(1)
    with pytest.raises(TransientError):
        await bsky.send(message("d-2"))
    fake_bluesky.hang_next(1)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await bsky.send(message("d-3"))
    assert time.monotonic() - started < 2


async def test_invalid_record_is_permanent(bsky, fake_bluesky):
    with pytest.raises(PermanentError) as err:
        await bsky.send(message(text="x" * 3001))
    assert err.value.code == "InvalidRequest"
    assert "Invalid app.bsky.feed.post record" in str(err.value)
    [refused] = fake_bluesky.take_refused()  # the lexicon: at most 300 graphemes and 3000 bytes
    assert refused.problems == [
        "record/text: must not be longer than 3000 bytes",
        "record/text: must not be longer than 300 graphemes",
    ]
    with pytest.raises(PermanentError):
        await bsky.send(message(reply_to="at://no-cid"))


def test_configuration():
    with pytest.raises(ConfigurationError, match="'bsky41'.*identifier"):
        BlueskyChannel("bsky41", {"app_password": "x"})
    with pytest.raises(ConfigurationError, match="'bsky41'.*app_password"):
        BlueskyChannel("bsky41", {"identifier": "cd41.bsky.social"})


async def test_concurrent_first_sends_open_one_session(bsky, fake_bluesky):
    receipts = await asyncio.gather(*(bsky.send(message(f"d-{n}", text=f"Alerte {n}")) for n in range(5)))
    assert fake_bluesky.sessions_created == 1
    assert len({r.provider_id for r in receipts}) == 5
