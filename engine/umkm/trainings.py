"""Pasal 8: Dinas trainings, registrations by UMKM and attendance.

Why in the umkm floor: the portal, the dashboard, the CLI, the newsletter's agenda and
the reports all use these rules, and each of them stands above this floor. Like
:mod:`engine.umkm.businesses`, functions ``flush`` but never ``commit``; refusals are
:class:`~engine.common.errors.EngineError` subclasses with catalog keys, so the portal
and the CLI show the same Indonesian sentence.

Capacity is checked with the training row locked (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite serialises writers anyway), and one registration per (training,
business) is a unique constraint, so two clicks can neither overbook nor double-book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, Conflict, NotFound
from engine.common.formatting import WITA, jam, tanggal
from engine.common.i18n import t
from engine.models import (
    Attendance,
    AuditLog,
    Business,
    RegistrationSource,
    Training,
    TrainingRegistration,
    TrainingStatus,
    aware,
    utcnow,
)

MAX_CAPACITY = 10_000
WA_SHARE = "https://wa.me/"
_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class TrainingRow:
    """A training with its seat count, as every listing shows it."""

    training: Training
    registered: int

    @property
    def full(self) -> bool:
        return self.registered >= self.training.capacity


def parse_wita(text: str) -> datetime:
    """``2026-12-10 09:00`` or the browser's ``2026-12-10T09:00``, read in WITA, as UTC."""
    value = (text or "").strip()
    for fmt in _FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=WITA)
        except ValueError:
            continue
    raise BadRequest("training.err.when", value=value[:40])


