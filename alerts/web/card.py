"""A picture per alert: a 1200 × 630 PNG card with the map and the headline, for Open Graph and social posts.

It is drawn with Pillow from the same scene as the SVG map (alerts.web.map), at twice the size and then
reduced (a box filter), which smooths the edges Pillow's polygon drawing leaves. `card_alt` says in words what the card
shows: every post that carries it also carries this description.
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Sequence

from PIL import Image, ImageChops, ImageDraw, ImageFont

from alerts.domain import Alert, Severity
from alerts.geo import Atlas

from . import site
from .map import COLOURS, DARK, INK, PAPER, SEVERITY_COLOUR, Mark, Scene, atlas_for, build_scene, marks_for
from .site import SEVERITY_FR

WIDTH, HEIGHT = 1200, 630
SUPERSAMPLE = 2
MAP_BOX = (600, 590)  # the map's room on the left, in card pixels
BRAND = "#0b3d91"
MEDIA_TYPE = "image/png"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans (Debian's fonts-dejavu-core) when installed, else Pillow's own font: both have the
    accented letters French needs."""
    for name in (("DejaVuSans-Bold.ttf",) if bold else ()) + ("DejaVuSans.ttf",):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _hex(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16), alpha


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Words into lines no wider than `width`; the last line ends with … when text is left over."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and font.getlength(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words and lines:
        last = lines[-1]
        while last and font.getlength(last + " …") > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + " …"
    return lines


def draw_scene(scene: Scene, scale: float) -> Image.Image:
    """The scene as an RGBA image, `scale` pixels per scene pixel."""
    size = (int(scene.width * scale), int(scene.height * scale))
    image = Image.new("RGBA", size, _hex(PAPER))
    draw = ImageDraw.Draw(image)
    label_font = _font(int(13 * scale))

    def scaled(ring: Any) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in (ring * scale).tolist()]

    for shape in scene.shapes:
        if shape.kind == "area":
            rings = [scaled(r) for r in shape.rings if len(r) >= 3]
            if not rings:
                continue
            alpha = int(255 * shape.fill_opacity)
            if shape.fill != "none" and len(rings) == 1 and alpha == 255:
                draw.polygon(rings[0], fill=_hex(shape.fill))
            elif shape.fill != "none":
                _fill_evenodd(image, rings, shape.fill, alpha)
            if shape.stroke != "none":
                for ring in rings:
                    draw.line(
                        ring + ring[:1],
                        fill=_hex(shape.stroke),
                        width=max(1, round(shape.width * scale)),
                        joint="curve",
                    )
        elif shape.kind == "line":
            for line_ring in shape.rings:
                points = scaled(line_ring)
                draw.line(
                    points, fill=_hex(shape.casing or PAPER), width=round((shape.width + 4) * scale), joint="curve"
                )
                draw.line(points, fill=_hex(shape.stroke), width=round(shape.width * scale), joint="curve")
        elif shape.kind == "point":
            x, y = (float(v) * scale for v in shape.rings[0][0])
            r = 11 * scale
            draw.ellipse(
                (x - r, y - r, x + r, y + r), fill=_hex(shape.fill), outline=_hex(INK), width=max(1, round(1.5 * scale))
            )
            if shape.closed_sign:
                draw.rectangle((x - 6 * scale, y - 2 * scale, x + 6 * scale, y + 2 * scale), fill=_hex(PAPER))
        elif shape.kind == "label":
            x, y = (float(v) * scale for v in shape.rings[0][0])
            ink = shape.fill if shape.fill != "none" else INK
            draw.text(
                (x, y),
                shape.text,
                font=label_font,
                fill=_hex(ink),
                anchor="ms",
                stroke_width=max(1, round(1.5 * scale)),
                stroke_fill=_hex(PAPER),
            )
    return image


