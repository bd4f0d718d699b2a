"""An owner's own sign-up (``/daftar``) and their "send for verification" button.

Three steps, each a small server-rendered form: the contact (e-mail or WhatsApp number)
gets a one-time code; the code proves the contact; the owner chooses a user name and
password and is logged in, landing on the existing business form (``/portal/usaha``).
The rules (codes, tries, limits, notices) live in :mod:`engine.umkm.signup` and
:mod:`engine.delivery.owner_notice`; this module only turns forms into calls and errors
into pages with the right status (400, 409, 429), never a 500.

No CAPTCHA: the per-contact and per-address counters bound what one person can send.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import EngineError
from engine.common.i18n import t
from engine.delivery import owner_notice
from engine.models import Role, User
from engine.umkm import sessions, signup, users, verification
from web.auth import (
    SessionRoute,
    WebSession,
    client_ip,
    csrf_protect,
    get_db,
    page,
    replace_session,
    require_owner,
    settings_of,
    web_session,
)
from web.portal import own_business_or_redirect

router = APIRouter(route_class=SessionRoute, dependencies=[Depends(csrf_protect)])


def _form(request: Request, name: str, context: dict[str, Any] | None = None,
          error: EngineError | str | None = None, status_code: int = 200) -> HTMLResponse:
    headers: dict[str, str] = {}
    if isinstance(error, EngineError):
        status_code = error.http_status
        if status_code == 429:
            headers["Retry-After"] = str(int(signup.LIMIT_WINDOW.total_seconds()))
    return page(request, name, {**(context or {}), "error": str(error) if error else None},
                status_code=status_code, headers=headers)


@router.get("/daftar", response_class=HTMLResponse)
def start_form(request: Request) -> HTMLResponse:
    return _form(request, "signup_start.html", {"contact": ""})


@router.post("/daftar", response_class=HTMLResponse)
def start_submit(request: Request, contact: str = Form(""),
                 db: Session = Depends(get_db)) -> Response:
    context = {"contact": contact[:254]}
    try:
        parsed = owner_notice.parse_contact(contact)
        owner_notice.start_signup(db, settings_of(request), parsed, client=client_ip(request),
                                  raw_session_id=web_session(request).raw_id)
    except EngineError as exc:
        db.commit()  # the counted start stays counted
        return _form(request, "signup_start.html", context, exc)
    return RedirectResponse("/daftar/kode", status_code=303)


@router.get("/daftar/kode", response_class=HTMLResponse)
def code_form(request: Request, db: Session = Depends(get_db)) -> Response:
    row = signup.latest(db, web_session(request).raw_id)
    if row is None:
        return RedirectResponse("/daftar", status_code=303)
    return _form(request, "signup_code.html", {"channel": row.channel})


@router.post("/daftar/kode", response_class=HTMLResponse)
def code_submit(request: Request, code: str = Form(""),
                db: Session = Depends(get_db)) -> Response:
    raw_id = web_session(request).raw_id
    try:
        signup.verify_code(db, raw_id, code)
    except signup.CodeError as exc:
        db.commit()  # the wrong try is counted even though the code was refused
        row = signup.latest(db, raw_id)
        return _form(request, "signup_code.html",
                     {"channel": row.channel if row else "email"}, exc)
    db.commit()
    return RedirectResponse("/daftar/akun", status_code=303)


@router.get("/daftar/akun", response_class=HTMLResponse)
def account_form(request: Request, db: Session = Depends(get_db)) -> Response:
    if signup.verified_claim(db, web_session(request).raw_id) is None:
        return RedirectResponse("/daftar", status_code=303)
    return _form(request, "signup_account.html", {"username": ""})


@router.post("/daftar/akun", response_class=HTMLResponse)
def account_submit(request: Request, username: str = Form(""), password: str = Form(""),
                   password2: str = Form(""), db: Session = Depends(get_db)) -> Response:
    claim = signup.verified_claim(db, web_session(request).raw_id)
    if claim is None:
        return RedirectResponse("/daftar", status_code=303)
    context = {"username": username[:120]}
    if password != password2:
        return _form(request, "signup_account.html", context, t("auth.password_mismatch"),
                     status_code=400)
    try:
        user = users.create_user(db, username, password, Role.umkm_owner,
                                 actor=users.normalize_username(username)[:120])
        signup.claim(db, claim, user)
    except EngineError as exc:
        db.rollback()
        return _form(request, "signup_account.html", context, exc)
    active = sessions.create_session(db, user)
    db.commit()
    replace_session(request, WebSession.of(active))
    return RedirectResponse("/portal/usaha", status_code=303)


@router.post("/portal/kirim-verifikasi")
def submit_for_verification(user: User = Depends(require_owner),
                            db: Session = Depends(get_db)) -> Response:
    """The owner's own business into the Dinas queue (no business id is taken)."""
    business = own_business_or_redirect(db, user)
    verification.submit(db, business, actor=user.username)
    db.commit()
    return RedirectResponse("/portal?saved=1", status_code=303)
