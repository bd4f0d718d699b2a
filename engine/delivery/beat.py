"""The periodic jobs of the beat, one function each (DESIGN §2: "workers beat").

Each job is its own Celery task with its own time limit (``workers.tasks``), so a slow
provider (social insights, a mailbox on a network share) can never hold back the
sweeper or the start of a due campaign. Every job is idempotent in the database: two
beats running the same job at the same instant start each run once and hand over each
delivery id once. A job returns the batches it made due; its task hands them to the
broker, the embedded demo sends them in-process (:func:`run_all`, the same functions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.campaign.window import retention_due
from engine.common.i18n import t
from engine.config import Settings, get_settings
from engine.db import session_factory
from engine.delivery import ab_winner, scheduler
from engine.delivery.enqueue import Batch, due_batches_for_run, sweep
from engine.delivery.optin_mail import Link, build_small_mail, transmit
from engine.engagement.bounces import process_maildir
from engine.engagement.dmarc import import_maildir
from engine.engagement.stream_consumer import drain_once
from engine.models import Agreement, utcnow
from engine.social import metrics as social_metrics
from engine.umkm import agreements

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    """What one job did: ``count`` runs started or created, ids recovered, posts read
    or mails handled, and the ``batches`` it made due (to be handed to the broker)."""

    count: int = 0
    batches: list[Batch] = field(default_factory=list)


Job = Callable[[Settings, datetime], JobReport]
RunStep = Callable[[Session, datetime], list[int]]


def _runs_job(step: RunStep, settings: Settings, now: datetime) -> JobReport:
    """A scheduler step that starts or creates runs, then the new rows of those runs.

    Only rows never handed over are taken (``only_new``): a second beat's sweeper at
    the same moment can never hand over the same id.
    """
    with session_factory(settings)() as session:
        run_ids = step(session, now)
    batches = [batch for run_id in run_ids
               for batch in due_batches_for_run(run_id, settings, now, only_new=True)]
    return JobReport(len(run_ids), batches)


def start_due_runs(settings: Settings, now: datetime) -> JobReport:
    """Scheduled runs whose time has come start sending; A/B tests whose time has come
    are decided and their winner goes to the rest of the audience."""
    return _runs_job(_due_runs_and_winners, settings, now)


def _due_runs_and_winners(session: Session, now: datetime) -> list[int]:
    return scheduler.start_due_runs(session, now) + ab_winner.decide_due_winners(session, now)


def create_recurring_runs(settings: Settings, now: datetime) -> JobReport:
    """The run of each cron campaign whose latest occurrence is due."""
    return _runs_job(scheduler.due_recurring, settings, now)


def trigger_order_events(settings: Settings, now: datetime) -> JobReport:
    """Each new order event becomes a one-recipient transactional run."""
    return _runs_job(scheduler.trigger_order_events, settings, now)


def scan_retention(settings: Settings, now: datetime) -> JobReport:
    """The daily win-back run, from 08:00 WITA (its run key makes it once a day)."""
    if not retention_due(now):
        return JobReport()
    return _runs_job(scheduler.retention_scan, settings, now)


def sweep_outbox(settings: Settings, now: datetime) -> JobReport:
    """Recover what a lost broker message or a dead worker left behind."""
    batches = sweep(settings, now)
    return JobReport(sum(len(b.delivery_ids) for b in batches), batches)


def poll_social_metrics(settings: Settings, now: datetime) -> JobReport:
    """Social insights: each post at most every ``metrics_interval_minutes``.

    A provider outage is logged, not raised: the next beat simply tries again.
    """
    try:
        return JobReport(social_metrics.poll_metrics(
            settings, now, min_interval=timedelta(minutes=settings.metrics_interval_minutes)))
    except Exception:
        log.exception("social metrics polling failed")
        return JobReport()


def read_bounce_mailbox(settings: Settings, now: datetime) -> JobReport:
    """Bounces and complaints from the configured Maildir (idempotent: handled mail moves
    out of the inbox). An unreadable mailbox is logged; the next beat tries again."""
    if not settings.bounce_maildir:
        return JobReport()
    try:
        return JobReport(process_maildir(settings.bounce_maildir, settings).messages)
    except OSError:
        log.warning("bounce mailbox %s unreadable", settings.bounce_maildir, exc_info=True)
        return JobReport()


def read_dmarc_mailbox(settings: Settings, now: datetime) -> JobReport:
    """DMARC aggregate reports from the rua Maildir (DMARC_MAILDIR): each stored once,
    handled mail moves out of the inbox. An unreadable mailbox is logged, not raised."""
    if not settings.dmarc_maildir:
        return JobReport()
    try:
        return JobReport(import_maildir(settings.dmarc_maildir, settings).messages)
    except OSError:
        log.warning("DMARC mailbox %s unreadable", settings.dmarc_maildir, exc_info=True)
        return JobReport()
def remind_expiring_agreements(settings: Settings, now: datetime) -> JobReport:
    """One notice per agreement ending within ``agreement_reminder_days`` (Pasal 14(3)
    huruf b: the term is supervised); a reminded agreement is never reminded again."""
    with session_factory(settings)() as session:
        reminded = agreements.remind_expiring(session, now, settings.agreement_reminder_days)
        session.commit()
        if settings.agreement_reminder_to:
            for agreement_id in reminded:
                _mail_reminder(settings, session.get(Agreement, agreement_id), now)
    return JobReport(len(reminded))


def _mail_reminder(settings: Settings, agreement: Agreement | None, now: datetime) -> None:
    """Mail one reminder through the configured email adapter; a failure is logged, the
    notice on the agreements page stays (the reminder is recorded once, not retried)."""
    if agreement is None:
        return
    days = agreements.days_left(agreement, now.astimezone(agreements.LOCAL_TZ).date())
    subject = t("agreement.mail.subject", provider=agreement.provider_name)
    body = t("agreement.mail.body", provider=agreement.provider_name,
             date=agreement.end_date.isoformat(), days=days)
    link = Link(f"{settings.base_url.rstrip('/')}/dinas/kesepakatan/{agreement.id}",
                t("agreement.mail.open"))
    parts: list[str | Link] = [body, link]
    try:
        transmit(settings, "email", settings.agreement_reminder_to,
                 mail=lambda: build_small_mail(settings, settings.agreement_reminder_to, None,
                                               subject, parts, tag="agreement",
                                               send_id=agreement.id),
                 wa_text="", kind="agreement_reminder", tag="agreement", send_id=agreement.id)
    except Exception:  # any adapter failure: the beat goes on, the page shows the notice
        log.warning("agreement %s: reminder mail not sent", agreement.id, exc_info=True)


# Entries one beat run stores at most (well inside its time limit); the rest next beat.
TRACKING_DRAIN_MAX = 300_000

def drain_tracking_stream(settings: Settings, now: datetime) -> JobReport:
    """Opens and clicks buffered in the Redis stream, stored in bulk exactly once
    (:mod:`engine.engagement.stream_consumer`). Embedded (no Redis): nothing to do, the
    web app writes them directly. Redis unreachable: logged, the next beat drains."""
    if not settings.redis_url:
        return JobReport()
    import redis

    try:
        report = drain_once(settings.redis_url, session_factory(settings),
                            max_entries=TRACKING_DRAIN_MAX)
    except (redis.RedisError, OSError):
        log.warning("tracking stream not drained", exc_info=True)
        return JobReport()
    return JobReport(report.read)


# The beat schedule has one entry per job (workers.celery_app.BEAT_JOBS, same names).
JOBS: dict[str, Job] = {
    "due_runs": start_due_runs,
    "recurring_runs": create_recurring_runs,
    "order_triggers": trigger_order_events,
    "retention_scan": scan_retention,
    "sweeper": sweep_outbox,
    "social_metrics": poll_social_metrics,
    "bounce_mailbox": read_bounce_mailbox,
    "dmarc_mailbox": read_dmarc_mailbox,
    "agreement_reminders": remind_expiring_agreements,
    "tracking_drain": drain_tracking_stream,
}


def register_job(name: str, job: Job) -> None:
    """Add a job from a floor above delivery (the monthly report, ``engine.reporting``).

    Why a hook: delivery may not import reporting; the module that owns the job registers
    it here when imported, and the runners of the beat (``workers.tasks``, the embedded
    demo pass) import that module. Registering twice is harmless.
    """
    JOBS[name] = job


def run_job(name: str, settings: Settings | None = None,
            now: datetime | None = None) -> JobReport:
    """One job by name, on the configured settings and the wall clock by default."""
    return JOBS[name](settings or get_settings(), now or utcnow())


def run_all(settings: Settings | None = None,
            now: datetime | None = None) -> dict[str, JobReport]:
    """Every job once, at one clock (the demo's tick and tests of a whole beat pass)."""
    settings = settings or get_settings()
    now = now or utcnow()
    return {name: job(settings, now) for name, job in JOBS.items()}


def batches_of(reports: dict[str, JobReport]) -> list[Batch]:
    """All batches a pass made due, in job order."""
    return [batch for report in reports.values() for batch in report.batches]
