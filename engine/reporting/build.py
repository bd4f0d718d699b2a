"""Monitoring and evaluation (Pasal 11 and 15): the report, grouped in the database.

Why everything is aggregated in SQL: a year of a busy programme is millions of engagement
events; pulling them into Python to count would be slow and memory-hungry, and the same
query must serve the CLI, the HTML report and the dashboard. Each *source*
(:mod:`engine.reporting.sources`) is one SQL query producing one row per fact (a
delivery, a social post, a lead, an attributed order) with 0/1 flags or amounts;
:func:`build_report` groups those facts by the requested dimension with ``GROUP BY``
and only merges the few aggregated rows in Python.

Counting rules (the full wording is :data:`engine.reporting.metrics.METRICS`, rendered
into every report and into ``docs/metrics.md``):

- Email funnel metrics are a *cohort*: deliveries **sent** in the period, with all their
  events whenever they happened, so a click-through rate can never exceed 100 %.
- Social metrics are snapshots: for each post and metric the latest value counts.
- Posts and metrics invented by the social sandbox are *simulated*: they are kept out of
  every row and total and come back in :attr:`Report.simulated`, shown marked apart.
- Per-UMKM attribution: a message that carried products of three UMKM counts once for
  each of the three (``DeliveryProduct`` plus ``Delivery.business_id``); totals count it
  once, so the sum of business rows can exceed the total.
- An order is attributed to the campaign of the customer's latest human click on a link
  of the same UMKM, if ``click <= ordered_at <= click + N days`` (both ends inclusive).

Periods are calendar months in WITA (``Asia/Makassar``): ``2026-12``, ``2026`` or
``2026-10..2026-12`` (:mod:`engine.reporting.periods`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, FromClause, func, select, text
from sqlalchemy.orm import Session

from channels import channel_label, channel_names
from engine.common.i18n import t
from engine.db import is_postgres
from engine.models import Business, Campaign, CampaignRun, Product, ProductOptIn
from engine.reporting.metrics import INDICATOR_METRICS, REPORT_METRICS, Value
from engine.reporting.periods import Period, ReportError, all_time, parse_period
from engine.reporting.sources import (
    Source,
    active_businesses,
    lead_source,
    order_source,
    outbox_source,
    send_source,
    social_source,
    whatsapp_click_source,
)
from engine.reporting.sql import flag, month_key
from engine.umkm import wilayah

Dimension = Literal["campaign", "channel", "business", "kecamatan", "month", "product", "run"]
# What people choose from (CLI ``--by``, the report page); ``product`` and ``run`` are the
# builder's own groupings for the UMKM page, the run page and the owner portal.
DIMENSIONS: tuple[str, ...] = ("campaign", "channel", "business", "kecamatan", "month")
ALL_DIMENSIONS: tuple[str, ...] = (*DIMENSIONS, "product", "run")
DEFAULT_ATTRIBUTION_DAYS = 7
REPORT_WORK_MEM = "64MB"


# --- grouping -------------------------------------------------------------------------


def _aggregate(session: Session, source: Source, by: str | None, business_id: int | None,
               tz: str) -> dict[Any, dict[str, int]]:
    """``GROUP BY`` one dimension over one source; ``by=None`` gives the total row."""
    f = source.facts
    sums = [func.coalesce(func.sum(f.c[m]), 0).label(m) for m in source.metrics]
    frm: FromClause = f
    conditions: list[ColumnElement[bool]] = []
    key: Any = None
    if source.businesses is None:  # one UMKM (and product) per fact, in the fact itself
        if business_id is not None:
            conditions.append(f.c.business_id == business_id)
        if by == "business":
            key = f.c.business_id
            conditions.append(f.c.business_id.is_not(None))
        elif by == "kecamatan":
            frm = f.join(Business, Business.id == f.c.business_id)
            key = Business.kecamatan_code
        elif by == "product":
            key = f.c.product_id
            conditions.append(f.c.product_id.is_not(None))
    elif by == "product" and source.products is not None:
        frm, key = _join_products(f, source.products, business_id)
    else:
        frm, key = _join_businesses(f, source.businesses, by, business_id)
    if by == "campaign":
        frm = frm.outerjoin(CampaignRun, CampaignRun.id == f.c.run_id)
        key = CampaignRun.campaign_id
    elif by == "channel":
        key = f.c.channel
    elif by == "month":
        key = month_key(f.c.at, tz)
    elif by == "run":
        key = f.c.run_id
        conditions.append(f.c.run_id.is_not(None))
    if key is None:
        row = session.execute(select(*sums).select_from(frm).where(*conditions)).one()
        return {None: {m: round(row._mapping[m] or 0) for m in source.metrics}}
    stmt = select(key.label("key"), *sums).select_from(frm).where(*conditions).group_by(key)
    return {
        row._mapping["key"]: {m: round(row._mapping[m] or 0) for m in source.metrics}
        for row in session.execute(stmt)
    }


def _join_businesses(f: FromClause, mapping: FromClause, by: str | None,
                     business_id: int | None) -> tuple[FromClause, Any]:
    """Facts that may carry several UMKM, joined to their (fact, UMKM) pairs as needed."""
    if business_id is not None:
        mapping = (select(mapping.c.fact_id, mapping.c.business_id)
                   .where(mapping.c.business_id == business_id).subquery())
    if by == "kecamatan":  # a message with two UMKM of one kecamatan counts once there
        per_kecamatan = (
            select(mapping.c.fact_id, Business.kecamatan_code.label("key")).distinct()
            .join(Business, Business.id == mapping.c.business_id).subquery()
        )
        return (f.join(per_kecamatan, per_kecamatan.c.fact_id == f.c.fact_id),
                per_kecamatan.c.key)
    if by == "business" or business_id is not None:
        return (f.join(mapping, mapping.c.fact_id == f.c.fact_id),
                mapping.c.business_id if by == "business" else None)
    return f, None


def _join_products(f: FromClause, mapping: FromClause,
                   business_id: int | None) -> tuple[FromClause, Any]:
    """A message counts once for each product it carried (of the UMKM, when one is given)."""
    pairs = select(mapping.c.fact_id, mapping.c.product_id).distinct()
    if business_id is not None:
        pairs = pairs.where(mapping.c.business_id == business_id)
    per_product = pairs.subquery()
    return f.join(per_product, per_product.c.fact_id == f.c.fact_id), per_product.c.product_id


@contextmanager
def _reporting_settings(session: Session) -> Iterator[None]:
    """On PostgreSQL: enough memory to sort/hash a month in RAM, and no JIT.

    Why: with the 4 MB default the deduplication of (message, UMKM) pairs spills to disk,
    and JIT compilation costs more than it saves on these sub-second queries. Both are
    set transaction-locally and restored afterwards, so the caller's session is unchanged.
    """
    if not is_postgres(session):
        yield
        return
    previous = session.execute(
        text("SELECT current_setting('work_mem'), current_setting('jit')")).one()
    session.execute(text("SELECT set_config('work_mem', :mem, true), "
                         "set_config('jit', 'off', true)"), {"mem": REPORT_WORK_MEM})
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('work_mem', :mem, true), "
                             "set_config('jit', :jit, true)"),
                        {"mem": previous[0], "jit": previous[1]})


# --- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One group of the report: ``key`` is the id/code/month, ``label`` what people read."""

    key: Any
    label: str
    values: dict[str, Value]


