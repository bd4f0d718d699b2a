"""The one shape of a photo key, ``<sha256>/<size>.jpg``, shared by every store.

Kept apart from :mod:`engine.media.store` so a store implementation (``engine.media.s3``)
can check keys without importing the module that chooses the store.
"""

from __future__ import annotations

import re

from engine.media.sizes import DEFAULT_SIZE, SIZES

URL_PREFIX = "/media/"
_KEY = re.compile(r"[0-9a-f]{64}/(" + "|".join(SIZES) + r")\.jpg")


def valid_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


def variant_key(digest: str, size: str = DEFAULT_SIZE) -> str:
    return f"{digest}/{size}.jpg"


def photo_path(digest: str, size: str = DEFAULT_SIZE) -> str:
    """The site path of one size of a stored photo (what ``Product.image_url`` holds)."""
    return URL_PREFIX + variant_key(digest, size)


__all__ = ["URL_PREFIX", "photo_path", "valid_key", "variant_key"]
