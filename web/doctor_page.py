"""``/dinas/keterkiriman``: the deliverability checklist of ``umkm doctor`` for Dinas admins.

The same :func:`engine.delivery.doctor.run_doctor` as the CLI, so the page and the command
never disagree. While an item fails, bulk launches are refused in production
(:mod:`engine.delivery.launch_guard`); an admin may override here with a note: the note
and the failures it covers go to ``audit_log`` and hold for 24 hours.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import EngineError
from engine.common.i18n import t
from engine.delivery.doctor import run_doctor
from engine.delivery.launch_guard import OVERRIDE_ACTION, record_override
from engine.models import AuditLog, User
from web.auth import SessionRoute, csrf_protect, get_db, page, require_admin, settings_of

PATH = "/dinas/keterkiriman"
RECENT_OVERRIDES = 10

router = APIRouter(prefix=PATH, route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_admin)])


def _page(request: Request, db: Session, message: str = "", error: str = "",
          status_code: int = 200) -> HTMLResponse:
    settings = settings_of(request)
    report = run_doctor(db, settings)
    overrides = db.scalars(select(AuditLog).where(AuditLog.action == OVERRIDE_ACTION)
                           .order_by(AuditLog.id.desc()).limit(RECENT_OVERRIDES)).all()
    return page(request, "dinas_doctor.html", {
        "report": report, "domain": settings.from_domain, "overrides": overrides,
        "message": message[:200], "error": error, "production": settings.production,
    }, status_code=status_code)


@router.get("", response_class=HTMLResponse)
def checklist(request: Request, msg: str = "", db: Session = Depends(get_db)) -> HTMLResponse:
    return _page(request, db, message=msg)


@router.post("/abaikan", response_class=HTMLResponse)
def override(request: Request, note: str = Form(""), user: User = Depends(require_admin),
             db: Session = Depends(get_db)) -> Response:
    """Record the admin's override of today's failures (refused without a note)."""
    failures = run_doctor(db, settings_of(request)).failures
    if not failures:
        return RedirectResponse(PATH + "?" + urlencode({"msg": t("doctor.web.nothing")}),
                                status_code=303)
    try:
        record_override(db, user.username, note, failures)
    except EngineError as exc:
        db.rollback()
        return _page(request, db, error=str(exc), status_code=exc.http_status)
    db.commit()
    return RedirectResponse(PATH + "?" + urlencode({"msg": t("doctor.web.overridden")}),
                            status_code=303)
