"""``/dinas/akun-sosial/hubungkan``: connecting social accounts from the dashboard (issue 17).

``dinas_admin`` only (staff and owners get 403 with the reason): a connected account
posts in the Dinas' name. Facebook and TikTok go through the platforms' consent dialogs
with a signed one-time ``state`` (:mod:`web.oauth_state`); WhatsApp, which has no dialog
for a system-user token, takes the phone-number id and token in a form and checks them
with Graph first. The token exchanges live in :mod:`engine.social.connect`.

Tokens never reach a page or a log: the long-lived Facebook user token waits for the
admin's choice of page in an encrypted, short-lived cookie scoped to these routes, the
page tokens never leave the server, and the WhatsApp token field is a password field
that is never filled back in. Every refusal (consent denied, bad or spent code, expired
state) is this page with an Indonesian explanation and status 400, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import EngineError
from engine.common.i18n import t
from engine.config import Settings
from engine.models import AuditLog, Role, SocialAccount, User
from engine.social import accounts
from engine.social.connect import (
    connect_facebook_page,
    connect_whatsapp,
    facebook_dialog_url,
    facebook_pages,
    facebook_user_token,
)
from engine.social.connect_tiktok import connect_tiktok, tiktok_authorize_url
from web.auth import SessionRoute, csrf_protect, get_db, page, require_user, settings_of
from web.oauth_state import (
    COOKIE_PATH,
    STATE_MAX_AGE,
    clear_state,
    issue_state,
    seal,
    state_problem,
    unseal,
)

USER_TOKEN_COOKIE = "umkm_fb_user"


def require_connect_admin(user: User = Depends(require_user)) -> User:
    """403 with the reason for staff and owners: connecting is an admin decision."""
    if user.role != Role.dinas_admin:
        raise HTTPException(status_code=403, detail=t("connect.forbidden"))
    return user


router = APIRouter(prefix=COOKIE_PATH, route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_connect_admin)])


def _redirect_uri(request: Request, platform: str) -> str:
    """The callback address registered with the platform (from ``BASE_URL``)."""
    return f"{settings_of(request).base_url.rstrip('/')}{COOKIE_PATH}/{platform}/kembali"


def _connect_page(request: Request, message: str = "", error: str = "",
                  status_code: int = 200, **extra: Any) -> HTMLResponse:
    return page(request, "dinas_connect.html",
                {"message": message, "error": error, **extra}, status_code=status_code)


def _refused(request: Request, db: Session, error: str) -> HTMLResponse:
    db.rollback()
    return _connect_page(request, error=error, status_code=400)


def _stored(db: Session, user: User, rows: list[SocialAccount], via: str) -> str:
    """Audit and commit the connected accounts; the confirmation names them."""
    for row in rows:
        db.add(AuditLog(actor=user.username, action="account.connect",
                        entity="social_account", entity_id=accounts.key_of(row),
                        detail={"platform": row.platform, "via": via}))
    db.commit()
    return t("connect.done", accounts=", ".join(f"{accounts.key_of(r)} ({r.name})"
                                                for r in rows))


def _callback_problem(request: Request, platform: str, state: str, error: str,
                      code: str) -> str | None:
    """What makes a callback unusable (denied consent, bad state, no code), in words."""
    if error:
        return t("connect.denied" if error == "access_denied" else "connect.platform_error",
                 error=error[:60])
    problem = state_problem(request, platform, state)
    if problem is not None:
        return t(problem)
    return None if code else t("connect.no_code")


def _to_consent(request: Request, platform: str,
                dialog_url: Callable[[Settings, str, str], str]) -> Response:
    """303 to the platform's consent dialog with a fresh state (its cookie set here);
    an app not configured yet is the connect page with the missing settings named."""
    response = RedirectResponse("/", status_code=303)
    state = issue_state(request, response, platform)
    try:
        response.headers["location"] = dialog_url(
            settings_of(request), _redirect_uri(request, platform), state)
    except EngineError as exc:
        return _connect_page(request, error=str(exc), status_code=400)
    return response


@router.get("", response_class=HTMLResponse)
def connect_home(request: Request) -> HTMLResponse:
    return _connect_page(request)


# --- Facebook Login for a Page -----------------------------------------------------------


@router.post("/facebook")
def facebook_start(request: Request) -> Response:
    return _to_consent(request, "facebook", facebook_dialog_url)


@router.get("/facebook/kembali", response_class=HTMLResponse)
def facebook_callback(request: Request, code: str = "", state: str = "", error: str = "",
                      db: Session = Depends(get_db)) -> Response:
    problem = _callback_problem(request, "facebook", state, error, code)
    if problem is not None:
        response: Response = _refused(request, db, problem)
    else:
        settings = settings_of(request)
        try:
            token = facebook_user_token(settings, code, _redirect_uri(request, "facebook"))
            pages = facebook_pages(settings, token)
        except EngineError as exc:
            response = _refused(request, db, str(exc))
        else:
            if not pages:
                response = _refused(request, db, t("connect.no_pages"))
            else:
                response = page(request, "dinas_connect_pages.html", {"pages": pages})
                response.set_cookie(USER_TOKEN_COOKIE,
                                    seal(request, token),
                                    max_age=STATE_MAX_AGE, httponly=True, samesite="strict",
                                    path=COOKIE_PATH, secure=request.url.scheme == "https")
    clear_state(response)
    return response


@router.post("/facebook/pilih", response_class=HTMLResponse)
def facebook_choose(request: Request, page_id: str = Form(""),
                    user: User = Depends(require_connect_admin),
                    db: Session = Depends(get_db)) -> Response:
    token = unseal(request, request.cookies.get(USER_TOKEN_COOKIE, ""))
    if not token:
        return _refused(request, db, t("connect.state.expired"))
    try:
        rows = connect_facebook_page(db, settings_of(request), token, page_id.strip())
    except EngineError as exc:
        return _refused(request, db, str(exc))
    response = _connect_page(request, message=_stored(db, user, rows, "facebook_login"))
    response.delete_cookie(USER_TOKEN_COOKIE, path=COOKIE_PATH)
    return response


# --- TikTok Login Kit --------------------------------------------------------------------


@router.post("/tiktok")
def tiktok_start(request: Request) -> Response:
    return _to_consent(request, "tiktok", tiktok_authorize_url)


@router.get("/tiktok/kembali", response_class=HTMLResponse)
def tiktok_callback(request: Request, code: str = "", state: str = "", error: str = "",
                    user: User = Depends(require_connect_admin),
                    db: Session = Depends(get_db)) -> Response:
    problem = _callback_problem(request, "tiktok", state, error, code)
    if problem is not None:
        response: Response = _refused(request, db, problem)
    else:
        try:
            row = connect_tiktok(db, settings_of(request), code,
                                 _redirect_uri(request, "tiktok"))
        except EngineError as exc:
            response = _refused(request, db, str(exc))
        else:
            response = _connect_page(request, message=_stored(db, user, [row], "tiktok_login"))
    clear_state(response)
    return response


# --- WhatsApp Cloud API ------------------------------------------------------------------


@router.post("/whatsapp", response_class=HTMLResponse)
def whatsapp_form(request: Request, phone_number_id: str = Form(""),
                  access_token: str = Form(""), user: User = Depends(require_connect_admin),
                  db: Session = Depends(get_db)) -> Response:
    try:
        row = connect_whatsapp(db, settings_of(request), phone_number_id, access_token)
    except EngineError as exc:
        return _connect_page(request, error=str(exc), status_code=400,
                             phone_number_id=phone_number_id.strip()[:30])
    return _connect_page(request, message=_stored(db, user, [row], "dashboard_form"))

