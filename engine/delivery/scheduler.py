"""From a validated campaign to runs and outbox rows (DESIGN §6).

A *run* is one sending of a campaign: the one-off run of a promotion, one occurrence of
a recurring newsletter, the daily retention scan, or one order event for transactional
mail. ``(campaign, trigger_key)`` is unique, so a trigger evaluated twice (two beat
processes, a retry) creates nothing twice. Outbox rows are inserted with one
``INSERT ... SELECT`` from the compiled audience query, so planning 100k recipients never
loops over customers in Python. Waits live in the database (``scheduled_at``,
``next_attempt_at``), never in broker ETAs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.campaign.audience import count_audience
from engine.campaign.schema import CampaignSpec
from engine.campaign.window import (
    first_send_time,
    latest_cron_occurrence,
    local_day,
    next_cron_occurrence,
    next_window_open,
)
from engine.config import get_settings
from engine.models import (
    Business,
    Campaign,
    CampaignRun,
    CampaignType,
    Customer,
    Delivery,
    DeliveryStatus,
    Order,
    OrderEvent,
    RunStatus,
    Suppression,
    SuppressionReason,
    utcnow,
)
from engine.outbox.materialize import materialize_audience
from engine.outbox.rows import finish_if_done, mark_handed_over
from engine.social.plan import campaign_products, materialize_posts

# An order event older than this is history (e.g. a CSV import of last year's orders):
# it is marked processed without mailing the customer about an old order.
TRANSACTIONAL_MAX_AGE = timedelta(hours=48)

OWN_RECEIPT = "own_receipt"  # Delivery.context flag: a receipt outside the programme
EVENT_KINDS = {"order_confirmed": "confirmed", "order_shipped": "shipped",
               "order_invoiced": "invoiced"}


# --------------------------------------------------------------------------- campaigns
def spec_digest(stored: dict[str, Any]) -> str:
    """The hash of the stored JSON: a changed file invalidates cached run contexts."""
    return hashlib.sha256(json.dumps(stored, sort_keys=True, default=str).encode()).hexdigest()


def upsert_campaign(session: Session, spec: CampaignSpec, source_path: str | None) -> Campaign:
    """Store (or update) the campaign definition under its YAML ``id``."""
    campaign = session.scalars(select(Campaign).where(Campaign.key == spec.id)).one_or_none()
    if campaign is None:
        campaign = Campaign(key=spec.id)
        session.add(campaign)
    stored = spec.to_storage()
    campaign.name = spec.name
    campaign.type = CampaignType(spec.type)
    campaign.tags = list(spec.tags)
    campaign.spec = stored
    campaign.spec_hash = spec_digest(stored)
    campaign.source_path = source_path
    session.flush()
    return campaign


def get_or_create_run(
    session: Session, campaign: Campaign, *, trigger_key: str, scheduled_at: datetime,
    status: RunStatus = RunStatus.scheduled,
) -> tuple[CampaignRun, bool]:
    """Idempotent on (campaign, trigger_key): returns (run, created).

    The unique key decides between two beats creating the same run at once: the loser's
    insert fails inside a savepoint and it gets the winner's run, never an error.
    """
    existing = _run_by_key(session, campaign.id, trigger_key)
    if existing is not None:
        return existing, False
    run = CampaignRun(campaign_id=campaign.id, trigger_key=trigger_key,
                      scheduled_at=scheduled_at, status=status)
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        winner = _run_by_key(session, campaign.id, trigger_key)
        if winner is None:
            raise
        return winner, False
    return run, True


def _run_by_key(session: Session, campaign_id: int, trigger_key: str) -> CampaignRun | None:
    return session.scalars(
        select(CampaignRun).where(CampaignRun.campaign_id == campaign_id,
                                  CampaignRun.trigger_key == trigger_key)
    ).one_or_none()


@dataclass
class PlanReport:
    """What ``campaign plan`` shows; nothing is written."""

    campaign_id: str
    type: str
    first_send: datetime | None
    audience: Any
    products: list[Any] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- launching
@dataclass
class LaunchResult:
    campaign: Campaign
    run: CampaignRun | None
    created: bool
    planned: int
    activated_only: bool = False
    # With ``launch(hand_over=True)``: the ids of a run that started at once, already
    # marked as handed to the broker; the caller must enqueue them (DESIGN §6).
    handed_over: list[int] = field(default_factory=list)


def launch(session: Session, spec: CampaignSpec, source_path: str | None,
           now: datetime | None = None, *, start_now: bool = False,
           hand_over: bool = False) -> LaunchResult:
    """Register the campaign and create its run + outbox rows (one-off types), or
    activate it (triggered and recurring types, whose runs the beat creates).

    ``start_now`` sends a one-off campaign now instead of at ``schedule.start`` (still
    inside its send window); a run already scheduled is brought forward.
    ``hand_over``: the caller enqueues the rows of a run that starts now itself; they are
    inserted already marked as handed over and their ids come back in
    :attr:`LaunchResult.handed_over` (no second pass over every row to mark them).
    """
    now = now or utcnow()
    campaign = upsert_campaign(session, spec, source_path)
    campaign.active = True
    if spec.type in (CampaignType.transactional.value, CampaignType.retention.value) \
            or spec.schedule.cron:
        session.commit()
        return LaunchResult(campaign, None, False, 0, activated_only=True)
    when = next_window_open(spec, now) if start_now else first_send_time(spec, now)
    run, created = get_or_create_run(session, campaign, trigger_key="launch", scheduled_at=when)
    if not created and start_now and run.status == RunStatus.scheduled:
        run.scheduled_at = when
        if when <= now:
            run.status, run.started_at = RunStatus.running, now
    planned = run.planned
    handed: list[int] | None = [] if hand_over and when <= now else None
    if created:
        planned = materialize_channels(session, run, spec, now, hand_over=handed)
        run.status = RunStatus.running if when <= now else RunStatus.scheduled
        if run.status == RunStatus.running:
            run.started_at = now
    session.commit()
    if created and run.status == RunStatus.running:
        finish_if_done(session, run.id, now)  # nothing to send: finished at once
    # In insertion order: launch_batches puts them in id order.
    return LaunchResult(campaign, run, created, planned, handed_over=handed or [])


def materialize_channels(session: Session, run: CampaignRun, spec: CampaignSpec,
                         now: datetime, *, hand_over: list[int] | None = None) -> int:
    """Outbox rows of every channel of a one-off run (created in this transaction, with
    no row yet): email recipients and social posts.

    ``hand_over``: the rows are marked as handed to the broker and their ids appended
    (the email rows as they are inserted; the few post rows after them).
    """
    if spec.email is not None:
        materialize_audience(session, run, spec, now, hand_over=hand_over, new_run=True)
    posts = materialize_posts(session, run, spec, get_settings(), now)
    if hand_over is not None and posts:
        hand_over.extend(mark_handed_over(session, run.id, now, only_new=True))
    planned = session.execute(
        select(func.count()).select_from(Delivery).where(Delivery.run_id == run.id)
    ).scalar_one()
    run.planned = int(planned)
    session.flush()
    return int(planned)


def start_due_runs(session: Session, now: datetime | None = None) -> list[int]:
    """Scheduled runs whose time has come become running (beat, every minute).

    One ``UPDATE ... RETURNING``: of two beats ticking at once only the one that changed
    a run's status gets its id, so its batches are handed to the broker once.
    """
    now = now or utcnow()
    ids = sorted(session.scalars(
        update(CampaignRun)
        .where(CampaignRun.status == RunStatus.scheduled, CampaignRun.scheduled_at <= now)
        .values(status=RunStatus.running, started_at=now)
        .returning(CampaignRun.id)
        .execution_options(synchronize_session=False)
    ))
    session.commit()
    return ids


def active_campaigns(session: Session, kind: CampaignType) -> list[Campaign]:
    return list(session.scalars(
        select(Campaign).where(Campaign.active.is_(True), Campaign.type == kind)
        .order_by(Campaign.id)
    ))


def due_recurring(session: Session, now: datetime | None = None) -> list[int]:
    """Create the run of each active cron campaign whose latest occurrence is due."""
    now = now or utcnow()
    created: list[int] = []
    for campaign in list(session.scalars(select(Campaign).where(Campaign.active.is_(True)))):
        spec = CampaignSpec.from_storage(campaign.spec)
        occurrence = _due_occurrence(spec, now)
        if occurrence is None:
            continue
        key = _cron_key(occurrence)
        run, was_created = get_or_create_run(session, campaign, trigger_key=key,
                                             scheduled_at=occurrence, status=RunStatus.running)
        if was_created:
            run.started_at = now
            materialize_audience(session, run, spec, now)
            created.append(run.id)
        session.commit()
    return created


def _cron_key(occurrence: datetime) -> str:
    return "cron:" + occurrence.strftime("%Y-%m-%dT%H:%M")


def _due_occurrence(spec: CampaignSpec, now: datetime) -> datetime | None:
    """The cron occurrence to run now, or None: outside start..end, or too old to send
    (never back-fill old occurrences, e.g. after a long outage)."""
    occurrence = latest_cron_occurrence(spec, now)
    start, end = spec.start_utc(), spec.end_utc()
    if occurrence is None or (end and now > end):
        return None
    if (start and occurrence < start) or now - occurrence > timedelta(hours=12):
        return None
    return occurrence


def retention_scan(session: Session, now: datetime | None = None) -> list[int]:
    """Daily: customers without a purchase for N days get one win-back per cooldown."""
    now = now or utcnow()
    created: list[int] = []
    for campaign in active_campaigns(session, CampaignType.retention):
        spec = CampaignSpec.from_storage(campaign.spec)
        trigger = spec.trigger
        inactive = (trigger.inactive_days if trigger else None) or 90
        cooldown = (trigger.cooldown_days if trigger else None) or 30
        key = "retention:" + local_day(spec, now).isoformat()
        run, was_created = get_or_create_run(session, campaign, trigger_key=key,
                                             scheduled_at=now, status=RunStatus.running)
        if not was_created:
            continue
        run.started_at = now
        materialize_audience(session, run, spec, now,
                             extra_rules=[{"no_purchase_days": inactive}])
        _drop_recently_won_back(session, run, campaign, now - timedelta(days=cooldown))
        created.append(run.id)
        session.commit()
    return created


def _drop_recently_won_back(session: Session, run: CampaignRun, campaign: Campaign,
                            since: datetime) -> None:
    """Cooldown: whoever got this campaign within the window is skipped this time."""
    recent = (
        select(Delivery.customer_id)
        .join(CampaignRun, CampaignRun.id == Delivery.run_id)
        .where(CampaignRun.campaign_id == campaign.id, CampaignRun.id != run.id,
               Delivery.status == DeliveryStatus.sent, Delivery.sent_at >= since)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.pending,
               Delivery.customer_id.in_(recent))
        .values(status=DeliveryStatus.skipped, error="cooldown")
        .execution_options(synchronize_session=False)
    )
    session.flush()


def trigger_order_events(session: Session, now: datetime | None = None,
                         limit: int = 1000) -> list[int]:
    """Each unprocessed order event becomes a one-recipient run of every active
    transactional campaign listening to it; the event is then marked processed."""
    now = now or utcnow()
    campaigns = active_campaigns(session, CampaignType.transactional)
    by_kind: dict[str, list[Campaign]] = {}
    for campaign in campaigns:
        trigger = CampaignSpec.from_storage(campaign.spec).trigger
        listens_to = trigger.event if trigger else None
        if listens_to in EVENT_KINDS:
            by_kind.setdefault(EVENT_KINDS[listens_to], []).append(campaign)
    events = list(session.scalars(
        select(OrderEvent).where(OrderEvent.processed_at.is_(None))
        .order_by(OrderEvent.id).limit(limit)
    ))
    created: list[int] = []
    for event in events:
        kind = event.kind.value if hasattr(event.kind, "value") else str(event.kind)
        occurred = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(
            tzinfo=UTC)
        fresh = now - occurred <= TRANSACTIONAL_MAX_AGE
        for campaign in by_kind.get(kind, []) if fresh else []:
            run_id = _order_event_run(session, campaign, event, now)
            if run_id:
                created.append(run_id)
        event.processed_at = now
        session.commit()
    return created


def _order_event_run(session: Session, campaign: Campaign, event: OrderEvent,
                     now: datetime) -> int | None:
    order = session.get(Order, event.order_id)
    customer = session.get(Customer, order.customer_id) if order else None
    if order is None or customer is None or not customer.email:
        return None
    blocked = session.scalar(
        select(func.count()).select_from(Suppression)
        .where(Suppression.channel == "email", Suppression.address == customer.email,
               Suppression.reason.in_([SuppressionReason.bounced,
                                       SuppressionReason.complained]))
    )
    run, created = get_or_create_run(session, campaign, trigger_key=f"order-event:{event.id}",
                                     scheduled_at=now, status=RunStatus.running)
    if not created:
        return None
    run.started_at = now
    # A business that is not eligible gets its buyer's receipt as its own, outside the
    # programme (docs/eligibility.md): no UMKM on the row, so no programme figure counts it.
    business = session.get(Business, order.business_id)
    own_receipt = business is None or not business.eligible
    context: dict[str, Any] = {"order_id": order.id, "event": event.kind.value}
    if own_receipt:
        context[OWN_RECEIPT] = True
    session.add(Delivery(
        run_id=run.id, channel="email", recipient=customer.email, customer_id=customer.id,
        business_id=None if own_receipt else order.business_id, context=context,
        status=DeliveryStatus.skipped if blocked else DeliveryStatus.pending,
        error="suppressed" if blocked else None,
    ))
    run.planned = 1
    session.flush()
    return run.id


def plan(session: Session, spec: CampaignSpec, now: datetime | None = None) -> PlanReport:
    """Audience size after consent, suppression and cap; products; next send time; rows
    per channel.  Nothing is written: the channel counts come from a dry run of the
    same materialization launch (or, for a cron campaign, the beat) does, rolled back."""
    now = now or utcnow()
    audience = spec.audience.model_dump(mode="json", by_alias=True, exclude_none=True)
    counts = count_audience(session, audience, campaign_type=spec.type, channel="email",
                            now=now)
    products = campaign_products(session, spec)
    first = next_send(session, spec, now)
    channels = dict.fromkeys(spec.channel_names, 0) | dry_run_channels(session, spec, now)
    return PlanReport(spec.id, spec.type, first, counts, products, channels)


def next_send(session: Session, spec: CampaignSpec, now: datetime) -> datetime | None:
    """When the first mail of the campaign will really go out (UTC), or ``None``
    (triggered types, or a cron schedule with no occurrence left before ``end``).

    A one-off run starts at ``schedule.start`` moved into the window.  A cron campaign
    is sent by the beat (:func:`due_recurring`): the occurrence that passed less than
    12 hours ago if its run does not exist yet (sent at the next tick, inside the
    window), else the next occurrence at or after ``start``, moved into the window.
    """
    if spec.type in (CampaignType.transactional.value, CampaignType.retention.value):
        return None
    if not spec.schedule.cron:
        return first_send_time(spec, now)
    due = _due_occurrence(spec, now)
    if due is not None and not _occurrence_ran(session, spec, due):
        return next_window_open(spec, now)
    start = spec.start_utc()
    occurrence = next_cron_occurrence(spec, max(now, start - timedelta(seconds=1))
                                      if start else now)
    end = spec.end_utc()
    if occurrence is None or (end is not None and occurrence > end):
        return None
    return next_window_open(spec, occurrence)


def _occurrence_ran(session: Session, spec: CampaignSpec, occurrence: datetime) -> bool:
    campaign = session.scalars(select(Campaign).where(Campaign.key == spec.id)).one_or_none()
    return campaign is not None and _run_by_key(
        session, campaign.id, _cron_key(occurrence)) is not None


def dry_run_channels(session: Session, spec: CampaignSpec, now: datetime) -> dict[str, int]:
    """Outbox rows per channel that a launch would make now, counted in a scratch
    transaction that is rolled back (so ``plan`` can never disagree with ``launch``).

    A cron campaign's runs are made by the beat, one email audience per occurrence
    (:func:`due_recurring`); triggered types make theirs per event: only the audience.
    """
    with Session(bind=session.get_bind()) as scratch:
        try:
            campaign = upsert_campaign(scratch, spec, None)
            run = CampaignRun(campaign_id=campaign.id, trigger_key="plan:dry-run",
                              scheduled_at=now, status=RunStatus.scheduled)
            scratch.add(run)
            scratch.flush()
            one_off = not spec.schedule.cron and spec.type not in (
                CampaignType.transactional.value, CampaignType.retention.value)
            if one_off:
                materialize_channels(scratch, run, spec, now)
            elif spec.email is not None and spec.type != CampaignType.transactional.value:
                materialize_audience(scratch, run, spec, now)
            rows = scratch.execute(select(Delivery.channel, func.count())
                                   .where(Delivery.run_id == run.id)
                                   .group_by(Delivery.channel)).tuples().all()
        finally:
            scratch.rollback()
    return {str(channel): int(n) for channel, n in rows}
