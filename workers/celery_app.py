"""The Celery application, configured from the one settings resolver (engine.config).

Production: broker ``REDIS_URL``. Embedded (no ``REDIS_URL``): kombu's filesystem
transport under ``var/broker/``, so ``umkm serve`` runs a real Celery worker and beat in
one process with the same task code; CLI commands that wait (``demo``, ``launch --wait``)
run the very same tasks eagerly.

Delivery guarantees come from the database outbox, not from the broker; the settings
below only make the broker behave: acknowledge after the task ran (``acks_late``),
requeue when a worker dies mid-task, prefetch little so a killed worker holds few
batches, and a visibility timeout far longer than any batch takes.

The beat schedule has one entry per periodic job (:data:`BEAT_JOBS`), each its own task
with its own time limits: a slow provider behind the social-metrics job can never delay
the sweeper or the start of a due campaign. (Time limits are enforced by the prefork
pool of production workers; the embedded thread pool runs the same tasks without them.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import task_prerun, worker_process_init, worker_process_shutdown
from kombu import Queue  # type: ignore[attr-defined]

import engine.reporting.monthly  # noqa: F401  (registers the monthly report beat job)
from engine.config import Settings, get_settings

QUEUE_TRANSACTIONAL = "transactional"
QUEUE_BULK = "bulk"
QUEUE_BEAT = "beat"


@dataclass(frozen=True)
class BeatJob:
    """One periodic job: its task and how long it may run. At ``soft_time_limit`` the
    task is told to stop (its transaction rolls back; the job is idempotent and the
    next beat repeats it); at ``time_limit`` the worker process running it is replaced."""

    task: str
    soft_time_limit: float
    time_limit: float


# The same names as engine.delivery.beat.JOBS: the engine function each task runs.
BEAT_JOBS: dict[str, BeatJob] = {
    "due_runs": BeatJob("workers.tasks.beat_due_runs", 120, 150),
    "recurring_runs": BeatJob("workers.tasks.beat_recurring_runs", 240, 300),
    "order_triggers": BeatJob("workers.tasks.beat_order_triggers", 120, 150),
    "retention_scan": BeatJob("workers.tasks.beat_retention_scan", 240, 300),
    "sweeper": BeatJob("workers.tasks.beat_sweeper", 120, 150),
    "social_metrics": BeatJob("workers.tasks.beat_social_metrics", 240, 300),
    "bounce_mailbox": BeatJob("workers.tasks.beat_bounce_mailbox", 120, 150),
    "dmarc_mailbox": BeatJob("workers.tasks.beat_dmarc_mailbox", 120, 150),
    "agreement_reminders": BeatJob("workers.tasks.beat_agreement_reminders", 60, 90),
    # Buffered opens and clicks (Redis stream) into the database in bulk.
    "tracking_drain": BeatJob("workers.tasks.beat_tracking_drain", 120, 150),
    # Renders and prints last month's report (Chromium): minutes, not seconds.
    "monthly_report": BeatJob("workers.tasks.beat_monthly_report", 400, 480),
}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """One entry per job, every ``beat_interval_seconds``: each runs on its own."""
    return {name: {"task": job.task, "schedule": settings.beat_interval_seconds}
            for name, job in BEAT_JOBS.items()}


def _embedded_broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    root = Path(settings.var_dir) / "broker"
    for sub in ("in", "processed"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    options = {"data_folder_in": str(root / "in"), "data_folder_out": str(root / "in"),
               "processed_folder": str(root / "processed"), "store_processed": False}
    return "filesystem://", options


def _redis_transport_options(settings: Settings) -> dict[str, Any]:
    """Kombu scans for unacknowledged tasks every 10 x 10 s by default; a shorter
    visibility timeout (set by an operator or a test) is only honoured if the scan
    runs at least as often, so scan a few times per timeout, but never busier than 1 s."""
    timeout = settings.broker_visibility_timeout
    options: dict[str, Any] = {"visibility_timeout": timeout}
    if timeout < 100:
        options.update(unacked_restore_interval=max(1, timeout // 2),
                       unacked_restore_throttle=1)
    return options


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("umkm", include=["workers.tasks"])
    if settings.redis_url:
        broker, transport_options = settings.redis_url, _redis_transport_options(settings)
    else:
        broker, transport_options = _embedded_broker(settings)
    app.conf.update(
        broker_url=broker,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=None,
        task_default_queue=QUEUE_BULK,
        task_queues=(Queue(QUEUE_TRANSACTIONAL), Queue(QUEUE_BULK), Queue(QUEUE_BEAT)),
        task_routes={job.task: {"queue": QUEUE_BEAT} for job in BEAT_JOBS.values()},
        timezone="Asia/Makassar",
        enable_utc=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule=beat_schedule(settings),
    )
    return app


app = make_celery()


def reconfigure(settings: Settings | None = None) -> Celery:
    """Point the module-level :data:`app` at (changed) settings after import.

    The app is built when this module is imported; a process whose environment changes
    later (the worker integration tests, which start Redis or pick a database per test)
    calls this so that producers publish to the new broker. The pools of the old broker
    are only dropped, not closed: kombu keeps one pool per broker URL process-wide, and
    a later reconfigure back to that URL gets the same pool again.
    """
    fresh = make_celery(settings)
    app.conf.update({key: fresh.conf[key] for key in (
        "broker_url", "broker_transport_options", "beat_schedule")})
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    return app


@worker_process_shutdown.connect
def _close_channels(**_: Any) -> None:
    """Close SMTP connections and forget run caches when a worker process exits."""
    from engine.delivery.context import reset_process_state

    reset_process_state()


_IN_POOL_CHILD: list[bool] = [False]


@worker_process_init.connect
def _mark_pool_child(**_: Any) -> None:
    """Only prefork children take over SIGTERM (the main process keeps Celery's own)."""
    _IN_POOL_CHILD[0] = True


@task_prerun.connect
def _stop_batches_on_sigterm(**_: Any) -> None:
    """SIGTERM ends the batch in flight within one message (engine.delivery.stopping).

    Installed at the first task, not at process init: billiard resets the child's
    signal handlers after ``worker_process_init`` has run.
    """
    if _IN_POOL_CHILD[0]:
        from engine.delivery import stopping

        stopping.install_sigterm_handler()
