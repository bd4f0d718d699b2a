"""Tables of Pasal 8 (pengembangan sumber daya manusia): Dinas trainings and who came.

Why rows and not campaign YAML: a training has a capacity, registrations and an
attendance list that change after it is announced, and the monthly report counts
participation per UMKM and per kecamatan, so each registration is a row tied to a
business (never to a loose name typed in a chat).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigId, StrEnum, utcnow
from engine.models.base import enum_type as _enum

__all__ = ["Attendance", "RegistrationSource", "Training", "TrainingRegistration",
           "TrainingStatus"]


class TrainingStatus(StrEnum):
    dijadwalkan = "dijadwalkan"
    selesai = "selesai"
    dibatalkan = "dibatalkan"


class RegistrationSource(StrEnum):
    portal = "portal"        # the owner registered in the portal
    whatsapp = "whatsapp"    # the owner sent the wa.me text; staff recorded it


class Attendance(StrEnum):
    hadir = "hadir"
    tidak_hadir = "tidak_hadir"


class Training(Base):
    """One training event; ``place`` or ``online_url`` (http(s) only) says where."""

    __tablename__ = "training"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    trainer: Mapped[str] = mapped_column(String(200))
    place: Mapped[str | None] = mapped_column(String(300))
    online_url: Mapped[str | None] = mapped_column(String(500))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[TrainingStatus] = mapped_column(
        _enum(TrainingStatus), default=TrainingStatus.dijadwalkan)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRegistration(Base):
    """A business registered for a training (once), and whether it attended."""

    __tablename__ = "training_registration"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("training.id"), index=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    source: Mapped[RegistrationSource] = mapped_column(_enum(RegistrationSource))
    registered_by: Mapped[str] = mapped_column(String(120))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    attendance: Mapped[Attendance | None] = mapped_column(_enum(Attendance))
    attendance_by: Mapped[str | None] = mapped_column(String(120))
    attendance_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("training_id", "business_id"),)
