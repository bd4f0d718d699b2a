"""``umkm bounces process MAILDIR``: read the bounce mailbox once (also a beat task).

Delivery-status notifications and complaint reports are applied (suppressions, events)
and moved to the Maildir's ``processed`` folder; other mail goes to ``unrecognised``
for a person to read. Running it again does nothing new: safe for cron.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.app import console, fail, sub
from engine.cli.business import ensure_database
from engine.common.crypto import MissingSecretKey
from engine.common.i18n import t
from engine.engagement import bounces

bounces_app = sub("bounces", "Olah pantulan (bounce) dan keluhan email.")


@bounces_app.command("process")
def process(
    maildir: Path = typer.Argument(..., help="Folder Maildir kotak pantulan."),
    soft_limit: int | None = typer.Option(
        None, "--soft-limit", min=1,
        help="Jumlah soft bounce dalam 30 hari sebelum alamat diblokir (bawaan 3)."),
) -> None:
    """Baca DSN/ARF di MAILDIR sekali: catat, blokir alamat, pindahkan ke 'processed'."""
    if not (maildir / "new").is_dir() or not (maildir / "cur").is_dir():
        fail(escape(t("cli.bounces.not_maildir", path=maildir)))
    try:
        ensure_database()
        report = bounces.process_maildir(maildir, soft_limit=soft_limit)
    except MissingSecretKey as exc:
        fail(escape(str(exc)))
    table = Table(title=escape(t("cli.bounces.title", path=maildir)))
    table.add_column("")
    table.add_column("", justify="right")
    for key in ("messages", "hard", "soft", "complaints", "suppressed", "duplicates",
                "ignored", "unrecognised", "errors"):
        table.add_row(t(f"cli.bounces.{key}"), str(getattr(report, key)))
    console.print(table)
    if report.errors:
        raise typer.Exit(1)
