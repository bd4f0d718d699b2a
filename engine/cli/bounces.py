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
from engine.common.i18n import register, t
from engine.engagement import bounces

register({
    "cli.bounces.help": {"id": "Olah pantulan (bounce) dan keluhan email.",
                         "en": "Process email bounces and complaints."},
    "cli.bounces.not_maildir": {
        "id": "{path} bukan folder Maildir (harus berisi new/ dan cur/).",
        "en": "{path} is not a Maildir folder (it needs new/ and cur/)."},
    "cli.bounces.title": {"id": "Kotak pantulan {path}", "en": "Bounce mailbox {path}"},
    "cli.bounces.messages": {"id": "Surat dibaca", "en": "Mails read"},
    "cli.bounces.hard": {"id": "Pantulan permanen (hard)", "en": "Hard bounces"},
    "cli.bounces.soft": {"id": "Pantulan sementara (soft)", "en": "Soft bounces"},
    "cli.bounces.complaints": {"id": "Keluhan spam", "en": "Spam complaints"},
    "cli.bounces.suppressed": {"id": "Alamat diblokir", "en": "Addresses suppressed"},
    "cli.bounces.duplicates": {"id": "Sudah tercatat sebelumnya", "en": "Already recorded"},
    "cli.bounces.ignored": {"id": "Diabaikan (alamat tidak dikenal)",
                            "en": "Ignored (unknown address)"},
    "cli.bounces.unrecognised": {"id": "Bukan laporan (dipindah ke 'unrecognised')",
                                 "en": "Not a report (moved to 'unrecognised')"},
    "cli.bounces.errors": {"id": "Gagal, dicoba lagi nanti", "en": "Failed, retried later"},
})

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