def _fill_evenodd(image: Image.Image, rings: list[list[tuple[float, float]]], colour: str, alpha: int) -> None:
    """Fill with the even-odd rule, as the SVG does (holes and overlapping parts cancel out), through a mask
    only as large as the rings' bounding box."""
    xs = [x for ring in rings for x, _ in ring]
    ys = [y for ring in rings for _, y in ring]
    left, top = max(0, int(min(xs))), max(0, int(min(ys)))
    right, bottom = min(image.width, int(max(xs)) + 2), min(image.height, int(max(ys)) + 2)
    if right <= left or bottom <= top:
        return
    box = (right - left, bottom - top)
    mask = Image.new("1", box, 0)
    for ring in rings:
        one = Image.new("1", box, 0)
        ImageDraw.Draw(one).polygon([(x - left, y - top) for x, y in ring], fill=1)
        mask = ImageChops.logical_xor(mask, one)
    layer = Image.new("RGBA", box, _hex(colour, alpha))
    if alpha == 255:
        image.paste(layer, (left, top), mask)
    else:
        image.alpha_composite(Image.composite(layer, Image.new("RGBA", box, (0, 0, 0, 0)), mask), (left, top))


def render_card(alert: Alert, scene: Scene | None, site_name: str, territory_name: str = "") -> bytes:
    """The PNG card: the map on the left (when there is one), the headline and its facts on the right."""
    s = SUPERSAMPLE
    card = Image.new("RGBA", (WIDTH * s, HEIGHT * s), _hex(PAPER))
    draw = ImageDraw.Draw(card)
    text_left = 40
    if scene is not None:
        scale = min(MAP_BOX[0] / scene.width, MAP_BOX[1] / scene.height) * s
        picture = draw_scene(scene, scale)
        top = (HEIGHT * s - picture.height) // 2
        card.paste(picture, (20 * s, top))
        draw.rectangle(
            (20 * s, top, 20 * s + picture.width - 1, top + picture.height - 1), outline=_hex("#c8ccd2"), width=s
        )
        text_left = 20 + picture.width // s + 30
    right = WIDTH - 40
    colour = COLOURS.get(_severity_colour(alert), COLOURS["gris"])
    # severity band and badge
    draw.rectangle((0, 0, WIDTH * s, 14 * s), fill=_hex(BRAND))
    badge = f"Sévérité : {SEVERITY_FR.get(int(alert.severity), 'Information')}"
    badge_font = _font(24 * s, bold=True)
    y = 50 * s
    width = badge_font.getlength(badge)
    draw.rounded_rectangle(
        (text_left * s, y, text_left * s + width + 32 * s, y + 44 * s),
        radius=22 * s,
        fill=_hex(DARK.get(_severity_colour(alert), INK)),
    )
    draw.text((text_left * s + 16 * s, y + 22 * s), badge, font=badge_font, fill=_hex(PAPER), anchor="lm")
    y += 70 * s
    title_font = _font(40 * s, bold=True)
    for line in _wrap(alert.title or alert.text, title_font, (right - text_left) * s, 5):
        draw.text((text_left * s, y), line, font=title_font, fill=_hex(INK), anchor="la")
        y += 50 * s
    y += 16 * s
    facts_font = _font(26 * s)
    facts = []
    if alert.roads:
        facts.append("Routes : " + ", ".join(r.label for r in alert.roads))
    if territory_name:
        facts.append(territory_name + (" " + " ".join(alert.hashtags) if alert.hashtags else ""))
    for fact in facts:
        for line in _wrap(fact, facts_font, (right - text_left) * s, 2):
            draw.text((text_left * s, y), line, font=facts_font, fill=_hex("#4a4a4a"), anchor="la")
            y += 34 * s
    draw.rectangle((text_left * s, (HEIGHT - 70) * s, text_left * s + 8 * s, (HEIGHT - 36) * s), fill=_hex(colour))
    draw.text(
        ((text_left + 20) * s, (HEIGHT - 53) * s),
        site_name,
        font=_font(24 * s, bold=True),
        fill=_hex(BRAND),
        anchor="lm",
    )
    out = io.BytesIO()
    card.convert("RGB").reduce(SUPERSAMPLE).save(out, "PNG", compress_level=3)
    return out.getvalue()


