"""X adapter: OAuth 1.0a signing (RFC 5849 / X documentation vector) and the fake X API v2."""

from __future__ import annotations

import time

import pytest

from channels.base import AuthError, ConfigurationError, Message, PermanentError, RateLimited, TransientError
from channels.x import XChannel, oauth1_authorization
from rules.fitting import x_length
from tests.fakes.x import oauth_signature, parse_oauth_header

pytest_plugins = ["tests.fakes.fixtures"]

KEYS = {"consumer_key": "ck", "consumer_secret": "cs", "access_token": "at", "access_token_secret": "ats"}
TEXT = "Poids lourds interdits sur l'A10 entre Blois et Orléans (arrêté préfectoral). #route41"


def test_signature_matches_x_documentation_vector():
    # "Creating a signature", X developer documentation (OAuth 1.0a HMAC-SHA1 example).
    header = oauth1_authorization(
        "POST",
        "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
        consumer_key="xvz1evFS4wEEPTGEFPHBog",
        consumer_secret="kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        token_secret="LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        form={"status": "Hello Ladies + Gentlemen, a signed OAuth request!"},
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp="1318622958",
    )
    assert parse_oauth_header(header)["oauth_signature"] == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="


def test_fake_verifier_agrees_with_the_vector():
    params = [
        ("include_entities", "true"),
        ("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
        ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1318622958"),
        ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
        ("oauth_version", "1.0"),
    ]
    assert (
        oauth_signature(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            params,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        )
        == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
    )


@pytest.fixture
async def x(fake_x, http_session):
    channel = XChannel("x41", {"api_base": fake_x.base_url, "timeout": 0.5} | KEYS)
    await channel.start(http_session)
    return channel


def message(key="d-1", **kw) -> Message:
    return Message(key=key, alert_id=2, text=kw.pop("text", TEXT), **kw)


async def test_post_tweet_signed(x, fake_x):
    receipt = await x.send(message())
    [req] = fake_x.requests
    assert req.answered == 201  # the fake checked the signature
    assert req.path == "/2/tweets" and req.json == {"text": TEXT}
    assert req.header("Content-Type") == "application/json"
    assert receipt.provider_id == fake_x.tweets[0]["id"]


async def test_reply(x, fake_x):
    first = await x.send(message())
    await x.send(message("d-2", text="Levée de l'interdiction. #route41", reply_to=first.provider_id))
    assert fake_x.requests[-1].json["reply"] == {"in_reply_to_tweet_id": first.provider_id}


async def test_wrong_secret_is_auth_error(fake_x, http_session):
    channel = XChannel("x41", {"api_base": fake_x.base_url} | KEYS | {"access_token_secret": "leaked?"})
    await channel.start(http_session)
    with pytest.raises(AuthError) as err:
        await channel.send(message())
    assert "leaked" not in str(err.value)


async def test_duplicate_is_permanent_not_auth(x):
    await x.send(message())
    with pytest.raises(PermanentError) as err:
        await x.send(message("d-2"))
    assert type(err.value) is PermanentError and err.value.code == "duplicate"


async def test_too_long_and_unknown_parent_fail_the_post_not_the_credentials(x, fake_x):
    """X answers 403 to a post over 280 (its weighted count: a 64-character host label is no link) and to
    a reply to a post it does not know: those fail this delivery, they do not stop the channel."""
    host = "a" * 64 + ".fr"
    with pytest.raises(PermanentError) as err:
        await x.send(message(text=f"Infos : https://{host}/" + "x" * 210))
    assert type(err.value) is PermanentError and err.value.code == "too-long"
    with pytest.raises(PermanentError) as err:
        await x.send(message("d-2", reply_to="1850000000000009999"))
    assert type(err.value) is PermanentError and err.value.code == "reply-gone"
    assert fake_x.take_refused() == []  # both requests were valid: X refused their content
    assert x_length(f"Infos : https://{host}/" + "x" * 210) > 280  # what Crieur fits texts with agrees


async def test_rate_limit_reset(x, fake_x):
    fake_x.rate_limit_next(1, retry_after=None)
    with pytest.raises(RateLimited) as err:
        await x.send(message())
    assert 890 <= err.value.retry_after <= 901
    fake_x.rate_limit_next(1, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    with pytest.raises(RateLimited) as err:
        await x.send(message())
    assert err.value.retry_after == 0  # a date in the past: retry now


async def test_500_and_hang(x, fake_x):
    fake_x.fail_next(1, status=503)
    with pytest.raises(TransientError):
        await x.send(message())
    fake_x.hang_next(1)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await x.send(message())
    assert time.monotonic() - started < 2


def test_missing_key():
    with pytest.raises(ConfigurationError, match="'x41'.*consumer_secret"):
        XChannel("x41", {"consumer_key": "a", "access_token": "b", "access_token_secret": "c"})
