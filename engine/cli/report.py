"""``umkm report``: monitoring and evaluation reports (Pasal 11, 15): table, CSV, HTML, PDF.

The numbers come from :mod:`engine.reporting.build` (the same API the dashboard uses); this
module only chooses the output.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from engine.cli.app import app, console, fail
from engine.cli.business import db_session
from engine.common.errors import os_reason
from engine.common.i18n import t
from engine.reporting.build import DEFAULT_ATTRIBUTION_DAYS, Report, build_report
from engine.reporting.csv_export import report_csv
from engine.reporting.html import period_title, render_report_html
from engine.reporting.metrics import (
    METRICS,
    REPORT_METRICS,
    dimension_label,
    format_metric,
    section_label,
    simulated_label,
)
from engine.reporting.pdf import html_to_pdf
from engine.reporting.periods import parse_period
from engine.reporting.programme_report import (
    ProgrammeFigures,
    ProgrammeTable,
    programme_figures,
    programme_tables,
)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    html = "html"
    pdf = "pdf"


@app.command("report")
def report_command(
    period: str = typer.Option(..., "--period", "-p",
                               help="Periode (WITA): 2026-12, 2026 atau 2026-10..2026-12."),
    by: str = typer.Option("campaign", "--by",
                           help="Kelompokkan per campaign, channel, business, kecamatan "
                                "atau month."),
    output_format: str = typer.Option("table", "--format", "-f", help="table, csv, html atau pdf."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Berkas keluaran (csv/html/pdf); bawaan: "
                                         "laporan-<periode>-<by>.<format>."),
    attribution_days: int = typer.Option(
        DEFAULT_ATTRIBUTION_DAYS, "--attribution-days",
        help="Pesanan dihitung bila paling lama N hari setelah klik (inklusif)."),
    decimal_comma: bool = typer.Option(
        False, "--decimal-comma", help="CSV gaya Indonesia: pemisah ';' dan desimal ','."),
    business_id: int | None = typer.Option(
        None, "--business", help="Hanya data satu UMKM (ID), seperti tampilan pemilik."),
) -> None:
    """Laporan pemantauan dan evaluasi (Pasal 11 dan 15): tabel, CSV, HTML atau PDF."""
    try:
        fmt = OutputFormat(output_format)
    except ValueError:
        fail(escape(t("report.cli.bad_format", value=output_format)))
    parsed = parse_period(period)  # a ReportError is printed by the CLI's one error handler
    programmes: ProgrammeFigures | None = None
    with db_session() as session:
        if fmt in (OutputFormat.html, OutputFormat.pdf):
            document = render_report_html(session, parsed, by, business_id=business_id,
                                          attribution_days=attribution_days)
        else:
            report = build_report(session, parsed, by, business_id=business_id,
                                  attribution_days=attribution_days)
            if fmt is OutputFormat.table and business_id is None:
                programmes = programme_figures(session, parsed)
    if fmt is OutputFormat.table:
        _print_tables(report)
        if programmes is not None:  # Pasal 8 and 9: only when the period has any
            _print_programme_tables(programmes)
        return
    path = out or Path(f"laporan-{parsed.label.replace('..', '_')}-{by}.{fmt.value}")
    if fmt is OutputFormat.pdf:
        data = html_to_pdf(document)  # PdfUnavailable: printed by the CLI's error handler
    elif fmt is OutputFormat.html:
        data = document.encode("utf-8")
    else:
        data = report_csv(report, decimal_comma=decimal_comma)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        fail(escape(t("report.cli.write_failed", path=path, error=os_reason(exc))))
    console.print(t("report.cli.written", path=path), highlight=False, soft_wrap=True)


def _print_tables(report: Report) -> None:
    """One Rich table per section: all metrics would not fit one terminal line."""
    if not report.rows:
        console.print(t("report.cli.empty"), style="yellow")
    by = dimension_label(report.by)
    for section in ("email", "social", "conversion"):
        keys = [k for k in REPORT_METRICS if METRICS[k].section == section]
        parts = -(-len(keys) // _COLUMNS_PER_TABLE)
        size = -(-len(keys) // parts)
        for start in range(0, len(keys), size):
            _print_table(report, by, section, keys[start:start + size])
    if report.simulated:
        console.print(t("report.simulated_note"), style="dim", highlight=False)


_COLUMNS_PER_TABLE = 6  # keeps a table readable on an 80-column terminal


def _print_table(report: Report, by: str, section: str, keys: list[str]) -> None:
    table = Table(title=t("report.cli.title", section=section_label(section),
                          period=period_title(report.period), by=by),
                  title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column(by, min_width=12, overflow="fold")
    for key in keys:
        table.add_column(METRICS[key].label(), justify="right")
    for row in report.rows:
        table.add_row(escape(row.label), *[format_metric(k, row.values[k]) for k in keys])
    table.add_row(f"[bold]{t('report.total')}[/]",
                  *[f"[bold]{format_metric(k, report.totals[k])}[/]" for k in keys])
    for row in report.simulated:  # sandbox figures: shown apart, marked, never in the total
        table.add_row(f"[dim]{escape(simulated_label(row.label))}[/]",
                      *[f"[dim]{format_metric(k, row.values[k])}[/]" for k in keys])
    console.print(table)


def _print_programme_tables(figures: ProgrammeFigures) -> None:
    """Training participation and guidance, the tables of the HTML report's section."""
    period = period_title(figures.period)
    for spec in programme_tables(figures):
        _print_programme_table(spec, period)


def _print_programme_table(spec: ProgrammeTable, period: str) -> None:
    title = t("report.prog.cli_title", title=spec.title, period=period)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  min_width=len(title))  # a narrow table must not wrap its title
    for index, column in enumerate(spec.columns):
        table.add_column(column, justify="left" if index < spec.labels else "right",
                         overflow="fold")
    for row in spec.rows:
        table.add_row(*[escape(cell) for cell in row])
    if spec.total:
        table.add_row(*[f"[bold]{escape(cell)}[/]" for cell in spec.total])
    console.print(table)
