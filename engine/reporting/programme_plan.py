"""Pemantauan rencana tahunan (Pasal 11(2) huruf c-d, Pasal 12): target vs realisation.

Why a registry of realisation functions: each indicator is counted by the module that
owns its facts, with ONE definition. The built-in ones reuse the report's own queries
(:func:`engine.reporting.build.programme_indicators` and :func:`build_report`, see
``docs/metrics.md``), so "UMKM aktif digital" or "jangkauan" on the plan page is exactly
the number of the monitoring report. Trainings (Pasal 8) and guidance sessions (Pasal 9)
are counted here from their own tables (trainings marked held, guidance sessions
logged); :func:`register_indicator` lets a plugin replace a definition.

A realisation function gets the local (WITA) dates ``start`` (inclusive) and ``end``
(exclusive) of one quarter and returns a whole number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import (
    CampaignRun,
    GuidanceSession,
    PlanBudget,
    PlanPartner,
    ProgrammePlan,
    Training,
    TrainingStatus,
)
from engine.reporting.build import build_report, programme_indicators
from engine.reporting.periods import Period, local_now_date
from engine.reporting.plan_file import (
    CUMULATIVE,
    INDICATORS,
    QUARTERS,
    indicator_label,
    plan_of,
    targets_of,
)
from engine.reporting.sql import in_period

Realiser = Callable[[Session, date, date], int]


PLAN_TZ = ZoneInfo("Asia/Makassar")  # quarters are WITA calendar quarters


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """First day of the quarter and first day after it (local dates)."""
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == QUARTERS else date(year, 3 * quarter + 1, 1)
    return start, end


def period_of(start: date, end: date) -> Period:
    """The report period of whole months from ``start`` up to ``end`` (exclusive)."""
    last = date(end.year - 1, 12, 1) if end.month == 1 else date(end.year, end.month - 1, 1)
    return Period(f"{start:%Y-%m}..{last:%Y-%m}", start, last)


def _registered(session: Session, start: date, end: date) -> int:
    return programme_indicators(session, period_of(start, end)).totals["businesses_registered"]


def _eligible(session: Session, start: date, end: date) -> int:
    """Registered by the end of the quarter and meeting Pasal 10 now (the cached verdict
    of :mod:`engine.umkm.eligibility`)."""
    return programme_indicators(session, period_of(start, end)).totals["businesses_eligible"]


def _active(session: Session, start: date, end: date) -> int:
    return programme_indicators(session, period_of(start, end)).totals["businesses_active"]


def _campaign_runs(session: Session, start: date, end: date) -> int:
    """Campaign runs started in the quarter (``CampaignRun.started_at``)."""
    period = period_of(start, end)
    return int(session.scalar(select(func.count(CampaignRun.id)).where(
        in_period(CampaignRun.started_at, period))) or 0)


def _reach(session: Session, start: date, end: date) -> int:
    """Delivered emails (metric ``delivered`` of the email channel) plus ``social_reach``."""
    report = build_report(session, period_of(start, end), "channel")
    email = report.row("email")
    delivered = int(email.values["delivered"] or 0) if email else 0
    return delivered + int(report.totals["social_reach"] or 0)


def _leads(session: Session, start: date, end: date) -> int:
    """Metric ``leads`` of the report: WhatsApp order buttons pressed, bots excepted."""
    return int(build_report(session, period_of(start, end), "channel").totals["leads"] or 0)


def _local_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The quarter's local (WITA) days as UTC instants, ``end`` exclusive."""
    return (datetime.combine(start, time(), PLAN_TZ).astimezone(UTC),
            datetime.combine(end, time(), PLAN_TZ).astimezone(UTC))


def _trainings_held(session: Session, start: date, end: date) -> int:
    """Pasal 8: trainings of the quarter marked ``selesai`` by staff (attendance taken);
    a scheduled or cancelled one is not a training held."""
    since, until = _local_bounds(start, end)
    return int(session.scalar(select(func.count(Training.id)).where(
        Training.status == TrainingStatus.selesai,
        Training.starts_at >= since, Training.starts_at < until)) or 0)


