"""Photos in an S3-compatible bucket (AWS S3, MinIO, Wasabi...) behind :class:`MediaStore`.

The bucket is a place to keep bytes, not the site's address: ``url_for`` keeps the
``/media/...`` path (served through this installation by ``web/media_routes.py``) so
links stay on its own domain and keep working when the bucket moves, unless the operator
names a public base URL (a CDN in front of the bucket). Objects are written as
``image/jpeg`` with a year-long ``Cache-Control``: keys are content addresses, so an
object never changes. Every failure of the bucket itself (missing, refused, unreachable)
becomes :class:`MediaStoreNotConfigured` with Indonesian text, never a bare 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.config import Settings
from engine.media.errors import MediaStoreNotConfigured
from engine.media.keys import URL_PREFIX, valid_key

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

CACHE_CONTROL = "public, max-age=31536000, immutable"
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """One bucket; keys are the same ``<sha256>/<size>.jpg`` as the local folder."""

    def __init__(self, client: S3Client, bucket: str, public_base_url: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/")

    def _fail(self, exc: Exception) -> MediaStoreNotConfigured:
        return MediaStoreNotConfigured("media.s3_unavailable", bucket=self.bucket,
                                       reason=_code_of(exc) or type(exc).__name__)

    def put(self, key: str, data: bytes) -> None:
        if not valid_key(key):
            raise ValueError(f"not a media key: {key!r}")
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   ContentType="image/jpeg", CacheControl=CACHE_CONTROL)
        except Exception as exc:  # botocore's errors share no narrower public base
            raise self._fail(exc) from exc

    def get(self, key: str) -> bytes | None:
        if not valid_key(key):
            return None
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code_of(exc) in _MISSING:
                return None
            raise self._fail(exc) from exc
        body: bytes = response["Body"].read()
        return body

    def url_for(self, key: str) -> str:
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        return URL_PREFIX + key

    def delete(self, key: str) -> None:
        if not valid_key(key):
            raise ValueError(f"not a media key: {key!r}")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._fail(exc) from exc


def _code_of(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def s3_store(settings: Settings) -> S3Store:
    """The bucket named by the ``MEDIA_S3_*`` settings; no bucket name is a clear error."""
    bucket = settings.media_s3_bucket.strip()
    if not bucket:
        raise MediaStoreNotConfigured("media.s3_no_bucket")
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise MediaStoreNotConfigured("media.store_not_configured", store="s3") from exc
    client = boto3.client(
        "s3",
        endpoint_url=settings.media_s3_endpoint_url or None,
        region_name=settings.media_s3_region or None,
        aws_access_key_id=settings.media_s3_access_key.get() or None,
        aws_secret_access_key=settings.media_s3_secret_key.get() or None,
    )
    return S3Store(client, bucket, settings.media_s3_public_base_url)


__all__ = ["CACHE_CONTROL", "S3Store", "s3_store"]
