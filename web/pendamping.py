"""``/pendamping``: the tenaga pendamping's own requests and their sessions (Pasal 9).

A pendamping sees ONLY requests a Dinas admin assigned to them: every lookup goes
through :func:`engine.umkm.guidance.request_of_pendamping`, so any other id is a 404
(the same as an id that does not exist). Staff and admins are not pendamping by their
role: they get 403 here and assign through ``/dinas/pendampingan``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import EngineError
from engine.models import Business, GuidanceRequest, User
from engine.umkm import guidance, wilayah
from web.auth import SessionRoute, csrf_protect, get_db, page, require_pendamping

router = APIRouter(prefix="/pendamping", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_pendamping)])


@router.get("", response_class=HTMLResponse)
def home(request: Request, user: User = Depends(require_pendamping),
         db: Session = Depends(get_db)) -> HTMLResponse:
    rows = guidance.requests_of_pendamping(db, user)
    counts = guidance.session_counts(db, [r.id for r, _ in rows])
    return page(request, "pendamping_home.html", {
        "rows": [{"req": r, "business": b, "sessions": counts.get(r.id, 0),
                  "kecamatan": wilayah.kecamatan_name(b.kecamatan_code) or b.kecamatan_code}
                 for r, b in rows]})


def _detail(request: Request, db: Session, found: GuidanceRequest, error: str = "",
            status_code: int = 200) -> HTMLResponse:
    business = db.get(Business, found.business_id)
    return page(request, "pendamping_request.html", {
        "req": found, "business": business, "error": error, "private": True,
        "kecamatan": wilayah.kecamatan_name(business.kecamatan_code) if business else "",
        "sessions": guidance.sessions_of(db, found.id, private=True)},
        status_code=status_code)


@router.get("/permintaan/{request_id}", response_class=HTMLResponse)
def detail(request: Request, request_id: int, user: User = Depends(require_pendamping),
           db: Session = Depends(get_db)) -> HTMLResponse:
    return _detail(request, db, guidance.request_of_pendamping(db, user, request_id))


@router.post("/permintaan/{request_id}/sesi", response_class=HTMLResponse)
def add_session(request: Request, request_id: int, held_on: str = Form(""),
                duration_minutes: str = Form(""), notes: str = Form(""),
                private_notes: str = Form(""), follow_up: str = Form(""),
                follow_up_due: str = Form(""), user: User = Depends(require_pendamping),
                db: Session = Depends(get_db)) -> Response:
    found = guidance.request_of_pendamping(db, user, request_id)
    try:
        guidance.log_session(
            db, found, user, held_on=guidance.parse_day(held_on) or found.created_at.date(),
            duration_minutes=guidance.parse_minutes(duration_minutes), notes=notes,
            private_notes=private_notes, follow_up=follow_up,
            follow_up_due=guidance.parse_day(follow_up_due, required=False))
    except EngineError as exc:
        db.rollback()
        found = guidance.request_of_pendamping(db, user, request_id)
        return _detail(request, db, found, str(exc), exc.http_status)
    db.commit()
    return RedirectResponse(f"/pendamping/permintaan/{found.id}", status_code=303)


@router.post("/permintaan/{request_id}/selesai")
def close(request_id: int, user: User = Depends(require_pendamping),
          db: Session = Depends(get_db)) -> Response:
    found = guidance.request_of_pendamping(db, user, request_id)
    guidance.close_request(db, found, user)
    db.commit()
    return RedirectResponse(f"/pendamping/permintaan/{found.id}", status_code=303)
