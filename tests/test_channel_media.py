"""Pictures on social posts, against the fake providers (which hold the providers' published contracts):
Mastodon uploads the card with POST /api/v2/media and a description, then posts with media_ids; Bluesky
uploads it with com.atproto.repo.uploadBlob and embeds it (app.bsky.embed.images) with its alt text and
aspect ratio. The service gives its social channels the alert's real PNG card."""

from __future__ import annotations

import io
import pathlib

import aiohttp
import pytest
from PIL import Image

from alerts.domain import Alert, Area, Road, Severity
from alerts.web.card import HEIGHT, WIDTH, install_card_attachments
from channels._media import Attachment
from channels.base import Message, PermanentError
from channels.bluesky import BlueskyChannel
from channels.mastodon import MastodonChannel
from tests.test_web_map import GEO
from tests.test_web_support import make_crieur

pytest_plugins = ["tests.fakes.fixtures"]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ALT = "Alerte « RD 957 fermée », sévérité sévère. Carte de Loir-et-Cher : Route fermée : RD 957 · Vendôme."


def message(kind: str = "Alert", key: str = "d-1") -> Message:
    return Message(key=key, alert_id=1, text="RD 957 fermée à Vendôme. #route41", kind=kind)


async def picture(alt: str = ALT):
    async def source(_message: Message) -> Attachment:
        return Attachment(PNG, "image/png", alt, WIDTH, HEIGHT)

    return source


@pytest.fixture
async def mastodon(fake_mastodon, http_session):
    channel = MastodonChannel(
        "masto41", {"base_url": fake_mastodon.base_url, "access_token": "test-token", "timeout": 1}
    )
    await channel.start(http_session)
    return channel


@pytest.fixture
async def bsky(fake_bluesky, http_session):
    channel = BlueskyChannel(
        "bsky41",
        {
            "service": fake_bluesky.base_url,
            "identifier": "cd41.bsky.social",
            "app_password": "test-token",
            "timeout": 1,
        },
    )
    await channel.start(http_session)
    return channel


async def test_mastodon_uploads_the_picture_with_its_description(mastodon, fake_mastodon):
    mastodon.attachments = await picture()
    await mastodon.send(message())
    [upload] = fake_mastodon.received("POST", "/api/v2/media")
    assert upload.header("Authorization") == "Bearer test-token"
    assert upload.header("Content-Type").startswith("multipart/form-data")
    [(media_id, media)] = fake_mastodon.media.items()
    assert media["_data"] == PNG and media["_type"] == "image/png" and media["description"] == ALT
    [post] = fake_mastodon.received("POST", "/api/v1/statuses")
    assert post.json["media_ids"] == [media_id]
    [status] = fake_mastodon.statuses
    assert status["media_attachments"][0]["description"] == ALT


async def test_mastodon_text_only_without_a_picture_or_for_an_end(mastodon, fake_mastodon):
    await mastodon.send(message())
    mastodon.attachments = await picture()
    await mastodon.send(message(kind="Cancel", key="d-2"))
    assert fake_mastodon.received("POST", "/api/v2/media") == []
    assert all("media_ids" not in r.json for r in fake_mastodon.received("POST", "/api/v1/statuses"))


async def test_a_picture_without_alt_text_is_never_posted(mastodon, fake_mastodon, bsky, fake_bluesky):
    for channel in (mastodon, bsky):
        channel.attachments = await picture(alt="  ")
        with pytest.raises(PermanentError, match="alt text"):
            await channel.send(message())
    assert fake_mastodon.statuses == [] and fake_bluesky.records == []


async def test_long_descriptions_are_cut_and_big_blobs_refused(mastodon, fake_mastodon, bsky, fake_bluesky):
    mastodon.attachments = await picture(alt="x" * 1600)
    await mastodon.send(message())
    assert len(next(iter(fake_mastodon.media.values()))["description"]) == 1500  # Mastodon's limit

    async def too_big(_message: Message) -> Attachment:
        return Attachment(b"\x89PNG" + b"0" * 2_000_001, "image/png", ALT)

    bsky.attachments = too_big
    with pytest.raises(PermanentError, match="2 MB"):
        await bsky.send(message())
    assert fake_bluesky.records == []


