"""One uploaded or fetched file -> a clean photo in the sizes the site and channels use.

Why each step:

- the file is judged by its *content* (magic bytes, then Pillow restricted to JPEG, PNG,
  WebP and HEIC when a plugin provides it), never by its name or Content-Type, so an SVG
  with a script or a ZIP named ``.jpg`` is refused;
- the pixel count is read from the header and refused above ``max_pixels`` *before* any
  pixel is decoded: a 20000x20000 PNG of a few KB would otherwise take 1.2 GB of memory;
- ``LOAD_TRUNCATED_IMAGES`` stays False and ``load()`` is called, so a cut-off upload is
  refused instead of stored half grey;
- EXIF orientation is applied, then the pixels are copied into a fresh image: no EXIF
  (GPS above all: where an owner lives), no ICC, no comments, no trailing bytes (a ZIP
  appended to a JPEG) survive the re-encoding;
- transparency is composited on white and every size is padded with a neutral colour,
  never cropped, so the product is never cut.

The key is the SHA-256 of the normalised pixels, so names never come from the user and
the same photo uploaded twice is stored once.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from engine.media.errors import MediaError
from engine.media.sizes import DEFAULT_SIZE, SIZES

ImageFile.LOAD_TRUNCATED_IMAGES = False  # never store a half-decoded upload

ACCEPTED: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
try:  # HEIC (iPhone photos) only when the optional plugin is installed
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installation
    HEIC = False
else:  # pragma: no cover
    register_heif_opener()
    HEIC = True
    ACCEPTED = (*ACCEPTED, "HEIF")

# Magic bytes of formats that are images but refused here (animations, vectors, TIFF, BMP).
_UNSUPPORTED_MAGIC = (b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00")
_TEXT_MARKERS = (b"<svg", b"<?xml", b"<!doctype", b"<html")

WORKING_MAX = 2160  # longest side kept for the key and the sizes (twice the largest size)
PAD_COLOUR = (245, 245, 245)  # neutral light grey around a photo that is not the size's shape
WHITE = (255, 255, 255)
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class Photo:
    """A normalised photo: its content key and one JPEG per size."""

    key: str
    variants: dict[str, bytes]


def _sniff(data: bytes) -> None:
    """Refuse, from the first bytes, what is certainly not an accepted photo."""
    head = data[:512].lstrip().lower()
    if any(head.startswith(m) for m in _TEXT_MARKERS) or b"<svg" in head:
        raise MediaError("media.unsupported")
    if data.startswith(_UNSUPPORTED_MAGIC):
        raise MediaError("media.unsupported")


def _open(data: bytes, limits: Limits) -> Image.Image:
    """The decoded image, after the header checks; the caller closes it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("media.too_many_pixels", mp=limits.max_pixels // 1_000_000) from None
    except UnidentifiedImageError:
        raise MediaError("media.not_image") from None
    except (OSError, SyntaxError, ValueError):
        raise MediaError("media.corrupt") from None
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > limits.max_pixels:
        image.close()
        raise MediaError("media.too_many_pixels", mp=limits.max_pixels // 1_000_000)
    if getattr(image, "n_frames", 1) > 1:  # animated WebP / APNG
        image.close()
        raise MediaError("media.unsupported")
    if image.format == "JPEG":
        image.draft("RGB", (WORKING_MAX, WORKING_MAX))  # decode at a reduced scale: faster
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        image.close()
        raise MediaError("media.corrupt") from None
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels in a brand-new image (so no metadata follows), alpha composited on white."""
    upright = ImageOps.exif_transpose(image) or image
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info)
    clean = Image.new("RGB", upright.size, WHITE)
    if has_alpha:
        rgba = upright.convert("RGBA")
        clean.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
    else:
        clean.paste(upright.convert("RGB"))
    if max(clean.size) > WORKING_MAX:
        clean.thumbnail((WORKING_MAX, WORKING_MAX), Image.Resampling.LANCZOS)
    return clean


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def normalise(data: bytes, limits: Limits | None = None) -> Photo:
    """The photo in every size, or :class:`MediaError` saying why the file is refused."""
    limits = limits or Limits()
    if len(data) > limits.max_bytes:
        raise MediaError("media.too_big", mb=limits.max_bytes // (1024 * 1024))
    if not data:
        raise MediaError("media.not_image")
    _sniff(data)
    with _open(data, limits) as image:
        clean = _flatten(image)
    key = hashlib.sha256(b"%dx%d:" % clean.size + clean.tobytes()).hexdigest()
    variants = {name: _jpeg(ImageOps.pad(clean, size, Image.Resampling.LANCZOS,
                                         color=PAD_COLOUR))
                for name, size in SIZES.items()}
    return Photo(key, variants)


__all__ = ["ACCEPTED", "DEFAULT_SIZE", "SIZES", "Limits", "Photo", "normalise"]
