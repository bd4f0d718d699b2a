"""Pengawasan (Pasal 14): supervision notes and complaints about product or service quality.

A complaint is about ONE subject: a UMKM (its products) or an agreement (the provider's
service). It moves ``open`` -> ``ditindaklanjuti`` -> ``selesai`` through follow-up
notes, each kept with its author, so the record shows what the Dinas did and when
(Pasal 14(3) huruf c, and the evaluation of Pasal 15). An owner may read the complaints
about their own business, never anybody else's (:func:`complaints_of_business`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import InvalidInput, NotFound
from engine.models import Agreement, AuditLog, Business, Complaint, ComplaintFollowUp

STATUSES: tuple[str, ...] = ("open", "ditindaklanjuti", "selesai")
KINDS: tuple[str, ...] = ("keluhan", "catatan")
MAX_TEXT = 5000


def _subject(session: Session, business_id: int | None,
             agreement_id: int | None) -> tuple[int | None, int | None]:
    if (business_id is None) == (agreement_id is None):
        raise InvalidInput("complaint.one_subject")
    if business_id is not None and session.get(Business, business_id) is None:
        raise InvalidInput("complaint.unknown_business", id=business_id)
    if agreement_id is not None and session.get(Agreement, agreement_id) is None:
        raise InvalidInput("complaint.unknown_agreement", id=agreement_id)
    return business_id, agreement_id


def _text(value: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput("complaint.text_required")
    return text[:MAX_TEXT]


def create_complaint(session: Session, *, text: str, actor: str, kind: str = "keluhan",
                     business_id: int | None = None,
                     agreement_id: int | None = None) -> Complaint:
    """A new open complaint or note about one business or one agreement."""
    if kind not in KINDS:
        raise InvalidInput("complaint.bad_kind", kind=kind, allowed=", ".join(KINDS))
    business_id, agreement_id = _subject(session, business_id, agreement_id)
    complaint = Complaint(kind=kind, business_id=business_id, agreement_id=agreement_id,
                          text=_text(text), status="open", created_by=actor)
    session.add(complaint)
    session.flush()
    session.add(AuditLog(actor=actor, action="complaint.create", entity="complaint",
                         entity_id=str(complaint.id), detail={"kind": kind}))
    return complaint


def follow_up(session: Session, complaint_id: int, *, note: str, status: str,
              actor: str) -> ComplaintFollowUp:
    """Add a follow-up note and move the complaint to ``status``."""
    complaint = get_complaint(session, complaint_id)
    if status not in STATUSES:
        raise InvalidInput("complaint.bad_status", status=status, allowed=", ".join(STATUSES))
    entry = ComplaintFollowUp(complaint_id=complaint.id, note=_text(note), status=status,
                              author=actor)
    complaint.status = status
    session.add(entry)
    session.add(AuditLog(actor=actor, action="complaint.follow_up", entity="complaint",
                         entity_id=str(complaint.id), detail={"status": status}))
    session.flush()
    return entry


def get_complaint(session: Session, complaint_id: int) -> Complaint:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound("complaint.not_found", id=complaint_id)
    return complaint


def list_complaints(session: Session, status: str | None = None) -> list[Complaint]:
    stmt = select(Complaint).order_by(Complaint.id.desc())
    if status in STATUSES:
        stmt = stmt.where(Complaint.status == status)
    return list(session.scalars(stmt))


def complaints_of_business(session: Session, business_id: int) -> list[Complaint]:
    """The complaints about one business only (the owner's portal view)."""
    return list(session.scalars(select(Complaint).where(Complaint.business_id == business_id)
                                .order_by(Complaint.id.desc())))


def follow_ups(session: Session, complaint_ids: list[int]) -> dict[int, list[ComplaintFollowUp]]:
    """Follow-up notes of the given complaints, oldest first, in one query."""
    found: dict[int, list[ComplaintFollowUp]] = {i: [] for i in complaint_ids}
    if complaint_ids:
        for row in session.scalars(select(ComplaintFollowUp).where(
                ComplaintFollowUp.complaint_id.in_(complaint_ids))
                .order_by(ComplaintFollowUp.id)):
            found[row.complaint_id].append(row)
    return found
