"""Batches of a run: what the broker carries, and how ids get there exactly once.

The database outbox is the truth; the broker carries only ``(run id, delivery ids)``
(DESIGN §6). A due row is marked as handed over in the same statement that selects it,
so two beats (or a launch and a beat) never hand over the same id; the sweeper hands
back what a lost broker message or a dead worker left behind. :func:`run_in_process` is
the embedded dispatcher: the very batches the workers would get, processed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine.config import Settings, get_settings
from engine.db import session_factory
from engine.delivery.pipeline import BatchResult, process_batch
from engine.delivery.scheduler import LaunchResult
from engine.models import Campaign, CampaignRun, Delivery, DeliveryStatus, RunStatus, utcnow
from engine.outbox import rows as outbox

ENQUEUE_GRACE = timedelta(minutes=5)  # default of settings.enqueue_grace_seconds


def _grace(settings: Settings) -> timedelta:
    """How long ids handed to the broker are trusted to arrive before being re-sent."""
    return timedelta(seconds=settings.enqueue_grace_seconds)


@dataclass(frozen=True)
class Batch:
    """What the broker carries: a run id, its type (for the queue) and delivery ids."""

    run_id: int
    campaign_type: str
    delivery_ids: list[int]


def _type_name(kind: object) -> str:
    """A campaign type as the queue routing names it (the enum's value, or the text)."""
    return str(getattr(kind, "value", kind))


def _campaign_type(session: Session, run_id: int) -> str:
    return _type_name(session.execute(
        select(Campaign.type).join(CampaignRun, CampaignRun.campaign_id == Campaign.id)
        .where(CampaignRun.id == run_id)).scalar_one())


def due_batches_for_run(run_id: int, settings: Settings | None = None,
                        now: datetime | None = None, *, only_new: bool = False) -> list[Batch]:
    """Every due pending delivery of a running run, in batches, marked as enqueued.

    ``only_new`` (the beat, for runs it just started or created) takes only rows never
    handed to the broker, so a second beat's sweep at the same moment and this tick
    never hand over the same id; launch and resume take every due row.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    with session_factory(settings)() as session:
        run = session.get(CampaignRun, run_id)
        if run is None or run.status != RunStatus.running:
            return []
        kind = _campaign_type(session, run_id)
        batches = outbox.enqueue_due(session, run_id, settings.batch_size, now,
                                     only_new=only_new)
        return [Batch(run_id, kind, b) for b in batches]


def launch_batches(result: LaunchResult, settings: Settings | None = None) -> list[Batch]:
    """The batches of the rows a launch already marked as handed over
    (``launch(hand_over=True)``): the caller gives them to the broker, nothing is
    written again. Should it die first, the sweeper re-sends them after the grace
    period, as for any lost hand-over."""
    if result.run is None or not result.handed_over:
        return []
    size = (settings or get_settings()).batch_size
    kind_name = _type_name(result.campaign.type)
    return [Batch(result.run.id, kind_name, ids)
            for ids in outbox.in_batches(result.handed_over, size)]


def sweep(settings: Settings | None = None, now: datetime | None = None) -> list[Batch]:
    """Recover what a lost broker message or a dead worker left behind."""
    settings = settings or get_settings()
    now = now or utcnow()
    batches: list[Batch] = []
    with session_factory(settings)() as session:
        outbox.requeue_stale(session, now, timedelta(seconds=settings.stale_after_seconds))
        run_ids = list(session.scalars(
            select(Delivery.run_id.distinct())
            .join(CampaignRun, CampaignRun.id == Delivery.run_id)
            .where(CampaignRun.status == RunStatus.running,
                   Delivery.status == DeliveryStatus.pending,
                   or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                   or_(Delivery.enqueued_at.is_(None),
                       Delivery.enqueued_at < now - _grace(settings),
                       and_(Delivery.next_attempt_at.is_not(None),
                            Delivery.enqueued_at < Delivery.next_attempt_at)))))
        finished_candidates = list(session.scalars(
            select(CampaignRun.id).where(CampaignRun.status == RunStatus.running)))
        for rid in finished_candidates:
            outbox.finish_if_done(session, rid, now)
    for rid in run_ids:
        batches.extend(_stale_batches(rid, settings, now))
    return batches


def _stale_batches(run_id: int, settings: Settings, now: datetime) -> list[Batch]:
    """Mark and return the run's pending ids the broker may have lost, in one
    ``UPDATE ... RETURNING``: when two beats sweep at once, PostgreSQL re-checks the
    condition on rows the other one just marked, so each id is handed over once."""
    with session_factory(settings)() as session:
        kind = _campaign_type(session, run_id)
        ids = sorted(session.scalars(
            update(Delivery).where(
                Delivery.run_id == run_id, Delivery.status == DeliveryStatus.pending,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < now - _grace(settings),
                    and_(Delivery.next_attempt_at.is_not(None),
                         Delivery.enqueued_at < Delivery.next_attempt_at)))
            .values(enqueued_at=now)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)))
        session.commit()
    size = settings.batch_size
    return [Batch(run_id, kind, ids[i:i + size]) for i in range(0, len(ids), size)]


def run_in_process(run_id: int, settings: Settings | None = None,
                   now: datetime | None = None) -> BatchResult:
    """The embedded dispatcher: the same batches the workers would get, processed here."""
    total = BatchResult()
    for batch in due_batches_for_run(run_id, settings, now):
        r = process_batch(batch.run_id, batch.delivery_ids, settings, now)
        for key, value in r.as_dict().items():
            setattr(total, key, getattr(total, key) + value)
    return total

