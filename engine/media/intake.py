"""A product form's photo: an uploaded file, or a URL the owner asked us to fetch.

Both end in the same pipeline (:func:`engine.media.store.save_photo`), so a fetched photo
is checked, stripped and stored exactly like an upload and then served by us: buyers'
browsers and mail clients never load a third-party host. A path already under ``/media/``
is our own stored photo and is kept as it is.
"""

from __future__ import annotations

from typing import BinaryIO

from engine.config import Settings
from engine.media.fetch import fetch_photo
from engine.media.store import URL_PREFIX, limits_of, media_store, save_photo


def read_upload(handle: BinaryIO, settings: Settings) -> bytes:
    """At most one byte more than the limit, so an oversized file is refused as too big
    without being held whole."""
    return handle.read(settings.media_max_bytes + 1)


def photo_from_form(settings: Settings, upload: bytes | None, url: str, *,
                    fetch: bool) -> str | None:
    """The stored photo's path, or None when the form names no new photo to store."""
    limits = limits_of(settings)
    if upload:
        return save_photo(media_store(settings), upload, limits)
    url = (url or "").strip()
    if fetch and url and not url.startswith(URL_PREFIX):
        return save_photo(media_store(settings), fetch_photo(url, settings, limits), limits)
    return None


__all__ = ["photo_from_form", "read_upload"]