async def test_the_fakes_refuse_what_the_providers_refuse(fake_mastodon, fake_bluesky, http_session):
    bearer = {"Authorization": "Bearer test-token"}
    async with http_session.post(
        f"{fake_mastodon.base_url}/api/v2/media", headers=bearer, data={"description": "sans fichier"}
    ) as answer:
        assert answer.status in (400, 422)  # not multipart, no file
    form = aiohttp.FormData()
    form.add_field("file", PNG, filename="carte.png", content_type="image/png")
    form.add_field("description", "x" * 1501)
    async with http_session.post(f"{fake_mastodon.base_url}/api/v2/media", headers=bearer, data=form) as answer:
        assert answer.status == 422 and "1500" in (await answer.json())["error"]
    async with http_session.post(
        f"{fake_mastodon.base_url}/api/v1/statuses", headers=bearer, json={"status": "x", "media_ids": ["404"]}
    ) as answer:
        assert answer.status == 422
    async with http_session.post(
        f"{fake_bluesky.base_url}/xrpc/com.atproto.server.createSession",
        json={"identifier": "cd41.bsky.social", "password": "test-token"},
    ) as answer:
        session = await answer.json()
    token = {"Authorization": f"Bearer {session['accessJwt']}"}
    record = {
        "$type": "app.bsky.feed.post",
        "text": "x",
        "createdAt": "2026-01-20T06:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": [{"image": {"ref": {"$link": "bafkreinone"}}}]},
    }
    async with http_session.post(
        f"{fake_bluesky.base_url}/xrpc/com.atproto.repo.createRecord",
        headers=token,
        json={"repo": session["did"], "collection": "app.bsky.feed.post", "record": record},
    ) as answer:
        assert answer.status == 400 and "alt" in (await answer.json())["message"]
    # bad requests on purpose: what the descriptions refuse is taken, so that the fakes' own check passes
    fake_mastodon.take_refused()
    fake_bluesky.take_refused()


