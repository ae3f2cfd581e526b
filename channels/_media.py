"""Pictures attached to social posts (the alert's card), one small function per provider.

A channel gets its pictures from `channel.attachments`, an async callable the service installs
(message -> Attachment or None); without it, posts go out as text, as before. Every picture carries an alt
text: an attachment without one is refused here rather than posted undescribed.

Uploading happens inside the send attempt, before the post: a retried send may upload the picture again,
which leaves an unreferenced upload the provider discards (Mastodon and Bluesky both do), never a second post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import aiohttp

from ._http import request
from .base import Message, PermanentError, Receipt, TransientError

if TYPE_CHECKING:
    from .base import Channel

MASTODON_DESCRIPTION_LIMIT = 1500  # Mastodon's MediaAttachment description limit
BLUESKY_BLOB_LIMIT = 2_000_000  # app.bsky.embed.images: "May be up to 2 MB"


@dataclass(frozen=True, slots=True)
class Attachment:
    data: bytes
    media_type: str
    alt: str
    width: int = 0
    height: int = 0
    filename: str = "carte.png"


AttachmentSource = Callable[[Message], Awaitable["Attachment | None"]]


async def attachment_for(channel: Channel, message: Message) -> Attachment | None:
    """The picture for this message, if the service gave the channel a source and it has one."""
    source: AttachmentSource | None = getattr(channel, "attachments", None)
    if source is None or message.kind == "Cancel":
        return None
    attachment = await source(message)
    if attachment is not None and not attachment.alt.strip():
        raise PermanentError(f"{channel.name}: a picture without alt text is not posted", code="alt-text")
    return attachment


async def mastodon_media_id(channel: Any, message: Message) -> str | None:
    """Upload the message's picture with POST /api/v2/media (multipart `file` + `description`) and return
    the media id to put in the status' media_ids, or None without a picture."""
    attachment = await attachment_for(channel, message)
    if attachment is None:
        return None
    form = aiohttp.FormData()
    form.add_field("file", attachment.data, filename=attachment.filename, content_type=attachment.media_type)
    form.add_field("description", attachment.alt[:MASTODON_DESCRIPTION_LIMIT])
    answer = await request(
        channel,
        "POST",
        f"{channel.base_url}/api/v2/media",
        data=form,
        headers=channel._headers(),
        timeout=channel.timeout,
    )
    if answer.status not in (200, 202):  # 202: accepted, still being processed (usable in a status)
        raise channel._error(answer)
    body = answer.json()
    if not isinstance(body, dict) or not body.get("id"):
        raise TransientError(f"{channel.name}: media uploaded but the answer has no id", code="bad-answer")
    return str(body["id"])


async def bluesky_images_embed(channel: Any, token: str, message: Message) -> dict[str, Any] | None:
    """Upload the message's picture with com.atproto.repo.uploadBlob and return the app.bsky.embed.images
    embed (blob, alt text, aspect ratio) for the post record, or None without a picture."""
    attachment = await attachment_for(channel, message)
    if attachment is None:
        return None
    if len(attachment.data) > BLUESKY_BLOB_LIMIT:
        raise PermanentError(
            f"{channel.name}: picture of {len(attachment.data)} bytes, over Bluesky's 2 MB", code="BlobTooLarge"
        )

    async def upload(bearer: str) -> Any:
        return await request(
            channel,
            "POST",
            f"{channel.service}/xrpc/com.atproto.repo.uploadBlob",
            data=attachment.data,
            headers={
                "Authorization": f"Bearer {bearer}",
                "Content-Type": attachment.media_type,
                "Accept": "application/json",
            },
            timeout=channel.timeout,
        )

    answer = await upload(token)
    if channel._expired(answer):  # the same session renewal as the post itself
        await channel._renew(token)
        answer = await upload(channel._access)
    if answer.status != 200:
        raise channel._error(answer)
    body = answer.json()
    blob = body.get("blob") if isinstance(body, dict) else None
    if not isinstance(blob, dict) or not blob.get("ref"):
        raise TransientError(f"{channel.name}: blob uploaded but the answer has no blob ref", code="bad-answer")
    image: dict[str, Any] = {"image": blob, "alt": attachment.alt}
    if attachment.width and attachment.height:
        image["aspectRatio"] = {"width": attachment.width, "height": attachment.height}
    return {"$type": "app.bsky.embed.images", "images": [image]}


X_ALT_TEXT_LIMIT = 1000  # /2/media/metadata alt_text.text maxLength


async def x_media_id(channel: Any, message: Message) -> str | None:
    """Upload the message's picture to X (POST /2/media/upload, multipart `media` + media_category
    tweet_image), set its alt text (POST /2/media/metadata), and return the media id for the post's
    media.media_ids; None without a picture."""
    attachment = await attachment_for(channel, message)
    if attachment is None:
        return None
    upload_url = f"{channel.api_base}/2/media/upload"
    form = aiohttp.FormData()
    form.add_field("media", attachment.data, filename=attachment.filename, content_type=attachment.media_type)
    form.add_field("media_category", "tweet_image")
    # a multipart body is not part of the OAuth 1.0a signature: only the method, URL and oauth_* are
    answer = await request(
        channel,
        "POST",
        upload_url,
        data=form,
        headers={"Authorization": channel._authorization("POST", upload_url)},
        timeout=channel.timeout,
    )
    if answer.status not in (200, 201):
        raise channel._error(answer)
    body = answer.json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data.get("id"):
        raise TransientError(f"{channel.name}: media uploaded but the answer has no data.id", code="bad-answer")
    media_id = str(data["id"])
    metadata_url = f"{channel.api_base}/2/media/metadata"
    answer = await request(
        channel,
        "POST",
        metadata_url,
        json={"id": media_id, "metadata": {"alt_text": {"text": attachment.alt[:X_ALT_TEXT_LIMIT]}}},
        headers={"Authorization": channel._authorization("POST", metadata_url), "Content-Type": "application/json"},
        timeout=channel.timeout,
    )
    if answer.status not in (200, 201):
        raise channel._error(answer)
    return media_id


async def facebook_photo_post(channel: Any, message: Message) -> Receipt | None:
    """Post the message as a Page photo (POST /{page_id}/photos: `source` file, `caption`, `alt_text_custom`)
    and return its receipt (the Page post's id), or None without a picture: the caller posts to the feed."""
    attachment = await attachment_for(channel, message)
    if attachment is None:
        return None
    caption = message.text
    if message.link and message.link not in caption:  # a photo has no link preview: the link goes in the text
        caption = f"{caption}\n{message.link}"
    form = aiohttp.FormData()
    form.add_field("source", attachment.data, filename=attachment.filename, content_type=attachment.media_type)
    form.add_field("caption", caption)
    form.add_field("alt_text_custom", attachment.alt)
    form.add_field("published", "true")
    form.add_field("access_token", channel._token)
    url = f"{channel.api_base}/{channel.version}/{channel.page_id}/photos"
    answer = await request(channel, "POST", url, data=form, timeout=channel.timeout)
    if answer.status != 200:
        raise channel._error(answer)
    body = answer.json()
    post_id = str(body.get("post_id") or body.get("id") or "") if isinstance(body, dict) else ""
    if not post_id:
        raise TransientError(f"{channel.name}: photo posted but the answer has no post_id", code="bad-answer")
    return Receipt(provider_id=post_id, detail=f"https://www.facebook.com/{post_id}")


__all__ = [
    "Attachment",
    "AttachmentSource",
    "attachment_for",
    "bluesky_images_embed",
    "mastodon_media_id",
    "facebook_photo_post",
    "x_media_id",
]
