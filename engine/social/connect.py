"""Connecting social accounts the way the platforms intend: OAuth consent, not pasted tokens.

Facebook Login for a Page (the Graph flow documented by Meta): the code from the consent
dialog is exchanged for a user token, that one for a **long-lived** user token
(``grant_type=fb_exchange_token``), and ``/me/accounts`` then gives page tokens that do
not expire, which is what a marketing engine posting for months needs. The Instagram
business account linked to the page is read from the page itself and stored with the
same page token (the Instagram Graph API accepts it). WhatsApp has no consent dialog
for a system-user token: the phone-number id and token are checked against
``GET /{phone-number-id}`` before anything is saved, so a typo never reaches a campaign.

Everything is stored through :func:`engine.social.accounts.connect`, so tokens are
encrypted exactly as ``umkm account connect`` stores them. Platform refusals become a
:class:`ConnectError` (an Indonesian 400 page, never a 500); tokens never appear in
an error text (:func:`_platform_message` removes them).
TikTok lives in :mod:`engine.social.connect_tiktok`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest
from engine.common.i18n import t
from engine.config import Settings
from engine.models import SocialAccount
from engine.social import accounts

# Permissions the Facebook and Instagram adapters need (pages_show_list for /me/accounts,
# business_management for pages owned through a Business Manager).
FACEBOOK_SCOPES = (
    "pages_show_list", "pages_manage_posts", "pages_read_engagement", "read_insights",
    "business_management", "instagram_basic", "instagram_content_publish",
    "instagram_manage_insights",
)
_SECRETISH = re.compile(r"(access_token|client_secret|code|token)=[^&\s'\"]+")
MAX_PAGES = 100


class ConnectError(BadRequest):
    """A platform refused a connection step; the text says which step and why."""


@dataclass(frozen=True)
class PageChoice:
    """A page the admin may connect (its token stays on the server)."""

    page_id: str
    name: str
    tasks: tuple[str, ...]
    access_token: str

    def __repr__(self) -> str:  # never a token in a log line or a traceback
        return f"PageChoice(page_id={self.page_id!r}, name={self.name!r})"


def _graph_base(settings: Settings) -> str:
    return f"{settings.graph_url.rstrip('/')}/{settings.graph_version}"


def _platform_message(payload: Any, fallback: str) -> str:
    """The platform's own reason (Graph ``error.message``, OAuth ``error_description``),
    short and with anything token-like removed: it is shown to the admin."""
    text = fallback
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            text = str(error.get("message") or fallback)
        elif isinstance(error, str):
            text = str(payload.get("error_description") or error)
    return _SECRETISH.sub(r"\1=***", text)[:300]


def call_json(settings: Settings, method: str, url: str, step: str,
              **kwargs: Any) -> dict[str, Any]:
    """One platform call; any refusal or unreachable host is a :class:`ConnectError`
    naming the step (``step`` is a catalog key of the step's name)."""
    try:
        with httpx.Client(timeout=settings.social_timeout, follow_redirects=False) as client:
            response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ConnectError("connect.err.unreachable", step=t(step),
                           reason=type(exc).__name__) from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if response.status_code >= 400 or not isinstance(payload, dict) or \
            (error is not None and not _ok_tiktok_error(payload)):
        raise refused(step, _platform_message(payload, f"HTTP {response.status_code}"))
    return payload


def refused(step: str, reason: str) -> ConnectError:
    """The platform said no at ``step`` (a catalog key naming the step)."""
    return ConnectError("connect.err.refused", step=t(step), reason=reason)


def bearer(token: str) -> dict[str, str]:
    """Tokens go in a header, never in a URL that a proxy or error text could keep."""
    return {"Authorization": f"Bearer {token}"}


def _ok_tiktok_error(payload: dict[str, Any]) -> bool:
    """TikTok's API answers success with ``"error": {"code": "ok"}``."""
    error = payload.get("error")
    return isinstance(error, dict) and error.get("code") == "ok"


def _require_app(settings: Settings) -> None:
    if not settings.meta_app_id or not settings.meta_app_secret.get():
        raise ConnectError("connect.err.meta_app_missing")


# --- Facebook Login for a Page -----------------------------------------------------------


def facebook_dialog_url(settings: Settings, redirect_uri: str, state: str) -> str:
    """Where the admin's browser goes to give consent (Facebook's OAuth dialog)."""
    _require_app(settings)
    query = urlencode({"client_id": settings.meta_app_id, "redirect_uri": redirect_uri,
                       "state": state, "response_type": "code",
                       "scope": ",".join(FACEBOOK_SCOPES)})
    return f"{settings.meta_dialog_url.rstrip('/')}/{settings.graph_version}/dialog/oauth?{query}"


def facebook_user_token(settings: Settings, code: str, redirect_uri: str) -> str:
    """The consent code, exchanged for a short-lived and then a long-lived user token."""
    _require_app(settings)
    app = {"client_id": settings.meta_app_id, "client_secret": settings.meta_app_secret.get()}
    url = f"{_graph_base(settings)}/oauth/access_token"
    short = call_json(settings, "GET", url, "connect.step.fb_code",
                      params={**app, "redirect_uri": redirect_uri, "code": code})
    long_lived = call_json(settings, "GET", url, "connect.step.fb_long", params={
        **app, "grant_type": "fb_exchange_token",
        "fb_exchange_token": str(short.get("access_token", ""))})
    token = str(long_lived.get("access_token") or "")
    if not token:
        raise refused("connect.step.fb_long", "no access_token")
    return token


def facebook_pages(settings: Settings, user_token: str) -> list[PageChoice]:
    """The pages the user manages, each with its page token (``/me/accounts``)."""
    payload = call_json(settings, "GET", f"{_graph_base(settings)}/me/accounts",
                        "connect.step.fb_pages", headers=bearer(user_token), params={
                            "limit": str(MAX_PAGES), "fields": "id,name,access_token,tasks"})
    pages = []
    for row in payload.get("data") or []:
        if isinstance(row, dict) and row.get("id") and row.get("access_token"):
            pages.append(PageChoice(str(row["id"]), str(row.get("name") or row["id"]),
                                    tuple(str(x) for x in row.get("tasks") or ()),
                                    str(row["access_token"])))
    return pages


def instagram_account_of(settings: Settings, page: PageChoice) -> str | None:
    """The Instagram business account linked to the page, if any."""
    payload = call_json(settings, "GET", f"{_graph_base(settings)}/{page.page_id}",
                        "connect.step.ig_account", headers=bearer(page.access_token),
                        params={"fields": "instagram_business_account"})
    linked = payload.get("instagram_business_account")
    return str(linked["id"]) if isinstance(linked, dict) and linked.get("id") else None


def connect_facebook_page(session: Session, settings: Settings, user_token: str,
                          page_id: str, business_id: int | None = None
                          ) -> list[SocialAccount]:
    """Store the chosen page (and its Instagram account) with the page's own token."""
    page = next((p for p in facebook_pages(settings, user_token) if p.page_id == page_id),
                None)
    if page is None:
        raise ConnectError("connect.err.page_not_found", page=page_id[:40])
    meta = {"connected_via": "facebook_login", "tasks": list(page.tasks)}
    stored = [accounts.connect(session, platform="facebook", external_id=page.page_id,
                               name=page.name, access_token=page.access_token,
                               business_id=business_id, meta=meta)]
    instagram = instagram_account_of(settings, page)
    if instagram:
        stored.append(accounts.connect(
            session, platform="instagram", external_id=instagram, name=page.name,
            access_token=page.access_token, business_id=business_id,
            meta={**meta, "page_id": page.page_id}))
    return stored


# --- WhatsApp Cloud API ------------------------------------------------------------------


def connect_whatsapp(session: Session, settings: Settings, phone_number_id: str,
                     token: str, business_id: int | None = None) -> SocialAccount:
    """Check the phone-number id and token with Graph, then store them."""
    phone_id, token = phone_number_id.strip(), token.strip()
    if not phone_id.isdigit() or len(phone_id) > 30:
        raise ConnectError("connect.err.bad_phone_id", value=phone_id[:40])
    if not token:
        raise ConnectError("connect.err.empty_token")
    payload = call_json(settings, "GET", f"{_graph_base(settings)}/{phone_id}",
                        "connect.step.wa_check", params={
                            "fields": "display_phone_number,verified_name"},
                        headers=bearer(token))
    number = str(payload.get("display_phone_number") or "")
    if not number:
        raise refused("connect.step.wa_check", "no display_phone_number")
    name = str(payload.get("verified_name") or number)
    return accounts.connect(session, platform="whatsapp", external_id=phone_id,
                            name=f"{name} ({number})", access_token=token,
                            business_id=business_id,
                            meta={"connected_via": "dashboard", "display_phone_number": number})
