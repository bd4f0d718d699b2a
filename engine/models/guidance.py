"""Tables of Pasal 9 (pendampingan): an owner's request for guidance and its sessions.

Why a request row with its own status: Pasal 9 ayat (2) has the Dinas appoint the tenaga
pendamping, so a request waits (``diajukan``) until an admin assigns one
(``ditugaskan``); the first logged session makes it ``berjalan`` and the pendamping
closes it (``selesai``). The time from the request to the first answer is a figure of
the monthly report, so every step keeps its own timestamp.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigId, StrEnum, utcnow
from engine.models.base import enum_type as _enum

__all__ = ["GuidanceRequest", "GuidanceSession", "GuidanceStatus", "GuidanceTopic"]


class GuidanceTopic(StrEnum):
    """Pasal 9 ayat (1) huruf a-e."""

    legalitas = "legalitas"
    standardisasi_sertifikasi = "standardisasi_sertifikasi"
    permodalan = "permodalan"
    manajemen = "manajemen"
    pemasaran = "pemasaran"


class GuidanceStatus(StrEnum):
    diajukan = "diajukan"
    ditugaskan = "ditugaskan"
    berjalan = "berjalan"
    selesai = "selesai"


class GuidanceRequest(Base):
    __tablename__ = "guidance_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    topic: Mapped[GuidanceTopic] = mapped_column(_enum(GuidanceTopic))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[GuidanceStatus] = mapped_column(
        _enum(GuidanceStatus), default=GuidanceStatus.diajukan)
    requested_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    pendamping_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    assigned_by: Mapped[str | None] = mapped_column(String(120))
    assigned_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()


class GuidanceSession(Base):
    """One session; ``notes`` and the follow-up are shown to the owner, ``private_notes``
    only to the pendamping who wrote them (and the Dinas admin)."""

    __tablename__ = "guidance_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("guidance_request.id"), index=True)
    pendamping_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    held_on: Mapped[date] = mapped_column(Date)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text)
    private_notes: Mapped[str | None] = mapped_column(Text)
    follow_up: Mapped[str | None] = mapped_column(Text)
    follow_up_due: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
