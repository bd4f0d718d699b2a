"""Celery tasks: thin. Ids in, the engine does the work (DESIGN §10).

Only transient infrastructure errors (database connection lost) are retried by Celery,
with a short countdown; every longer wait lives in the database (``next_attempt_at``,
``scheduled_at``) and comes back through the beat's sweeper (:func:`beat_sweeper`).

The beat tasks are one per periodic job (``workers.celery_app.BEAT_JOBS``), each with
its own time limits; each runs its job in :mod:`engine.delivery.beat` and hands the
batches it made due to the broker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from engine.delivery import beat
from engine.delivery.enqueue import Batch, due_batches_for_run
from engine.delivery.pipeline import process_batch
from workers.celery_app import BEAT_JOBS, QUEUE_BULK, QUEUE_TRANSACTIONAL, app


def queue_for(campaign_type: str) -> str:
    """Transactional mail never waits behind a bulk campaign."""
    return QUEUE_TRANSACTIONAL if campaign_type == "transactional" else QUEUE_BULK


def enqueue_batches(batches: list[Batch]) -> int:
    """Hand batches of ids to the broker (the only thing it ever carries)."""
    for batch in batches:
        send_batch.apply_async((batch.run_id, batch.delivery_ids),
                               queue=queue_for(batch.campaign_type))
    return len(batches)


@app.task(bind=True, name="workers.tasks.send_batch", max_retries=5,
          autoretry_for=(OperationalError,), retry_backoff=2, retry_backoff_max=60,
          retry_jitter=True)
def send_batch(self: Any, run_id: int, delivery_ids: list[int],
               at: str | None = None) -> dict[str, int]:
    """Claim, render, send and record one batch of a run.

    ``at`` (ISO 8601) replaces the wall clock; only the embedded demo passes it, to show
    the pipeline outside the campaigns' send window.
    """
    now = datetime.fromisoformat(at) if at else None
    result = process_batch(run_id, delivery_ids, now=now)
    return result.as_dict()


@app.task(name="workers.tasks.dispatch_run")
def dispatch_run(run_id: int) -> int:
    """Enqueue every due pending batch of a run (after launch, resume, or by the beat)."""
    return enqueue_batches(due_batches_for_run(run_id))


# ----------------------------------------------------------------------------- the beat
def _limits(job: str) -> dict[str, Any]:
    """The task options of one beat job: its name and its own time limits."""
    spec = BEAT_JOBS[job]
    return {"name": spec.task, "soft_time_limit": spec.soft_time_limit,
            "time_limit": spec.time_limit}


def run_beat_job(job: str) -> dict[str, int]:
    """Run one engine job now and hand the batches it made due to the broker."""
    report = beat.run_job(job)
    return {"count": report.count, "enqueued": enqueue_batches(report.batches)}


@app.task(**_limits("due_runs"))
def beat_due_runs() -> dict[str, int]:
    """Scheduled runs whose time has come start; their batches go to the broker."""
    return run_beat_job("due_runs")


@app.task(**_limits("recurring_runs"))
def beat_recurring_runs() -> dict[str, int]:
    """Recurring (cron) campaigns get the run of their due occurrence."""
    return run_beat_job("recurring_runs")


@app.task(**_limits("order_triggers"))
def beat_order_triggers() -> dict[str, int]:
    """New order events become transactional runs (one recipient each)."""
    return run_beat_job("order_triggers")


@app.task(**_limits("retention_scan"))
def beat_retention_scan() -> dict[str, int]:
    """The daily win-back scan of retention campaigns."""
    return run_beat_job("retention_scan")


@app.task(**_limits("sweeper"))
def beat_sweeper() -> dict[str, int]:
    """Re-enqueue what a lost broker message or a dead worker left behind."""
    return run_beat_job("sweeper")


@app.task(**_limits("social_metrics"))
def beat_social_metrics() -> dict[str, int]:
    """Read the insights of published posts (provider calls: its own time limit)."""
    return run_beat_job("social_metrics")


@app.task(**_limits("bounce_mailbox"))
def beat_bounce_mailbox() -> dict[str, int]:
    """Bounces and complaints from the configured Maildir."""
    return run_beat_job("bounce_mailbox")


@app.task(**_limits("dmarc_mailbox"))
def beat_dmarc_mailbox() -> dict[str, int]:
    """DMARC aggregate reports from the configured rua Maildir."""
    return run_beat_job("dmarc_mailbox")


@app.task(**_limits("agreement_reminders"))
def beat_agreement_reminders() -> dict[str, int]:
    """Record the one reminder of each agreement about to end (Pasal 14(3) huruf b)."""
    return run_beat_job("agreement_reminders")


@app.task(**_limits("monthly_report"))
def beat_monthly_report() -> dict[str, int]:
    """Last month's report to REPORT_RECIPIENTS, once per month (engine.reporting.monthly)."""
    return run_beat_job("monthly_report")


@app.task(**_limits("tracking_drain"))
def beat_tracking_drain() -> dict[str, int]:
    """Store the opens and clicks buffered in the Redis stream (exactly once)."""
    return run_beat_job("tracking_drain")
