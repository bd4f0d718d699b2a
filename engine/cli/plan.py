"""``umkm rencana``: the annual programme plan of Pasal 11-12 (set from YAML, report).

``set`` replaces the year's targets, budget lines and partners with the file's (every
problem of the file is listed with its line and column); ``report`` prints target vs
realisation per quarter, the same figures as ``/dinas/rencana``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from engine.cli.app import console, sub
from engine.cli.business import db_session
from engine.common.formatting import rupiah
from engine.common.i18n import get_lang, t
from engine.reporting.plan_file import read_plan_file, save_plan
from engine.reporting.programme_plan import PlanMonitoring, monitor_plan

plan_app = sub("rencana", "Rencana tahunan program (Pasal 11-12): target, anggaran, mitra.")


@plan_app.command("set")
def set_plan(
    year: int = typer.Argument(..., help="Tahun rencana, mis. 2026."),
    file: Path = typer.Option(..., "--file", "-f", help="Berkas YAML rencana."),
) -> None:
    """Muat rencana tahunan dari YAML (menggantikan target, anggaran dan mitra tahun itu)."""
    spec = read_plan_file(file, year)  # a PlanFileError is printed by the CLI's handler
    with db_session() as session:
        save_plan(session, year, spec, actor="cli")
    console.print(t("plan.cli.saved", year=year, targets=len(spec.target_rows()),
                    budget=len(spec.budget), partners=len(spec.partners)))


@plan_app.command("report")
def report_plan(year: int = typer.Argument(..., help="Tahun rencana, mis. 2026.")) -> None:
    """Target dan realisasi per triwulan untuk setiap indikator."""
    with db_session() as session:
        monitoring = monitor_plan(session, year)
        table = _table(monitoring)
        budget = _budget_line(monitoring)
    if monitoring.plan is None:
        console.print(t("plan.none", year=year))
    console.print(table)
    console.print(budget)


def _cell(value: int | None) -> str:
    return "–" if value is None else f"{value:,}".replace(",", ".")


def _table(monitoring: PlanMonitoring) -> Table:
    table = Table(title=t("plan.cli.title", year=monitoring.year), box=box.SIMPLE_HEAVY)
    table.add_column(t("plan.col.indicator"))
    for q in range(1, 5):
        table.add_column(t("plan.col.quarter", q=q), justify="right")
    table.add_column(t("plan.col.year"), justify="right")
    table.add_column("%", justify="right")
    for row in monitoring.indicators:
        cells = [f"{_cell(r)} / {_cell(g)}" for g, r in zip(row.targets, row.realised,
                                                              strict=True)]
        percent = "–" if row.percent is None else f"{row.percent:.0%}"
        table.add_row(row.label, *cells, f"{_cell(row.year_realised)} / "
                      f"{_cell(row.year_target)}", percent)
    table.caption = t("plan.cli.caption")
    return table


def _budget_line(monitoring: PlanMonitoring) -> str:
    lang = get_lang()
    return t("plan.budget_summary", total=rupiah(monitoring.budget_total, lang),
             used=rupiah(monitoring.budget_used, lang), lines=len(monitoring.budget),
             partners=len(monitoring.partners))
