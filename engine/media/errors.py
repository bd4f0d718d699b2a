"""The refusals of the photo pipeline (``media.*`` catalog keys, Indonesian first).

Every hostile or broken file ends in one of these, never in a 500: the portal shows the
message next to the form and nothing is stored.
"""

from __future__ import annotations

from engine.common.errors import EngineError, InvalidInput, NotFound


class MediaError(InvalidInput):
    """A photo that cannot be accepted as it is (not an image, too big, corrupt...)."""


class MediaNotFound(NotFound):
    """No stored photo under that key (or a key that can never exist)."""


class MediaStoreNotConfigured(EngineError):
    """The configured photo store cannot be used (an S3 bucket without boto3 or keys)."""

    http_status = 503


__all__ = ["MediaError", "MediaNotFound", "MediaStoreNotConfigured"]
