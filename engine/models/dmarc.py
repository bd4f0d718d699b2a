"""DMARC aggregate reports (RFC 7489 appendix C) and the warm-up's per-day counter.

Why rows and not files: the summary (per day and sending IP) and the doctor's "unknown
source" line are queries; a report is stored once per (org_name, report_id), so the same
report delivered twice (mailbox and CLI) counts once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import Base, BigId, utcnow

__all__ = ["DmarcRecord", "DmarcReport", "WarmupDay"]


class DmarcReport(Base):
    """One aggregate report: who sent it, the period it covers and the published policy."""

    __tablename__ = "dmarc_report"
    __table_args__ = (UniqueConstraint("org_name", "report_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_name: Mapped[str] = mapped_column(String(255))
    report_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255), default=None)
    date_begin: Mapped[datetime] = mapped_column(index=True)
    date_end: Mapped[datetime]
    policy_domain: Mapped[str] = mapped_column(String(255))
    policy_p: Mapped[str] = mapped_column(String(16))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    records: Mapped[list[DmarcRecord]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="DmarcRecord.id")


class DmarcRecord(Base):
    """One ``<record>`` row: a source IP, how many messages, what the receiver decided."""

    __tablename__ = "dmarc_record"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("dmarc_report.id", ondelete="CASCADE"),
                                           index=True)
    source_ip: Mapped[str] = mapped_column(String(64), index=True)
    count: Mapped[int] = mapped_column(Integer)
    disposition: Mapped[str] = mapped_column(String(16))
    dkim_aligned: Mapped[bool]
    spf_aligned: Mapped[bool]
    header_from: Mapped[str] = mapped_column(String(255))
    # The raw auth_results: [{"method": "dkim", "domain": ..., "result": ...}, ...]
    auth_results: Mapped[list[Any]] = mapped_column(default=list)
    report: Mapped[DmarcReport] = relationship(back_populates="records")


class WarmupDay(Base):
    """One local day of the warm-up: its quota and how many email claims it granted.

    The row is what two workers lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
    serializes writers) while they count and claim, so no day goes above its quota.
    """

    __tablename__ = "warmup_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    quota: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
