"""``umkm campaign plan|preview|launch|status|pause|resume|cancel``.

``launch`` hands the run to the dispatcher: Celery workers when ``REDIS_URL`` is set,
otherwise the same batch function in this process (the embedded mode), with a progress
bar. ``status`` shows counts by state, rate and ETA.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import CampaignValidationError, load_campaign
from engine.campaign.schema import CampaignSpec
from engine.cli.app import console, fail
from engine.cli.business import db_session
from engine.cli.campaign import campaign
from engine.common.formatting import jam, rupiah, tanggal
from engine.common.i18n import t
from engine.config import get_settings
from engine.delivery import control, launching, scheduler
from engine.delivery.enqueue import Batch, due_batches_for_run, launch_batches
from engine.delivery.launch_guard import LaunchVerdict
from engine.delivery.launching import revision_of_text
from engine.delivery.pipeline import process_batch
from engine.models import Campaign, CampaignRun, Customer, utcnow
from engine.outbox import warmup

PLAN_PRODUCTS_SHOWN = 15  # the rest of a long catalog is one "... dan N lainnya" line
REF = typer.Argument(..., help="Kode kampanye atau nomor putaran.")
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "skipped")
RUN_STATES = ("scheduled", "running", "paused", "finished", "cancelled")


def run_status_label(status: str) -> str:
    """The run state in the output language (the stored value is the English enum); the
    dashboard's words (``dash.status.*``), so the CLI and the web never differ."""
    return t(f"dash.status.{status}") if status in RUN_STATES else status


def delivery_state_label(state: str) -> str:
    """A delivery state as the dashboard words it (``dash.delivery.*``)."""
    return t(f"dash.delivery.{state}") if state in DELIVERY_STATES else state


