"""``umkm bounces process MAILDIR``: read the bounce mailbox once (also a beat task).

Delivery-status notifications and complaint reports are applied (suppressions, events)
and moved to the Maildir's ``processed`` folder; other mail goes to ``unrecognised``
for a person to read. Running it again does nothing new: safe for cron.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.app import console, fail, sub
from engine.cli.business import ensure_database
from engine.common.crypto import MissingSecretKey
from engine.common.i18n import t
from engine.engagement import bounces
from engine.engagement.bounce_reasons import is_hard

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
    _print_reasons(report)
    if report.errors:
        raise typer.Exit(1)


def _print_reasons(report: bounces.MaildirReport) -> None:
    """The summary by reason: which problems the list has (full boxes, block lists...)."""
    if not report.by_reason:
        return
    table = Table(title=escape(t("cli.bounces.by_reason")))
    table.add_column(t("cli.bounces.reason"))
    table.add_column(t("cli.bounces.verdict"))
    table.add_column(t("cli.bounces.count"), justify="right")
    for reason, count in report.by_reason.most_common():
        table.add_row(escape(reason), _verdict(reason), str(count))
    console.print(table)


def _verdict(reason: str) -> str:
    if reason in ("feedback", "complaint"):
        return t("cli.bounces.complaint")
    return "hard" if is_hard(reason) else "soft"


def _analysis_json(path: Path, analysis: bounces.Analysis) -> dict[str, Any]:
    return {"file": str(path), "kind": analysis.kind, "analyser": analysis.analyser,
            "recipients": [{"address": n.recipient, "status": n.status, "reason": n.reason,
                            "verdict": n.kind, "analyser": n.analyser,
                            "delivery_id": n.verp[0] if n.verp else None}
                           for n in analysis.notices]}


@bounces_app.command("check")
def check(
    files: list[Path] = typer.Argument(..., help="File email (.eml) yang akan diperiksa."),
    as_json: bool = typer.Option(False, "--json", help="Keluaran JSON."),
) -> None:
    """Golongkan file pantulan tanpa menyentuh basis data (bounce, keluhan, balasan
    otomatis, bukan pantulan), per penerima: status, alasan, hard/soft, penganalisis."""
    results = []
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            fail(escape(t("cli.bounces.unreadable", path=path)))
        results.append(_analysis_json(path, bounces.analyse(raw)))
    if as_json:
        typer.echo(json.dumps(results, ensure_ascii=False, indent=1))
        return
    for item in results:
        console.print(escape(t("cli.bounces.check_file", path=item["file"],
                               kind=t(f"cli.bounces.kind.{item['kind']}"),
                               analyser=item["analyser"])))
        for r in item["recipients"]:
            console.print(escape(t("cli.bounces.check_rcpt", address=r["address"] or "?",
                                   status=r["status"] or "-", reason=r["reason"] or "-",
                                   verdict=r["verdict"], analyser=r["analyser"])))
