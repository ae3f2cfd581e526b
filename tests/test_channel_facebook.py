"""Facebook Page adapter against the fake Graph API."""

from __future__ import annotations

import time

import pytest

from channels.base import AuthError, ConfigurationError, Message, PermanentError, RateLimited, TransientError
from channels.facebook import FacebookChannel

pytest_plugins = ["tests.fakes.fixtures"]

PAGE = "100200300400500"
TEXT = "Circulation difficile sur tout le réseau départemental. Évitez les déplacements. #route41"


@pytest.fixture
async def fb(fake_facebook, http_session):
    channel = FacebookChannel(
        "fb41", {"api_base": fake_facebook.base_url, "page_id": PAGE, "page_token": "test-token", "timeout": 0.5}
    )
    await channel.start(http_session)
    return channel


def message(key="d-1", **kw) -> Message:
    return Message(key=key, alert_id=5, text=kw.pop("text", TEXT), **kw)


async def test_posts_to_page_feed(fb, fake_facebook):
    receipt = await fb.send(message(link="https://www.loir-et-cher.fr/routes"))
    [req] = fake_facebook.requests
    assert req.method == "POST" and req.path == f"/v21.0/{PAGE}/feed"
    assert req.form == {"message": TEXT, "access_token": "test-token", "link": "https://www.loir-et-cher.fr/routes"}
    assert receipt.provider_id == fake_facebook.posts[0]["id"] and receipt.provider_id.startswith(PAGE + "_")


async def test_expired_token_is_auth_error(fake_facebook, http_session):
    channel = FacebookChannel("fb41", {"api_base": fake_facebook.base_url, "page_id": PAGE, "page_token": "old-token"})
    await channel.start(http_session)
    with pytest.raises(AuthError) as err:
        await channel.send(message())
    assert err.value.code == "190/463" and "old-token" not in str(err.value)


@pytest.mark.parametrize("code", [4, 17, 32, 613])
async def test_rate_limit_codes(fb, fake_facebook, code):
    fake_facebook.fail_with(code, "(#%d) Application request limit reached" % code)
    with pytest.raises(RateLimited) as err:
        await fb.send(message())
    assert err.value.code == str(code)


async def test_429_switch_gives_graph_rate_limit_with_retry_after(fb, fake_facebook):
    fake_facebook.rate_limit_next(1, retry_after="30")
    with pytest.raises(RateLimited) as err:
        await fb.send(message())
    assert err.value.retry_after == 30


@pytest.mark.parametrize("code", [1, 2])
async def test_transient_codes(fb, fake_facebook, code):
    fake_facebook.fail_with(code, "An unknown error occurred")
    with pytest.raises(TransientError) as err:
        await fb.send(message())
    assert not isinstance(err.value, RateLimited)


async def test_500_and_hang(fb, fake_facebook):
    fake_facebook.fail_next(1)
    with pytest.raises(TransientError):
        await fb.send(message())
    fake_facebook.hang_next(1)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await fb.send(message())
    assert time.monotonic() - started < 2


async def test_duplicate_and_bad_parameter_are_permanent(fb, fake_facebook):
    await fb.send(message())
    with pytest.raises(PermanentError) as err:
        await fb.send(message("d-2"))
    assert type(err.value) is PermanentError and err.value.code == "506/1455006"
    fake_facebook.fail_with(100, "(#100) Invalid parameter")
    with pytest.raises(PermanentError):
        await fb.send(message("d-3", text="autre"))


async def test_permission_error_is_auth(fb, fake_facebook):
    fake_facebook.fail_with(200, "(#200) The user hasn't authorized the application to perform this action")
    with pytest.raises(AuthError):
        await fb.send(message())


def test_configuration():
    with pytest.raises(ConfigurationError, match="'fb41'.*page_id"):
        FacebookChannel("fb41", {"page_token": "t"})
    with pytest.raises(ConfigurationError, match="'fb41'.*page_token"):
        FacebookChannel("fb41", {"page_id": PAGE})
    with pytest.raises(ConfigurationError, match="version"):
        FacebookChannel("fb41", {"page_id": PAGE, "page_token": "t", "version": "21"})


async def test_replies_under_a_comment_and_in_messenger(fb, fake_facebook):
    event = fake_facebook.comment_event("La D957 est-elle ouverte ?", user_id="100001")
    comment_id = event["entry"][0]["changes"][0]["value"]["comment_id"]
    receipt = await fb.send(message(text="Oui, rouverte. — J.D.", reply_to=comment_id, extra={"reply": "comment"}))
    assert [c["message"] for c in fake_facebook.replies_to(comment_id)] == ["Oui, rouverte. — J.D."]
    assert receipt.provider_id in fake_facebook.comments
    fake_facebook.message_event("Et la D956 ?", psid="2000000000000001")
    await fb.send(message(key="d-2", text="Ouverte aussi.", recipient="2000000000000001", extra={"reply": "messenger"}))
    assert fake_facebook.messages == [{"recipient": "2000000000000001", "text": "Ouverte aussi."}]
    with pytest.raises(PermanentError) as failure:  # a comment that does not exist
        await fb.send(message(key="d-3", text="x", reply_to="1_2", extra={"reply": "comment"}))
    assert not isinstance(failure.value, AuthError)


async def test_messenger_outside_the_24_hour_window_is_permanent_for_that_person_not_an_auth_error(fb, fake_facebook):
    fake_facebook.message_event("La D957 ?", psid="2000000000000002", at=time.time() - 25 * 3600)
    with pytest.raises(PermanentError) as failure:
        await fb.send(message(text="Rouverte.", recipient="2000000000000002", extra={"reply": "messenger"}))
    assert not isinstance(failure.value, AuthError) and failure.value.code == "10/2018278"
