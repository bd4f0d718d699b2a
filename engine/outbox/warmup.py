"""Warm-up of a new sending domain: at most N emails a day, N growing day by day.

Why: Gmail, Yahoo and Microsoft judge a domain they have never seen by its first days. A
new domain that sends 5,000 mails on day one is throttled or spam-foldered; one that
starts at a few hundred and roughly doubles earns a reputation first. WARMUP_SCHEDULE
lists the daily quotas (``"200,400,800,..."``; day 1 first); after the last day there is
no limit. ``off`` turns warm-up off, and so does having no SMTP_HOST (mail written as
.eml files leaves nothing to warm up). Day 1 is WARMUP_START (``YYYY-MM-DD``), else the
local day the first email was sent (the earliest sent delivery), else today.

Where it is enforced: at the claim (:func:`admit`, called by the pipeline before
:func:`engine.outbox.capcheck.claim_within_cap`), per local day (TIMEZONE, WITA): sent
today plus in flight (``sending``) may not pass the day's quota. The rows over it stay
``pending`` with ``next_attempt_at`` at the start of tomorrow: no attempt spent, never
failed or skipped, sent when their day comes.

Why a row lock: two workers counting at the same instant would both see room for the
same last messages. Each claim first locks the day's ``warmup_day`` row (``SELECT ...
FOR UPDATE`` on PostgreSQL; on SQLite the write transaction is opened first, which
serializes writers), counts, and claims before it commits; the next claimer counts after
that commit. Transactional mail (receipts) is never held back, but it counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.config import DEFAULT_WARMUP_SCHEDULE, Settings
from engine.db import is_postgres
from engine.models import Delivery, DeliveryStatus, WarmupDay, aware
from engine.outbox import rows
from engine.outbox.capcheck import begin_immediate

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = DEFAULT_WARMUP_SCHEDULE
OFF_WORDS = frozenset({"off", "none", "no", "false", "0", "mati", "tidak"})
WARMED_CHANNEL = "email"  # posts and WhatsApp do not build a mail domain's reputation


class BadSchedule(ValueError):
    """WARMUP_SCHEDULE is not a comma-separated list of positive whole numbers."""


@dataclass(frozen=True)
class Schedule:
    """Daily quotas, day 1 first; beyond the last day, no limit."""

    quotas: tuple[int, ...]

    def quota(self, day_number: int) -> int | None:
        """The quota of day ``day_number`` (1 = the first day); None = unlimited."""
        index = max(1, day_number) - 1
        return self.quotas[index] if index < len(self.quotas) else None


@dataclass(frozen=True)
class Admission:
    """The ids the claim may take and how many email rows wait for tomorrow."""

    ids: list[int]
    held: int = 0
    quota: int | None = None


def parse_schedule(text: str) -> Schedule | None:
    """``"200,400,800"`` -> Schedule; ``"off"`` -> None; anything else -> BadSchedule."""
    spec = text.strip().lower()
    if spec in OFF_WORDS:
        return None
    try:
        quotas = tuple(int(part) for part in spec.replace(";", ",").split(",") if part.strip())
    except ValueError as exc:
        raise BadSchedule(text) from exc
    if not quotas or any(q < 1 for q in quotas):
        raise BadSchedule(text)
    return Schedule(quotas)


def schedule_of(settings: Settings) -> Schedule | None:
    """The configured schedule; a malformed one falls back to the default (logged): a
    typo must not turn the protection off."""
    try:
        return parse_schedule(settings.warmup_schedule or DEFAULT_SCHEDULE)
    except BadSchedule:
        log.warning("WARMUP_SCHEDULE %r is not valid; using %s", settings.warmup_schedule,
                    DEFAULT_SCHEDULE)
        return parse_schedule(DEFAULT_SCHEDULE)


def active_schedule(settings: Settings) -> Schedule | None:
    """The schedule when mail really leaves: without SMTP_HOST it is written as .eml
    files (the embedded demo), which builds no reputation and needs no warm-up."""
    return schedule_of(settings) if settings.smtp_host else None


def _zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.timezone or "Asia/Makassar")


def local_day(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of the local ``day``, in UTC."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def start_day(session: Session, settings: Settings, today: date) -> date:
    """Day 1: WARMUP_START, else the day of the first email sent, else today."""
    if settings.warmup_start.strip():
        return date.fromisoformat(settings.warmup_start.strip())
    first = session.scalar(select(func.min(Delivery.sent_at))
                           .where(Delivery.channel == WARMED_CHANNEL))
    first_aware = aware(first)
    return local_day(first_aware, _zone(settings)) if first_aware is not None else today


def quota_on(session: Session, settings: Settings, now: datetime) -> int | None:
    """Today's quota under the schedule; None when warm-up is off or over."""
    schedule = active_schedule(settings)
    if schedule is None:
        return None
    today = local_day(now, _zone(settings))
    return schedule.quota((today - start_day(session, settings, today)).days + 1)