def _guidance_sessions(session: Session, start: date, end: date) -> int:
    """Pasal 9: guidance sessions held in the quarter (``GuidanceSession.held_on``, a local
    date), the consultations a pendamping logged."""
    return int(session.scalar(select(func.count(GuidanceSession.id)).where(
        GuidanceSession.held_on >= start, GuidanceSession.held_on < end)) or 0)


REALISATION: dict[str, Realiser] = {
    "umkm_terdaftar": _registered,
    "umkm_layak": _eligible,
    "umkm_aktif_digital": _active,
    "kampanye": _campaign_runs,
    "jangkauan": _reach,
    "minat": _leads,
    "pelatihan": _trainings_held,
    "konsultasi": _guidance_sessions,
}


def register_indicator(key: str, realiser: Realiser) -> None:
    """Make ``realiser`` count indicator ``key`` (trainings and guidance modules call it)."""
    if key not in INDICATORS:
        raise ValueError(f"unknown plan indicator {key!r}")
    REALISATION[key] = realiser


# --- the monitoring table ---------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorProgress:
    """One indicator: four quarterly targets and realisations (None = not set / not yet)."""

    key: str
    label: str
    cumulative: bool
    targets: list[int | None]
    realised: list[int | None]

    def _year(self, values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        if not known:
            return None
        return known[-1] if self.cumulative else sum(known)

    @property
    def year_target(self) -> int | None:
        return self._year(self.targets)

    @property
    def year_realised(self) -> int | None:
        return self._year(self.realised)

    @property
    def percent(self) -> float | None:
        """Realisation as a share of the year's target (None without a target)."""
        target, done = self.year_target, self.year_realised
        return None if not target or done is None else done / target


@dataclass(frozen=True)
class PlanMonitoring:
    year: int
    plan: ProgrammePlan | None
    indicators: list[IndicatorProgress]
    budget: list[PlanBudget] = field(default_factory=list)
    partners: list[PlanPartner] = field(default_factory=list)

    @property
    def budget_total(self) -> int:
        return sum(int(b.amount) for b in self.budget)

    @property
    def budget_used(self) -> int:
        return sum(int(b.used) for b in self.budget)

    def indicator(self, key: str) -> IndicatorProgress:
        return next(i for i in self.indicators if i.key == key)


def monitor_plan(session: Session, year: int, today: date | None = None) -> PlanMonitoring:
    """Target vs realisation per indicator per quarter of ``year``; quarters that have not
    begun by ``today`` (WITA) have no realisation yet."""
    today = today or local_now_date()
    plan = plan_of(session, year)
    empty: dict[str, list[int | None]] = {k: [None] * QUARTERS for k in INDICATORS}
    targets = targets_of(session, plan) if plan else empty
    bounds = [quarter_bounds(year, q) for q in range(1, QUARTERS + 1)]
    rows = []
    for key in INDICATORS:
        realise = REALISATION[key]
        realised = [realise(session, start, end) if start <= today else None
                    for start, end in bounds]
        rows.append(IndicatorProgress(key, indicator_label(key), key in CUMULATIVE,
                                      targets[key], realised))
    budget = list(session.scalars(select(PlanBudget).where(PlanBudget.plan_id == plan.id)
                                  .order_by(PlanBudget.id))) if plan else []
    partners = list(session.scalars(select(PlanPartner).where(PlanPartner.plan_id == plan.id)
                                    .order_by(PlanPartner.id))) if plan else []
    return PlanMonitoring(year, plan, rows, budget, partners)


def plan_year_of(period: Period) -> int | None:
    """The plan year a report period lies in (None when it spans two years)."""
    return period.first.year if period.first.year == period.last.year else None


__all__ = ["REALISATION", "IndicatorProgress", "PlanMonitoring",
           "monitor_plan", "period_of", "quarter_bounds", "register_indicator"]