def _load(path: Path) -> CampaignSpec:
    try:
        return load_campaign(path)
    except CampaignValidationError as exc:
        console.print(t("ops.invalid", file=escape(str(path))))
        for error in exc.errors:
            console.print(f"  {escape(str(error))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


def _when(value: Any) -> str:
    return f"{tanggal(value)} {jam(value)}"


@campaign.command("plan")
def plan_command(file: Path = typer.Argument(..., help="Berkas kampanye YAML.")) -> None:
    """Rencana tanpa mengirim: ukuran audiens, produk, waktu kirim pertama, per kanal."""
    spec = _load(file)
    with db_session() as session:
        report = scheduler.plan(session, spec)
        warmup_line = _warmup_line(session, spec, report)
    counts = report.audience
    table = Table(title=t("ops.plan.title", id=spec.id, type=t(f"studio.type.{spec.type}")))
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row(t("ops.plan.matched"), str(counts.matched))
    table.add_row(t("ops.plan.no_consent"), f"-{counts.without_consent}")
    table.add_row(t("ops.plan.suppressed"), f"-{counts.suppressed}")
    table.add_row(t("ops.plan.capped"), f"-{counts.frequency_capped}")
    table.add_row(f"[bold]{t('ops.plan.total')}[/]", f"[bold]{counts.total}[/]")
    console.print(table)
    if report.first_send is not None:
        console.print(t("ops.plan.first", when=_when(report.first_send)))
    elif spec.schedule.cron:
        console.print(t("ops.plan.schedule_over"))
    else:
        trigger = spec.trigger.model_dump(mode="json", exclude_none=True) if spec.trigger else {}
        pairs = ", ".join(f"{k}={v}" for k, v in trigger.items())
        console.print(t("ops.plan.triggered", trigger=pairs))
    if spec.type != "transactional":
        if report.products:
            console.print(t("ops.plan.products", n=len(report.products)))
            for p in report.products[:PLAN_PRODUCTS_SHOWN]:
                console.print(f"  • {escape(p.name)} — {rupiah(p.price)} "
                              f"({escape(p.business_name)})")
            if len(report.products) > PLAN_PRODUCTS_SHOWN:
                console.print(t("ops.plan.more_products",
                                n=len(report.products) - PLAN_PRODUCTS_SHOWN))
        else:
            console.print(f"[yellow]{t('ops.plan.no_products')}[/]")
    console.print(t("ops.plan.channels", channels=", ".join(
        f"{k}: {v}" for k, v in report.channels.items())))
    if warmup_line:
        console.print(warmup_line)
    console.print(t("ops.plan.nothing_sent"))


def _warmup_line(session: Session, spec: CampaignSpec, report: scheduler.PlanReport) -> str:
    """How many days the emails take under the domain warm-up (none: no line)."""
    emails = report.channels.get("email", 0)
    if not emails or spec.type == "transactional":
        return ""
    settings = get_settings()
    start = max(utcnow(), report.first_send) if report.first_send else utcnow()
    quota = warmup.quota_on(session, settings, start)
    if quota is None:
        return ""
    days = warmup.days_needed(session, settings, emails, start)
    return t("warmup.plan.days", n=emails, days=days, quota=quota)


@campaign.command("preview")
def preview_command(
    file: Path = typer.Argument(..., help="Berkas kampanye YAML."),
    out: Path = typer.Option(Path("var/preview"), "--out", help="Folder hasil pratinjau."),
    n: int = typer.Option(3, "-n", "--count", min=1, max=50, help="Jumlah contoh penerima."),
) -> None:
    """Tulis HTML dan teks untuk N contoh penerima ke folder, untuk diperiksa."""
    from engine.delivery.preview import write_previews

    spec = _load(file)
    with db_session() as session:
        written = write_previews(session, spec, out, n)
    console.print(t("ops.preview.written", n=len(written), dir=escape(str(out))))
    for path in written:
        console.print(f"  {escape(str(path))}")


@campaign.command("launch")
def launch_command(
    file: Path = typer.Argument(..., help="Berkas kampanye YAML."),
    wait: bool = typer.Option(False, "--wait", help="Tunggu sampai selesai, dengan progres."),
    now: bool = typer.Option(False, "--now",
                             help="Kirim sekarang, bukan pada schedule.start (tetap dalam "
                                  "jam kirim)."),
    override: str = typer.Option(None, "--override-deliverability", metavar="CATATAN",
                                 help="Luncurkan walau `umkm doctor` gagal; catatan alasan "
                                      "wajib dan dicatat di audit_log."),
) -> None:
    """Luncurkan: buat putaran kirim dan kotak keluar, serahkan ke pekerja (atau kirim di sini)."""
    spec = _load(file)
    with db_session() as session:
        revision_id = revision_of_text(session, spec.id, file.read_text(encoding="utf-8"))
        result, verdict = launching.launch(session, get_settings(), spec, str(file),
                                           actor="cli", start_now=now,
                                           override_note=override, revision_id=revision_id,
                                           hand_over=True)
        print_guard(verdict)
        run = result.run
        if result.activated_only or run is None:
            console.print(t("ops.launch.activated", id=spec.id))
            return
        run_id, status, planned = run.id, run.status.value, result.planned
        scheduled_at = run.scheduled_at
        handed = launch_batches(result) if result.handed_over else None
        if result.created:
            console.print(t("ops.launch.created", run=run_id, n=planned))
        else:
            console.print(t("ops.launch.exists", id=spec.id, run=run_id))
    if status == "scheduled":
        console.print(t("ops.launch.scheduled", when=_when(scheduled_at)))
        return
    # The launch has committed (end of ``db_session``): only now may its ids reach a worker.
    dispatch_run(run_id, wait=wait or get_settings().embedded, batches=handed)


def print_guard(verdict: LaunchVerdict) -> None:
    """The deliverability checklist's failures let through: sandbox mode or an override
    (a fail in production without one refused the launch before anything was written)."""
    for item in verdict.warnings:
        console.print(f"[yellow]! {escape(item.title)}: {escape(item.message)}[/]",
                      soft_wrap=True, highlight=False)
    if verdict.warnings:
        key = "ops.launch.overridden" if verdict.overridden else "ops.launch.sandbox_warn"
        console.print(f"[yellow]{t(key)}[/]")


def dispatch_run(run_id: int, *, wait: bool, batches: list[Batch] | None = None) -> None:
    """Workers when a broker exists; otherwise the same batches in this process.

    ``batches``: those of a launch that inserted its rows already marked as handed over
    (:func:`~engine.delivery.enqueue.launch_batches`, committed before this call); they
    go to the broker as they are, with no second pass over every row. Should the broker
    refuse them, the sweeper hands the rows over again after the grace period. ``None``
    (resume, a run launched before): the run's due rows are marked and batched now.
    """
    settings = get_settings()
    if not settings.embedded:
        from workers.tasks import dispatch_run as dispatch_task
        from workers.tasks import enqueue_batches

        if batches is None:
            dispatch_task.delay(run_id)
        else:
            enqueue_batches(batches)
        if wait:
            watch(run_id)
        return
    with db_session() as session:
        total = control.status_report(session, _run(session, run_id)).total
    with _progress() as progress:
        task = progress.add_task(t("ops.launch.sending"), total=total)
        for batch in due_batches_for_run(run_id) if batches is None else batches:
            process_batch(batch.run_id, batch.delivery_ids)
            progress.update(task, completed=_done(run_id))
    show_status(run_id)
    fail_if_held_back(run_id)


def fail_if_held_back(run_id: int) -> None:
    """Embedded mode has no worker to come back later: messages left waiting after an
    error (a full disk, a relay that defers) end the command with exit code 1 and say
    how many, why, and when ``umkm serve`` (or running the command again) retries."""
    with db_session() as session:
        run = _run(session, run_id)
        waiting = control.waiting_of(session, run.id, utcnow())
    if run.status.value != "running" or not waiting.retry or not waiting.retry_error:
        return
    lang = "id" if _lang_id() else "en"
    at = jam(waiting.next_retry_at, lang) if waiting.next_retry_at else "-"
    fail(t("ops.launch.held_back", n=waiting.retry, error=waiting.retry_error, at=at))


def _run(session: Session, run_id: int) -> CampaignRun:
    run = session.get(CampaignRun, run_id)
    if run is None:  # deleted meanwhile (ids come from launch or find_runs)
        fail(t("ops.status.unknown", ref=str(run_id)))
    return run


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def _done(run_id: int) -> int:
    with db_session() as session:
        return control.status_report(session, _run(session, run_id)).done


def watch(run_id: int, poll: float = 1.0) -> None:
    with db_session() as session:
        total = control.status_report(session, _run(session, run_id)).total
    with _progress() as progress:
        task = progress.add_task(t("ops.launch.sending"), total=total)
        while True:
            with db_session() as session:
                run = _run(session, run_id)
                report = control.status_report(session, run)
            progress.update(task, completed=report.done)
            if report.status not in ("running", "scheduled"):
                break
            time.sleep(poll)
    show_status(run_id)


def _runs(ref: str) -> list[CampaignRun]:
    with db_session() as session:
        try:
            runs = control.find_runs(session, ref)
        except control.RunNotFound:
            fail(t("ops.status.unknown", ref=ref))
    if not runs:
        fail(t("ops.status.none", ref=ref))
    return runs


def show_status(run_id: int) -> None:
    with db_session() as session:
        run = _run(session, run_id)
        report = control.status_report(session, run, utcnow())
    table = Table(title=t("ops.status.title", name=escape(report.campaign_name),
                          run=report.run_id, status=run_status_label(report.status)))
    for key in DELIVERY_STATES:
        table.add_column(delivery_state_label(key), justify="right")
    table.add_row(*(str(report.counts.get(k, 0)) for k in DELIVERY_STATES))
    console.print(table)
    eta = (t("ops.status.minutes", n=int(report.eta.total_seconds() // 60)) if report.eta
           else "-")
    console.print(t("ops.status.rate", rate=int(report.rate_per_minute), eta=eta))
    if report.reason:
        console.print(t("ops.status.reason", reason=escape(report.reason)))
    for error, count in report.errors:
        console.print(f"  [red]{count}×[/] {escape(error)}", soft_wrap=True)
    for line in waiting_lines(report):
        console.print(line, soft_wrap=True)


def waiting_lines(report: control.RunStatusReport) -> list[str]:
    """What waits and until when: a backoff or a relay's deferral, a worker's lease,
    and when the run last sent (a paused run says when it stopped)."""
    waiting = report.waiting
    if waiting is None:
        return []
    lines = []
    lang = "id" if _lang_id() else "en"
    if waiting.retry and waiting.next_retry_at is not None:
        lines.append(t("ops.status.waiting_retry", n=waiting.retry,
                       at=jam(waiting.next_retry_at, lang),
                       error=escape(waiting.retry_error or "-")))
    if waiting.leased and waiting.lease_expires_at is not None:
        lines.append(t("ops.status.leased", n=waiting.leased,
                       at=jam(waiting.lease_expires_at, lang)))
    if waiting.last_sent_at is not None and report.status in ("paused", "cancelled"):
        lines.append(t("ops.status.stopped_at", at=jam(waiting.last_sent_at, lang)))
    return lines


def _lang_id() -> bool:
    from engine.common.i18n import get_lang

    return get_lang() == "id"


@campaign.command("status")
def status_command(ref: str = REF) -> None:
    """Progres putaran: jumlah per status, laju, perkiraan selesai, galat teratas."""
    for run in _runs(ref)[:5]:
        show_status(run.id)


@campaign.command("pause")
def pause_command(ref: str = REF) -> None:
    """Jeda putaran terbaru (pekerja berhenti dalam satu batch; tanpa duplikat saat lanjut)."""
    run = _runs(ref)[0]
    with db_session() as session:
        run = _run(session, run.id)
        ok = control.pause(session, run, t("ops.pause_reason"))
        console.print(t("ops.paused" if ok else "ops.not_paused", run=run.id,
                        status=run_status_label(run.status.value)))
    if not ok:
        raise typer.Exit(1)


@campaign.command("resume")
def resume_command(ref: str = REF) -> None:
    """Lanjutkan putaran yang dijeda."""
    run = _runs(ref)[0]
    with db_session() as session:
        run = _run(session, run.id)
        ok = control.resume(session, run)
        console.print(t("ops.resumed" if ok else "ops.not_resumed", run=run.id,
                        status=run_status_label(run.status.value)))
        status, scheduled_at = run.status.value, run.scheduled_at
    if not ok:
        raise typer.Exit(1)
    if status == "scheduled":  # paused before its start time: it waits for it again
        console.print(t("ops.launch.scheduled", when=_when(scheduled_at)))
        return
    dispatch_run(run.id, wait=get_settings().embedded)


@campaign.command("cancel")
def cancel_command(ref: str = REF) -> None:
    """Batalkan putaran terbaru dan nonaktifkan pemicu kampanye."""
    with db_session() as session:
        try:
            runs = control.find_runs(session, ref)
        except control.RunNotFound:
            fail(t("ops.status.unknown", ref=ref))
        if not runs:  # a trigger campaign that never fired: only its trigger stops
            campaign_row = session.scalars(select(Campaign).where(Campaign.key == ref)).one()
            control.deactivate(session, campaign_row)
            console.print(t("ops.deactivated", id=campaign_row.key))
            return
        run = runs[0]
        done = run.status.value in ("finished", "cancelled")
        n = 0 if done else control.cancel(session, run, t("ops.cancel_reason"))
        owner = session.get(Campaign, run.campaign_id)
        if owner is not None:
            control.deactivate(session, owner)
        if done:
            console.print(t("ops.cancel_done", run=run.id,
                            status=run_status_label(run.status.value)))
        else:
            console.print(t("ops.cancelled", run=run.id, n=n))


__all__ = ["Customer", "dispatch_run", "select", "show_status", "watch"]
