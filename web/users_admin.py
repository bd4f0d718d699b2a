"""``/dinas/pengguna``: account management for Dinas admins (issues 13 and 16).

Only ``dinas_admin`` (staff get 403 with a clear message, anonymous visitors the login
page). Every change goes through :mod:`engine.umkm.users`, so the password policy, the
one-owner-per-UMKM rule and the audit log are the CLI's; disabling an account and
resetting its password revoke all its sessions at once (a copied cookie stops working).
Bad input is a 400 page in the visitor's language, never a 500.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, EngineError, NotFound
from engine.common.i18n import t
from engine.models import Business, Role, User
from engine.umkm import users
from web.auth import SessionRoute, csrf_protect, get_db, page, require_user

MAX_ID = 2**63 - 1


def require_user_admin(user: User = Depends(require_user)) -> User:
    """403 with the reason for staff and owners (not the generic forbidden text)."""
    if user.role != Role.dinas_admin:
        raise HTTPException(status_code=403, detail=t("users.forbidden"))
    return user


router = APIRouter(prefix="/dinas/pengguna", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_user_admin)])


def parse_id(value: str) -> int | None:
    """A form id: empty is None, anything but 1..2^63-1 a 400 (never a driver error)."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        raise BadRequest("users.err.bad_id", value=text[:40])
    return int(text)


def _listing(request: Request, db: Session, message: str = "", error: str = "",
             status_code: int = 200) -> HTMLResponse:
    names = dict(db.execute(select(Business.id, Business.name)).tuples().all())
    rows = [{"id": u.id, "username": u.username, "role": u.role.value, "active": u.active,
             "business": f"{u.business_id} · {names.get(u.business_id, '-')}"
             if u.business_id else "-"} for u in users.list_users(db)]
    return page(request, "dinas_users.html", {
        "rows": rows, "roles": [r.value for r in Role], "message": message, "error": error,
    }, status_code=status_code)


def _refused(request: Request, db: Session, exc: EngineError) -> HTMLResponse:
    db.rollback()
    return _listing(request, db, error=str(exc), status_code=exc.http_status)


def _user(db: Session, user_id: int) -> User:
    found = db.get(User, user_id) if user_id <= MAX_ID else None
    if found is None:
        raise NotFound("users.err.unknown_user", id=user_id)
    return found


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    return _listing(request, db)


@router.post("", response_class=HTMLResponse)
def create(request: Request, username: str = Form(""), role: str = Form(""),
           password: str = Form(""), business_id: str = Form(""),
           admin: User = Depends(require_user_admin),
           db: Session = Depends(get_db)) -> Response:
    """Create an account; without a typed password a one-time one is generated and shown."""
    generated = not password
    secret = password or secrets.token_urlsafe(12)
    try:
        user = users.create_user(db, username[:200], secret, role[:40],
                                 parse_id(business_id), actor=admin.username)
    except EngineError as exc:
        return _refused(request, db, exc)
    db.commit()
    message = _with_one_time(t("users.created", username=user.username), user.username,
                             secret if generated else None)
    return _listing(request, db, message=message)


@router.post("/{user_id}/sandi", response_class=HTMLResponse)
def reset_password(request: Request, user_id: int, password: str = Form(""),
                   admin: User = Depends(require_user_admin),
                   db: Session = Depends(get_db)) -> Response:
    """Set the typed password (policy-checked) or a generated one; sessions end."""
    target = _user(db, user_id)
    secret = password or secrets.token_urlsafe(12)
    try:
        users.set_password(db, target, secret, actor=admin.username)
    except EngineError as exc:
        return _refused(request, db, exc)
    db.commit()
    message = _with_one_time(t("users.password_set", username=target.username),
                             target.username, None if password else secret)
    return _listing(request, db, message=message)


def _with_one_time(message: str, username: str, generated: str | None) -> str:
    """The confirmation, plus the generated password when the admin typed none (shown
    once, here, never stored in clear)."""
    if generated is None:
        return message
    return message + " " + t("users.one_time", username=username, password=generated)


@router.post("/{user_id}/umkm", response_class=HTMLResponse)
def link(request: Request, user_id: int, business_id: str = Form(""),
         admin: User = Depends(require_user_admin),
         db: Session = Depends(get_db)) -> Response:
    target = _user(db, user_id)
    try:
        chosen = parse_id(business_id)
        if chosen is None:
            raise BadRequest("users.err.bad_id", value="")
        users.link_business(db, target, chosen, actor=admin.username)
    except EngineError as exc:
        return _refused(request, db, exc)
    db.commit()
    return _listing(request, db, message=t("users.linked", username=target.username, id=chosen))


@router.post("/{user_id}/status", response_class=HTMLResponse)
def set_status(request: Request, user_id: int, active: str = Form(""),
               admin: User = Depends(require_user_admin),
               db: Session = Depends(get_db)) -> Response:
    """Disable (all the user's sessions are revoked at once) or enable an account."""
    target = _user(db, user_id)
    enable = active == "1"
    if not enable and target.id == admin.id:
        return _refused(request, db, BadRequest("users.err.self_disable"))
    users.set_active(db, target, enable, actor=admin.username)
    db.commit()
    key = "users.enabled" if enable else "users.disabled"
    context: dict[str, Any] = {"username": target.username}
    return _listing(request, db, message=t(key, **context))
