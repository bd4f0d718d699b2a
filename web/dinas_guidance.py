"""``/dinas/pendampingan``: guidance requests of Pasal 9 for the Dinas.

Staff see every request and the figures of the monthly report (requests, sessions,
median time to a first response per topic and kecamatan); only a ``dinas_admin``
appoints the tenaga pendamping (Pasal 9 ayat 2: "yang ditunjuk oleh Dinas"), so the
assign form is an admin's and its POST answers 403 to staff. Session notes stay on the
pendamping's pages: the Dinas list shows status and counts only.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, EngineError
from engine.models import GuidanceStatus, User
from engine.reporting.periods import parse_period
from engine.reporting.programme_guidance import guidance_summary
from engine.umkm import guidance, wilayah
from web.auth import SessionRoute, csrf_protect, get_db, page, require_admin, require_staff
from web.portal_programmes import form_id

router = APIRouter(prefix="/dinas/pendampingan", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


def _status(value: str) -> GuidanceStatus | None:
    try:
        return GuidanceStatus(value) if value else None
    except ValueError:
        raise BadRequest("guidance.err.status", status=value[:40]) from None


def _listing(request: Request, db: Session, status: str = "", periode: str = "",
             error: str = "", status_code: int = 200) -> HTMLResponse:
    period = parse_period(periode) if periode else None
    rows = guidance.all_requests(db, _status(status))
    counts = guidance.session_counts(db, [r.id for r, _ in rows])
    helpers = {u.id: u.username for u in guidance.pendampings(db)}
    return page(request, "dinas_guidance.html", {
        "rows": [{"req": r, "business": b, "sessions": counts.get(r.id, 0),
                  "kecamatan": wilayah.kecamatan_name(b.kecamatan_code) or b.kecamatan_code,
                  "pendamping": helpers.get(r.pendamping_id or 0, "-")} for r, b in rows],
        "pendampings": sorted(helpers.items(), key=lambda kv: kv[1]),
        "statuses": [s.value for s in GuidanceStatus], "status": status, "error": error,
        "periode": periode,
        "summary": guidance_summary(db, period.start if period else None,
                                    period.end if period else None),
    }, status_code=status_code)


@router.get("", response_class=HTMLResponse)
def listing(request: Request, status: str = "", periode: str = "",
            db: Session = Depends(get_db)) -> HTMLResponse:
    return _listing(request, db, status[:20], periode[:20])


@router.post("/{request_id}/tugaskan", response_class=HTMLResponse)
def assign(request: Request, request_id: int, pendamping_id: str = Form(""),
           admin: User = Depends(require_admin), db: Session = Depends(get_db)) -> Response:
    """Appoint the pendamping (admin only); a non-pendamping account is refused."""
    found = guidance.get_request(db, request_id)
    try:
        helper = db.get(User, form_id(pendamping_id))
        if helper is None:
            raise BadRequest("guidance.err.not_pendamping", username=pendamping_id[:40])
        guidance.assign(db, found, helper, actor=admin.username)
    except EngineError as exc:
        db.rollback()
        return _listing(request, db, error=str(exc), status_code=exc.http_status)
    db.commit()
    return RedirectResponse("/dinas/pendampingan", status_code=303)
