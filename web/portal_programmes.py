"""The owner's side of Pasal 8 and 9: trainings (``/portal/pelatihan``) and guidance
(``/portal/pendampingan``).

Same rules as the rest of the portal (:mod:`web.portal`): no route takes a business id,
the business is always the one linked to the account, so a form field naming another
business is ignored, and another business's request id is a plain 404. The sessions an
owner sees never include the pendamping's private notes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, EngineError
from engine.common.i18n import get_lang
from engine.models import Business, GuidanceTopic, RegistrationSource, User
from engine.umkm import guidance, trainings
from web.auth import SessionRoute, csrf_protect, get_db, page, require_owner
from web.portal import own_business_or_redirect

router = APIRouter(prefix="/portal", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect)])


def form_id(value: str) -> int:
    """A numeric form id (1..2^63-1), else a 400 with a sentence, never a driver error."""
    text = (value or "").strip()
    if not text.isdigit() or len(text) > 18 or int(text) == 0:
        raise BadRequest("training.err.bad_id", value=text[:40])
    return int(text)


def _trainings_page(request: Request, db: Session, business: Business, message: str = "",
                    error: str = "", status_code: int = 200) -> HTMLResponse:
    mine = trainings.registrations_of_business(db, business.id)
    registered = {tr.id for _, tr in mine}
    lang = get_lang()
    upcoming = [{"row": row, "when": trainings.when_text(row.training, lang),
                 "where": trainings.where_text(row.training),
                 "wa": trainings.whatsapp_link(row.training, business.name, lang),
                 "registered": row.training.id in registered}
                for row in trainings.upcoming(db)]
    return page(request, "portal_trainings.html", {
        "business": business, "upcoming": upcoming, "message": message, "error": error,
        "mine": [{"reg": reg, "training": tr, "when": trainings.when_text(tr, lang),
                  "where": trainings.where_text(tr)} for reg, tr in mine],
    }, status_code=status_code)


@router.get("/pelatihan", response_class=HTMLResponse)
def training_list(request: Request, user: User = Depends(require_owner),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    return _trainings_page(request, db, own_business_or_redirect(db, user))


@router.post("/pelatihan/daftar", response_class=HTMLResponse)
def training_register(request: Request, training_id: str = Form(""),
                      user: User = Depends(require_owner),
                      db: Session = Depends(get_db)) -> Response:
    """Register the owner's own business; full, closed or double is refused in words."""
    business = own_business_or_redirect(db, user)
    try:
        trainings.register(db, form_id(training_id), business,
                           source=RegistrationSource.portal, actor=user.username)
    except EngineError as exc:
        db.rollback()
        return _trainings_page(request, db, business, error=str(exc),
                               status_code=exc.http_status)
    db.commit()
    return RedirectResponse("/portal/pelatihan?ok=1", status_code=303)


def _guidance_page(request: Request, db: Session, business: Business, error: str = "",
                   status_code: int = 200, description: str = "") -> HTMLResponse:
    requests = guidance.requests_of_business(db, business.id)
    counts = guidance.session_counts(db, [r.id for r in requests])
    return page(request, "portal_guidance.html", {
        "business": business, "requests": requests, "counts": counts,
        "topics": [topic.value for topic in GuidanceTopic], "error": error,
        "description": description,
    }, status_code=status_code)


@router.get("/pendampingan", response_class=HTMLResponse)
def guidance_list(request: Request, user: User = Depends(require_owner),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    return _guidance_page(request, db, own_business_or_redirect(db, user))


@router.post("/pendampingan", response_class=HTMLResponse)
def guidance_create(request: Request, topic: str = Form(""), description: str = Form(""),
                    user: User = Depends(require_owner),
                    db: Session = Depends(get_db)) -> Response:
    business = own_business_or_redirect(db, user)
    try:
        guidance.create_request(db, business, topic, description, actor=user.username)
    except EngineError as exc:
        db.rollback()
        return _guidance_page(request, db, business, error=str(exc),
                              status_code=exc.http_status, description=description[:4000])
    db.commit()
    return RedirectResponse("/portal/pendampingan", status_code=303)


@router.get("/pendampingan/{request_id}", response_class=HTMLResponse)
def guidance_detail(request: Request, request_id: int, user: User = Depends(require_owner),
                    db: Session = Depends(get_db)) -> HTMLResponse:
    business = own_business_or_redirect(db, user)
    found = guidance.request_of_owner(db, business.id, request_id)
    context: dict[str, Any] = {"business": business, "req": found,
                               "sessions": guidance.sessions_of(db, found.id)}
    return page(request, "portal_guidance_detail.html", context)
