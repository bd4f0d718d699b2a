"""``/dinas/pelatihan``: trainings of Pasal 8 for Dinas staff (``dinas_staff`` and
``dinas_admin``): create one, record WhatsApp registrations, mark attendance, and the
participation per kecamatan and per UMKM that the monthly report carries.

Every rule (capacity, one registration per business, http(s)-only links) is the
service's (:mod:`engine.umkm.trainings`), so the page and ``umkm pelatihan`` refuse the
same things with the same sentence; a refusal re-renders the page with a 4xx, never 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, EngineError, NotFound
from engine.common.i18n import get_lang
from engine.models import Business, RegistrationSource, TrainingStatus, User
from engine.reporting.periods import parse_period
from engine.reporting.programme_training import training_participation
from engine.umkm import trainings
from web.auth import SessionRoute, csrf_protect, get_db, page, require_staff
from web.portal_programmes import form_id

router = APIRouter(prefix="/dinas/pelatihan", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


def _list(request: Request, db: Session, periode: str = "", error: str = "",
          status_code: int = 200) -> HTMLResponse:
    period = parse_period(periode) if periode else None
    lang = get_lang()
    rows = [{"row": row, "when": trainings.when_text(row.training, lang),
             "where": trainings.where_text(row.training)}
            for row in trainings.all_trainings(db)]
    return page(request, "dinas_trainings.html", {
        "rows": rows, "error": error, "periode": periode,
        "participation": training_participation(
            db, period.start if period else None, period.end if period else None),
    }, status_code=status_code)


@router.get("", response_class=HTMLResponse)
def listing(request: Request, periode: str = "", db: Session = Depends(get_db)
            ) -> HTMLResponse:
    return _list(request, db, periode[:20])


def _capacity(value: str) -> int:
    text = (value or "").strip()
    if not text.isdigit() or len(text) > 6:
        raise BadRequest("training.err.capacity", max=trainings.MAX_CAPACITY)
    return int(text)


@router.post("", response_class=HTMLResponse)
def create(request: Request, topic: str = Form(""), trainer: str = Form(""),
           starts_at: str = Form(""), capacity: str = Form(""), place: str = Form(""),
           online_url: str = Form(""), description: str = Form(""),
           user: User = Depends(require_staff), db: Session = Depends(get_db)) -> Response:
    try:
        training = trainings.create_training(
            db, topic=topic, trainer=trainer, starts_at=trainings.parse_wita(starts_at),
            capacity=_capacity(capacity), place=place, online_url=online_url,
            description=description[:4000], actor=user.username)
    except EngineError as exc:
        db.rollback()
        return _list(request, db, error=str(exc), status_code=exc.http_status)
    db.commit()
    return RedirectResponse(f"/dinas/pelatihan/{training.id}", status_code=303)


def _detail(request: Request, db: Session, training_id: int, error: str = "",
            status_code: int = 200) -> HTMLResponse:
    training = trainings.get_training(db, training_id)
    people = trainings.participants(db, training.id)
    lang = get_lang()
    context: dict[str, Any] = {
        "training": training, "people": people, "error": error,
        "when": trainings.when_text(training, lang), "where": trainings.where_text(training),
        "wa": trainings.whatsapp_link(training, None, lang),
        "statuses": [s.value for s in TrainingStatus],
        "businesses": list(db.execute(select(Business.id, Business.name)
                                      .order_by(Business.name)).tuples()),
    }
    return page(request, "dinas_training.html", context, status_code=status_code)


@router.get("/{training_id}", response_class=HTMLResponse)
def detail(request: Request, training_id: int, db: Session = Depends(get_db)) -> HTMLResponse:
    return _detail(request, db, training_id)


def _business(db: Session, value: str) -> Business:
    business = db.get(Business, form_id(value))
    if business is None:
        raise NotFound("training.err.no_business", id=value[:20])
    return business


@router.post("/{training_id}/peserta", response_class=HTMLResponse)
def add_participant(request: Request, training_id: int, business_id: str = Form(""),
                    user: User = Depends(require_staff),
                    db: Session = Depends(get_db)) -> Response:
    """Record a registration that came in by WhatsApp (the owner sent the wa.me text)."""
    trainings.get_training(db, training_id)
    try:
        trainings.register(db, training_id, _business(db, business_id),
                           source=RegistrationSource.whatsapp, actor=user.username)
    except EngineError as exc:
        db.rollback()
        return _detail(request, db, training_id, str(exc), exc.http_status)
    db.commit()
    return RedirectResponse(f"/dinas/pelatihan/{training_id}", status_code=303)


@router.post("/{training_id}/hadir", response_class=HTMLResponse)
def attendance(request: Request, training_id: int, business_id: str = Form(""),
               attended: str = Form(""), user: User = Depends(require_staff),
               db: Session = Depends(get_db)) -> Response:
    trainings.get_training(db, training_id)
    try:
        trainings.record_attendance(db, training_id, form_id(business_id), attended == "1",
                                    actor=user.username)
    except EngineError as exc:
        db.rollback()
        return _detail(request, db, training_id, str(exc), exc.http_status)
    db.commit()
    return RedirectResponse(f"/dinas/pelatihan/{training_id}", status_code=303)


@router.post("/{training_id}/status", response_class=HTMLResponse)
def status(request: Request, training_id: int, value: str = Form(""),
           user: User = Depends(require_staff), db: Session = Depends(get_db)) -> Response:
    training = trainings.get_training(db, training_id)
    try:
        chosen = TrainingStatus(value)
    except ValueError:
        return _detail(request, db, training_id, str(BadRequest("training.err.status")), 400)
    trainings.set_status(db, training, chosen, actor=user.username)
    db.commit()
    return RedirectResponse(f"/dinas/pelatihan/{training_id}", status_code=303)
