"""The decided winner of an A/B test with a winner rule (issue 19).

Why a table: the decision is made once, by the beat, hours after the test group went
out; it must survive restarts, be shown by ``umkm campaign ab`` with the figures it was
made on, and a second beat must never decide again. ``run_id`` is unique, so two beats
deciding at the same instant insert one row (the loser's insert fails in a savepoint).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigId, utcnow

__all__ = ["AbWinner"]


class AbWinner(Base):
    """Which variant won a run's test, on which metric and figures, and when."""

    __tablename__ = "ab_winner"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_run.id", ondelete="CASCADE"),
                                        unique=True)
    variant: Mapped[str] = mapped_column(String(40))
    metric: Mapped[str] = mapped_column(String(32))
    significant: Mapped[bool] = mapped_column(Boolean, default=False)
    # How the winner was chosen: "significant", or the rule's fallback ("best", "control").
    decided_by: Mapped[str] = mapped_column(String(32))
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rest_planned: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
