"""The campaign list of the studio (``/dinas/kampanye``): type, status, next send, figures.

Why the figures come from :func:`engine.reporting.build.build_report` grouped by campaign:
the list must show the same numbers as the report page and ``umkm report`` (the
definitions of ``docs/metrics.md``), never a second way of counting. The open rate uses
the CTR's denominator (unique opens / delivered), and bounces are hard plus soft bounces.
Filters and paging arrive as plain query strings and are validated here, so a wrong value
is an Indonesian sentence next to the form, never FastAPI's English 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest
from engine.common.formatting import WITA, jam, tanggal
from engine.common.i18n import t
from engine.models import Campaign, CampaignRun, CampaignType, RunStatus, utcnow
from engine.reporting.build import Report, build_report
from engine.reporting.metrics import Value, format_metric
from engine.reporting.periods import parse_period

PAGE_SIZE = 20
MAX_PAGE = 10_000
TYPES: tuple[str, ...] = tuple(c.value for c in CampaignType)
# A campaign without runs is a draft, or active when it waits for its trigger.
STATUSES: tuple[str, ...] = ("draft", "active", *(s.value for s in RunStatus))
FIGURES = ("planned", "sent", "open_rate", "ctr", "unsubscribes", "bounces",
           "social_posts", "leads")


@dataclass(frozen=True)
class ListQuery:
    """The validated filters of one list request."""

    type: str
    status: str
    page: int
    period: str


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    status: str
    next_send: str
    figures: dict[str, str]

    @property
    def type_label(self) -> str:
        return type_label(self.campaign.type.value)

    @property
    def status_label(self) -> str:
        return campaign_status_label(self.status)


@dataclass(frozen=True)
class CampaignPage:
    rows: list[CampaignRow]
    page: int
    pages: int
    total: int


def type_label(value: str) -> str:
    """``promosi``, ``transaksional``, ... (Pasal 7(3)) in the page's language."""
    return t(f"studio.type.{value}")


def campaign_status_label(value: str) -> str:
    return t(f"studio.status.{value}")


def parse_query(jenis: str, status: str, halaman: str, periode: str) -> ListQuery:
    """The list filters, or :class:`BadRequest` naming the parameter and the choices."""
    if jenis and jenis not in TYPES:
        raise BadRequest("studio.bad_type", value=jenis[:40],
                         choices=", ".join(f"{v} ({type_label(v)})" for v in TYPES))
    if status and status not in STATUSES:
        raise BadRequest("studio.bad_status", value=status[:40],
                         choices=", ".join(f"{v} ({campaign_status_label(v)})"
                                           for v in STATUSES))
    page = halaman.strip() or "1"
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise BadRequest("studio.bad_page", value=halaman[:40], max=MAX_PAGE)
    period = (periode or str(utcnow().astimezone(WITA).year)).strip()[:40]
    parse_period(period)  # raises ReportError (a BadRequest) in the reader's words
    return ListQuery(jenis, status, int(page), period)


def _latest_runs(db: Session, ids: list[int]) -> dict[int, list[CampaignRun]]:
    """Runs of each campaign, newest first."""
    runs: dict[int, list[CampaignRun]] = {i: [] for i in ids}
    if ids:
        for run in db.scalars(select(CampaignRun).where(CampaignRun.campaign_id.in_(ids))
                              .order_by(CampaignRun.id.desc())):
            runs[run.campaign_id].append(run)
    return runs


def campaign_status(campaign: Campaign, runs: list[CampaignRun]) -> str:
    """The newest run's state; without runs ``active`` (waits for triggers) or ``draft``."""
    if runs:
        return runs[0].status.value
    return "active" if campaign.active else "draft"


def next_send(runs: list[CampaignRun], now: datetime) -> str:
    """When the next message goes out: a running run sends now, else the earliest
    scheduled run's time (WITA); ``–`` when nothing is planned."""
    if any(r.status == RunStatus.running for r in runs):
        return t("studio.next_now")
    planned = [r.scheduled_at for r in runs if r.status == RunStatus.scheduled]
    if not planned:
        return "–"
    when = min(planned)
    return f"{tanggal(when)} {jam(when)}"


def figures_of(report: Report, campaign_id: int) -> dict[str, str]:
    """The list's numbers for one campaign, formatted as the report formats them."""
    row = report.row(campaign_id)
    values: dict[str, Value] = dict(row.values) if row else {}
    delivered = int(values.get("delivered") or 0)
    opens = int(values.get("unique_opens") or 0)
    out = {key: format_metric(key, values.get(key, 0))
           for key in ("planned", "sent", "unsubscribes", "social_posts", "leads")}
    # Ratios share the CTR's kind (a percentage) and its denominator (delivered).
    out["open_rate"] = format_metric("ctr", opens / delivered if delivered > 0 else None)
    out["ctr"] = format_metric("ctr", values.get("ctr"))
    bounces = int(values.get("bounced_hard") or 0) + int(values.get("bounced_soft") or 0)
    out["bounces"] = format_metric("sent", bounces)
    return out


def campaign_page(db: Session, query: ListQuery) -> CampaignPage:
    """One page of campaigns, newest first, filtered by type and status."""
    statement = select(Campaign).order_by(Campaign.updated_at.desc(), Campaign.id.desc())
    if query.type:
        statement = statement.where(Campaign.type == CampaignType(query.type))
    campaigns = list(db.scalars(statement))
    runs = _latest_runs(db, [c.id for c in campaigns])
    states = {c.id: campaign_status(c, runs[c.id]) for c in campaigns}
    if query.status:
        campaigns = [c for c in campaigns if states[c.id] == query.status]
    pages = max(1, -(-len(campaigns) // PAGE_SIZE))
    page = min(query.page, pages)
    shown = campaigns[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    report = build_report(db, query.period, "campaign")
    now = utcnow()
    rows = [CampaignRow(c, states[c.id], next_send(runs[c.id], now), figures_of(report, c.id))
            for c in shown]
    return CampaignPage(rows, page, pages, len(campaigns))
