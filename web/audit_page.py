"""The audit log (``/dinas/audit``), ``dinas_admin`` only: who saved, submitted,
approved, sent back, launched, paused, resumed, cancelled, verified what and when.

Why filters are plain query strings checked here: a wrong page number or an unknown
action is an Indonesian sentence above the table, never FastAPI's English 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest
from engine.common.i18n import t
from engine.models import AuditLog
from web.auth import SessionRoute, csrf_protect, get_db, page, require_admin

router = APIRouter(prefix="/dinas/audit", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_admin)])

PAGE_SIZE = 50
MAX_PAGE = 100_000
# The actions the filter offers first (the studio's and the run controls'); any other
# action recorded in the table is offered after them.
KNOWN = ("campaign.save", "campaign.submit", "campaign.approve", "campaign.return",
         "campaign.launch", "campaign.test_send", "campaign.sync", "campaign.sync_conflict",
         "run.pause", "run.resume", "run.cancel", "business.verify")


def action_label(action: str) -> str:
    """A known action in the reader's words; any other stays its identifier."""
    return t(f"studio.audit.act.{action}") if action in KNOWN else action


def _page_number(halaman: str) -> int:
    text = halaman.strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest("studio.audit.bad_page", value=halaman[:40], max=MAX_PAGE)
    return int(text)


def _actions(db: Session) -> list[str]:
    stored = set(db.scalars(select(AuditLog.action).distinct()))
    return [a for a in KNOWN if a in stored] + sorted(stored - set(KNOWN))


def audit_rows(db: Session, action: str, actor: str, number: int) -> dict[str, Any]:
    """One page, newest first, filtered by action and user (exact matches)."""
    where = []
    if action:
        where.append(AuditLog.action == action)
    if actor:
        where.append(AuditLog.actor == actor)
    total = int(db.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(number, pages)
    rows = list(db.scalars(select(AuditLog).where(*where)
                           .order_by(AuditLog.at.desc(), AuditLog.id.desc())
                           .offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return {"rows": rows, "page": number, "pages": pages, "total": total}


@router.get("", response_class=HTMLResponse)
def audit_page(request: Request, aksi: str = "", pengguna: str = "", halaman: str = "",
               db: Session = Depends(get_db)) -> HTMLResponse:
    actions = _actions(db)
    context: dict[str, Any] = {"actions": actions, "aksi": aksi[:64],
                               "action_label": action_label,
                               "pengguna": pengguna[:120], "error": None, "listing": None,
                               "users": list(db.scalars(select(AuditLog.actor).distinct()
                                                        .order_by(AuditLog.actor)))}
    try:
        number = _page_number(halaman)
    except BadRequest as exc:
        context["error"] = str(exc)
        return page(request, "dinas_audit.html", context, status_code=400)
    context["listing"] = audit_rows(db, aksi[:64], pengguna[:120], number)
    return page(request, "dinas_audit.html", context)