def _lock_day(session: Session, day: date, quota: int) -> None:
    """Create the day's row if needed and lock it for this transaction."""
    if is_postgres(session):
        session.execute(postgresql.insert(WarmupDay).values(day=day, quota=quota, claimed=0)
                        .on_conflict_do_nothing(index_elements=["day"]))
        session.execute(select(WarmupDay.day).where(WarmupDay.day == day).with_for_update())
    else:
        begin_immediate(session)
        session.execute(sqlite.insert(WarmupDay).values(day=day, quota=quota, claimed=0)
                        .on_conflict_do_nothing(index_elements=["day"]))


def used_on(session: Session, day: date, zone: ZoneInfo) -> int:
    """Emails sent during the local ``day`` plus those in flight now."""
    start = day_start(day, zone)
    sent_today = (Delivery.status == DeliveryStatus.sent) & (Delivery.sent_at >= start) \
        & (Delivery.sent_at < start + timedelta(days=1))
    return int(session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.channel == WARMED_CHANNEL,
        or_(sent_today, Delivery.status == DeliveryStatus.sending))) or 0)


def admit(session: Session, settings: Settings, delivery_ids: Sequence[int],
          now: datetime) -> Admission:
    """Which of ``delivery_ids`` the claim may take today; defer the rest to tomorrow.

    Leaves the day's row locked in the open transaction: the caller claims next and its
    commit releases the lock (when nothing may be claimed, this commits itself).
    """
    ids = list(delivery_ids)
    quota = quota_on(session, settings, now) if ids else None
    if quota is None:
        return Admission(ids)
    zone = _zone(settings)
    today = local_day(now, zone)
    _lock_day(session, today, quota)
    room = max(0, quota - used_on(session, today, zone))
    emails = list(session.scalars(rows.claimable(ids, now, bind=session)
                                  .where(Delivery.channel == WARMED_CHANNEL)
                                  .order_by(Delivery.id)))
    admitted, held = emails[:room], emails[room:]
    if held:
        session.execute(update(Delivery).where(Delivery.id.in_(held),
                                               Delivery.status == DeliveryStatus.pending)
                        .values(next_attempt_at=day_start(today + timedelta(days=1), zone),
                                enqueued_at=None)
                        .execution_options(synchronize_session=False))
    if admitted:
        session.execute(update(WarmupDay).where(WarmupDay.day == today)
                        .values(claimed=WarmupDay.claimed + len(admitted), quota=quota))
    held_set = set(held)
    allowed = [i for i in ids if i not in held_set]
    if not allowed:
        session.commit()
    return Admission(allowed, len(held), quota)


def days_needed(session: Session, settings: Settings, count: int, now: datetime) -> int:
    """How many local days ``count`` more emails take from today under the schedule
    (today's room first); 1 when warm-up is off or over."""
    schedule = active_schedule(settings)
    if schedule is None or count <= 0:
        return 1
    zone = _zone(settings)
    today = local_day(now, zone)
    day_number = (today - start_day(session, settings, today)).days + 1
    left, days = count, 0
    used = used_on(session, today, zone)
    while left > 0:
        quota = schedule.quota(day_number + days)
        if quota is None:
            return days + 1
        left -= max(0, quota - used)
        used = 0
        days += 1
        if days > len(schedule.quotas) + math.ceil(count / max(schedule.quotas)) + 1:
            break  # cannot happen with positive quotas; a bound for safety
    return days
