"""Tables of Perbup TTS 17/2025 Pasal 11-14: the annual plan and the supervision register.

Why their own module: planning (Pasal 11-12: rencana tahunan, budget, coordination
partners) and protection/supervision (Pasal 13-14: agreements with digital service
providers, complaints) are programme administration, not campaign machinery; keeping
them apart keeps :mod:`engine.models` short and the concern readable in one place.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigId, utcnow

__all__ = [
    "Agreement",
    "Complaint",
    "ComplaintFollowUp",
    "PlanBudget",
    "PlanPartner",
    "PlanTarget",
    "ProgrammePlan",
]


class ProgrammePlan(Base):
    """The rencana tahunan of one year (Pasal 12(1)); one plan per year."""

    __tablename__ = "programme_plan"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlanTarget(Base):
    """The target of one indicator in one quarter (1..4) of a plan."""

    __tablename__ = "plan_target"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("programme_plan.id", ondelete="CASCADE"),
                                         index=True)
    indicator: Mapped[str] = mapped_column(String(32))
    quarter: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (UniqueConstraint("plan_id", "indicator", "quarter"),)


class PlanBudget(Base):
    """A budget line (Pasal 12(2)): source ``apbd``, ``apbn`` or ``lainnya``, whole Rupiah."""

    __tablename__ = "plan_budget"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("programme_plan.id", ondelete="CASCADE"),
                                         index=True)
    source: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(300), default="")
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    used: Mapped[int] = mapped_column(BigInteger, default=0)


class PlanPartner(Base):
    """A government or non-government institution the Dinas coordinates with (Pasal 11)."""

    __tablename__ = "plan_partner"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("programme_plan.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="pemerintah")
    role: Mapped[str] = mapped_column(Text, default="")


class Agreement(Base):
    """A kesepakatan bersama with a digital service provider (Pasal 13), and its term."""

    __tablename__ = "agreement"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    parties: Mapped[str] = mapped_column(Text, default="")
    rights_obligations: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date, index=True)
    # The uploaded PDF: a sha256 file name under var/agreements/ and the name it had.
    document_key: Mapped[str | None] = mapped_column(String(80))
    document_name: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the expiry reminder was recorded: the beat reminds once per agreement.
    reminded_at: Mapped[datetime | None] = mapped_column()


class Complaint(Base):
    """A supervision note or complaint (Pasal 14(3)) about one UMKM or one agreement."""

    __tablename__ = "complaint"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="keluhan")
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"), index=True)
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreement.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="open")
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ComplaintFollowUp(Base):
    """One follow-up note on a complaint, with the status it left the complaint in."""

    __tablename__ = "complaint_follow_up"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"),
                                              index=True)
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