@dataclass(frozen=True)
class Report:
    period: Period
    by: str
    attribution_days: int
    business_id: int | None
    rows: list[ReportRow]
    totals: dict[str, Value]
    simulated: list[ReportRow] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def metrics(self) -> tuple[str, ...]:
        return REPORT_METRICS

    def row(self, key: Any) -> ReportRow | None:
        return next((r for r in self.rows if r.key == key), None)


def build_report(
    session: Session,
    period: Period | str,
    by: str,
    *,
    business_id: int | None = None,
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS,
) -> Report:
    """Every report metric for ``period`` grouped ``by`` one dimension, plus totals.

    ``business_id`` restricts everything to what one UMKM may see (its owner's view):
    only messages, posts, leads and orders attributed to that business.
    """
    if isinstance(period, str):
        period = parse_period(period)
    if by not in ALL_DIMENSIONS:
        raise ReportError("report.bad_by", by=by, choices=", ".join(DIMENSIONS))
    if not 0 <= attribution_days <= 365:
        raise ReportError("report.bad_days", days=attribution_days)
    messages = ([outbox_source(period), send_source(period)] if by == "month"
                else [send_source(period, with_outbox=True)])
    sources = [*messages, social_source(period), whatsapp_click_source(period),
               lead_source(period), order_source(period, attribution_days)]
    grouped: dict[Any, dict[str, int]] = {}
    totals_raw: dict[str, int] = {}
    with _reporting_settings(session):
        for source in sources:
            for key, values in _aggregate(session, source, by, business_id, period.tz).items():
                grouped.setdefault(key, {}).update(values)
            totals_raw.update(_aggregate(session, source, None, business_id, period.tz)[None])
        simulated: dict[Any, dict[str, int]] = {}
        for source in (send_source(period, simulated=True), social_source(period, True)):
            for key, values in _aggregate(session, source, by, business_id, period.tz).items():
                simulated.setdefault(key, {}).update(values)
    if by == "month":
        for month in period.months:
            grouped.setdefault(month, {})
    simulated = {k: v for k, v in simulated.items() if v.get("social_posts") or v.get("sent")}
    labels = _labels(session, by, [*grouped, *simulated])
    rows = [ReportRow(key, labels[key], _derive(values)) for key, values in grouped.items()]
    rows.sort(key=lambda r: _sort_key(by, r))
    sim_rows = sorted((ReportRow(key, labels[key], _derive(values))
                       for key, values in simulated.items()), key=lambda r: _sort_key(by, r))
    return Report(period, by, attribution_days, business_id, rows, _derive(totals_raw),
                  sim_rows)


