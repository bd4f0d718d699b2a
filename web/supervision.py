"""``/dinas/pengawasan``: supervision notes and complaints (Pasal 14), and the owner's view.

Staff read every complaint with its follow-ups; only ``dinas_admin`` records one or
follows it up (as for agreements: staff view, admins edit). An owner sees, at
``/portal/pengaduan``, the complaints about their OWN business only: the business is
the one of the logged-in account, never a parameter of the request.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest
from engine.common.i18n import t
from engine.models import Agreement, Business, User
from engine.umkm import supervision
from web.auth import (
    SessionRoute,
    csrf_protect,
    get_db,
    page,
    require_admin,
    require_owner,
    require_staff,
)

PATH = "/dinas/pengawasan"
MAX_ID = 2**63 - 1

router = APIRouter(route_class=SessionRoute, dependencies=[Depends(csrf_protect)])


def _id(value: str) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        raise BadRequest("complaint.bad_id", value=text[:40])
    return int(text)


def _subjects(db: Session) -> tuple[dict[int, str], dict[int, str]]:
    businesses = dict(db.execute(select(Business.id, Business.name)
                                 .order_by(Business.name)).tuples().all())
    providers = dict(db.execute(select(Agreement.id, Agreement.provider_name)
                                .order_by(Agreement.provider_name)).tuples().all())
    return businesses, providers


@router.get(PATH, response_class=HTMLResponse)
def complaint_list(request: Request, status: str = "", msg: str = "",
                   user: User = Depends(require_staff),
                   db: Session = Depends(get_db)) -> HTMLResponse:
    complaints = supervision.list_complaints(db, status or None)
    businesses, providers = _subjects(db)
    return page(request, "dinas_supervision.html", {
        "complaints": complaints,
        "follow_ups": supervision.follow_ups(db, [c.id for c in complaints]),
        "businesses": businesses, "providers": providers, "status": status,
        "statuses": supervision.STATUSES, "kinds": supervision.KINDS,
        "can_edit": user.role == "dinas_admin", "message": msg[:200],
    })


@router.post(PATH)
def complaint_create(text: str = Form(""), kind: str = Form("keluhan"),
                     business_id: str = Form(""), agreement_id: str = Form(""),
                     user: User = Depends(require_admin),
                     db: Session = Depends(get_db)) -> Response:
    complaint = supervision.create_complaint(
        db, text=text, kind=kind, actor=user.username, business_id=_id(business_id),
        agreement_id=_id(agreement_id))
    db.commit()
    return RedirectResponse(f"{PATH}?" + urlencode({"msg": t("complaint.web.created")})
                            + f"#c{complaint.id}", status_code=303)


@router.post(PATH + "/{complaint_id}/tindak-lanjut")
def complaint_follow_up(complaint_id: int, note: str = Form(""), status: str = Form(""),
                        user: User = Depends(require_admin),
                        db: Session = Depends(get_db)) -> Response:
    supervision.follow_up(db, complaint_id, note=note, status=status, actor=user.username)
    db.commit()
    return RedirectResponse(f"{PATH}?" + urlencode({"msg": t("complaint.web.followed")})
                            + f"#c{complaint_id}", status_code=303)


@router.get("/portal/pengaduan", response_class=HTMLResponse)
def owner_complaints(request: Request, user: User = Depends(require_owner),
                     db: Session = Depends(get_db)) -> HTMLResponse:
    """The complaints about the owner's own business (none when the account has none)."""
    complaints = (supervision.complaints_of_business(db, user.business_id)
                  if user.business_id else [])
    return page(request, "portal_complaints.html", {
        "complaints": complaints,
        "follow_ups": supervision.follow_ups(db, [c.id for c in complaints]),
    })
