"""The frequency cap, checked again when a message is claimed (issue 19).

The audience query (:mod:`engine.campaign.audience`) drops customers who already had
``max`` marketing messages in the window, but it only sees ``sent`` rows at planning
time.  Two campaigns planned for the same evening both see "2 of 3" and would each add
one: 4 against a cap of 3.  So the claim looks again, counting what is **sent in the
window and what is in flight** (``sending``, claimed by any worker of any run), and a
recipient at the cap is ``skipped`` with the reason instead of claimed.

Why a lock: two claims of two runs counting at the same instant would both see the
other's message as not yet claimed.  The check and the claim therefore run under a
lock per customer held until the claim commits: on PostgreSQL a transaction-level
advisory lock per customer id, taken in id order (two batches never wait on each
other in a cycle); SQLite serializes writers, so the write transaction is opened
first (``BEGIN IMMEDIATE``) and the count comes after.  Transactional mail is never
capped and never counts (as in the audience).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from engine.common.i18n import t
from engine.db import in_list, is_postgres
from engine.models import Campaign, CampaignRun, CampaignType, Delivery, DeliveryStatus, utcnow
from engine.outbox import rows

CAPPED_CHANNELS = frozenset({"email", "whatsapp"})  # messages to a customer, not posts
ADVISORY_LOCK_SPACE = 190_019  # first key of pg_advisory_xact_lock(int, int): this lock only


@dataclass(frozen=True)
class CapRule:
    """At most ``max`` marketing messages per customer and channel in ``per_days`` days."""

    max: int
    per_days: int


@dataclass
class CappedClaim:
    """Ids this claim now holds (``sending``) and ids it marked ``skipped`` at the cap."""

    claimed: list[int] = field(default_factory=list)
    capped: list[int] = field(default_factory=list)


def claim_within_cap(session: Session, delivery_ids: Sequence[int], now: datetime | None,
                     *, owner: str, lease_seconds: float, cap: CapRule | None) -> CappedClaim:
    """:func:`engine.outbox.rows.claim`, except that a recipient already at ``cap``
    (sent in the window plus in flight, other rows of any non-transactional run) is
    marked ``skipped`` with the reason instead of claimed.  ``cap=None``: a plain claim.
    """
    now = now or utcnow()
    if cap is None or not delivery_ids:
        return CappedClaim(rows.claim(session, delivery_ids, now, owner=owner,
                                      lease_seconds=lease_seconds))
    try:
        candidates = _lock_candidates(session, delivery_ids, now)
        capped = _over_cap(session, candidates, cap, now)
        claimed = [i for i, _customer, _channel in candidates if i not in capped]
        _write(session, claimed, capped, rows.claim_values(now, owner, lease_seconds),
               _reason(cap))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return CappedClaim(sorted(claimed), sorted(capped))


Candidate = tuple[int, int | None, str]  # (delivery id, customer id, channel)


def _lock_candidates(session: Session, ids: Sequence[int], now: datetime) -> list[Candidate]:
    """The claimable rows with their customers, those customers locked for this claim."""
    postgres = is_postgres(session)
    if not postgres:
        begin_immediate(session)
    query = rows.claimable(ids, now, bind=session) \
        .add_columns(Delivery.customer_id, Delivery.channel).order_by(Delivery.id)
    if postgres:  # the rows themselves, as a plain claim locks them
        query = query.with_for_update(skip_locked=True)
    candidates = [(i, c, str(ch)) for i, c, ch in session.execute(query).tuples()]
    customers = sorted({c for _i, c, ch in candidates if c is not None and ch in CAPPED_CHANNELS})
    if postgres and customers:
        session.execute(
            # Ids past 2**31 share a key with a smaller one: they only wait more.
            text("SELECT count(pg_advisory_xact_lock(:space, (c % 2147483647)::int)) FROM "
                 "(SELECT c FROM unnest(CAST(:ids AS bigint[])) AS c ORDER BY c) AS ordered"),
            {"space": ADVISORY_LOCK_SPACE, "ids": customers})
    return candidates


def begin_immediate(session: Session) -> None:
    """SQLite: take the write lock before counting (pysqlite would open the write
    transaction only at the first UPDATE, after another claim could have counted)."""
    raw = session.connection().connection.driver_connection
    if raw is not None and not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


def _over_cap(session: Session, candidates: Sequence[Candidate], cap: CapRule,
              now: datetime) -> set[int]:
    """Ids among ``candidates`` whose customer is at the cap, in id order (a second row
    of one customer in the same batch counts the first as in flight)."""
    customers = {c for _i, c, ch in candidates if c is not None and ch in CAPPED_CHANNELS}
    if not customers:
        return set()
    counts = _counts(session, customers, [i for i, _c, _ch in candidates], cap, now)
    capped: set[int] = set()
    for delivery_id, customer, channel in candidates:
        if customer is None or channel not in CAPPED_CHANNELS:
            continue
        key = (customer, channel)
        if counts.get(key, 0) >= cap.max:
            capped.add(delivery_id)
        else:
            counts[key] = counts.get(key, 0) + 1
    return capped


def _counts(session: Session, customers: set[int], own_ids: list[int], cap: CapRule,
            now: datetime) -> dict[tuple[int, str], int]:
    """Marketing messages per (customer, channel): sent in the window or in flight."""
    since = now - timedelta(days=cap.per_days)
    sent_in_window = and_(Delivery.status == DeliveryStatus.sent,
                          func.coalesce(Delivery.sent_at, Delivery.created_at) >= since)
    query = (
        select(Delivery.customer_id, Delivery.channel, func.count())
        .join(CampaignRun, CampaignRun.id == Delivery.run_id)
        .join(Campaign, Campaign.id == CampaignRun.campaign_id)
        .where(in_list(session, Delivery.customer_id, sorted(customers)),
               Delivery.channel.in_(sorted(CAPPED_CHANNELS)),
               in_list(session, Delivery.id, own_ids, negate=True),
               Campaign.type != CampaignType.transactional,
               or_(sent_in_window, Delivery.status == DeliveryStatus.sending))
        .group_by(Delivery.customer_id, Delivery.channel)
    )
    return {(int(c or 0), str(ch)): int(n) for c, ch, n in session.execute(query).tuples()}


def _write(session: Session, claimed: list[int], capped: set[int],
           claim_values: dict[str, object], reason: str) -> None:
    if claimed:
        session.execute(update(Delivery).where(in_list(session, Delivery.id, claimed))
                        .values(**claim_values).execution_options(synchronize_session=False))
    if capped:
        session.execute(
            update(Delivery).where(in_list(session, Delivery.id, sorted(capped)))
            .values(status=DeliveryStatus.skipped, error=reason, next_attempt_at=None,
                    claimed_at=None, lease_until=None)
            .execution_options(synchronize_session=False))


def _reason(cap: CapRule) -> str:
    """The recorded reason, in the language of the process (Indonesian by default)."""
    return t("outbox.frequency_capped", max=cap.max, days=cap.per_days)[:2000]
