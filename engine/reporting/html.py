"""The monitoring report as ONE self-contained HTML file: inline CSS, inline SVG charts.

Why hand-drawn SVG instead of a chart library: the file must open offline on any office
PC, print to PDF from a browser and be archived as evidence (Pasal 15), so it may not
load scripts, fonts or CDNs; a few bar charts are simple rectangles and text that we
compute here, with the exact numbers printed as data labels. Every chart and bar carries
``data-*`` attributes naming its series so tests (and people) can check what is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.formatting import jam, rupiah, tanggal
from engine.common.i18n import get_lang, install_jinja, t
from engine.message.templating import DINAS, TEMPLATES_DIR
from engine.models import Business
from engine.reporting.build import (
    DEFAULT_ATTRIBUTION_DAYS,
    ProgrammeIndicators,
    Report,
    ReportRow,
    build_report,
    programme_indicators,
)
from engine.reporting.metrics import (
    INDICATOR_METRICS,
    METRICS,
    REPORT_METRICS,
    dimension_label,
    format_metric,
    section_label,
    simulated_label,
)
from engine.reporting.pdf import LETTERHEAD_OFFICE, LETTERHEAD_REGENCY
from engine.reporting.periods import Period, parse_period
from engine.reporting.plan_file import QUARTERS, plan_of
from engine.reporting.programme_plan import PlanMonitoring, monitor_plan, plan_year_of
from engine.reporting.programme_report import programme_figures, render_programme_section
from engine.umkm import wilayah

TREND_MONTHS = 6
TOP_BUSINESSES = 10
SERIES_COLORS = {"sent": "#1f5f8b", "unique_opens": "#4f9d69", "unique_clicks": "#e08a1e",
                 "social_reach": "#8e44ad", "order_value": "#b03a2e",
                 "target": "#9aa5b1", "realised": "#1f5f8b"}



# --- SVG charts -----------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    key: str  # a metric key (or a series of its own, named by ``label``)
    values: list[float]
    label: str = ""


def _fmt(metric: str, value: float) -> str:
    if metric not in METRICS:
        return format_decimal(value, locale="id_ID" if get_lang() == "id" else "en_US")
    return format_metric(metric, value)


def column_chart(name: str, categories: list[tuple[str, str]], series: list[Series],
                 title: str) -> Markup:
    """Grouped vertical bars: one group per category (month), one bar per series."""
    width, height, top, bottom, left = 720, 260, 24, 40, 12
    plot_h = height - top - bottom
    group_w = (width - 2 * left) / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    peak = max([v for s in series for v in s.values] + [1])
    parts = [_svg_open(name, width, height, title)]
    for i, (key, label) in enumerate(categories):
        x0 = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / peak
            x, y = x0 + j * bar_w, top + plot_h - h
            parts.append(_rect(s.key, key, value, x, y, bar_w - 2, h))
            parts.append(_text(x + (bar_w - 2) / 2, y - 4, _fmt(s.key, value), "label",
                               anchor="middle"))
        parts.append(_text(x0 + group_w * 0.4, height - bottom + 16, label, "axis",
                           anchor="middle"))
    parts.append(_line(left, top + plot_h, width - left, top + plot_h))
    parts.append(_legend(series, left, height - 8))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(name: str, categories: list[tuple[str, str]], metric: str, values: list[float],
              title: str) -> Markup:
    """Horizontal bars, one per category, labelled with the formatted value."""
    row_h, label_w, width, pad = 26, 190, 520, 8
    height = pad * 2 + row_h * max(len(categories), 1) + 14
    plot_w = width - label_w - 110
    peak = max([*values, 1])
    parts = [_svg_open(name, width, height, title, metric=metric),
             _text(pad, 14, title, "title")]
    for i, (key, label) in enumerate(categories):
        y = pad + 14 + i * row_h
        w = plot_w * values[i] / peak
        parts.append(_text(label_w - 6, y + row_h * 0.6, _shorten(label), "axis", anchor="end"))
        parts.append(_rect(metric, key, values[i], label_w, y + 3, w, row_h - 8))
        parts.append(_text(label_w + w + 4, y + row_h * 0.6, _fmt(metric, values[i]), "label"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _svg_open(name: str, width: int, height: int, title: str, metric: str = "") -> str:
    extra = f' data-metric="{escape(metric)}"' if metric else ""
    return (f'<svg class="chart" data-chart="{escape(name)}"{extra} role="img" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>")


def _rect(series: str, key: str, value: float, x: float, y: float, w: float, h: float) -> str:
    color = SERIES_COLORS.get(series, "#1f5f8b")
    return (f'<rect class="bar" data-series="{escape(series)}" data-key="{escape(key)}" '
            f'data-value="{value:g}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" '
            f'height="{max(h, 0):.1f}" fill="{color}"/>')


def _text(x: float, y: float, text: str, cls: str, anchor: str = "start") -> str:
    return (f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
            f"{escape(text)}</text>")


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#888"/>'


def _legend(series: list[Series], x: float, y: float) -> str:
    parts = []
    for s in series:
        color = SERIES_COLORS.get(s.key, "#1f5f8b")
        parts.append(f'<rect class="legend-key" x="{x}" y="{y - 9}" width="10" height="10" '
                     f'fill="{color}"/>')
        label = s.label or METRICS[s.key].label()
        parts.append(_text(x + 14, y, label, "legend"))
        x += 24 + 7 * len(label)
    return "".join(parts)


def _shorten(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plan_charts(monitoring: PlanMonitoring) -> list[Markup]:
    """One chart per plan indicator: target and realisation side by side per quarter
    (Pasal 11-12); the dashboard's ``/dinas/rencana`` and the HTML report share it."""
    quarters = [(f"q{q}", t("plan.col.quarter", q=q)) for q in range(1, QUARTERS + 1)]
    charts = []
    for row in monitoring.indicators:
        series = [Series("target", [float(v or 0) for v in row.targets], t("plan.target")),
                  Series("realised", [float(v or 0) for v in row.realised],
                         t("plan.realised"))]
        charts.append(column_chart(f"plan-{row.key}", quarters, series, row.label))
    return charts


