"""Hostile and ordinary files for the photo pipeline, generated on the spot (no binaries in
git): every one is a few KB, even the "20000x20000" PNG, whose header only claims it."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from PIL import ExifTags, Image

GPS_LATITUDE = ((9, 1), (51, 1), (0, 1))  # somewhere near Soe: must never be published


def jpeg(size: tuple[int, int] = (200, 100), colour: tuple[int, int, int] = (200, 40, 40),
         *, orientation: int | None = None, gps: bool = False) -> bytes:
    """A JPEG whose left half is ``colour`` and right half blue, with optional EXIF."""
    image, exif = _halves(size, colour, orientation=orientation, gps=gps)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def heic(size: tuple[int, int] = (200, 100), *, orientation: int | None = None,
         gps: bool = False) -> bytes:
    """The same picture as :func:`jpeg`, as an iPhone stores it: HEIC with EXIF."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    image, exif = _halves(size, (200, 40, 40), orientation=orientation, gps=gps)
    out = io.BytesIO()
    image.save(out, "HEIF", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _halves(size: tuple[int, int], colour: tuple[int, int, int], *,
            orientation: int | None, gps: bool) -> tuple[Image.Image, Image.Exif]:
    """Left half ``colour``, right half blue, and the EXIF a phone camera would write."""
    image = Image.new("RGB", size, colour)
    image.paste((20, 40, 220), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.Base.Make] = "KameraHP"
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "S"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (9.0, 51.0, 0.0)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (124.0, 17.0, 0.0)
    return image, exif


def png_rgba(size: tuple[int, int] = (120, 120)) -> bytes:
    """A fully transparent PNG with an opaque green square in the middle."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((30, 160, 60, 255), (40, 40, 80, 80))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` RGB pixels, with a tiny IDAT: decoding it
    would allocate width*height*3 bytes (1.2 GB for 20000x20000)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


SVG_WITH_SCRIPT = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
                   b'height="10"><script>alert(document.cookie)</script></svg>')


def gif_animation() -> bytes:
    frames = [Image.new("P", (10, 10), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


@dataclass(frozen=True)
class Hostile:
    """A refused file: its bytes, the name it is uploaded under and the catalog key."""

    name: str
    data: bytes
    code: str


def hostile_files(max_bytes: int) -> list[Hostile]:
    """Every file the pipeline must refuse, each with the refusal it must give."""
    good = jpeg()
    return [
        Hostile("svg-script.svg", SVG_WITH_SCRIPT, "media.unsupported"),
        Hostile("svg-as.jpg", SVG_WITH_SCRIPT, "media.unsupported"),
        Hostile("bomb.png", png_claiming(20000, 20000), "media.too_many_pixels"),
        Hostile("zip-with-jpeg-magic.jpg", good[:4] + zip_bytes(), "media.corrupt"),
        Hostile("plain.zip.jpg", zip_bytes(), "media.not_image"),
        Hostile("huge.jpg", good + b"\x00" * (max_bytes + 1 - len(good)), "media.too_big"),
        Hostile("truncated.jpg", good[: len(good) * 2 // 3], "media.corrupt"),
        Hostile("animation.gif", gif_animation(), "media.unsupported"),
        Hostile("empty.jpg", b"", "media.not_image"),
        Hostile("text.jpg", b"just some text pretending to be a photo", "media.not_image"),
    ]