async def test_bluesky_embeds_the_blob_with_alt_text_and_aspect_ratio(bsky, fake_bluesky):
    bsky.attachments = await picture()
    await bsky.send(message())
    [upload] = fake_bluesky.received("POST", "uploadBlob")
    assert upload.header("Content-Type") == "image/png" and upload.body == PNG
    [record] = fake_bluesky.records
    embed = record["record"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    [image] = embed["images"]
    assert image["alt"] == ALT and image["aspectRatio"] == {"width": 1200, "height": 630}
    assert fake_bluesky.blobs[image["image"]["ref"]["$link"]] == (PNG, "image/png")
    assert image["image"]["mimeType"] == "image/png" and image["image"]["size"] == len(PNG)


async def test_bluesky_upload_renews_an_expired_session(bsky, fake_bluesky):
    bsky.attachments = await picture()
    await bsky.send(message())
    fake_bluesky.expire_tokens()
    await bsky.send(message(key="d-2"))
    assert len(fake_bluesky.records) == 2 and fake_bluesky.records[1]["record"]["embed"]["images"][0]["alt"] == ALT


@pytest.fixture
async def x(fake_x, http_session):
    from channels.x import XChannel

    channel = XChannel(
        "x41",
        {
            "api_base": fake_x.base_url,
            "consumer_key": "ck",
            "consumer_secret": "cs",
            "access_token": "at",
            "access_token_secret": "ats",
            "timeout": 1,
        },
    )
    await channel.start(http_session)
    return channel


async def test_x_uploads_the_picture_sets_its_alt_text_and_posts_it(x, fake_x):
    x.attachments = await picture()
    await x.send(message())
    [upload] = fake_x.received("POST", "/2/media/upload")
    assert upload.header("Authorization").startswith("OAuth ")  # signed, and accepted by the fake's check
    [(media_id, media)] = fake_x.media.items()
    assert media == {"data": PNG, "type": "image/png", "category": "tweet_image", "alt_text": ALT}
    [post] = fake_x.received("POST", "/2/tweets")
    assert post.json["media"] == {"media_ids": [media_id]}
    assert fake_x.tweets[0]["media_ids"] == [media_id]
    assert all(r.answered in (200, 201) for r in fake_x.requests)


async def test_fake_x_refuses_unknown_media_and_missing_fields(fake_x, http_session):
    from channels.x import oauth1_authorization

    def signed(url: str) -> dict[str, str]:
        return {
            "Authorization": oauth1_authorization(
                "POST", url, consumer_key="ck", consumer_secret="cs", token="at", token_secret="ats"
            )
        }

    tweets = f"{fake_x.base_url}/2/tweets"
    async with http_session.post(
        tweets, headers=signed(tweets), json={"text": "x", "media": {"media_ids": ["1"]}}
    ) as answer:
        assert answer.status == 400
    upload = f"{fake_x.base_url}/2/media/upload"
    form = aiohttp.FormData()
    form.add_field("media", PNG, filename="carte.png", content_type="image/png")
    async with http_session.post(upload, headers=signed(upload), data=form) as answer:
        assert answer.status == 400  # media_category is required
    fake_x.take_refused()


@pytest.fixture
async def facebook(fake_facebook, http_session):
    from channels.facebook import FacebookChannel

    channel = FacebookChannel(
        "fb41",
        {
            "api_base": fake_facebook.base_url,
            "page_id": fake_facebook.page_id,
            "page_token": "test-token",
            "timeout": 1,
        },
    )
    await channel.start(http_session)
    return channel


async def test_facebook_posts_a_page_photo_with_its_alt_text(facebook, fake_facebook):
    facebook.attachments = await picture()
    link = "https://www.route41.example/alertes/1"
    receipt = await facebook.send(Message(key="d-1", alert_id=1, text="RD 957 fermée. #route41", link=link))
    assert fake_facebook.received("POST", "/feed") == []
    [post] = fake_facebook.posts
    assert post["photo"] == PNG and post["alt_text_custom"] == ALT
    assert post["message"] == f"RD 957 fermée. #route41\n{link}"  # no link preview on a photo: the link is in the text
    assert receipt.provider_id == post["id"]
    # an end goes to the feed, as text
    await facebook.send(Message(key="d-2", alert_id=1, text="Fin : RD 957 rouverte. #route41", kind="Cancel"))
    assert len(fake_facebook.received("POST", "/feed")) == 1


async def test_the_service_attaches_the_alerts_real_card_on_every_network(
    tmp_path: pathlib.Path, mastodon, fake_mastodon, bsky, fake_bluesky, x, fake_x, facebook, fake_facebook
) -> None:
    crieur = await make_crieur(tmp_path, geo=GEO)
    try:
        alert = await crieur.store.add_alert(
            Alert(
                "RD 957 fermée à Vendôme",
                "Congères.",
                ("41",),
                ("#route41",),
                ("mastodon", "bluesky", "x", "facebook"),
                severity=Severity.SEVERE,
                roads=(Road("D", "957"),),
                areas=(Area("commune", "41269"),),
            )
        )
        crieur.channels = {"mastodon": mastodon, "bluesky": bsky, "x": x, "facebook": facebook}
        install_card_attachments(crieur)
        for channel in crieur.channels.values():
            await channel.send(Message(key=f"{channel.name}-1", alert_id=alert.id, text="RD 957 fermée. #route41"))
        media = next(iter(fake_mastodon.media.values()))
        [blob] = fake_bluesky.blobs.values()
        [x_media] = fake_x.media.values()
        [photo] = fake_facebook.posts
        assert media["_data"] == blob[0] == x_media["data"] == photo["photo"]  # one card on every network
        image = Image.open(io.BytesIO(media["_data"]))
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
        expected = (
            "Alerte « RD 957 fermée à Vendôme », sévérité sévère. "
            "Carte de Loir-et-Cher : Route fermée : RD 957 · Vendôme."
        )
        assert media["description"] == x_media["alt_text"] == photo["alt_text_custom"] == expected
        assert fake_bluesky.records[0]["record"]["embed"]["images"][0]["alt"] == expected
    finally:
        await crieur.store.close()
