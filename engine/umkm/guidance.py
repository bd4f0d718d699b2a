"""Pasal 9: guidance (pendampingan) requested by an owner, given by a tenaga pendamping.

Why the checks live here and not in the routes: the portal, the pendamping's pages, the
dashboard and the CLI all change requests, and each must refuse the same things: a
pendamping works only on requests assigned to them (Pasal 9 ayat 2: the Dinas appoints),
only an active ``pendamping`` account can be assigned, and a finished request takes no
new sessions. Functions ``flush`` but never ``commit``; lookups that a person could use
to probe ids answer :class:`~engine.common.errors.NotFound` for "not yours" exactly as
for "does not exist".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, Conflict, NotFound
from engine.models import (
    AuditLog,
    Business,
    GuidanceRequest,
    GuidanceSession,
    GuidanceStatus,
    GuidanceTopic,
    Role,
    User,
    utcnow,
)

MAX_TEXT = 4000
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class SessionEntry:
    """What a session shows; ``private_notes`` is filled only for the pendamping's view."""

    held_on: date
    duration_minutes: int
    notes: str
    follow_up: str | None
    follow_up_due: date | None
    private_notes: str | None = None


def parse_topic(value: str) -> GuidanceTopic:
    try:
        return GuidanceTopic((value or "").strip())
    except ValueError:
        raise BadRequest("guidance.err.topic", topic=(value or "")[:40]) from None


