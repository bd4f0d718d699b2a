"""Monitoring and evaluation (Pasal 11 and 15): programme metrics computed in the database.

Why everything is aggregated in SQL: a year of a busy programme is millions of engagement
events; pulling them into Python to count would be slow and memory-hungry, and the same
query must serve the CLI, the HTML report and the dashboard. Each *source* below is one
SQL query producing one row per fact (a delivery, a social post, a lead, an attributed
order) with 0/1 flags or amounts; :func:`build_report` groups those facts by the
requested dimension with ``GROUP BY`` and only merges the few aggregated rows in Python.

Counting rules (the full wording is :data:`METRICS`, rendered into every report and into
``docs/metrics.md``):

- Email funnel metrics are a *cohort*: deliveries **sent** in the period, with all their
  events whenever they happened, so a click-through rate can never exceed 100 %.
- Social metrics are snapshots: for each post and metric the latest value counts.
- Per-UMKM attribution: a message that carried products of three UMKM counts once for
  each of the three (``DeliveryProduct`` plus ``Delivery.business_id``); totals count it
  once, so the sum of business rows can exceed the total.
- An order is attributed to the campaign of the customer's latest human click on a link
  of the same UMKM, if ``click <= ordered_at <= click + N days`` (both ends inclusive).

Periods are calendar months in WITA (``Asia/Makassar``): ``2026-12``, ``2026`` or
``2026-10..2026-12``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Subquery,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import DateTime, String

from engine.common.formatting import rupiah
from engine.common.i18n import get_lang, t
from engine.db import is_postgres
from engine.engagement.events import HARD_BOUNCE, SOFT_BOUNCE
from engine.models import (
    Business,
    Campaign,
    CampaignRun,
    Delivery,
    DeliveryProduct,
    EngagementEvent,
    Order,
    OrderStatus,
    Product,
    ProductOptIn,
    SocialPost,
    TrackedLink,
)
from engine.umkm import wilayah

Dimension = Literal["campaign", "channel", "business", "kecamatan", "month"]
DIMENSIONS: tuple[str, ...] = ("campaign", "channel", "business", "kecamatan", "month")
DEFAULT_ATTRIBUTION_DAYS = 7
DEFAULT_TZ = "Asia/Makassar"
REPORT_WORK_MEM = "64MB"
Value = int | float | None



class ReportError(ValueError):
    """A report request that cannot be answered (bad period, grouping or window)."""


# --- metric definitions: written once, rendered in reports and docs/metrics.md ---------


@dataclass(frozen=True)
class MetricDef:
    """How one number is counted; ``kind`` decides its formatting (count, ratio, rupiah)."""

    section: Literal["email", "social", "conversion", "programme"]
    kind: Literal["count", "ratio", "rupiah"]
    label: dict[str, str]
    definition: dict[str, str]


def _m(section: Any, kind: Any, label_id: str, label_en: str, def_id: str,
       def_en: str) -> MetricDef:
    return MetricDef(section, kind, {"id": label_id, "en": label_en},
                     {"id": def_id, "en": def_en})


METRICS: dict[str, MetricDef] = {
    "planned": _m(
        "email", "count", "Rencana kirim", "Planned",
        "Baris outbox (pesan atau unggahan) yang dibuat dalam periode, apa pun statusnya.",
        "Outbox rows (messages or posts) created in the period, whatever their status."),
    "sent": _m(
        "email", "count", "Terkirim", "Sent",
        "Pesan yang dikonfirmasi terkirim oleh kanal (waktu kirim dalam periode).",
        "Messages the channel confirmed as sent, with the send time in the period."),
    "failed": _m(
        "email", "count", "Gagal", "Failed",
        "Baris outbox yang dibuat dalam periode dan berakhir gagal (tidak terkirim).",
        "Outbox rows created in the period that ended failed (never sent)."),
    "delivered": _m(
        "email", "count", "Sampai", "Delivered",
        "Terkirim dikurangi pesan yang memantul (keras atau lunak).",
        "Sent minus messages that bounced (hard or soft)."),
    "bounced_hard": _m(
        "email", "count", "Pantulan keras", "Hard bounces",
        "Pesan terkirim dalam periode dengan laporan pantulan permanen (peristiwa "
        "hard_bounce, status DSN 5.x.x); dihitung sekali per pesan.",
        "Messages sent in the period with a permanent bounce report (event hard_bounce, "
        "DSN status 5.x.x); counted once per message."),
    "bounced_soft": _m(
        "email", "count", "Pantulan lunak", "Soft bounces",
        "Pesan terkirim dalam periode yang hanya memiliki pantulan sementara (peristiwa "
        "soft_bounce); dihitung sekali per pesan.",
        "Messages sent in the period with only temporary bounces (event soft_bounce); "
        "counted once per message."),
    "unique_opens": _m(
        "email", "count", "Dibuka (unik)", "Unique opens",
        "Pesan terkirim dalam periode yang dibuka minimal sekali oleh manusia; pembukaan "
        "berulang dihitung sekali dan yang ditandai bot diabaikan.",
        "Messages sent in the period opened at least once by a person; repeated opens "
        "count once and opens flagged as bots are ignored."),
    "unique_clicks": _m(
        "email", "count", "Diklik (unik)", "Unique clicks",
        "Pesan terkirim dalam periode dengan minimal satu klik tautan oleh manusia; klik "
        "pemindai keamanan (suspected_bot) diabaikan.",
        "Messages sent in the period with at least one link click by a person; clicks "
        "by security scanners (suspected_bot) are ignored."),
    "ctr": _m(
        "email", "ratio", "CTR", "Click-through rate",
        "Diklik (unik) dibagi Sampai; kosong bila tidak ada pesan yang sampai.",
        "Unique clicks divided by delivered; empty when nothing was delivered."),
    "unsubscribes": _m(
        "email", "count", "Berhenti langganan", "Unsubscribes",
        "Pesan terkirim dalam periode yang menghasilkan permintaan berhenti langganan; "
        "dihitung sekali per pesan.",
        "Messages sent in the period that led to an unsubscribe; counted once per message."),
    "complaints": _m(
        "email", "count", "Keluhan spam", "Complaints",
        "Pesan terkirim dalam periode yang dilaporkan sebagai spam; sekali per pesan.",
        "Messages sent in the period reported as spam; once per message."),
    "social_posts": _m(
        "social", "count", "Unggahan", "Posts",
        "Unggahan media sosial yang terbit dalam periode.",
        "Social media posts published in the period."),
    "social_views": _m(
        "social", "count", "Tayangan", "Views",
        "Jumlah tayangan unggahan yang terbit dalam periode, dari nilai terakhir yang "
        "dibaca dari platform (bukan jumlah semua pembacaan).",
        "Views of posts published in the period, from the latest value read from the "
        "platform (not the sum of all readings)."),
    "social_reach": _m(
        "social", "count", "Jangkauan", "Reach",
        "Akun unik yang dijangkau unggahan dalam periode (nilai terakhir per unggahan).",
        "Unique accounts reached by posts of the period (latest value per post)."),
    "social_reactions": _m(
        "social", "count", "Reaksi", "Reactions",
        "Suka dan reaksi lain pada unggahan dalam periode (nilai terakhir per unggahan).",
        "Likes and other reactions on posts of the period (latest value per post)."),
    "social_comments": _m(
        "social", "count", "Komentar", "Comments",
        "Komentar pada unggahan dalam periode (nilai terakhir per unggahan).",
        "Comments on posts of the period (latest value per post)."),
    "social_shares": _m(
        "social", "count", "Dibagikan", "Shares",
        "Berapa kali unggahan dalam periode dibagikan (nilai terakhir per unggahan).",
        "Times posts of the period were shared (latest value per post)."),
    "social_clicks": _m(
        "social", "count", "Klik sosial", "Social clicks",
        "Klik tautan pada unggahan dalam periode, menurut platform (nilai terakhir).",
        "Link clicks on posts of the period, as reported by the platform (latest value)."),
    "social_saves": _m(
        "social", "count", "Disimpan", "Saves",
        "Berapa kali unggahan dalam periode disimpan (nilai terakhir per unggahan).",
        "Times posts of the period were saved (latest value per post)."),
    "leads": _m(
        "conversion", "count", "Prospek", "Leads",
        "Tombol pesan lewat WhatsApp di etalase yang ditekan dalam periode, kecuali bot.",
        "Order-via-WhatsApp button presses on the showcase in the period, except bots."),
    "orders": _m(
        "conversion", "count", "Pesanan teratribusi", "Attributed orders",
        "Pesanan (bukan batal) dalam periode oleh pelanggan yang sama dari UMKM yang sama, "
        "paling lama N hari (inklusif) setelah klik tautan UMKM itu; kampanye = klik "
        "terakhir sebelum pesanan.",
        "Orders (not cancelled) in the period by the same customer from the same UMKM, "
        "at most N days (inclusive) after a click on a link of that UMKM; campaign = the "
        "last click before the order."),
    "order_value": _m(
        "conversion", "rupiah", "Nilai pesanan", "Order value",
        "Jumlah total Rupiah dari pesanan teratribusi.",
        "Sum of the Rupiah totals of attributed orders."),
    "businesses_registered": _m(
        "programme", "count", "UMKM terdaftar", "Businesses registered",
        "UMKM yang terdaftar sampai akhir periode.",
        "Businesses registered by the end of the period."),
    "businesses_new": _m(
        "programme", "count", "UMKM baru", "New businesses",
        "UMKM yang mendaftar dalam periode.",
        "Businesses that registered during the period."),
    "businesses_eligible": _m(
        "programme", "count", "UMKM layak", "Eligible businesses",
        "UMKM terdaftar yang saat ini memenuhi Pasal 10.",
        "Registered businesses that currently meet Pasal 10."),
    "businesses_opted_in": _m(
        "programme", "count", "UMKM ikut kampanye", "Businesses opted in",
        "UMKM terdaftar dengan minimal satu produk yang diikutkan kampanye dan belum ditarik "
        "pada akhir periode.",
        "Registered businesses with at least one product opted in to a campaign and not "
        "withdrawn at the end of the period."),
    "businesses_active": _m(
        "programme", "count", "UMKM aktif digital", "Digitally active businesses",
        "UMKM yang dalam periode dipromosikan dalam pesan terkirim atau unggahan, atau "
        "mendapat peristiwa keterlibatan (buka, klik, prospek, ...).",
        "Businesses promoted in a sent message or post in the period, or with an "
        "engagement event (open, click, lead, ...) in the period."),
}

REPORT_METRICS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.section != "programme")
INDICATOR_METRICS: tuple[str, ...] = tuple(
    k for k, m in METRICS.items() if m.section == "programme"
)
SECTIONS: dict[str, dict[str, str]] = {
    "email": {"id": "Pesan", "en": "Messages"},
    "social": {"id": "Media sosial", "en": "Social media"},
    "conversion": {"id": "Prospek dan pesanan", "en": "Leads and orders"},
    "programme": {"id": "Indikator program", "en": "Programme indicators"},
}
CHANNEL_LABELS = {"email": "Email", "facebook": "Facebook", "instagram": "Instagram",
                  "tiktok": "TikTok", "whatsapp": "WhatsApp"}
SOCIAL_TYPES = {"view": "social_views", "reach": "social_reach",
                "reaction": "social_reactions", "comment": "social_comments",
                "share": "social_shares", "click": "social_clicks", "save": "social_saves"}
METRICS_DOC_START = "<!-- metrics:start (generated from engine.reporting.reports.METRICS) -->"
METRICS_DOC_END = "<!-- metrics:end -->"


def metric_label(key: str, lang: str | None = None) -> str:
    return METRICS[key].label[lang or get_lang()]


def metrics_markdown() -> str:
    """The definitions table of ``docs/metrics.md`` (a test keeps the file identical)."""
    lines = ["| key | section | Nama | Definisi | Name | Definition |",
             "|---|---|---|---|---|---|"]
    for key, m in METRICS.items():
        cells = [f"`{key}`", m.section, m.label["id"], m.definition["id"], m.label["en"],
                 m.definition["en"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --- periods --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole calendar months in the programme's time zone; ``end`` is exclusive."""

    label: str
    first: date  # first day of the first month (local)
    last: date  # first day of the last month (local)
    tz: str = DEFAULT_TZ

    @property
    def start(self) -> datetime:
        return _local_midnight_utc(self.first, self.tz)

    @property
    def end(self) -> datetime:
        return _local_midnight_utc(_add_months(self.last, 1), self.tz)

    @property
    def months(self) -> list[str]:
        """``["2026-10", "2026-11", "2026-12"]``: the month keys this period covers."""
        keys: list[str] = []
        month = self.first
        while month <= self.last:
            keys.append(f"{month.year:04d}-{month.month:02d}")
            month = _add_months(month, 1)
        return keys

    def extended_back(self, months: int) -> Period:
        """The same end, starting at least ``months`` months earlier (for trend charts)."""
        first = min(self.first, _add_months(self.last, -(months - 1)))
        return Period(f"{first:%Y-%m}..{self.last:%Y-%m}", first, self.last, self.tz)


