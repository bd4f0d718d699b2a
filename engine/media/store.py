"""Where normalised photos live, behind one small interface (:class:`MediaStore`).

Keys are ``<sha256>/<size>.jpg`` and nothing else (:func:`valid_key`): a key never
comes from a file name, so ``../../x.jpg`` cannot name a place on disk, and a URL under
``/media/`` that is not such a key is a 404 before any file is touched. The local folder
is the default (embedded mode); an S3-compatible bucket is ``MEDIA_STORE=s3``
(:mod:`engine.media.s3`, imported only then so the local mode never loads boto3). Any
other name fails loudly instead of losing photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engine.config import Settings
from engine.media.errors import MediaStoreNotConfigured
from engine.media.files import write_atomically
from engine.media.images import Limits, Photo, normalise
from engine.media.keys import URL_PREFIX, photo_path, valid_key, variant_key


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
        write_atomically(path, data)

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
    """The store the settings name; an unknown name is refused."""
    kind = (settings.media_store or "local").strip().lower()
    if kind == "local":
        return LocalStore(settings.media_root)
    if kind == "s3":
        from engine.media.s3 import s3_store
        return s3_store(settings)
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
