"""The studio's own table: where a staff member's test sends may go (issue 18).

Why a row per user and not a free address field: a test send renders a real campaign
for a real recipient; letting staff type any address would turn the editor into a way
to mail anyone. An admin records the staff member's own email and WhatsApp number
(``umkm users contact``); the test send goes only there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigId, utcnow

__all__ = ["StaffContact"]


class StaffContact(Base):
    """A staff member's own addresses for studio test sends."""

    __tablename__ = "staff_contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"),
                                         unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    whatsapp: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
