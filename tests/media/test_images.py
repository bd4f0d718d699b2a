"""The photo pipeline on its own: hostile files refused with their reason, good ones
normalised (orientation applied, metadata gone, sizes padded, JPEG, content key)."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from PIL import ExifTags, Image

from engine.common.i18n import t
from engine.media.errors import MediaError
from engine.media.images import SIZES, Limits, normalise
from tests.media import corpus

LIMITS = Limits(max_bytes=15 * 1024 * 1024, max_pixels=40_000_000)


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("hostile", corpus.hostile_files(LIMITS.max_bytes),
                         ids=lambda h: h.name)
def test_hostile_file_is_refused_with_its_reason(hostile: corpus.Hostile) -> None:
    with pytest.raises(MediaError) as caught:
        normalise(hostile.data, LIMITS)
    assert caught.value.code == hostile.code
    assert caught.value.http_status == 422
    message = str(caught.value)
    assert message == t(hostile.code, **caught.value.params) and message != hostile.code


def test_the_pixel_bomb_is_refused_from_its_header_without_decoding() -> None:
    bomb = corpus.png_claiming(20000, 20000)
    assert len(bomb) < 10_000
    tracemalloc.start()
    try:
        with pytest.raises(MediaError):
            normalise(bomb, LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024  # decoding would need 1.2 GB


def test_a_jpeg_with_a_zip_appended_is_reencoded_without_the_zip() -> None:
    polyglot = corpus.jpeg() + corpus.zip_bytes()
    photo = normalise(polyglot, LIMITS)
    for jpeg in photo.variants.values():
        assert b"PK\x03\x04" not in jpeg and b"payload.html" not in jpeg
        assert _open(jpeg).format == "JPEG"


def test_gps_and_every_other_exif_tag_is_dropped() -> None:
    source = corpus.jpeg(gps=True)
    assert ExifTags.IFD.GPSInfo in _open(source).getexif()  # the test file really has GPS
    for jpeg in normalise(source, LIMITS).variants.values():
        image = _open(jpeg)
        assert not image.getexif(), dict(image.getexif())
        assert "exif" not in image.info and "icc_profile" not in image.info
        assert b"KameraHP" not in jpeg


def test_exif_orientation_is_applied_before_the_metadata_goes() -> None:
    # Left half red, right half blue; orientation 6 = shown rotated 90 degrees clockwise,
    # so the upright photo has red on top and blue at the bottom.
    upright = _open(normalise(corpus.jpeg((200, 100), orientation=6), LIMITS)
                    .variants["square"]).convert("RGB")
    top, bottom = upright.getpixel((540, 400)), upright.getpixel((540, 700))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 and top[2] < 100, top
    assert bottom[2] > 150 and bottom[0] < 100, bottom


def test_sizes_are_padded_never_cropped_and_rgb_jpeg() -> None:
    photo = normalise(corpus.jpeg((400, 100)), LIMITS)
    assert set(photo.variants) == set(SIZES)
    for name, jpeg in photo.variants.items():
        image = _open(jpeg)
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == SIZES[name]
    square = _open(photo.variants["square"])
    # The whole 4:1 photo fits the width: its left (red) and right (blue) ends are inside,
    # and the bands above and below are the neutral pad.
    left, right = square.getpixel((5, 540)), square.getpixel((1074, 540))
    pad = square.getpixel((540, 20))
    assert isinstance(left, tuple) and isinstance(right, tuple) and isinstance(pad, tuple)
    assert left[0] > 150 and right[2] > 150
    assert all(channel > 230 for channel in pad)


def test_transparency_is_composited_on_white() -> None:
    image = _open(normalise(corpus.png_rgba(), LIMITS).variants["square"])
    corner, centre = image.getpixel((100, 540)), image.getpixel((540, 540))
    assert isinstance(corner, tuple) and isinstance(centre, tuple)
    assert all(channel > 245 for channel in corner)  # transparent -> white, not black
    assert centre[1] > 120 and centre[0] < 90


def test_the_key_is_the_content_never_the_name() -> None:
    first = normalise(corpus.jpeg(), LIMITS)
    again = normalise(corpus.jpeg(), LIMITS)
    other = normalise(corpus.jpeg(colour=(10, 200, 10)), LIMITS)
    assert first.key == again.key != other.key
    assert len(first.key) == 64 and set(first.key) <= set("0123456789abcdef")


def test_a_webp_is_accepted() -> None:
    out = io.BytesIO()
    Image.new("RGB", (50, 80), (90, 90, 200)).save(out, "WEBP")
    assert normalise(out.getvalue(), LIMITS).variants["thumb"][:3] == b"\xff\xd8\xff"


def test_an_iphone_heic_photo_is_accepted_upright_and_without_its_gps() -> None:
    """iPhones save gallery photos as HEIC: refusing them would refuse most owners' photos."""
    heic = corpus.heic((200, 100), orientation=6, gps=True)
    assert heic[4:12] == b"ftypheic"  # really a HEIC container, not a JPEG renamed
    assert ExifTags.IFD.GPSInfo in _open(heic).getexif()  # and it really carries GPS
    photo = normalise(heic, LIMITS)
    square = _open(photo.variants["square"])
    assert square.format == "JPEG" and not square.getexif()
    assert b"KameraHP" not in photo.variants["square"]
    upright = square.convert("RGB")
    top, bottom = upright.getpixel((540, 400)), upright.getpixel((540, 700))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 and bottom[2] > 150, (top, bottom)