def empty_values() -> dict[str, Value]:
    """Every metric of a group nothing happened to: zeros, and no CTR."""
    return _derive({})


def _derive(raw: dict[str, int]) -> dict[str, Value]:
    """Fill missing sources with 0 and compute the derived metrics (delivered, CTR).

    The CTR divides email clicks by delivered *emails*: a WhatsApp message or a post that
    arrived cannot have an email click, so counting them would understate the rate.
    """
    values: dict[str, Value] = {m: raw.get(m, 0) for m in REPORT_METRICS}
    delivered = raw.get("sent", 0) - raw.get("bounced_hard", 0) - raw.get("bounced_soft", 0)
    values["delivered"] = delivered
    emails = raw.get("email_delivered", 0)
    values["ctr"] = raw.get("unique_clicks", 0) / emails if emails > 0 else None
    return values


_CHANNEL_ORDER = channel_names(plugins=False)


def _sort_key(by: str, row: ReportRow) -> tuple[Any, ...]:
    if row.key is None:
        return (1, "")
    if by == "channel":
        order = _CHANNEL_ORDER.index(row.key) if row.key in _CHANNEL_ORDER else 99
        return (0, order, str(row.key))
    if by in ("month", "kecamatan"):
        return (0, str(row.key))
    return (0, row.label.casefold(), str(row.key))


def _labels(session: Session, by: str, keys: list[Any]) -> dict[Any, str]:
    """Readable names for group keys, fetched in one query per report."""
    ids = [k for k in keys if k is not None]
    names: dict[Any, str] = {}
    if by == "campaign" and ids:
        names = dict(session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).tuples().all())
    elif by == "business" and ids:
        names = dict(session.execute(
            select(Business.id, Business.name).where(Business.id.in_(ids))).tuples().all())
    elif by == "kecamatan":
        names = {k: wilayah.kecamatan_name(k) or str(k) for k in ids}
    elif by == "channel":
        names = {k: channel_label(str(k)) for k in ids}
    elif by == "product" and ids:
        names = dict(session.execute(
            select(Product.id, Product.name).where(Product.id.in_(ids))).tuples().all())
    elif by == "run" and ids:
        names = {rid: f"#{rid} {name}" for rid, name in session.execute(
            select(CampaignRun.id, Campaign.name).join(Campaign, Campaign.id ==
                                                        CampaignRun.campaign_id)
            .where(CampaignRun.id.in_(ids))).tuples()}
    elif by == "month":
        names = {k: str(k) for k in ids}
    empty = t("report.no_campaign") if by == "campaign" else t("report.unknown")
    return {k: names.get(k, str(k)) if k is not None else empty for k in keys}


def run_figures(session: Session, run_ids: list[int],
                now: datetime | None = None) -> dict[int, dict[str, Value]]:
    """Every metric per campaign run, over all time: the dashboard's run table and run page.

    The same sources and counting rules as every report (so a run's clicks on the
    dashboard are the report's clicks of that run); runs without facts get zeros.
    """
    if not run_ids:
        return {}
    report = build_report(session, all_time(now), "run")
    return {rid: (row.values if (row := report.row(rid)) else empty_values()) for rid in run_ids}


# --- programme indicators -------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeIndicators:
    """Pasal 15 indicators for the whole programme and per kecamatan code."""

    period: Period
    totals: dict[str, int]
    by_kecamatan: dict[str, dict[str, int]]


def programme_indicators(session: Session, period: Period | str) -> ProgrammeIndicators:
    """Businesses registered, new, eligible, opted in and digitally active (one query)."""
    if isinstance(period, str):
        period = parse_period(period)
    active = active_businesses(period)
    opted = (
        select(Product.business_id)
        .join(ProductOptIn, ProductOptIn.product_id == Product.id)
        .where(ProductOptIn.opted_at < period.end,
               (ProductOptIn.withdrawn_at.is_(None)) | (ProductOptIn.withdrawn_at >= period.end))
    )
    columns = {
        "businesses_registered": func.count(Business.id),
        "businesses_new": func.sum(flag(Business.created_at >= period.start)),
        "businesses_eligible": func.sum(flag(Business.eligible.is_(True))),
        "businesses_opted_in": func.sum(flag(Business.id.in_(opted))),
        "businesses_active": func.sum(flag(Business.id.in_(select(active.c.business_id)))),
    }
    stmt = (select(Business.kecamatan_code, *[c.label(k) for k, c in columns.items()])
            .where(Business.created_at < period.end)
            .group_by(Business.kecamatan_code))
    by_kecamatan: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys(INDICATOR_METRICS, 0)
    with _reporting_settings(session):
        rows = session.execute(stmt).all()
    for row in rows:
        values = {k: int(row._mapping[k] or 0) for k in INDICATOR_METRICS}
        by_kecamatan[row.kecamatan_code] = values
        for k, v in values.items():
            totals[k] += v
    return ProgrammeIndicators(period, totals, by_kecamatan)