def check_online_url(url: str | None) -> str | None:
    """An online link must be http(s) with a host: no ``javascript:`` in a button."""
    value = (url or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 500:
        raise BadRequest("training.err.url")
    return value


def create_training(session: Session, *, topic: str, trainer: str, starts_at: datetime,
                    capacity: int, place: str | None = None, online_url: str | None = None,
                    description: str | None = None, actor: str) -> Training:
    """A new training; it needs a place or an online link and at least one seat."""
    topic, trainer = (topic or "").strip()[:200], (trainer or "").strip()[:200]
    place = (place or "").strip()[:300] or None
    link = check_online_url(online_url)
    if not topic or not trainer:
        raise BadRequest("training.err.required")
    if place is None and link is None:
        raise BadRequest("training.err.where")
    if not 0 < capacity <= MAX_CAPACITY:
        raise BadRequest("training.err.capacity", max=MAX_CAPACITY)
    # Stored as UTC: SQLite keeps the wall-clock digits and drops the zone.
    training = Training(topic=topic, trainer=trainer, place=place, online_url=link,
                        starts_at=(aware(starts_at) or starts_at).astimezone(UTC),
                        capacity=capacity,
                        description=(description or "").strip() or None, created_by=actor)
    session.add(training)
    session.flush()
    _audit(session, actor, "training.create", training.id, {"topic": topic})
    return training


def get_training(session: Session, training_id: int) -> Training:
    training = session.get(Training, training_id)
    if training is None:
        raise NotFound("training.err.unknown", id=training_id)
    return training


def seats_taken(session: Session, training_ids: Sequence[int]) -> dict[int, int]:
    if not training_ids:
        return {}
    rows = session.execute(select(TrainingRegistration.training_id, func.count()).where(
        TrainingRegistration.training_id.in_(list(training_ids))).group_by(
        TrainingRegistration.training_id)).tuples().all()
    return {int(tid): int(n) for tid, n in rows}


def _rows(session: Session, trainings: Sequence[Training]) -> list[TrainingRow]:
    taken = seats_taken(session, [tr.id for tr in trainings])
    return [TrainingRow(tr, taken.get(tr.id, 0)) for tr in trainings]


def upcoming(session: Session, now: datetime | None = None,
             within: timedelta | None = None) -> list[TrainingRow]:
    """Scheduled trainings that have not started yet, soonest first."""
    moment = now or utcnow()
    query = select(Training).where(Training.status == TrainingStatus.dijadwalkan,
                                   Training.starts_at >= moment)
    if within is not None:
        query = query.where(Training.starts_at < moment + within)
    return _rows(session, list(session.scalars(query.order_by(Training.starts_at,
                                                                Training.id))))


def all_trainings(session: Session) -> list[TrainingRow]:
    """Every training, newest first (the dashboard's list)."""
    return _rows(session, list(session.scalars(select(Training).order_by(
        Training.starts_at.desc(), Training.id.desc()))))


def register(session: Session, training_id: int, business: Business, *,
             source: RegistrationSource, actor: str,
             now: datetime | None = None) -> TrainingRegistration:
    """Register ``business``: refused when closed, already registered or full."""
    training = session.scalars(select(Training).where(Training.id == training_id)
                               .with_for_update()).first()
    if training is None:
        raise NotFound("training.err.unknown", id=training_id)
    started = (aware(training.starts_at) or utcnow()) < (now or utcnow())
    if training.status != TrainingStatus.dijadwalkan or started:
        raise Conflict("training.err.closed", topic=training.topic)
    if registration_of(session, training.id, business.id) is not None:
        raise Conflict("training.err.already", topic=training.topic)
    if seats_taken(session, [training.id]).get(training.id, 0) >= training.capacity:
        raise Conflict("training.err.full", topic=training.topic, capacity=training.capacity)
    registration = TrainingRegistration(training_id=training.id, business_id=business.id,
                                        source=source, registered_by=actor)
    try:
        with session.begin_nested():
            session.add(registration)
    except IntegrityError:  # a parallel click of the same business won the race
        raise Conflict("training.err.already", topic=training.topic) from None
    _audit(session, actor, "training.register", training.id,
           {"business_id": business.id, "source": source.value})
    return registration


def registration_of(session: Session, training_id: int,
                    business_id: int) -> TrainingRegistration | None:
    return session.scalars(select(TrainingRegistration).where(
        TrainingRegistration.training_id == training_id,
        TrainingRegistration.business_id == business_id)).first()


def registrations_of_business(session: Session, business_id: int
                              ) -> list[tuple[TrainingRegistration, Training]]:
    """The owner's view: their registrations with the trainings, soonest first."""
    rows = session.execute(select(TrainingRegistration, Training).join(
        Training, Training.id == TrainingRegistration.training_id).where(
        TrainingRegistration.business_id == business_id).order_by(Training.starts_at))
    return [(reg, tr) for reg, tr in rows.tuples()]


def participants(session: Session, training_id: int
                 ) -> list[tuple[TrainingRegistration, Business]]:
    rows = session.execute(select(TrainingRegistration, Business).join(
        Business, Business.id == TrainingRegistration.business_id).where(
        TrainingRegistration.training_id == training_id).order_by(Business.name))
    return [(reg, b) for reg, b in rows.tuples()]


def record_attendance(session: Session, training_id: int, business_id: int,
                      attended: bool, *, actor: str) -> TrainingRegistration:
    """Hadir / tidak hadir of a registered business (only registered ones count)."""
    registration = registration_of(session, training_id, business_id)
    if registration is None:
        raise NotFound("training.err.not_registered", id=business_id)
    registration.attendance = Attendance.hadir if attended else Attendance.tidak_hadir
    registration.attendance_by = actor
    registration.attendance_at = utcnow()
    session.flush()
    _audit(session, actor, "training.attendance", training_id,
           {"business_id": business_id, "attendance": registration.attendance.value})
    return registration


def set_status(session: Session, training: Training, status: TrainingStatus, *,
               actor: str) -> None:
    training.status = status
    session.flush()
    _audit(session, actor, "training.status", training.id, {"status": status.value})


def where_text(training: Training) -> str:
    """The place, or "Daring" for an online-only training (the link is shown beside it)."""
    return training.place or t("training.online")


def when_text(training: Training, lang: str = "id") -> str:
    """``Kamis, 10 Desember 2026, 09.00 WITA``."""
    moment = aware(training.starts_at) or utcnow()
    return f"{tanggal(moment, lang)}, {jam(moment, lang)}"


def whatsapp_link(training: Training, business_name: str | None = None,
                  lang: str = "id") -> str:
    """A ``wa.me`` share link whose prefilled text names the training, for owners who
    register by WhatsApp; staff then record the registration on the dashboard."""
    text = t("training.wa_text", topic=training.topic, when=when_text(training, lang),
             id=training.id, business=business_name or "...")
    return f"{WA_SHARE}?{urlencode({'text': text}, quote_via=quote)}"


def _audit(session: Session, actor: str, action: str, training_id: int,
           detail: dict[str, object]) -> None:
    session.add(AuditLog(actor=actor, action=action, entity="training",
                         entity_id=str(training_id), detail=detail))
    session.flush()
