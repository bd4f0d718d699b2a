"""``umkm dmarc import`` and ``umkm dmarc report``: the DMARC aggregate reports.

``import`` takes report files (.xml, .xml.gz, .zip, a saved mail .eml) and Maildir
folders (the rua mailbox); each report is stored once, so importing again is safe.
``report`` shows per day and sending IP the volume and the aligned SPF / DKIM share, and
flags IPs that are not the relay's (SPF_SOURCES): a forgotten sender, or spoofing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.app import console, fail, sub
from engine.cli.business import ensure_database
from engine.common.formatting import persen, tanggal_pendek
from engine.common.i18n import get_lang, t
from engine.config import get_settings
from engine.db import session_scope
from engine.engagement import dmarc
from engine.reporting.dmarc_summary import summarize

dmarc_app = sub("dmarc", "Laporan agregat DMARC: impor dan ringkasan per sumber.")


def _import_one(path: Path) -> list[dmarc.ImportOutcome]:
    if (path / "new").is_dir() and (path / "cur").is_dir():
        return dmarc.import_maildir(path).outcomes
    if path.is_dir():
        return [_import_file(p) for p in sorted(path.iterdir()) if p.is_file()]
    return [_import_file(path)]


def _import_file(path: Path) -> dmarc.ImportOutcome:
    with session_scope() as session:
        return dmarc.import_path(session, path)


@dmarc_app.command("import")
def import_reports(
    paths: list[Path] = typer.Argument(..., help="Berkas laporan atau folder Maildir."),
) -> None:
    """Impor laporan DMARC (.xml, .xml.gz, .zip, email .eml, atau Maildir); aman diulang."""
    ensure_database()
    outcomes: list[dmarc.ImportOutcome] = []
    for path in paths:
        if not path.exists():
            fail(escape(t("cli.dmarc.no_file", path=str(path))))
        outcomes += _import_one(path)
    table = Table(title=t("cli.dmarc.import_title"))
    for column in ("source", "status", "org", "records"):
        table.add_column(t(f"cli.dmarc.col.{column}"))
    for o in outcomes:
        detail = o.message if o.status == dmarc.REFUSED else f"{o.org_name} {o.report_id}"
        table.add_row(escape(Path(o.source).name), t(f"cli.dmarc.status.{o.status}"),
                      escape(detail), str(o.records))
    console.print(table)
    console.print(t("cli.dmarc.import_done", imported=_count(outcomes, dmarc.IMPORTED),
                    duplicate=_count(outcomes, dmarc.DUPLICATE),
                    refused=_count(outcomes, dmarc.REFUSED)))
    if outcomes and all(o.status == dmarc.REFUSED for o in outcomes):
        raise typer.Exit(1)


def _count(outcomes: list[dmarc.ImportOutcome], status: str) -> int:
    return sum(1 for o in outcomes if o.status == status)


@dmarc_app.command("report")
def report(
    days: int = typer.Option(30, "--days", min=1, max=3660, help="Berapa hari ke belakang."),
) -> None:
    """Ringkasan per hari dan IP pengirim: volume, SPF/DKIM selaras, sumber tak dikenal."""
    ensure_database()
    settings = get_settings()
    lang = get_lang()
    with session_scope() as session:
        summary = summarize(session, settings, days)
    if not summary.lines:
        console.print(t("cli.dmarc.empty", days=days))
        return
    table = Table(title=t("cli.dmarc.report_title", days=days, reports=summary.reports))
    for column in ("day", "ip", "volume", "spf", "dkim", "known"):
        table.add_column(t(f"cli.dmarc.col.{column}"),
                         justify="right" if column in ("volume", "spf", "dkim") else "left")
    for line in summary.lines:
        known = t("cli.dmarc.known") if line.known else f"[bold red]{t('cli.dmarc.unknown')}[/]"
        table.add_row(tanggal_pendek(line.day, lang), line.source_ip, str(line.volume),
                      persen(line.spf_rate, lang, 1), persen(line.dkim_rate, lang, 1), known)
    console.print(table)
    for line in summary.unknown:
        alert = t("dmarc.alert.unknown", ip=line.source_ip, n=line.volume)
        console.print(f"[bold red]{escape(alert)}[/]")
