"""Pasal 8 participation for the monthly report: registrations and attendance per UMKM
and per kecamatan (Pasal 15 monitoring).

Why counted from the registration rows: a business registered by WhatsApp and recorded
by staff counts the same as one that registered in the portal, and a business that came
to three trainings counts three registrations but one business. A period selects
trainings by their start time, so a training counts in the month it was held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine.models import Attendance, Business, Training, TrainingRegistration
from engine.umkm import wilayah

__all__ = ["ParticipationRow", "TrainingParticipation", "training_participation"]


@dataclass(frozen=True)
class ParticipationRow:
    """One kecamatan or one business: ``trainings`` distinct trainings registered for."""

    key: str
    label: str
    kecamatan: str
    registrations: int
    attended: int
    trainings: int


@dataclass
class TrainingParticipation:
    by_kecamatan: list[ParticipationRow] = field(default_factory=list)
    by_business: list[ParticipationRow] = field(default_factory=list)
    trainings_held: int = 0

    @property
    def registrations(self) -> int:
        return sum(row.registrations for row in self.by_kecamatan)

    @property
    def attended(self) -> int:
        return sum(row.attended for row in self.by_kecamatan)


def _window(query: Any, start: datetime | None, end: datetime | None) -> Any:
    if start is not None:
        query = query.where(Training.starts_at >= start)
    if end is not None:
        query = query.where(Training.starts_at < end)
    return query


def _counts(session: Session, group: list[Any], start: datetime | None,
            end: datetime | None) -> list[Any]:
    attended = func.sum(case((TrainingRegistration.attendance == Attendance.hadir, 1),
                             else_=0))
    query = (select(*group, func.count(TrainingRegistration.id), attended,
                    func.count(func.distinct(TrainingRegistration.training_id)))
             .select_from(TrainingRegistration)
             .join(Training, Training.id == TrainingRegistration.training_id)
             .join(Business, Business.id == TrainingRegistration.business_id)
             .group_by(*group))
    return list(session.execute(_window(query, start, end)).all())


def training_participation(session: Session, start: datetime | None = None,
                           end: datetime | None = None) -> TrainingParticipation:
    """Participation in trainings that start in ``[start, end)`` (all when open)."""
    result = TrainingParticipation()
    for code, regs, came, distinct in _counts(session, [Business.kecamatan_code], start, end):
        name = wilayah.kecamatan_name(code) or code
        result.by_kecamatan.append(ParticipationRow(code, name, name, int(regs),
                                                    int(came or 0), int(distinct)))
    group = [Business.id, Business.name, Business.kecamatan_code]
    for bid, name, code, regs, came, distinct in _counts(session, group, start, end):
        result.by_business.append(ParticipationRow(
            str(bid), name, wilayah.kecamatan_name(code) or code, int(regs), int(came or 0),
            int(distinct)))
    result.by_kecamatan.sort(key=lambda r: (-r.registrations, r.label))
    result.by_business.sort(key=lambda r: (-r.attended, -r.registrations, r.label))
    held = _window(select(func.count(Training.id)), start, end)
    result.trainings_held = int(session.scalar(held) or 0)
    return result
