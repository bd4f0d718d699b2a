"""``umkm import customers|orders FILE``: CSV imports with progress, bad rows and a summary.

Exit codes are part of the interface (scripts and cron jobs check them): 0 every row
imported or already present, 1 some rows rejected (the rest was imported), 2 the file
could not be read at all (nothing written).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from engine.cli.app import console, err_console, fail, sub
from engine.common.i18n import t
from engine.customers.csvfile import ColumnSpec, ImportFileError, ImportReport, inspect_csv
from engine.customers.customer_import import CUSTOMER_COLUMNS, import_customers
from engine.customers.order_import import ORDER_COLUMNS, import_orders
from engine.db import migrate

MAX_SHOWN = 50


group = sub("import", t("import.cli.help", lang="id"))

Importer = Callable[..., ImportReport]


def _run(path: Path, spec: ColumnSpec, importer: Importer, batch_size: int) -> None:
    """Migrate, check the file, import with a progress bar, report, exit with the code."""
    if batch_size < 1:
        fail(t("import.cli.bad_batch"), code=2)
    try:
        migrate()
        info = inspect_csv(path, spec)
    except ImportFileError as exc:
        _refuse(exc)
    except SQLAlchemyError as exc:
        fail(t("import.cli.db_error", detail=exc.__class__.__name__), code=1)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(t("import.cli.progress", file=path.name), total=info.rows)

            def advance(done: int) -> None:
                bar.update(task, completed=done)

            report = importer(path, batch_size=batch_size, progress=advance)
    except ImportFileError as exc:  # the file changed between the check and the import
        _refuse(exc)
    except SQLAlchemyError as exc:
        fail(t("import.cli.db_error", detail=_first_line(exc)), code=1)
    _print_errors(report)
    _print_summary(report)
    raise typer.Exit(1 if report.rejected else 0)


def _refuse(exc: ImportFileError) -> NoReturn:
    """Like :func:`fail` with exit 2, but never wrapped: ``file:line:`` must stay whole."""
    err_console.print(f"[bold red]{t('cli.error', message='')}[/]", end="", highlight=False)
    err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _first_line(exc: SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's SQL dump and parameters."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _print_errors(report: ImportReport) -> None:
    """``file:line: reason``, one per line and never wrapped, so editors can jump to it."""
    for error in report.errors[:MAX_SHOWN]:
        console.print(str(error), markup=False, highlight=False, soft_wrap=True)
    hidden = report.rejected - min(MAX_SHOWN, len(report.errors))
    if hidden > 0:
        console.print(t("import.cli.more", count=hidden), markup=False, highlight=False)


def _print_summary(report: ImportReport) -> None:
    table = Table(title=t("import.cli.title", file=Path(report.file).name))
    table.add_column(t("import.cli.col_result"))
    table.add_column(t("import.cli.col_rows"), justify="right")
    table.add_row(t("import.cli.accepted"), str(report.accepted), style="green")
    table.add_row(t("import.cli.unchanged"), str(report.unchanged))
    table.add_row(t("import.cli.rejected"), str(report.rejected),
                  style="red" if report.rejected else None)
    table.add_row(t("import.cli.total"), str(report.total), style="bold")
    console.print(table)


FILE_ARG = typer.Argument(..., help=t("import.cli.file_help", lang="id"), show_default=False)
BATCH_OPT = typer.Option(500, "--batch-size", help=t("import.cli.batch_help", lang="id"))


@group.command("customers", help=t("import.cli.customers_help", lang="id"))
def customers_command(file: Path = FILE_ARG, batch_size: int = BATCH_OPT) -> None:
    _run(file, CUSTOMER_COLUMNS, import_customers, batch_size)


@group.command("orders", help=t("import.cli.orders_help", lang="id"))
def orders_command(file: Path = FILE_ARG, batch_size: int = BATCH_OPT) -> None:
    _run(file, ORDER_COLUMNS, import_orders, batch_size)
