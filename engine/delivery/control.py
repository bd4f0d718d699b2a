"""Run control and progress: pause, resume, cancel, status (CLI and dashboard share it).

Pausing is a database state: workers check it before every message (the send gate,
:mod:`engine.delivery.gate`), so a paused run stops within one message per worker and
resumes without duplicates (``sent`` rows are never claimed again).  The report also
says what waits and until when: rows in a backoff or held back by the relay, and rows
under a worker's lease (recovered when the lease runs out if that worker died).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from engine.common.errors import NotFound
from engine.models import Campaign, CampaignRun, Delivery, DeliveryStatus, RunStatus, utcnow
from engine.outbox.rows import counts_by_status


class RunNotFound(NotFound, LookupError):
    """No campaign or run answers to the reference a person typed (``umkm campaign ...``)."""


@dataclass(frozen=True)
class Waiting:
    """What of a run is not moving right now, and when it will.

    ``retry``: pending rows whose next attempt is later (a backoff, a relay that defers,
    a closed send window), the earliest of those times and their most common error.
    ``leased``: rows a worker holds, and when the first of those leases expires.
    ``last_sent_at``: when the run last sent (a paused run says when it stopped).
    """

    retry: int
    next_retry_at: datetime | None
    retry_error: str | None
    leased: int
    lease_expires_at: datetime | None
    last_sent_at: datetime | None


@dataclass
class RunStatusReport:
    run_id: int
    campaign_key: str
    campaign_name: str
    status: str
    reason: str | None
    counts: dict[str, int]
    planned: int
    rate_per_minute: float
    eta: timedelta | None
    scheduled_at: datetime | None
    errors: list[tuple[str, int]] = field(default_factory=list)
    waiting: Waiting | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.get(k, 0) for k in ("sent", "failed", "skipped"))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def find_runs(session: Session, ref: str | int) -> list[CampaignRun]:
    """A run by numeric id, or every run of a campaign by its YAML id (newest first)."""
    if isinstance(ref, int) or str(ref).isdigit():
        run = session.get(CampaignRun, int(ref))
        if run is not None:
            return [run]
    campaign = session.scalars(select(Campaign).where(Campaign.key == str(ref))).one_or_none()
    if campaign is None:
        raise RunNotFound("ops.status.unknown", ref=str(ref))
    return list(session.scalars(
        select(CampaignRun).where(CampaignRun.campaign_id == campaign.id)
        .order_by(CampaignRun.id.desc())
    ))


def status_report(
    session: Session, run: CampaignRun, now: datetime | None = None
) -> RunStatusReport:
    now = now or utcnow()
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    counts = counts_by_status(session, run.id)
    window = timedelta(minutes=1)
    recent = session.execute(
        select(func.count()).select_from(Delivery)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.sent,
               Delivery.sent_at >= now - window)
    ).scalar_one()
    remaining = counts.get("pending", 0) + counts.get("sending", 0)
    eta = timedelta(minutes=remaining / recent) if recent and remaining else None
    errors = [(str(err), int(n)) for err, n in session.execute(
        select(Delivery.error, func.count()).where(Delivery.run_id == run.id,
                                                   Delivery.status == DeliveryStatus.failed)
        .group_by(Delivery.error).order_by(func.count().desc()).limit(5)
    ).all()]
    return RunStatusReport(run.id, campaign.key, campaign.name, run.status.value,
                           run.status_reason, counts, run.planned, float(recent), eta,
                           run.scheduled_at, errors, waiting_of(session, run.id, now))


def waiting_of(session: Session, run_id: int, now: datetime) -> Waiting:
    """The rows of a run that wait, and until when (see :class:`Waiting`)."""
    later = [Delivery.run_id == run_id, Delivery.status == DeliveryStatus.pending,
             Delivery.next_attempt_at > now]
    retry, next_at = session.execute(
        select(func.count(), func.min(Delivery.next_attempt_at)).where(*later)).one()
    error = session.execute(
        select(Delivery.error).where(*later, Delivery.error.is_not(None))
        .group_by(Delivery.error).order_by(func.count().desc()).limit(1)).scalar()
    leased, expires = session.execute(
        select(func.count(), func.min(Delivery.lease_until))
        .where(Delivery.run_id == run_id, Delivery.status == DeliveryStatus.sending)).one()
    last_sent = session.execute(
        select(func.max(Delivery.sent_at)).where(Delivery.run_id == run_id,
                                                 Delivery.status == DeliveryStatus.sent)
    ).scalar()
    return Waiting(int(retry), next_at, error, int(leased), expires, last_sent)


def pause(session: Session, run: CampaignRun, reason: str) -> bool:
    result = session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run.id,
               CampaignRun.status.in_([RunStatus.running, RunStatus.scheduled]))
        .values(status=RunStatus.paused, status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(run)
    return bool(getattr(result, "rowcount", 0))


def resume(session: Session, run: CampaignRun, now: datetime | None = None) -> bool:
    """Paused -> running; a run paused before its start time goes back to ``scheduled``
    (resuming must never send a campaign earlier than it was planned)."""
    now = now or utcnow()
    due = CampaignRun.scheduled_at <= now
    result = session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run.id, CampaignRun.status == RunStatus.paused)
        .values(status=case((due, RunStatus.running.value), else_=RunStatus.scheduled.value),
                status_reason=None,
                started_at=case((due, func.coalesce(CampaignRun.started_at, now)),
                                else_=CampaignRun.started_at))
        .execution_options(synchronize_session=False)
    )
    # Everything pending becomes due again and is re-enqueued by the caller.
    session.execute(
        update(Delivery)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.pending)
        .values(enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(run)
    return bool(getattr(result, "rowcount", 0))


def cancel(session: Session, run: CampaignRun, reason: str, now: datetime | None = None) -> int:
    """Stop for good: pending rows become ``skipped`` (kept for the record).

    A finished or already cancelled run keeps its state: reports must still show a
    campaign that went out as finished.
    """
    now = now or utcnow()
    session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run.id,
               CampaignRun.status.in_([RunStatus.scheduled, RunStatus.running,
                                       RunStatus.paused]))
        .values(status=RunStatus.cancelled, status_reason=reason, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Delivery)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.pending)
        .values(status=DeliveryStatus.skipped, error="dibatalkan")
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(run)
    return int(getattr(result, "rowcount", 0) or 0)


def deactivate(session: Session, campaign: Campaign) -> None:
    campaign.active = False
    session.commit()
