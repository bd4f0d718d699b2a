"""The figures of one UMKM and of one kecamatan (staff pages), from :func:`build_report`.

Why here and not in the web router: these pages show report numbers, so they take them
from the one builder with its counting rules (a message counts once per UMKM it carried,
once per kecamatan); the router only renders. A business or kecamatan that does not exist
is a :class:`engine.common.errors.NotFound` with an Indonesian message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import NotFound
from engine.models import Business, Product
from engine.reporting.build import Report, ReportRow, build_report, empty_values
from engine.reporting.html import render_metric_table, trend_chart
from engine.reporting.periods import Period, all_time
from engine.umkm import wilayah

# The columns of the UMKM and kecamatan tables: the four kinds of click stay apart.
PAGE_KEYS = ("sent", "unique_opens", "unique_clicks", "ctr", "social_posts", "social_reach",
             "social_clicks", "whatsapp_clicks", "leads", "orders", "order_value")


@dataclass(frozen=True)
class BusinessFigures:
    business: Business
    kecamatan: str
    totals: Report
    trend: Markup
    products: Markup
    channels: Markup
    campaigns: Markup


def business_figures(session: Session, business_id: int, period: Period) -> BusinessFigures:
    """Trend per month, products, channels and campaigns of one UMKM over ``period``."""
    business = session.get(Business, business_id)
    if business is None:
        raise NotFound("report.page.no_business", id=business_id)
    kw = {"business_id": business_id}
    by_month = build_report(session, period, "month", **kw)
    by_product = _with_all_products(session, build_report(session, period, "product", **kw),
                                    business_id)
    return BusinessFigures(
        business, wilayah.kecamatan_name(business.kecamatan_code) or business.kecamatan_code,
        by_month,
        trend_chart(by_month, ("sent", "unique_clicks", "whatsapp_clicks", "leads")),
        render_metric_table(by_product, PAGE_KEYS),
        render_metric_table(build_report(session, period, "channel", **kw), PAGE_KEYS),
        render_metric_table(build_report(session, period, "campaign", **kw), PAGE_KEYS),
    )


def _with_all_products(session: Session, report: Report, business_id: int) -> Report:
    """Every product of the UMKM, also those nothing happened to (zeros)."""
    products = session.execute(select(Product.id, Product.name)
                               .where(Product.business_id == business_id)).tuples().all()
    rows = list(report.rows)
    rows += [ReportRow(pid, name, empty_values()) for pid, name in products
             if report.row(pid) is None]
    rows.sort(key=lambda r: (r.label.casefold(), str(r.key)))
    return replace(report, rows=rows)


@dataclass(frozen=True)
class KecamatanFigures:
    code: str
    name: str
    businesses: Report
    table: Markup


def kecamatan_figures(session: Session, code: str, period: Period) -> KecamatanFigures:
    """The UMKM of one kecamatan with their figures; the total counts a message once."""
    name = wilayah.kecamatan_name(code)
    canonical = wilayah.normalize_kecamatan(code)
    if name is None or canonical is None:
        raise NotFound("report.page.no_kecamatan", code=code[:20])
    members = session.execute(select(Business.id, Business.name)
                              .where(Business.kecamatan_code == canonical)).tuples().all()
    by_business = build_report(session, period, "business")
    ids = {bid for bid, _ in members}
    rows = [r for r in by_business.rows if r.key in ids]
    rows += [ReportRow(bid, bname, empty_values()) for bid, bname in members
             if by_business.row(bid) is None]
    rows.sort(key=lambda r: (r.label.casefold(), str(r.key)))
    kecamatan_row = build_report(session, period, "kecamatan").row(canonical)
    totals = kecamatan_row.values if kecamatan_row else empty_values()
    report = replace(by_business, rows=rows, totals=totals, simulated=[])
    return KecamatanFigures(canonical, name, report,
                            render_metric_table(report, PAGE_KEYS, link="/dinas/usaha/"))


# The owner portal's columns: what an owner's products earned, clicks kept apart.
OWNER_KEYS = ("sent", "unique_opens", "unique_clicks", "social_clicks", "whatsapp_clicks",
              "leads", "orders", "order_value")


@dataclass(frozen=True)
class OwnerFigures:
    products: Report
    campaigns: Report
    products_table: Markup
    campaigns_table: Markup


def owner_figures(session: Session, business_id: int) -> OwnerFigures:
    """The owner's own figures per product and per campaign over all time (portal)."""
    period = all_time()
    by_product = build_report(session, period, "product", business_id=business_id)
    by_campaign = build_report(session, period, "campaign", business_id=business_id)
    return OwnerFigures(by_product, by_campaign, render_metric_table(by_product, OWNER_KEYS),
                        render_metric_table(by_campaign, OWNER_KEYS))
