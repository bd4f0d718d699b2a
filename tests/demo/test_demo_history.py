"""Issue 19: the demo seeds a year of past campaign runs, so every monthly report has a
trend: 12 months with sends, opens and clicks, social metrics and attributed orders."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.demo.history import HISTORY_KEY, HISTORY_NOTE, month_starts
from engine.demo.seeding import seed_demo
from engine.models import CampaignRun, Delivery, EngagementEvent
from engine.reporting.build import build_report

REF = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def _history_rows(db: Session) -> tuple[int, int]:
    deliveries = db.scalar(select(func.count()).select_from(Delivery)
                           .join(CampaignRun).where(CampaignRun.status_reason == HISTORY_NOTE))
    events = db.scalar(select(func.count()).select_from(EngagementEvent)
                       .join(CampaignRun, CampaignRun.id == EngagementEvent.run_id)
                       .where(CampaignRun.status_reason == HISTORY_NOTE))
    return int(deliveries or 0), int(events or 0)


def test_twelve_months_before_the_reference_month() -> None:
    starts = month_starts(REF)
    assert len(starts) == 12
    assert starts[0] == datetime(2025, 11, 30, 16, 0, tzinfo=UTC)  # 1 Dec 2025 00:00 WITA
    assert starts[-1] == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 1 Nov 2026 WITA


def test_a_year_of_history_gives_every_month_a_trend(db: Session) -> None:
    summary = seed_demo(db, reference=REF)
    db.commit()
    assert summary.history_months == 12
    runs = db.scalars(select(CampaignRun).where(CampaignRun.status_reason == HISTORY_NOTE)
                      .order_by(CampaignRun.scheduled_at)).all()
    assert [r.trigger_key for r in runs][:2] == [f"{HISTORY_KEY}:2025-11", f"{HISTORY_KEY}:2025-12"]
    report = build_report(db, "2025-12..2026-11", "month")
    rows = {row.key: {k: v or 0 for k, v in row.values.items()} for row in report.rows}
    assert len(rows) == 12
    for metric in ("sent", "unique_opens", "unique_clicks", "social_posts", "social_views",
                   "orders"):
        assert all(values[metric] > 0 for values in rows.values()), metric
    months = sorted(rows)
    assert rows[months[-1]]["sent"] > rows[months[0]]["sent"]  # a trend, not a flat line
    deliveries, events = _history_rows(db)
    assert deliveries < 12 * 400 and events < 12 * 1500  # a few hundred rows a month

    again = seed_demo(db, reference=REF)
    assert again.history_months == 12 and _history_rows(db) == (deliveries, events)