def _text(value: str | None, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise BadRequest("guidance.err.description")
    if len(text) > MAX_TEXT:
        raise BadRequest("guidance.err.too_long", max=MAX_TEXT)
    return text or None


def create_request(session: Session, business: Business, topic: str, description: str, *,
                   actor: str) -> GuidanceRequest:
    """An owner asks for guidance on one topic of Pasal 9 ayat (1)."""
    request = GuidanceRequest(business_id=business.id, topic=parse_topic(topic),
                              description=_text(description, required=True) or "",
                              requested_by=actor)
    session.add(request)
    session.flush()
    _audit(session, actor, "guidance.request", request.id, {"topic": request.topic.value})
    return request


def get_request(session: Session, request_id: int) -> GuidanceRequest:
    found = session.get(GuidanceRequest, request_id)
    if found is None:
        raise NotFound("guidance.err.unknown", id=request_id)
    return found


def request_of_owner(session: Session, business_id: int, request_id: int) -> GuidanceRequest:
    """The owner's own request, else 404 (another business's id looks like no id)."""
    found = get_request(session, request_id)
    if found.business_id != business_id:
        raise NotFound("guidance.err.unknown", id=request_id)
    return found


def request_of_pendamping(session: Session, user: User, request_id: int) -> GuidanceRequest:
    """A request assigned to this pendamping, else 404."""
    found = get_request(session, request_id)
    if found.pendamping_id != user.id:
        raise NotFound("guidance.err.unknown", id=request_id)
    return found


def requests_of_business(session: Session, business_id: int) -> list[GuidanceRequest]:
    return list(session.scalars(select(GuidanceRequest).where(
        GuidanceRequest.business_id == business_id).order_by(GuidanceRequest.id.desc())))


def requests_of_pendamping(session: Session, user: User
                           ) -> list[tuple[GuidanceRequest, Business]]:
    rows = session.execute(select(GuidanceRequest, Business).join(
        Business, Business.id == GuidanceRequest.business_id).where(
        GuidanceRequest.pendamping_id == user.id).order_by(GuidanceRequest.id.desc()))
    return [(r, b) for r, b in rows.tuples()]


def all_requests(session: Session, status: GuidanceStatus | None = None
                 ) -> list[tuple[GuidanceRequest, Business]]:
    query = select(GuidanceRequest, Business).join(
        Business, Business.id == GuidanceRequest.business_id)
    if status is not None:
        query = query.where(GuidanceRequest.status == status)
    rows = session.execute(query.order_by(GuidanceRequest.id.desc()))
    return [(r, b) for r, b in rows.tuples()]


def pendampings(session: Session) -> list[User]:
    """Active accounts an admin may assign (role ``pendamping``)."""
    return list(session.scalars(select(User).where(
        User.role == Role.pendamping, User.active.is_(True)).order_by(User.username)))


def assign(session: Session, request: GuidanceRequest, pendamping: User, *,
           actor: str) -> None:
    """Appoint (or replace) the pendamping of a request; a finished one stays closed."""
    if pendamping.role != Role.pendamping or not pendamping.active:
        raise BadRequest("guidance.err.not_pendamping", username=pendamping.username)
    if request.status == GuidanceStatus.selesai:
        raise Conflict("guidance.err.closed", id=request.id)
    request.pendamping_id = pendamping.id
    request.assigned_by = actor
    if request.assigned_at is None:
        request.assigned_at = utcnow()
    if request.status == GuidanceStatus.diajukan:
        request.status = GuidanceStatus.ditugaskan
    session.flush()
    _audit(session, actor, "guidance.assign", request.id, {"pendamping": pendamping.username})


def log_session(session: Session, request: GuidanceRequest, pendamping: User, *,
                held_on: date, duration_minutes: int, notes: str,
                private_notes: str | None = None, follow_up: str | None = None,
                follow_up_due: date | None = None) -> GuidanceSession:
    """One session of the assigned pendamping; the request is ``berjalan`` afterwards."""
    if request.pendamping_id != pendamping.id:
        raise NotFound("guidance.err.unknown", id=request.id)
    if request.status == GuidanceStatus.selesai:
        raise Conflict("guidance.err.closed", id=request.id)
    if not 0 < duration_minutes <= MAX_MINUTES:
        raise BadRequest("guidance.err.duration", max=MAX_MINUTES)
    entry = GuidanceSession(request_id=request.id, pendamping_id=pendamping.id,
                            held_on=held_on, duration_minutes=duration_minutes,
                            notes=_text(notes, required=True) or "",
                            private_notes=_text(private_notes), follow_up=_text(follow_up),
                            follow_up_due=follow_up_due)
    session.add(entry)
    request.status = GuidanceStatus.berjalan
    session.flush()
    _audit(session, pendamping.username, "guidance.session", request.id,
           {"minutes": duration_minutes})
    return entry


def close_request(session: Session, request: GuidanceRequest, pendamping: User) -> None:
    if request.pendamping_id != pendamping.id:
        raise NotFound("guidance.err.unknown", id=request.id)
    request.status = GuidanceStatus.selesai
    request.closed_at = utcnow()
    session.flush()
    _audit(session, pendamping.username, "guidance.close", request.id, {})


def sessions_of(session: Session, request_id: int, *, private: bool = False
                ) -> list[SessionEntry]:
    """Sessions of a request, oldest first; private notes only when ``private``."""
    rows = session.scalars(select(GuidanceSession).where(
        GuidanceSession.request_id == request_id).order_by(GuidanceSession.held_on,
                                                          GuidanceSession.id))
    return [SessionEntry(s.held_on, s.duration_minutes, s.notes, s.follow_up,
                         s.follow_up_due, s.private_notes if private else None)
            for s in rows]


def session_counts(session: Session, request_ids: list[int]) -> dict[int, int]:
    if not request_ids:
        return {}
    rows = session.execute(select(GuidanceSession.request_id, func.count()).where(
        GuidanceSession.request_id.in_(request_ids)).group_by(
        GuidanceSession.request_id)).tuples().all()
    return {int(r): int(n) for r, n in rows}


def parse_day(value: str, *, required: bool = True) -> date | None:
    text = (value or "").strip()
    if not text and not required:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest("guidance.err.date", value=text[:40]) from None


def parse_minutes(value: str) -> int:
    text = (value or "").strip()
    if not text.isdigit() or len(text) > 5:
        raise BadRequest("guidance.err.duration", max=MAX_MINUTES)
    return int(text)


def _audit(session: Session, actor: str, action: str, request_id: int,
           detail: dict[str, object]) -> None:
    session.add(AuditLog(actor=actor, action=action, entity="guidance_request",
                         entity_id=str(request_id), detail=detail))
    session.flush()
