"""What each report number means: the metric definitions, written once.

Why one list in code: every report (CLI, HTML, dashboard) and ``docs/metrics.md`` (a test
keeps the file identical) take their metrics from it, so the definition a Dinas officer
reads can never drift from the one the SQL implements (:mod:`engine.reporting.sources`).
The wording itself is in the gettext catalogs (``report.metric.<key>.label`` and
``.definition``, ``report.section.<section>``), where a translator finds every other text.
Formatting lives here too because a metric's ``kind`` (count, ratio, rupiah) decides how it
is printed everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from babel.numbers import format_decimal, format_percent

from engine.common.formatting import rupiah
from engine.common.i18n import get_lang, t

Value = int | float | None


@dataclass(frozen=True)
class MetricDef:
    """How one number is counted; ``kind`` decides its formatting (count, ratio, rupiah).

    The label and the definition are catalog texts (``report.metric.<key>.label`` and
    ``.definition``), so a translator words them in the ``.po`` files like every other text.
    """

    key: str
    section: Literal["email", "social", "conversion", "programme"]
    kind: Literal["count", "ratio", "rupiah"]

    def label(self, lang: str | None = None) -> str:
        """The column heading people read (the language in force by default)."""
        return t(f"report.metric.{self.key}.label", lang)

    def definition(self, lang: str | None = None) -> str:
        """How the number is counted, in words (the language in force by default)."""
        return t(f"report.metric.{self.key}.definition", lang)


METRICS: dict[str, MetricDef] = {m.key: m for m in (
    MetricDef("planned", "email", "count"),
    MetricDef("sent", "email", "count"),
    MetricDef("failed", "email", "count"),
    MetricDef("delivered", "email", "count"),
    MetricDef("bounced_hard", "email", "count"),
    MetricDef("bounced_soft", "email", "count"),
    MetricDef("unique_opens", "email", "count"),
    MetricDef("unique_clicks", "email", "count"),
    MetricDef("ctr", "email", "ratio"),
    MetricDef("unsubscribes", "email", "count"),
    MetricDef("complaints", "email", "count"),
    MetricDef("social_posts", "social", "count"),
    MetricDef("social_views", "social", "count"),
    MetricDef("social_reach", "social", "count"),
    MetricDef("social_reactions", "social", "count"),
    MetricDef("social_comments", "social", "count"),
    MetricDef("social_shares", "social", "count"),
    MetricDef("social_clicks", "social", "count"),
    MetricDef("social_saves", "social", "count"),
    MetricDef("whatsapp_clicks", "conversion", "count"),
    MetricDef("leads", "conversion", "count"),
    MetricDef("orders", "conversion", "count"),
    MetricDef("order_value", "conversion", "rupiah"),
    MetricDef("businesses_registered", "programme", "count"),
    MetricDef("businesses_new", "programme", "count"),
    MetricDef("businesses_eligible", "programme", "count"),
    MetricDef("businesses_opted_in", "programme", "count"),
    MetricDef("businesses_active", "programme", "count"),
)}

REPORT_METRICS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.section != "programme")
INDICATOR_METRICS: tuple[str, ...] = tuple(
    k for k, m in METRICS.items() if m.section == "programme"
)
METRICS_DOC_START = "<!-- metrics:start (generated from engine.reporting.metrics.METRICS) -->"
METRICS_DOC_END = "<!-- metrics:end -->"


def metric_label(key: str, lang: str | None = None) -> str:
    """The column heading people read for ``key`` (the page's language by default)."""
    return METRICS[key].label(lang)


def section_label(section: str, lang: str | None = None) -> str:
    """The heading of a report section (``Pesan``, ``Media sosial``, ...)."""
    return t(f"report.section.{section}", lang)


def metrics_markdown() -> str:
    """The definitions table of ``docs/metrics.md`` (a test keeps the file identical)."""
    lines = ["| key | section | Nama | Definisi | Name | Definition |",
             "|---|---|---|---|---|---|"]
    for key, m in METRICS.items():
        cells = [f"`{key}`", m.section, m.label("id"), m.definition("id"), m.label("en"),
                 m.definition("en")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --- presentation shared by the CLI, the HTML report and the dashboard ------------


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
    """The heading of the grouping column (``Kampanye``, ``Kecamatan``, ...)."""
    return t(f"report.by.{by}", lang)


def simulated_label(label: str, lang: str | None = None) -> str:
    """``Facebook (simulasi)``: the marker every report puts on sandbox figures."""
    return t("report.simulated_row", lang, label=label)
