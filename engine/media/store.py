"""Where normalised photos live, behind one small interface (:class:`MediaStore`).

Keys are ``<sha256>/<size>.jpg`` and nothing else (:func:`valid_key`): a key never
comes from a file name, so ``../../x.jpg`` cannot name a place on disk, and a URL under
``/media/`` that is not such a key is a 404 before any file is touched. The local folder
is the default (embedded mode); an S3-compatible bucket is named by ``MEDIA_STORE=s3`` but
not built yet, so it fails loudly at start instead of losing photos.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from engine.config import Settings
from engine.media.errors import MediaStoreNotConfigured
from engine.media.images import DEFAULT_SIZE, SIZES, Limits, Photo, normalise

URL_PREFIX = "/media/"
_KEY = re.compile(r"[0-9a-f]{64}/(" + "|".join(SIZES) + r")\.jpg")


def valid_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


def variant_key(digest: str, size: str = DEFAULT_SIZE) -> str:
    return f"{digest}/{size}.jpg"


def photo_path(digest: str, size: str = DEFAULT_SIZE) -> str:
    """The site path of one size of a stored photo (what ``Product.image_url`` holds)."""
    return URL_PREFIX + variant_key(digest, size)


class MediaStore(Protocol):
    """Bytes by key; ``url_for`` is the path or URL a page or channel uses."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def url_for(self, key: str) -> str: ...

    def delete(self, key: str) -> None: ...


class LocalStore:
    """A folder (``MEDIA_DIR``, default ``var/media``); files written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"not a media key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.is_file():
            return  # content-addressed: the same key is the same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        if not valid_key(key):
            return None
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def url_for(self, key: str) -> str:
        return URL_PREFIX + key

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def media_store(settings: Settings) -> MediaStore:
    """The store the settings name; an S3 bucket is refused until it is implemented."""
    kind = (settings.media_store or "local").strip().lower()
    if kind == "local":
        return LocalStore(settings.media_root)
    raise MediaStoreNotConfigured("media.store_not_configured", store=kind)


def limits_of(settings: Settings) -> Limits:
    return Limits(max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels)


def save_photo(store: MediaStore, data: bytes, limits: Limits) -> str:
    """Normalise and store every size; returns the path of the default size.

    Normalising happens entirely before the first ``put``, so a refused file stores
    nothing.
    """
    photo: Photo = normalise(data, limits)
    for size, jpeg in photo.variants.items():
        store.put(variant_key(photo.key, size), jpeg)
    return store.url_for(variant_key(photo.key))


__all__ = [
    "URL_PREFIX",
    "LocalStore",
    "MediaStore",
    "limits_of",
    "media_store",
    "photo_path",
    "save_photo",
    "valid_key",
    "variant_key",
]
