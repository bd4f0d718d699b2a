"""A picture per demo product, drawn with Pillow and stored through the photo pipeline.

Why drawn and not downloaded: the demo must run offline and give the same result on
every machine, and it must exercise the same path an owner's upload takes (checked,
normalised, content-addressed, served under ``/media``), so the showcase, the emails and
the social payloads show real pictures. Colour and shapes come from the product's name.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, ImageFont

from engine.config import Settings
from engine.media.store import limits_of, media_store, save_photo

SIZE = 800


def draw(name: str) -> bytes:
    """A PNG: a background from the name's hash, two soft shapes and the initials."""
    digest = hashlib.sha256(name.encode()).digest()
    base = (60 + digest[0] % 150, 60 + digest[1] % 150, 60 + digest[2] % 150)
    light = tuple(min(255, c + 70) for c in base)
    image = Image.new("RGB", (SIZE, SIZE), base)
    pen = ImageDraw.Draw(image)
    r = 120 + digest[3] % 160
    x, y = 100 + digest[4] % 600, 100 + digest[5] % 600
    pen.ellipse((x - r, y - r, x + r, y + r), fill=(light[0], light[1], light[2]))
    w = 80 + digest[6] % 200
    pen.rectangle((SIZE - w - 60, 60, SIZE - 60, 60 + w), outline=(255, 255, 255), width=12)
    initials = "".join(word[0] for word in name.split()[:2] if word[:1].isalnum()).upper()
    font = ImageFont.load_default(size=260)
    pen.text((SIZE // 2, SIZE // 2), initials or "?", fill=(255, 255, 255), font=font,
             anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def store_picture(settings: Settings, name: str) -> str:
    """The ``/media/...`` path of the product's picture (stored once: content-addressed)."""
    return save_photo(media_store(settings), draw(name), limits_of(settings))