_MONTH = r"(\d{4})-(\d{1,2})"
_PERIOD_RE = re.compile(rf"^(?:(\d{{4}})|{_MONTH}|{_MONTH}\.\.{_MONTH})$")


def parse_period(text: str, tz: str = DEFAULT_TZ) -> Period:
    """``2026-12`` (a month), ``2026`` (a year) or ``2026-10..2026-12`` (months, inclusive)."""
    match = _PERIOD_RE.match(text.strip())
    if match is None:
        raise ReportError(t("report.bad_period", text=text))
    year, m_year, m_month, a_year, a_month, b_year, b_month = match.groups()
    try:
        if year:
            first, last = date(int(year), 1, 1), date(int(year), 12, 1)
        elif m_year:
            first = last = date(int(m_year), int(m_month), 1)
        else:
            first, last = date(int(a_year), int(a_month), 1), date(int(b_year), int(b_month), 1)
    except ValueError as exc:
        raise ReportError(t("report.bad_period", text=text)) from exc
    if first > last:
        raise ReportError(t("report.bad_range", text=text))
    return Period(text.strip(), first, last, tz)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _local_midnight_utc(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


# --- portable SQL helpers -------------------------------------------------------------


class month_key(FunctionElement[str]):
    """``'YYYY-MM'`` of a UTC timestamp in a fixed-offset zone (WITA has no DST)."""

    type = String()
    inherit_cache = True

    def __init__(self, column: ColumnElement[datetime], tz: str) -> None:
        self.tz = tz
        super().__init__(column)


@compiles(month_key, "postgresql")
def _month_key_pg(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    zone = element.tz.replace("'", "")
    return f"to_char(timezone('{zone}', {compiler.process(column, **kw)}), 'YYYY-MM')"


@compiles(month_key)
def _month_key_sqlite(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    offset = datetime(2000, 1, 1, tzinfo=ZoneInfo(element.tz)).utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    return f"strftime('%Y-%m', {compiler.process(column, **kw)}, '{minutes:+d} minutes')"


class add_days(FunctionElement[datetime]):
    """``timestamp + N days`` that compares exactly with stored timestamps on both backends."""

    type = DateTime(timezone=True)
    inherit_cache = True

    def __init__(self, column: ColumnElement[datetime], days: int) -> None:
        self.days = int(days)
        super().__init__(column)


@compiles(add_days, "postgresql")
def _add_days_pg(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"({compiler.process(column, **kw)} + interval '{element.days} days')"


@compiles(add_days)
def _add_days_sqlite(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'; datetime() drops the fraction, so
    # it is re-attached to keep the string comparison exact at the window boundary.
    (column,) = element.clauses
    col = compiler.process(column, **kw)
    return f"(datetime({col}, '+{element.days} days') || substr({col}, 20))"


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _human(event: Any) -> ColumnElement[bool]:
    return event.suspected_bot.is_not(True)  # type: ignore[no-any-return]


# --- sources: one row per fact with 0/1 flags and amounts -----------------------------


@dataclass(frozen=True)
class _Source:
    """Facts (fact_id, run_id, channel, at, metrics...) and how they map to UMKM.

    ``businesses`` lists unique (fact_id, business_id) pairs for facts that can carry
    several UMKM (messages, posts); when it is ``None`` each fact has one UMKM in its own
    ``business_id`` column (leads, orders) and no join is needed.
    """

    facts: FromClause
    metrics: tuple[str, ...]
    businesses: FromClause | None


def _in(column: Any, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def _delivery_businesses(in_period: ColumnElement[bool]) -> Subquery:
    """Which UMKM each delivery carried: its products' UMKM plus ``Delivery.business_id``.

    ``in_period`` is the same condition on ``Delivery`` that selects the facts; repeating
    it (instead of reusing the facts as a CTE) keeps the planner's row estimates right,
    which decides between a hash join and 100,000 index probes on large months.
    """
    return union(
        select(DeliveryProduct.delivery_id.label("fact_id"),
               DeliveryProduct.business_id.label("business_id"))
        .join(Delivery, Delivery.id == DeliveryProduct.delivery_id).where(in_period),
        select(Delivery.id, Delivery.business_id)
        .where(Delivery.business_id.is_not(None), in_period),
    ).subquery()


def _outbox_source(period: Period) -> _Source:
    facts = (
        select(Delivery.id.label("fact_id"), Delivery.run_id, Delivery.channel,
               Delivery.created_at.label("at"), literal(1).label("planned"),
               _flag(Delivery.status == "failed").label("failed"))
        .where(_in(Delivery.created_at, period))
        .subquery("outbox_facts")
    )
    return _Source(facts, ("planned", "failed"),
                   _delivery_businesses(_in(Delivery.created_at, period)))


def _send_source(period: Period, with_outbox: bool = False) -> _Source:
    """Messages sent in the period with their funnel flags.

    ``with_outbox`` also takes the outbox rows created in the period (planned, failed)
    in the same pass, which saves a second (message, UMKM) mapping on big months; it is
    not used for monthly trends, where a message created on 30 November and sent on
    1 December belongs to two different months.
    """
    e = EngagementEvent
    is_bounce = e.type.in_((HARD_BOUNCE, SOFT_BOUNCE))
    per_delivery = (
        select(
            e.delivery_id,
            func.max(_flag(e.type == HARD_BOUNCE)).label("hard"),
            func.max(_flag(is_bounce)).label("bounce"),
            func.max(_flag(and_(e.type == "open", _human(e)))).label("opened"),
            func.max(_flag(and_(e.type == "click", _human(e)))).label("clicked"),
            func.max(_flag(e.type == "unsubscribe")).label("unsub"),
            func.max(_flag(e.type == "complaint")).label("complaint"),
        )
        .join(Delivery, Delivery.id == e.delivery_id)
        .where(e.post_id.is_(None), _in(Delivery.sent_at, period))
        .group_by(e.delivery_id)
        .subquery("per_delivery")
    )
    hard = func.coalesce(per_delivery.c.hard, 0)
    sent_in = _in(Delivery.sent_at, period)
    created_in = _in(Delivery.created_at, period)
    outbox_columns = [
        _flag(created_in).label("planned"),
        _flag(and_(created_in, Delivery.status == "failed")).label("failed"),
    ] if with_outbox else []
    facts = (
        select(
            Delivery.id.label("fact_id"), Delivery.run_id, Delivery.channel,
            Delivery.sent_at.label("at"), *outbox_columns,
            (_flag(sent_in) if with_outbox else literal(1)).label("sent"),
            hard.label("bounced_hard"),
            (func.coalesce(per_delivery.c.bounce, 0) - hard).label("bounced_soft"),
            func.coalesce(per_delivery.c.opened, 0).label("unique_opens"),
            func.coalesce(per_delivery.c.clicked, 0).label("unique_clicks"),
            func.coalesce(per_delivery.c.unsub, 0).label("unsubscribes"),
            func.coalesce(per_delivery.c.complaint, 0).label("complaints"),
        )
        .outerjoin(per_delivery, per_delivery.c.delivery_id == Delivery.id)
        .where(or_(sent_in, created_in) if with_outbox else sent_in)
        .subquery("send_facts")
    )
    metrics: tuple[str, ...] = ("sent", "bounced_hard", "bounced_soft", "unique_opens",
                                "unique_clicks", "unsubscribes", "complaints")
    if with_outbox:
        metrics = ("planned", "failed", *metrics)
        return _Source(facts, metrics, _delivery_businesses(or_(sent_in, created_in)))
    return _Source(facts, metrics, _delivery_businesses(sent_in))


def _is_published() -> ColumnElement[bool]:
    """A post row exists from the first attempt (retry marker, container id); only one
    the platform confirmed counts as a post."""
    return or_(SocialPost.published_at.is_not(None), SocialPost.provider_post_id.is_not(None))


def _social_source(period: Period) -> _Source:
    e = EngagementEvent
    published = func.coalesce(SocialPost.published_at, Delivery.sent_at, Delivery.created_at)
    posts = (
        select(SocialPost.id, SocialPost.platform, SocialPost.business_id,
               SocialPost.delivery_id, Delivery.run_id, published.label("at"))
        .outerjoin(Delivery, Delivery.id == SocialPost.delivery_id)
        .where(_in(published, period), _is_published())
        .cte("posts")
    )
    ranked = (
        select(e.post_id, e.type, e.value,
               func.row_number().over(partition_by=(e.post_id, e.type),
                                      order_by=(e.occurred_at.desc(), e.id.desc())).label("rn"))
        .where(e.post_id.in_(select(posts.c.id)), e.type.in_(list(SOCIAL_TYPES)))
        .subquery("ranked")
    )
    latest = (
        select(ranked.c.post_id, *[
            func.sum(case((ranked.c.type == kind, ranked.c.value), else_=0)).label(metric)
            for kind, metric in SOCIAL_TYPES.items()
        ])
        .where(ranked.c.rn == 1)
        .group_by(ranked.c.post_id)
        .subquery("latest")
    )
    facts = (
        select(posts.c.id.label("fact_id"), posts.c.run_id, posts.c.platform.label("channel"),
               posts.c.at, literal(1).label("social_posts"),
               *[func.coalesce(latest.c[m], 0).label(m) for m in SOCIAL_TYPES.values()])
        .outerjoin(latest, latest.c.post_id == posts.c.id)
        .cte("social_facts")
    )
    businesses = union(
        select(posts.c.id.label("fact_id"), posts.c.business_id.label("business_id"))
        .where(posts.c.business_id.is_not(None)),
        select(posts.c.id, DeliveryProduct.business_id)
        .join(DeliveryProduct, DeliveryProduct.delivery_id == posts.c.delivery_id),
    ).subquery()
    return _Source(facts, ("social_posts", *SOCIAL_TYPES.values()), businesses)


def _lead_source(period: Period) -> _Source:
    e = EngagementEvent
    facts = (
        select(e.id.label("fact_id"), func.coalesce(e.run_id, Delivery.run_id).label("run_id"),
               e.channel, e.occurred_at.label("at"), literal(1).label("leads"),
               e.business_id)
        .outerjoin(Delivery, Delivery.id == e.delivery_id)
        .where(e.type == "lead", _human(e), _in(e.occurred_at, period))
        .subquery("lead_facts")
    )
    return _Source(facts, ("leads",), None)


def _order_source(period: Period, days: int) -> _Source:
    e = EngagementEvent
    clicks = (
        select(e.id.label("click_id"), e.customer_id, e.channel,
               func.coalesce(e.business_id, TrackedLink.business_id).label("business_id"),
               func.coalesce(e.run_id, Delivery.run_id, TrackedLink.run_id).label("run_id"),
               e.occurred_at.label("clicked_at"))
        .outerjoin(Delivery, Delivery.id == e.delivery_id)
        .outerjoin(TrackedLink, TrackedLink.id == e.link_id)
        .where(e.type == "click", e.post_id.is_(None), _human(e), e.customer_id.is_not(None),
               e.occurred_at >= period.start - timedelta(days=days),
               e.occurred_at < period.end)
        .subquery("clicks")
    )
    matched = (
        select(Order.id.label("fact_id"), Order.business_id, Order.total,
               Order.ordered_at.label("at"), clicks.c.run_id, clicks.c.channel,
               func.row_number().over(
                   partition_by=Order.id,
                   order_by=(clicks.c.clicked_at.desc(), clicks.c.click_id.desc()),
               ).label("rn"))
        .join(clicks, and_(clicks.c.customer_id == Order.customer_id,
                           clicks.c.business_id == Order.business_id,
                           clicks.c.clicked_at <= Order.ordered_at,
                           Order.ordered_at <= add_days(clicks.c.clicked_at, days)))
        .where(_in(Order.ordered_at, period), Order.status != OrderStatus.cancelled)
        .subquery("matched")
    )
    facts = (
        select(matched.c.fact_id, matched.c.run_id, matched.c.channel, matched.c.at,
               literal(1).label("orders"), matched.c.total.label("order_value"),
               matched.c.business_id)
        .where(matched.c.rn == 1)
        .subquery("order_facts")
    )
    return _Source(facts, ("orders", "order_value"), None)


# --- grouping -------------------------------------------------------------------------


def _aggregate(session: Session, source: _Source, by: str | None, business_id: int | None,
               tz: str) -> dict[Any, dict[str, int]]:
    """``GROUP BY`` one dimension over one source; ``by=None`` gives the total row."""
    f = source.facts
    sums = [func.coalesce(func.sum(f.c[m]), 0).label(m) for m in source.metrics]
    frm: FromClause = f
    conditions: list[ColumnElement[bool]] = []
    key: Any = None
    if source.businesses is None:  # one UMKM per fact, in the fact itself
        if business_id is not None:
            conditions.append(f.c.business_id == business_id)
        if by == "business":
            key = f.c.business_id
            conditions.append(f.c.business_id.is_not(None))
        elif by == "kecamatan":
            frm = f.join(Business, Business.id == f.c.business_id)
            key = Business.kecamatan_code
    else:
        mapping = source.businesses
        if business_id is not None:
            mapping = (select(mapping.c.fact_id, mapping.c.business_id)
                       .where(mapping.c.business_id == business_id).subquery())
        if by == "kecamatan":  # a message with two UMKM of one kecamatan counts once there
            per_kecamatan = (
                select(mapping.c.fact_id, Business.kecamatan_code.label("key")).distinct()
                .join(Business, Business.id == mapping.c.business_id).subquery()
            )
            frm = f.join(per_kecamatan, per_kecamatan.c.fact_id == f.c.fact_id)
            key = per_kecamatan.c.key
        elif by == "business" or business_id is not None:
            frm = f.join(mapping, mapping.c.fact_id == f.c.fact_id)
            key = mapping.c.business_id if by == "business" else None
    if by == "campaign":
        frm = frm.outerjoin(CampaignRun, CampaignRun.id == f.c.run_id)
        key = CampaignRun.campaign_id
    elif by == "channel":
        key = f.c.channel
    elif by == "month":
        key = month_key(f.c.at, tz)
    if key is None:
        row = session.execute(select(*sums).select_from(frm).where(*conditions)).one()
        return {None: {m: round(row._mapping[m] or 0) for m in source.metrics}}
    stmt = select(key.label("key"), *sums).select_from(frm).where(*conditions).group_by(key)
    return {
        row._mapping["key"]: {m: round(row._mapping[m] or 0) for m in source.metrics}
        for row in session.execute(stmt)
    }


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
    if by not in DIMENSIONS:
        raise ReportError(t("report.bad_by", by=by, choices=", ".join(DIMENSIONS)))
    if not 0 <= attribution_days <= 365:
        raise ReportError(t("report.bad_days", days=attribution_days))
    messages = ([_outbox_source(period), _send_source(period)] if by == "month"
                else [_send_source(period, with_outbox=True)])
    sources = [*messages, _social_source(period), _lead_source(period),
               _order_source(period, attribution_days)]
    grouped: dict[Any, dict[str, int]] = {}
    totals_raw: dict[str, int] = {}
    with _reporting_settings(session):
        for source in sources:
            for key, values in _aggregate(session, source, by, business_id, period.tz).items():
                grouped.setdefault(key, {}).update(values)
            totals_raw.update(_aggregate(session, source, None, business_id, period.tz)[None])
    if by == "month":
        for month in period.months:
            grouped.setdefault(month, {})
    labels = _labels(session, by, list(grouped))
    rows = [ReportRow(key, labels[key], _derive(values)) for key, values in grouped.items()]
    rows.sort(key=lambda r: _sort_key(by, r))
    return Report(period, by, attribution_days, business_id, rows, _derive(totals_raw))


def _derive(raw: dict[str, int]) -> dict[str, Value]:
    """Fill missing sources with 0 and compute the derived metrics (delivered, CTR)."""
    values: dict[str, Value] = {m: raw.get(m, 0) for m in REPORT_METRICS}
    delivered = raw.get("sent", 0) - raw.get("bounced_hard", 0) - raw.get("bounced_soft", 0)
    values["delivered"] = delivered
    values["ctr"] = raw.get("unique_clicks", 0) / delivered if delivered > 0 else None
    return values


_CHANNEL_ORDER = list(CHANNEL_LABELS)


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
        names = {k: CHANNEL_LABELS.get(k, str(k)) for k in ids}
    elif by == "month":
        names = {k: str(k) for k in ids}
    empty = t("report.no_campaign") if by == "campaign" else t("report.unknown")
    return {k: names.get(k, str(k)) if k is not None else empty for k in keys}


# --- programme indicators -------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeIndicators:
    """Pasal 15 indicators for the whole programme and per kecamatan code."""

    period: Period
    totals: dict[str, int]
    by_kecamatan: dict[str, dict[str, int]]


def _active_businesses(period: Period) -> Subquery:
    """UMKM promoted in a sent message/post or with an engagement event in the period."""
    e = EngagementEvent
    sent_ids = select(Delivery.id).where(_in(Delivery.sent_at, period))
    posted = func.coalesce(SocialPost.published_at, Delivery.sent_at)
    return union(
        select(DeliveryProduct.business_id.label("business_id"))
        .where(DeliveryProduct.delivery_id.in_(sent_ids)),
        select(Delivery.business_id).where(Delivery.business_id.is_not(None),
                                           _in(Delivery.sent_at, period)),
        select(SocialPost.business_id)
        .outerjoin(Delivery, Delivery.id == SocialPost.delivery_id)
        .where(SocialPost.business_id.is_not(None), _in(posted, period), _is_published()),
        select(e.business_id).where(e.business_id.is_not(None), _in(e.occurred_at, period)),
        select(DeliveryProduct.business_id)
        .join(e, e.delivery_id == DeliveryProduct.delivery_id)
        .where(_in(e.occurred_at, period)),
    ).subquery("active")


def programme_indicators(session: Session, period: Period | str) -> ProgrammeIndicators:
    """Businesses registered, new, eligible, opted in and digitally active (one query)."""
    if isinstance(period, str):
        period = parse_period(period)
    active = _active_businesses(period)
    opted = (
        select(Product.business_id)
        .join(ProductOptIn, ProductOptIn.product_id == Product.id)
        .where(ProductOptIn.opted_at < period.end,
               (ProductOptIn.withdrawn_at.is_(None)) | (ProductOptIn.withdrawn_at >= period.end))
    )
    columns = {
        "businesses_registered": func.count(Business.id),
        "businesses_new": func.sum(_flag(Business.created_at >= period.start)),
        "businesses_eligible": func.sum(_flag(Business.eligible.is_(True))),
        "businesses_opted_in": func.sum(_flag(Business.id.in_(opted))),
        "businesses_active": func.sum(_flag(Business.id.in_(select(active.c.business_id)))),
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


# --- presentation helpers shared by the CLI, the HTML report and the dashboard ----------


def format_metric(key: str, value: Value, lang: str | None = None) -> str:
    """``1.234``, ``25,0%`` or ``Rp 150.000`` (Indonesian by default); ``–`` for no value."""
    lang = lang or get_lang()
    locale = "id_ID" if lang == "id" else "en_US"
    if value is None:
        return "–"
    kind = METRICS[key].kind
    if kind == "ratio":
        return format_percent(value, "#,##0.0%", locale=locale)
    if kind == "rupiah":
        return rupiah(value, lang)
    return format_decimal(value, locale=locale)


def dimension_label(by: str, lang: str | None = None) -> str:
    return t(f"report.by.{by}", lang)


def report_csv(report: Report, *, decimal_comma: bool = False, lang: str | None = None) -> bytes:
    """The report as CSV for spreadsheets: UTF-8 with BOM, one row per group plus Total.

    Indonesian spreadsheets expect ``;`` between fields and ``,`` as decimal separator
    (``decimal_comma=True``); numbers carry no thousands separators so they stay numbers.
    Ratios are percentages with two decimals.
    """
    lang = lang or get_lang()
    sep = ";" if decimal_comma else ","
    header = ["ID", dimension_label(report.by, lang)]
    for key in report.metrics:
        label = METRICS[key].label[lang]
        header.append(f"{label} (%)" if METRICS[key].kind == "ratio" else label)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\r\n")
    writer.writerow(header)
    total = ReportRow("", t("report.total", lang), report.totals)
    for row in [*report.rows, total]:
        key = "" if row.key is None else str(row.key)
        writer.writerow([key, row.label,
                         *[_csv_value(k, row.values[k], decimal_comma) for k in report.metrics]])
    return buffer.getvalue().encode("utf-8-sig")


def _csv_value(key: str, value: Value, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if METRICS[key].kind == "ratio":
        text = f"{value * 100:.2f}"
        return text.replace(".", ",") if decimal_comma else text
    return str(int(value))


__all__ = [
    "DIMENSIONS", "INDICATOR_METRICS", "METRICS", "REPORT_METRICS", "MetricDef", "Period",
    "ProgrammeIndicators", "Report", "ReportError", "ReportRow", "build_report",
    "dimension_label", "format_metric", "metric_label", "metrics_markdown", "parse_period",
    "programme_indicators", "report_csv",
]
