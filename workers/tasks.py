"""Celery tasks: thin. Ids in, the engine does the work (DESIGN §10).

Only transient infrastructure errors (database connection lost) are retried by Celery,
with a short countdown; every longer wait lives in the database (``next_attempt_at``,
``scheduled_at``) and comes back through :func:`beat_tick`'s sweeper.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from engine.config import get_settings
from engine.delivery import dispatch
from workers.celery_app import QUEUE_BULK, QUEUE_TRANSACTIONAL, app

log = logging.getLogger(__name__)


def queue_for(campaign_type: str) -> str:
    """Transactional mail never waits behind a bulk campaign."""
    return QUEUE_TRANSACTIONAL if campaign_type == "transactional" else QUEUE_BULK


def enqueue_batches(batches: list[dispatch.Batch]) -> int:
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
    result = dispatch.process_batch(run_id, delivery_ids, now=now)
    return result.as_dict()


@app.task(name="workers.tasks.dispatch_run")
def dispatch_run(run_id: int) -> int:
    """Enqueue every due pending batch of a run (after launch, resume, or by the beat)."""
    return enqueue_batches(dispatch.due_batches_for_run(run_id))


@app.task(name="workers.tasks.beat_tick")
def beat_tick() -> dict[str, Any]:
    """One scheduler pass: start due runs, create triggered runs, sweep the outbox,
    enqueue what is due. Safe to run from two beat processes at once: every step is
    idempotent in the database."""
    report = dispatch.scheduler_tick()
    report["enqueued"] = enqueue_batches(report.pop("batches"))
    report["bounces"] = read_bounce_mailbox()
    return report


def read_bounce_mailbox() -> int:
    """Bounces and complaints from the configured Maildir (idempotent: handled mail moves
    out of the inbox). A broken mailbox must not stop the rest of the tick."""
    settings = get_settings()
    if not settings.bounce_maildir:
        return 0
    from engine.engagement.bounces import process_maildir

    try:
        return process_maildir(settings.bounce_maildir, settings).messages
    except OSError:
        log.warning("bounce mailbox %s unreadable", settings.bounce_maildir, exc_info=True)
        return 0
