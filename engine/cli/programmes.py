"""``umkm pelatihan add|list|register|attend`` and ``umkm pendampingan list|assign``:
Pasal 8 trainings and Pasal 9 guidance from the command line.

The rules are the services' (:mod:`engine.umkm.trainings`, :mod:`engine.umkm.guidance`),
so a full training or a non-pendamping account is refused here with the same sentence as
on the dashboard; refusals reach the CLI's one :class:`EngineError` handler.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from engine.cli.app import console, sub
from engine.cli.business import default_actor, ensure_database
from engine.common.errors import NotFound
from engine.common.i18n import t
from engine.db import session_scope
from engine.models import Business, GuidanceStatus, RegistrationSource
from engine.umkm import guidance, trainings, users

training_app = sub("pelatihan", "Pelatihan Dinas untuk UMKM (Pasal 8).")
guidance_app = sub("pendampingan", "Pendampingan UMKM oleh tenaga pendamping (Pasal 9).")


@training_app.command("add")
def add_command(
    topic: str = typer.Option(..., "--topic", help="Topik pelatihan."),
    trainer: str = typer.Option(..., "--trainer", help="Pelatih atau lembaga mitra."),
    start: str = typer.Option(..., "--start", help="Waktu mulai WITA, mis. 2026-12-10 09:00."),
    capacity: int = typer.Option(..., "--capacity", help="Jumlah peserta paling banyak."),
    place: str = typer.Option("", "--place", help="Tempat pelatihan."),
    online_url: str = typer.Option("", "--online-url", help="Tautan daring (http/https)."),
) -> None:
    """Buat pelatihan baru."""
    ensure_database()
    with session_scope() as session:
        training = trainings.create_training(
            session, topic=topic, trainer=trainer, starts_at=trainings.parse_wita(start),
            capacity=capacity, place=place, online_url=online_url, actor=default_actor())
        console.print(t("training.cli.created", id=training.id, topic=escape(training.topic),
                        when=trainings.when_text(training)), highlight=False)


@training_app.command("list")
def list_command() -> None:
    """Daftar pelatihan, yang terbaru dulu."""
    ensure_database()
    with session_scope() as session:
        rows = trainings.all_trainings(session)
        if not rows:
            console.print(t("training.cli.none"))
            return
        table = Table()
        for key in ("training.cli.col.id", "training.col.topic", "training.col.when",
                    "training.col.where", "training.col.seats", "training.col.status"):
            table.add_column(t(key))
        for row in rows:
            tr = row.training
            table.add_row(str(tr.id), escape(tr.topic), trainings.when_text(tr),
                          escape(trainings.where_text(tr)), f"{row.registered}/{tr.capacity}",
                          t(f"training.status.{tr.status.value}"))
        console.print(table)


def _business(session: Session, business_id: int) -> Business:
    business = session.get(Business, business_id)
    if business is None:
        raise NotFound("training.err.no_business", id=business_id)
    return business


@training_app.command("register")
def register_command(training_id: int = typer.Argument(...),
                     business_id: int = typer.Argument(...)) -> None:
    """Catat pendaftaran UMKM yang datang lewat WhatsApp."""
    ensure_database()
    with session_scope() as session:
        business = _business(session, business_id)
        trainings.register(session, training_id, business, source=RegistrationSource.whatsapp,
                           actor=default_actor())
        console.print(t("training.cli.registered", business=escape(business.name),
                        id=training_id), highlight=False)


@training_app.command("attend")
def attend_command(training_id: int = typer.Argument(...),
                   business_id: int = typer.Argument(...),
                   absent: bool = typer.Option(False, "--absent", help="Catat tidak hadir.")
                   ) -> None:
    """Catat kehadiran (hadir, atau tidak hadir dengan --absent)."""
    ensure_database()
    with session_scope() as session:
        business = _business(session, business_id)
        reg = trainings.record_attendance(session, training_id, business_id, not absent,
                                          actor=default_actor())
        status = t(f"training.attendance.{reg.attendance.value}") if reg.attendance else ""
        console.print(t("training.cli.attended", business=escape(business.name),
                        id=training_id, status=status), highlight=False)


@guidance_app.command("list")
def guidance_list_command(
    status: str = typer.Option("", "--status", help="diajukan, ditugaskan, berjalan, selesai."),
) -> None:
    """Daftar permintaan pendampingan."""
    ensure_database()
    with session_scope() as session:
        chosen = GuidanceStatus(status) if status in set(GuidanceStatus) else None
        rows = guidance.all_requests(session, chosen)
        if not rows:
            console.print(t("guidance.cli.none"))
            return
        helpers = {u.id: u.username for u in guidance.pendampings(session)}
        counts = guidance.session_counts(session, [r.id for r, _ in rows])
        table = Table()
        for key in ("training.cli.col.id", "guidance.col.business", "guidance.col.topic",
                    "guidance.col.status", "guidance.col.pendamping", "guidance.col.sessions"):
            table.add_column(t(key))
        for req, business in rows:
            table.add_row(str(req.id), escape(business.name),
                          t(f"guidance.topic.{req.topic.value}"),
                          t(f"guidance.status.{req.status.value}"),
                          helpers.get(req.pendamping_id or 0, "-"), str(counts.get(req.id, 0)))
        console.print(table)


@guidance_app.command("assign")
def assign_command(request_id: int = typer.Argument(...),
                   username: str = typer.Argument(..., help="Akun tenaga pendamping.")) -> None:
    """Tugaskan tenaga pendamping pada sebuah permintaan."""
    ensure_database()
    with session_scope() as session:
        helper = users.get_user(session, username)
        guidance.assign(session, guidance.get_request(session, request_id), helper,
                        actor=default_actor())
        console.print(t("guidance.cli.assigned", id=request_id, username=helper.username),
                      highlight=False)
