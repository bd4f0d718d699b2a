"""TikTok Login Kit (OAuth v2) for the dashboard: consent, code exchange, stored tokens.

The code from ``https://www.tiktok.com/v2/auth/authorize/`` is exchanged at
``POST /v2/oauth/token/`` (``grant_type=authorization_code``) for an access token
(24 hours), a refresh token (a year, rotated at each use) and the user's ``open_id``.
The account is stored with the access token's expiry, so the adapter's refresh logic
(:func:`engine.social.accounts.refresh_tokens`) renews it before it lapses.

No PKCE: TikTok documents ``code_challenge`` for mobile and desktop apps only (with
a hex, not base64url, digest); a web app is protected by its client secret and the
signed one-time ``state`` the dashboard checks.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from engine.config import Settings
from engine.models import SocialAccount, utcnow
from engine.social import accounts
from engine.social.connect import ConnectError, bearer, call_json, refused

TIKTOK_SCOPES = ("user.info.basic", "video.publish", "video.upload")


def _require_app(settings: Settings) -> None:
    if not settings.tiktok_client_key or not settings.tiktok_client_secret.get():
        raise ConnectError("connect.err.tiktok_app_missing")


def tiktok_authorize_url(settings: Settings, redirect_uri: str, state: str) -> str:
    """Where the admin's browser goes to give consent (TikTok Login Kit v2)."""
    _require_app(settings)
    query = urlencode({"client_key": settings.tiktok_client_key,
                       "scope": ",".join(TIKTOK_SCOPES), "response_type": "code",
                       "redirect_uri": redirect_uri, "state": state})
    return f"{settings.tiktok_auth_url.rstrip('/')}/v2/auth/authorize/?{query}"


def _display_name(settings: Settings, access_token: str, open_id: str) -> str:
    """The creator's display name for the accounts page (``user.info.basic``)."""
    try:
        payload = call_json(settings, "GET", f"{settings.tiktok_url.rstrip('/')}/v2/user/info/",
                            "connect.step.tt_user", headers=bearer(access_token),
                            params={"fields": "open_id,display_name"})
    except ConnectError:
        return f"TikTok {open_id}"  # the name is cosmetic; the tokens are what matter
    user = (payload.get("data") or {}).get("user") or {}
    return str(user.get("display_name") or f"TikTok {open_id}")


def connect_tiktok(session: Session, settings: Settings, code: str, redirect_uri: str,
                   business_id: int | None = None) -> SocialAccount:
    """Exchange the consent code and store both tokens encrypted, with the expiry."""
    _require_app(settings)
    started = utcnow()
    payload = call_json(
        settings, "POST", f"{settings.tiktok_url.rstrip('/')}/v2/oauth/token/",
        "connect.step.tt_code", data={
            "client_key": settings.tiktok_client_key,
            "client_secret": settings.tiktok_client_secret.get(), "code": code,
            "grant_type": "authorization_code", "redirect_uri": redirect_uri},
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    access = str(payload.get("access_token") or "")
    open_id = str(payload.get("open_id") or "")
    if not access or not open_id:
        raise refused("connect.step.tt_code", "no access_token/open_id")
    try:
        lifetime = int(payload.get("expires_in") or 0)
    except (TypeError, ValueError):
        lifetime = 0
    expires_at = started + timedelta(seconds=lifetime) if lifetime > 0 else None
    return accounts.connect(
        session, platform="tiktok", external_id=open_id,
        name=_display_name(settings, access, open_id), access_token=access,
        refresh_token=str(payload.get("refresh_token") or "") or None,
        expires_at=expires_at, business_id=business_id,
        meta={"connected_via": "tiktok_login", "scope": str(payload.get("scope") or "")})
