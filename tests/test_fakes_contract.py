"""The fakes are held to the providers' own descriptions (../shared/api-specs): each refuses a request its
description refuses, in the provider's error format; each notices when its own answer leaves the
description; and a test whose adapter sends a refused request fails."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from aiohttp import web

from channels.base import Message, PermanentError
from channels.x import XChannel
from tests.fakes.base import ContractBroken
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.contract import OpenAPIContract
from tests.fakes.facebook import FakeFacebook
from tests.fakes.lexicon import LexiconContract
from tests.fakes.mastodon import FakeMastodon, status_html, status_length
from tests.fakes.twilio import FakeTwilio
from tests.fakes.x import FakeX
from tests.shared_files import shared_path

SID = "AC" + "0" * 32
BASIC = "Basic " + base64.b64encode(f"{SID}:test-token".encode()).decode()


async def post(url: str, **kwargs) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, **kwargs) as response:
            return response.status, await response.json(content_type=None)


async def test_twilio_refuses_what_its_description_refuses():
    async with FakeTwilio() as fake:
        auth = {"Authorization": BASIC}
        url = f"{fake.base_url}/2010-04-01/Accounts/{SID}/Messages.json"
        status, body = await post(url, data={"To": "0612", "Body": "x", "From": "+33700000000"}, headers=auth)
        assert (status, body["code"]) == (400, 21211) and body["more_info"].endswith("21211")
        status, body = await post(url, data={"Body": "x", "From": "+33700000000"}, headers=auth)
        assert (status, body["code"]) == (400, 21604)
        status, body = await post(
            url,
            data={"To": "+33612345678", "Body": "x", "ValidityPeriod": "soon", "From": "+33700000000"},
            headers=auth,
        )
        assert status == 400 and "ValidityPeriod" in body["message"]
        status, body = await post(
            f"{fake.base_url}/2010-04-01/Accounts/XX/Messages.json",
            data={"To": "+33612345678", "Body": "x", "From": "+33700000000"},
            headers=auth,
        )
        assert status == 400 and "AccountSid" in body["message"]
        status, _ = await post(f"{fake.base_url}/2010-04-01/Accounts/{SID}/Calls.xml", data={}, headers=auth)
        assert status == 404
        refused = fake.take_refused()
        assert len(refused) == 5 and not fake.messages


async def test_mastodon_refuses_what_its_description_refuses():
    async with FakeMastodon(max_characters=30) as fake:
        headers = {"Authorization": "Bearer test-token"}
        url = f"{fake.base_url}/api/v1/statuses"
        status, body = await post(url, json={"status": "x", "visibility": "everyone"}, headers=headers)
        assert status == 422 and "visibility" in body["error"]
        status, body = await post(url, json={"spoiler_text": "no status"}, headers=headers)
        assert status == 422
        assert len(fake.take_refused()) == 2
        # the server's own count: graphemes, any URL as 23, against the instance's limit
        status, body = await post(url, json={"status": "👨‍👩‍👧 https://cg41.fr/" + "a" * 80}, headers=headers)
        assert status == 200
        status, body = await post(url, json={"status": "x" * 31}, headers=headers)
        assert (status, body["error"]) == (422, "Validation failed: Text character limit of 30 exceeded")


def test_mastodon_counts_and_formats_as_the_server():
    assert status_length("Neige 👨‍👩‍👧 https://www.departement41.fr/une/tres/longue/adresse") == 8 + 23
    assert status_html("a < b\n#Route41 https://cg41.fr.\n\nfin", "https://m.example") == (
        '<p>a &lt; b<br /><a href="https://m.example/tags/route41" class="mention hashtag" rel="tag">#<span>'
        'Route41</span></a> <a href="https://cg41.fr" rel="nofollow noopener" target="_blank">https://cg41.fr'
        "</a>.</p><p>fin</p>"
    )


async def test_x_refuses_what_its_description_refuses():
    async with FakeX() as fake:
        url = f"{fake.base_url}/2/tweets"
        status, body = await post(url, json={"text": "x", "reply": {"in_reply_to_tweet_id": "abc"}})
        assert status == 400 and body["type"] == "https://api.twitter.com/2/problems/invalid-request"
        status, body = await post(url, json={"text": "x", "reply_settings": "everybody"})
        assert status == 400 and "reply_settings" in body["errors"][0]["message"]
        assert len(fake.take_refused()) == 2 and not fake.tweets


async def test_bluesky_refuses_what_the_lexicons_refuse():
    async with FakeBluesky() as fake:
        url = f"{fake.base_url}/xrpc/"
        status, body = await post(url + "com.atproto.server.createSession", json={"identifier": "cd41.bsky.social"})
        assert (status, body["error"]) == (400, "InvalidRequest") and "password" in body["message"]
        status, session = await post(
            url + "com.atproto.server.createSession", json={"identifier": "cd41.bsky.social", "password": "test-token"}
        )
        assert status == 200
        headers = {"Authorization": f"Bearer {session['accessJwt']}"}
        text = "Neige #route41"
        record = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-12-03T18:00:00Z",
            "langs": ["fr"],
            "facets": [
                {
                    "index": {"byteStart": 6, "byteEnd": 40},
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "r"}],
                }
            ],
        }
        call = {"repo": session["did"], "collection": "app.bsky.feed.post", "record": record}
        status, body = await post(url + "com.atproto.repo.createRecord", json=call, headers=headers)
        assert status == 400 and body["message"].startswith("Invalid app.bsky.feed.post record: ")
        assert "not inside the text" in body["message"]
        bad_tag = {
            "index": {"byteStart": 6, "byteEnd": 14},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "a" * 65}],
        }
        for change in (
            {"facets": [bad_tag]},
            {"createdAt": "03/12/2026 18:00"},
            {"langs": ["fr", "br", "oc", "eu"]},
            {"text": "é" * 1501},
            {"embed": {"$type": "app.bsky.embed.external", "external": {"uri": "x"}}},
        ):
            status, body = await post(
                url + "com.atproto.repo.createRecord", json=call | {"record": record | change}, headers=headers
            )
            assert status == 400, change
        status, body = await post(url + "app.bsky.feed.generator", json={}, headers=headers)
        assert (status, body["error"]) == (501, "MethodNotImplemented")
        assert len(fake.take_refused()) == 8 and not fake.records


async def test_facebook_refuses_what_the_graph_documentation_refuses():
    async with FakeFacebook() as fake:
        url = f"{fake.base_url}/v21.0/{fake.page_id}/feed"
        status, body = await post(url, data={"message": "x", "link": "cg41.fr", "access_token": "test-token"})
        assert status == 400 and body["error"]["code"] == 100 and "link" in body["error"]["message"]
        status, body = await post(url, data={"message": "x" * 63207, "access_token": "test-token"})
        assert status == 400 and body["error"]["code"] == 100
        status, body = await post(url, data={"message": "x", "privacy": "{}", "access_token": "test-token"})
        assert status == 400
        assert len(fake.take_refused()) == 3 and not fake.posts


async def test_a_fake_answer_outside_the_description_fails_the_test():
    fake = FakeTwilio()

    async def drifted(request: web.Request) -> web.Response:
        return web.json_response({"messages": "none", "page": "0"})

    fake.list_messages = drifted  # type: ignore[method-assign]
    with pytest.raises(ContractBroken, match="answer 200/messages: 'none' is not of type 'array'"):
        async with fake:
            async with aiohttp.ClientSession() as session:
                url = f"{fake.base_url}/2010-04-01/Accounts/{SID}/Messages.json"
                async with session.get(url, headers={"Authorization": BASIC}) as response:
                    assert response.status == 200


async def test_an_adapter_sending_a_refused_request_fails_the_test():
    """The X adapter given a reply id X's description refuses: the adapter gets X's 400, and leaving the
    fake fails the test even though the adapter's error was caught."""
    with pytest.raises(ContractBroken, match=r"reply/in_reply_to_tweet_id: 'not-a-post' does not match"):
        async with FakeX() as fake:
            async with aiohttp.ClientSession() as session:
                channel = XChannel(
                    "x",
                    {
                        "api_base": fake.base_url,
                        "consumer_key": "ck",
                        "consumer_secret": "cs",
                        "access_token": "at",
                        "access_token_secret": "ats",
                    },
                )
                await channel.start(session)
                with pytest.raises(PermanentError):
                    await channel.send(Message(key="k", alert_id=1, text="Neige", reply_to="not-a-post"))


def test_descriptions_are_read_in_place_and_missing_ones_fail():
    assert OpenAPIContract(shared_path("api-specs", "x", "openapi.json")).find("POST", "/2/tweets") is not None
    assert "app.bsky.feed.post" in LexiconContract().lexicons.documents
    with pytest.raises(FileNotFoundError, match="../shared/api-specs/nowhere.json is missing"):
        shared_path("api-specs", "nowhere.json")
