"""Stored product photos under ``/media/<sha256>/<size>.jpg``, and the site's favicon.

No session, no database: a key is checked against its one allowed shape before the
store is asked, so ``/media/../secret.key`` or any other name is a 404 and never a
filesystem path. Keys are content addresses, so a photo never changes under its URL:
browsers and CDNs may keep it for a year (``immutable``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from engine.media.errors import MediaNotFound
from engine.media.store import media_store, valid_key
from web.auth import settings_of
from web.pages import STATIC_DIR

# Upload forms take bodies up to the photo limit plus room for the other fields; web/app.py
# merges this into its body-limit overrides (by path prefix).
UPLOAD_PATHS = ("/portal/produk",)
FORM_ROOM = 256 * 1024

CACHE_FOREVER = "public, max-age=31536000, immutable"

router = APIRouter()


def upload_limit_overrides(max_photo_bytes: int) -> dict[str, int]:
    return dict.fromkeys(UPLOAD_PATHS, max_photo_bytes + FORM_ROOM)


@router.get("/media/{digest}/{name}", include_in_schema=False)
def media_file(request: Request, digest: str, name: str) -> Response:
    key = f"{digest}/{name}"
    data = media_store(settings_of(request)).get(key) if valid_key(key) else None
    if data is None:
        raise MediaNotFound("media.not_found")
    return Response(data, media_type="image/jpeg", headers={
        "Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})
