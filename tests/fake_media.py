"""Photos the fake platforms fetch, as Facebook, Instagram and TikTok fetch ours.

The platforms download a post's photo from the URL they are given: a site path or a
loopback / private host is unreachable for them, and what they download is checked
(JPEG for Instagram and TikTok photos, Instagram's 4:5 .. 1.91:1 aspect ratio). The
fakes do the same: a test declares the *public* host its media pretend to live on
(``umkm.ttskab.go.id``) and the loopback :class:`FakeMedia` server that really serves
them; :func:`fetch` maps one to the other and opens the bytes with Pillow.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.fake_http import FakeHTTPServer, Recorded, Reply


def picture(width: int, height: int, fmt: str = "JPEG") -> bytes:
    """A real image file of that size and format."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (180, 90, 40)).save(out, format=fmt)
    return out.getvalue()


class FakeMedia(FakeHTTPServer):
    """Serves ``files`` (path -> bytes) on loopback; anything else is a 404."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def handle(self, request: Recorded) -> Reply:
        data = self.files.get(request.path)
        return Reply(200, data) if data is not None else Reply(404, {"error": "not found"})


@dataclass(frozen=True)
class Fetched:
    """What a platform learnt from a media URL: a refusal, or the image's format and size."""

    problem: str | None = None  # relative | private | undeclared | unreachable | not_image
    format: str = ""
    width: int = 0
    height: int = 0


def _private(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def fetch(url: str, media_hosts: Mapping[str, str] | None) -> Fetched:
    """Download ``url`` as the platform would; ``media_hosts``: public host -> loopback URL.

    ``None`` means the test declared no media: public URLs are then taken on trust (the
    adapter tests), but a relative or private URL is refused all the same.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Fetched("relative")
    if _private(parts.hostname):
        return Fetched("private")
    if media_hosts is None:
        return Fetched(format="JPEG", width=1080, height=1080)
    served = media_hosts.get(parts.netloc)
    if served is None:
        return Fetched("undeclared")
    answer = httpx.get(served.rstrip("/") + parts.path, timeout=5.0)
    if answer.status_code != 200:
        return Fetched("unreachable")
    try:
        with Image.open(io.BytesIO(answer.content)) as image:
            return Fetched(format=str(image.format), width=image.width, height=image.height)
    except OSError:
        return Fetched("not_image")


def instagram_ratio_ok(fetched: Fetched) -> bool:
    """Meta: an image's aspect ratio must be between 4:5 and 1.91:1."""
    ratio = fetched.width / fetched.height
    return 0.8 - 1e-6 <= ratio <= 1.91 + 1e-6


@pytest.fixture(name="fake_media")
def fake_media_fixture() -> Iterator[FakeMedia]:
    server = FakeMedia()
    server.start()
    try:
        yield server
    finally:
        server.stop()
