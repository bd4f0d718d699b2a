"""``/dinas/kesepakatan``: the register of agreements with digital service providers.

Pasal 13 (kesepakatan bersama) and Pasal 14(3) (rights and obligations, term). Staff
read the list, the details and the signed PDF; only ``dinas_admin`` records an
agreement or uploads its document. The reminders the beat records before an agreement
ends (:func:`engine.umkm.agreements.remind_expiring`) are listed on top of the page.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import NotFound
from engine.common.i18n import t
from engine.models import Agreement, User
from engine.reporting.periods import local_now_date
from engine.umkm import agreements, supervision
from web.auth import (
    SessionRoute,
    csrf_protect,
    get_db,
    page,
    require_admin,
    require_staff,
    settings_of,
)

PATH = "/dinas/kesepakatan"

router = APIRouter(prefix=PATH, route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


def _row(agreement: Agreement, today: date) -> dict[str, object]:
    return {"a": agreement, "days_left": agreements.days_left(agreement, today),
            "kind": t(f"agreement.kind.{agreement.kind}")}


@router.get("", response_class=HTMLResponse)
def agreement_list(request: Request, msg: str = "", user: User = Depends(require_staff),
                   db: Session = Depends(get_db)) -> HTMLResponse:
    today = local_now_date()
    return page(request, "dinas_agreements.html", {
        "rows": [_row(a, today) for a in agreements.list_agreements(db)],
        "reminders": [_row(a, today) for a in agreements.open_reminders(db, today)],
        "kinds": [(k, t(f"agreement.kind.{k}")) for k in agreements.KINDS],
        "can_edit": user.role == "dinas_admin", "message": msg[:200],
    })


@router.post("")
def agreement_create(
    provider_name: str = Form(""), kind: str = Form(""), parties: str = Form(""),
    rights_obligations: str = Form(""), start_date: str = Form(""), end_date: str = Form(""),
    user: User = Depends(require_admin), db: Session = Depends(get_db),
) -> Response:
    agreement = agreements.create_agreement(
        db, provider_name=provider_name, kind=kind, parties=parties,
        rights_obligations=rights_obligations, start_date=agreements.parse_date(start_date),
        end_date=agreements.parse_date(end_date), actor=user.username)
    db.commit()
    return RedirectResponse(f"{PATH}/{agreement.id}?" + urlencode(
        {"msg": t("agreement.web.created")}), status_code=303)


@router.get("/{agreement_id}", response_class=HTMLResponse)
def agreement_detail(request: Request, agreement_id: int, msg: str = "",
                     user: User = Depends(require_staff),
                     db: Session = Depends(get_db)) -> HTMLResponse:
    agreement = agreements.get_agreement(db, agreement_id)
    complaints = [c for c in supervision.list_complaints(db) if c.agreement_id == agreement.id]
    return page(request, "dinas_agreement.html", {
        **_row(agreement, local_now_date()), "complaints": complaints,
        "can_edit": user.role == "dinas_admin", "message": msg[:200],
        "max_mb": settings_of(request).agreement_max_bytes // (1024 * 1024),
    })


@router.post("/{agreement_id}/dokumen")
def agreement_upload(request: Request, agreement_id: int,
                     document: UploadFile | None = File(None),
                     user: User = Depends(require_admin),
                     db: Session = Depends(get_db)) -> Response:
    """Attach the signed PDF (refused unless its bytes are a PDF within the size limit)."""
    settings = settings_of(request)
    agreement = agreements.get_agreement(db, agreement_id)
    data = document.file.read(settings.agreement_max_bytes + 1) if document else b""
    agreements.attach_document(db, settings, agreement, data,
                               (document.filename if document else "") or "", user.username)
    db.commit()
    return RedirectResponse(f"{PATH}/{agreement.id}?" + urlencode(
        {"msg": t("agreement.web.uploaded")}), status_code=303)


@router.get("/{agreement_id}/dokumen")
def agreement_document(request: Request, agreement_id: int,
                       db: Session = Depends(get_db)) -> Response:
    agreement = agreements.get_agreement(db, agreement_id)
    data = agreements.read_document(settings_of(request), agreement)
    if data is None:
        raise NotFound("agreement.no_document")
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="kesepakatan-{agreement.id}.pdf"',
        "X-Content-Type-Options": "nosniff"})