def _severity_colour(alert: Alert) -> str:
    return SEVERITY_COLOUR.get(Severity(int(alert.severity)), "gris")


def card_scene(
    atlas: Atlas, territory_code: str, territory_name: str, marks: Sequence[Mark], labels: Sequence[str] = ()
) -> Scene:
    """The map scene sized for the card's map box (the projection's height follows from its width)."""
    scene = build_scene(atlas, territory_code, territory_name, marks, labels=labels, width=MAP_BOX[0])
    if scene.height > MAP_BOX[1]:
        width = max(200, int(MAP_BOX[0] * MAP_BOX[1] / scene.height))
        scene = build_scene(atlas, territory_code, territory_name, marks, labels=labels, width=width)
    return scene


def card_alt(alert: Alert, marks: Sequence[Mark], territory_name: str = "") -> str:
    """What the card shows, in words (alt text for the page's og:image and for every social post)."""
    title = alert.title or alert.text[:120]
    drawn = [m for m in marks if m.drawn]
    where = "; ".join(f"{m.label} : {m.where}" if m.where else m.label for m in drawn)
    parts = [f"Alerte « {title} », sévérité {SEVERITY_FR.get(int(alert.severity), 'Information').lower()}."]
    if drawn:
        parts.append(f"Carte{(' de ' + territory_name) if territory_name else ''} : {where}.")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Card:
    png: bytes
    alt: str
    media_type: str = MEDIA_TYPE


async def alert_card(crieur: Any, alert: Alert) -> Card:
    """The card of a stored alert, drawn in a thread (a tenth of a second of CPU): the map of its first
    territory when outlines are configured, else the headline alone."""
    known = site.territories(crieur)
    territory = next((t for t in known if t.code in alert.territories), None)
    atlas = await atlas_for(crieur)
    names = {code: name for t in known for code, name in t.communes.items()}
    marks = await marks_for(crieur, [alert], atlas, names)
    scene = None
    if atlas is not None and territory is not None and atlas.departement(territory.code) is not None:
        scene = card_scene(atlas, territory.code, territory.name, marks, list(territory.communes.values()))
        marks = scene.marks
    name = territory.name if territory else ""
    png = await asyncio.to_thread(render_card, alert, scene, getattr(crieur.config, "name", "Crieur"), name)
    return Card(png, card_alt(alert, marks, name))


# ------------------------------------------------------------------------------------ social posts

SOCIAL_KINDS = ("mastodon", "bluesky", "x", "facebook")  # the adapters that upload pictures (channels._media)
_CARDS: OrderedDict[tuple[Any, ...], Card] = OrderedDict()
CARD_CACHE_SIZE = 32


async def message_attachment(crieur: Any, message: Any) -> Any:
    """The card of the message's alert as a channels._media.Attachment, drawn once per alert version and
    shared by every channel that posts it; None when the alert is gone."""
    from channels._media import Attachment

    alert = await crieur.store.alert(message.alert_id)
    if alert is None:
        return None
    key = (alert.id, alert.updated_at)
    card = _CARDS.get(key)
    if card is None:
        card = _CARDS[key] = await alert_card(crieur, alert)
        while len(_CARDS) > CARD_CACHE_SIZE:
            _CARDS.popitem(last=False)
    return Attachment(card.png, card.media_type, card.alt, WIDTH, HEIGHT)


def install_card_attachments(crieur: Any) -> None:
    """Give every social channel of the service the alert's card to attach to its posts."""
    for channel in crieur.channels.values():
        if getattr(channel, "kind", "") in SOCIAL_KINDS:
            channel.attachments = partial(message_attachment, crieur)