def render_plan_section(monitoring: PlanMonitoring) -> Markup:
    """The plan's table, charts, budget and partners as one HTML ``<section>``."""
    lang = get_lang()

    def num(value: int | None) -> str:
        return "–" if value is None else format_decimal(
            value, locale="id_ID" if lang == "id" else "en_US")

    html = _environment().get_template("plan_section.html.j2").render(
        m=monitoring, charts=plan_charts(monitoring), num=num,
        rp=lambda amount: rupiah(amount, lang))
    return Markup(html)


def _plan_section(session: Session, period: Period) -> PlanMonitoring | None:
    """The year's plan monitoring when the report covers one year that has a plan."""
    year = plan_year_of(period)
    if year is None or plan_of(session, year) is None:
        return None
    return monitor_plan(session, year)


# --- the page -------------------------------------------------------------------------


@dataclass(frozen=True)
class KecamatanCell:
    code: str
    name: str
    value: int
    active: int
    registered: int
    shade: str
    text_color: str
    level: int = 0  # 0..5: the shade step the web page's stylesheet colours


def kecamatan_cells(report: Report, indicators: ProgrammeIndicators | None,
                    metric: str = "sent") -> list[KecamatanCell]:
    """All 32 kecamatan of TTS (also those without data), shaded by ``metric``."""
    values = {r.key: int(r.values[metric] or 0) for r in report.rows}
    peak = max([*values.values(), 1])
    cells = []
    for code, name in wilayah.kecamatan_list():
        value = values.get(code, 0)
        counts = indicators.by_kecamatan.get(code, {}) if indicators else {}
        strength = value / peak
        cells.append(KecamatanCell(
            code, name, value, counts.get("businesses_active", 0),
            counts.get("businesses_registered", 0), _shade(strength),
            "#fff" if strength > 0.55 else "#111", round(strength * 5),
        ))
    return cells


def _shade(strength: float) -> str:
    """White to the report blue, linear in the value."""
    low, high = (247, 250, 252), (31, 95, 139)
    r, g, b = (round(lo + (hi - lo) * strength) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def period_title(period: Period, lang: str | None = None) -> str:
    locale = "id_ID" if (lang or get_lang()) == "id" else "en_US"
    if period.first == period.last:
        return format_date(period.first, "MMMM y", locale=locale)
    if period.first == date(period.first.year, 1, 1) and period.last == date(
            period.first.year, 12, 1):
        return str(period.first.year)
    first = format_date(period.first, "MMMM y", locale=locale)
    return f"{first} – {format_date(period.last, 'MMMM y', locale=locale)}"


def _month_label(key: str) -> str:
    year, month = (int(p) for p in key.split("-"))
    locale = "id_ID" if get_lang() == "id" else "en_US"
    return format_date(date(year, month, 1), "MMM y", locale=locale)


def _top_rows(report: Report, limit: int = TOP_BUSINESSES) -> list[ReportRow]:
    def rank(row: ReportRow) -> tuple[int, int, int]:
        return (-int(row.values["order_value"] or 0), -int(row.values["unique_clicks"] or 0),
                -int(row.values["sent"] or 0))

    return sorted(report.rows, key=rank)[:limit]


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "reports")),
                      autoescape=select_autoescape(["j2", "html"]), trim_blocks=True,
                      lstrip_blocks=True)
    install_jinja(env)
    env.filters["metric"] = lambda value, key: format_metric(key, value)
    return env


SUMMARY_KEYS = ("sent", "delivered", "unique_opens", "unique_clicks", "ctr", "social_reach",
                "social_clicks", "whatsapp_clicks", "leads", "orders", "order_value")
