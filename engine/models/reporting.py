"""What the monthly report mailing sent (issue 19): one row per report period.

Why a table: the beat may run twice at the same moment (two beats, a retry); the unique
``period`` makes the second insert fail, so each month's report is mailed once, and the
row records when, to whom and in which format it went.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigId, utcnow

__all__ = ["ReportDispatch"]


class ReportDispatch(Base):
    __tablename__ = "report_dispatch"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(String(16), unique=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    recipients: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(8), default="")
