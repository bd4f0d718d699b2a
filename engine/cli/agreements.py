"""``umkm kesepakatan list|add|reminders`` and ``umkm pengawasan list|add|follow-up``:
Pasal 13-14 agreements and supervision from the command line.

The rules are the services' (:mod:`engine.umkm.agreements`,
:mod:`engine.umkm.supervision`), so an end date before the start or a complaint about two
subjects is refused here with the same sentence as on ``/dinas/kesepakatan`` and
``/dinas/pengawasan``; refusals reach the CLI's one :class:`EngineError` handler.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from engine.cli.app import console, sub
from engine.cli.business import default_actor, ensure_database
from engine.common.formatting import tanggal
from engine.common.i18n import get_lang, t
from engine.config import get_settings
from engine.db import session_scope
from engine.models import Agreement, Business, Complaint, utcnow
from engine.reporting.periods import local_now_date
from engine.umkm import agreements, supervision

agreement_app = sub("kesepakatan",
                    "Kesepakatan bersama dengan penyedia layanan digital (Pasal 13-14).")
supervision_app = sub("pengawasan",
                      "Pengawasan: pengaduan dan catatan kualitas produk/layanan (Pasal 14).")


def _agreement_table(rows: list[Agreement]) -> Table:
    lang, today = get_lang(), local_now_date()
    table = Table()
    for key in ("training.cli.col.id", "agreement.col.provider", "agreement.col.kind",
                "agreement.col.start", "agreement.col.end", "agreement.col.days_left",
                "agreement.col.document"):
        table.add_column(t(key))
    for a in rows:
        left = agreements.days_left(a, today)
        table.add_row(str(a.id), escape(a.provider_name), t(f"agreement.kind.{a.kind}"),
                      tanggal(a.start_date, lang), tanggal(a.end_date, lang),
                      str(left) if left >= 0 else t("agreement.web.ended"),
                      t("dash.yes") if a.document_key else t("dash.no"))
    return table


@agreement_app.command("list")
def agreement_list_command() -> None:
    """Daftar kesepakatan, yang paling dulu berakhir di atas."""
    ensure_database()
    with session_scope() as session:
        rows = agreements.list_agreements(session)
        if not rows:
            console.print(t("agreement.web.empty"))
            return
        console.print(_agreement_table(rows))


@agreement_app.command("add")
def agreement_add_command(
    provider: str = typer.Option(..., "--provider", help="Nama penyedia layanan."),
    kind: str = typer.Option(..., "--kind",
                             help="lokapasar, kurir, pembayaran, platform atau lainnya."),
    start: str = typer.Option(..., "--start", help="Tanggal mulai, mis. 2026-01-01."),
    end: str = typer.Option(..., "--end", help="Tanggal berakhir, mis. 2027-12-31."),
    parties: str = typer.Option("", "--parties", help="Para pihak."),
    rights: str = typer.Option("", "--rights", help="Hak dan kewajiban."),
) -> None:
    """Catat kesepakatan baru (dokumen PDF diunggah di /dinas/kesepakatan)."""
    ensure_database()
    with session_scope() as session:
        agreement = agreements.create_agreement(
            session, provider_name=provider, kind=kind, parties=parties,
            rights_obligations=rights, start_date=agreements.parse_date(start),
            end_date=agreements.parse_date(end), actor=default_actor())
        lang = get_lang()
        console.print(t("agreement.cli.created", id=agreement.id,
                        provider=escape(agreement.provider_name),
                        start=tanggal(agreement.start_date, lang),
                        end=tanggal(agreement.end_date, lang)), highlight=False)


@agreement_app.command("reminders")
def agreement_reminders_command() -> None:
    """Catat pengingat kesepakatan yang segera berakhir (seperti tugas terjadwal) dan
    tampilkan yang masih berlaku."""
    ensure_database()
    days = get_settings().agreement_reminder_days
    with session_scope() as session:
        added = agreements.remind_expiring(session, utcnow(), days)
        console.print(t("agreement.cli.reminded", n=len(added), days=days), highlight=False)
        due = agreements.open_reminders(session, local_now_date())
        if due:
            console.print(_agreement_table(due))


# --- pengawasan -----------------------------------------------------------------------


def _subject(session: Session, complaint: Complaint) -> str:
    if complaint.business_id is not None:
        business = session.get(Business, complaint.business_id)
        return t("complaint.web.about_business", name=business.name if business else "?")
    agreement = session.get(Agreement, complaint.agreement_id)
    return t("complaint.web.about_agreement",
             name=agreement.provider_name if agreement else "?")


@supervision_app.command("list")
def supervision_list_command(
    status: str = typer.Option("", "--status", help="open, ditindaklanjuti atau selesai."),
) -> None:
    """Daftar pengaduan dan catatan pengawasan, yang terbaru dulu."""
    ensure_database()
    with session_scope() as session:
        rows = supervision.list_complaints(session, status or None)
        if not rows:
            console.print(t("complaint.web.empty"))
            return
        table = Table()
        for key in ("training.cli.col.id", "complaint.col.kind", "guidance.col.business",
                    "complaint.col.status", "complaint.col.text"):
            table.add_column(t(key), overflow="fold")
        for c in rows:
            text = c.text if len(c.text) <= 80 else c.text[:79] + "…"
            table.add_row(str(c.id), t(f"complaint.kind.{c.kind}"),
                          escape(_subject(session, c)), t(f"complaint.status.{c.status}"),
                          escape(text))
        console.print(table)


@supervision_app.command("add")
def supervision_add_command(
    text: str = typer.Option(..., "--text", help="Isi pengaduan atau catatan."),
    business_id: int | None = typer.Option(None, "--business", help="ID UMKM yang diadukan."),
    agreement_id: int | None = typer.Option(None, "--agreement",
                                            help="ID kesepakatan (penyedia layanan)."),
    kind: str = typer.Option("keluhan", "--kind", help="keluhan atau catatan."),
) -> None:
    """Catat pengaduan atau catatan pengawasan tentang satu UMKM atau satu kesepakatan."""
    ensure_database()
    with session_scope() as session:
        complaint = supervision.create_complaint(
            session, text=text, actor=default_actor(), kind=kind, business_id=business_id,
            agreement_id=agreement_id)
        console.print(t("complaint.cli.created", id=complaint.id,
                        subject=escape(_subject(session, complaint))), highlight=False)


@supervision_app.command("follow-up")
def supervision_follow_up_command(
    complaint_id: int = typer.Argument(..., help="Nomor pengaduan."),
    note: str = typer.Option(..., "--note", help="Tindak lanjut yang dilakukan."),
    status: str = typer.Option("ditindaklanjuti", "--status",
                               help="open, ditindaklanjuti atau selesai."),
) -> None:
    """Catat tindak lanjut dan ubah status pengaduan."""
    ensure_database()
    with session_scope() as session:
        entry = supervision.follow_up(session, complaint_id, note=note, status=status,
                                      actor=default_actor())
        console.print(t("complaint.cli.followed", id=complaint_id,
                        status=t(f"complaint.status.{entry.status}")), highlight=False)