# Where a row of the web report links to (the key is appended); the offline file has none.
WEB_LINKS = {"business": "/dinas/usaha/", "kecamatan": "/dinas/kecamatan/"}


def trend_chart(trend: Report, keys: tuple[str, ...] = ("sent", "unique_opens",
                                                           "unique_clicks")) -> Markup:
    """The monthly column chart of a ``by="month"`` report (report, UMKM page)."""
    months = [(r.key, _month_label(r.key)) for r in trend.rows]
    return column_chart("trend", months,
                        [Series(k, [float(r.values[k] or 0) for r in trend.rows]) for k in keys],
                        t("report.html.trend"))


def report_context(
    session: Session,
    period: Period | str,
    by: str,
    *,
    business_id: int | None = None,
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS,
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every report and chart the report sections need, built once by :func:`build_report`.

    The CLI/PDF document and the web page render the same sections from this context,
    so they cannot differ; ``links`` makes business and kecamatan rows link to their pages.
    """
    if isinstance(period, str):
        period = parse_period(period)
    kw: dict[str, Any] = {"business_id": business_id, "attribution_days": attribution_days}
    main = build_report(session, period, by, **kw)
    trend = build_report(session, period.extended_back(TREND_MONTHS), "month", **kw)
    channels = main if by == "channel" else build_report(session, period, "channel", **kw)
    businesses = main if by == "business" else build_report(session, period, "business", **kw)
    kecamatan = main if by == "kecamatan" else build_report(session, period, "kecamatan", **kw)
    indicators = programme_indicators(session, period) if business_id is None else None
    plan = _plan_section(session, period) if business_id is None else None
    programmes = programme_figures(session, period) if business_id is None else None
    owner = (session.execute(select(Business.name).where(Business.id == business_id))
             .scalar_one_or_none() if business_id is not None else None)

    lang = get_lang()
    channel_cats = [(str(r.key), r.label) for r in channels.rows]
    channel_charts = [
        bar_chart(f"channel-{m}", channel_cats, m,
                  [float(r.values[m] or 0) for r in channels.rows], METRICS[m].label(lang))
        for m in ("sent", "unique_clicks", "whatsapp_clicks", "social_reach")
    ]
    top = _top_rows(businesses)
    top_cats = [(str(r.key), r.label) for r in top]
    top_charts = [
        bar_chart(f"top-{m}", top_cats, m, [float(r.values[m] or 0) for r in top],
                  METRICS[m].label(lang))
        for m in ("order_value", "unique_clicks", "sent")
    ]
    sections = {
        section: [k for k in REPORT_METRICS if METRICS[k].section == section]
        for section in ("email", "social", "conversion")
    }
    return dict(
        lang=lang, dinas=DINAS, period=period, period_title=period_title(period),
        letterhead_regency=LETTERHEAD_REGENCY, letterhead_office=LETTERHEAD_OFFICE,
        generated=f"{tanggal(main.generated_at, lang)}, {jam(main.generated_at, lang)}",
        by_label=dimension_label(by), days=attribution_days, owner=owner, report=main,
        summary_keys=SUMMARY_KEYS,
        metrics=METRICS, sections=sections, section_label=section_label,
        simulated_label=simulated_label, links=links or {},
        trend_chart=trend_chart(trend), channel_charts=channel_charts, top_charts=top_charts,
        has_top=bool(top), kecamatan_cells=kecamatan_cells(kecamatan, indicators),
        map_metric=METRICS["sent"].label(lang), indicators=indicators,
        indicator_keys=INDICATOR_METRICS, regency=wilayah.regency_name(),
        plan_section=render_plan_section(plan) if plan else "",
        programme_section=render_programme_section(programmes),
    )


def render_report_html(
    session: Session,
    period: Period | str,
    by: str,
    *,
    business_id: int | None = None,
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS,
) -> str:
    """The self-contained HTML document (``umkm report --format html``, downloads, PDF)."""
    context = report_context(session, period, by, business_id=business_id,
                             attribution_days=attribution_days)
    return _environment().get_template("report.html.j2").render(**context)


def render_report_sections(session: Session, period: Period | str, by: str) -> Markup:
    """The same sections for the web page ``/dinas/laporan``, rows linking to their pages."""
    context = report_context(session, period, by, links=WEB_LINKS)
    return Markup(_environment().get_template("report_body.html.j2").render(**context))


def report_css() -> str:
    """The report's stylesheet (``/aset/laporan.css`` for the web pages)."""
    return (TEMPLATES_DIR / "reports" / "report.css").read_text(encoding="utf-8")


def render_metric_table(report: Report, keys: tuple[str, ...] | list[str],
                        link: str | None = None) -> Markup:
    """One report as a table of ``keys`` (UMKM and kecamatan pages), formatted as above."""
    return Markup(_environment().get_template("report_table.html.j2").render(
        report=report, keys=list(keys), metrics=METRICS, link=link,
        by_label=dimension_label(report.by), simulated_label=simulated_label,
        lang=get_lang()))
