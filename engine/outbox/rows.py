"""The outbox state machine (DESIGN §6): claim, lease, record, retry, sweep.

The database is the truth; a broker only carries ids. Transitions::

    pending --claim--> sending --confirmed--> sent        (never sent again)
                          |----transient--> pending (next_attempt_at = backoff)
                          |                 or failed after max attempts
                          |----permanent--> failed (reason kept)
                          |----auth-------> pending (account paused)
                          |----held back--> pending (relay-wide refusal, pause, window,
                          |                          shutdown: no attempt spent)
    sending --lease expired (worker died)--> pending   (sweeper; same Message-ID on resend)

Claims are atomic (``UPDATE ... WHERE status='pending' RETURNING id``; on PostgreSQL the
candidate rows are locked ``FOR UPDATE SKIP LOCKED`` first), so two dispatchers working on
the same ids can never both send one delivery.

A claim is a **lease** (issue 14): it records its owner (a token unique to that claim)
and an expiry that the owner renews while it works (:func:`renew`).  The sweeper
requeues only rows whose lease expired, so a slow but living worker is never doubled;
a worker that lost its lease (it stalled past the expiry and the row was requeued or
claimed again) finds out at its next renewal and does not send.  Every write of an
outcome is fenced on the owner: a late answer never overwrites another claim's row.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    CursorResult,
    Select,
    String,
    Table,
    Update,
    and_,
    bindparam,
    cast,
    column,
    func,
    or_,
    select,
    update,
    values,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from engine.db import in_list, is_postgres
from engine.models import CampaignRun, Delivery, DeliveryStatus, RunStatus, utcnow

DELIVERY: Table = Delivery.__table__  # type: ignore[assignment]

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0
STALE_SENDING_AFTER = timedelta(minutes=10)


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: attempt 1 -> up to 30 s, 2 -> 60 s, ... 1 h."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def new_owner() -> str:
    """A fencing token for one claim: unique, so a reclaimed row names its new holder."""
    return secrets.token_hex(12)


def claim(session: Session, delivery_ids: Sequence[int], now: datetime | None = None, *,
          owner: str = "", lease_seconds: float = 90.0) -> list[int]:
    """Move the still-pending ids to ``sending`` under a lease held by ``owner``;
    return those this caller now owns.

    ``now`` is the caller's clock (the beat's tick; the demo may run at a chosen
    instant): the due check and the lease both use it, as the sweeper of that caller
    reads the lease with the same clock.
    """
    if not delivery_ids:
        return []
    now = now or utcnow()
    ids = list(delivery_ids)
    if is_postgres(session):
        locked = claimable(ids, now, bind=session).with_for_update(skip_locked=True) \
            .scalar_subquery()
        where: ColumnElement[bool] = Delivery.id.in_(locked)
    else:
        where = and_(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.pending,
                     _due(now))
    stmt = (
        update(Delivery)
        .where(where)
        .values(**claim_values(now, owner, lease_seconds))
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    claimed = sorted(session.execute(stmt).scalars())
    session.commit()
    return claimed


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)


def claimable(ids: Sequence[int], now: datetime, *,
              bind: Session | Connection | None = None) -> Select[tuple[int]]:
    """The still-pending, due rows among ``ids`` (what a claim may take); with ``bind``
    the id list is one array parameter on PostgreSQL (:func:`engine.db.in_list`)."""
    where = Delivery.id.in_(list(ids)) if bind is None else in_list(bind, Delivery.id, ids)
    return select(Delivery.id).where(where, Delivery.status == DeliveryStatus.pending,
                                     _due(now))


def claim_values(now: datetime, owner: str, lease_seconds: float) -> dict[str, Any]:
    """The columns a claim writes: ``sending`` under ``owner``'s lease, one attempt more."""
    return {"status": DeliveryStatus.sending, "claimed_at": now,
            "attempts": Delivery.attempts + 1, "lease_owner": owner or None,
            "lease_until": now + timedelta(seconds=lease_seconds)}


def renew(connection: Connection, delivery_ids: Iterable[int], owner: str,
          until: datetime) -> set[int]:
    """Extend the lease of the rows ``owner`` still holds; return exactly those.

    A row missing from the answer was requeued (its lease had expired) or claimed by
    someone else: its holder must not send it.  ``connection`` is in autocommit (the
    batch's own session may hold a transaction open).
    """
    ids = list(delivery_ids)
    if not ids:
        return set()
    held = connection.execute(
        update(DELIVERY)
        .where(in_list(connection, DELIVERY.c.id, ids),
               DELIVERY.c.status == DeliveryStatus.sending.value,
               DELIVERY.c.lease_owner == owner)
        .values(lease_until=until)
        .returning(DELIVERY.c.id)
    ).scalars()
    return set(held)


def release(session: Session, delivery_ids: Iterable[int], owner: str | None = None) -> None:
    """Hand claimed rows back untouched (run paused or outside its send window)."""
    ids = list(delivery_ids)
    if not ids:
        return
    where = [in_list(session, Delivery.id, ids), Delivery.status == DeliveryStatus.sending]
    if owner:
        where.append(Delivery.lease_owner == owner)
    session.execute(
        update(Delivery)
        .where(*where)
        .values(status=DeliveryStatus.pending, claimed_at=None, attempts=Delivery.attempts - 1,
                lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


@dataclass
class Outcome:
    """What happened to one claimed delivery, as recorded in bulk by :func:`record`."""

    delivery_id: int
    status: str  # sent | transient | permanent | auth | skipped | deferred
    provider_id: str | None = None
    message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    business_id: int | None = None
    variant: str | None = None


@dataclass
class RecordSummary:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0  # not attempted (account cooling down, relay down): no attempt spent


def record(
    session: Session,
    outcomes: Sequence[Outcome],
    attempts: dict[int, int],
    max_attempts: int,
    now: datetime | None = None,
    *,
    owner: str = "",
) -> RecordSummary:
    """Write every outcome of a batch in a few statements (bulk), then commit.

    Fenced on the claim: only rows still held by ``owner`` (and still ``sending``) are
    touched, so a row the sweeper already gave to someone else is never overwritten by
    a late answer.  A *sent* row is recorded also when the sweeper had put it back to
    ``pending`` (its lease ran out while the relay answered) and nobody claimed it
    since: it went out, and recording it is what keeps it from going out twice.
    """
    now = now or utcnow()
    summary = RecordSummary()
    sent_rows: list[SentRow] = []
    other_rows: list[dict[str, object]] = []
    deferred_rows: list[dict[str, object]] = []
    for o in outcomes:
        base: dict[str, object] = {"b_id": o.delivery_id}
        if o.status == "deferred":
            summary.deferred += 1
            # Not an attempt: the account is cooling down or must be reconnected.
            wait = 60.0 if o.retry_after is None else o.retry_after
            deferred_rows.append({**base, "b_next": now + timedelta(seconds=wait),
                                  "b_error": (o.error or "")[:2000] or None})
            continue
        if o.status == "sent":
            summary.sent += 1
            sent_rows.append((o.delivery_id, o.provider_id, o.message_id, o.business_id,
                              o.variant))
            continue
        if o.status == "skipped":
            summary.skipped += 1
            row: dict[str, object] = {"b_status": DeliveryStatus.skipped, "b_next": None}
        elif o.status in ("transient", "auth") and attempts.get(o.delivery_id, 1) < max_attempts:
            summary.retried += 1
            delay = o.retry_after if o.retry_after is not None else backoff_delay(
                attempts.get(o.delivery_id, 1))
            row = {"b_status": DeliveryStatus.pending, "b_next": now + timedelta(seconds=delay)}
        else:
            summary.failed += 1
            row = {"b_status": DeliveryStatus.failed, "b_next": None}
        other_rows.append({**base, **row, "b_error": (o.error or o.status)[:2000],
                           "b_msgid": o.message_id})
    held = _held_by(owner)
    if deferred_rows:
        session.connection().execute(
            update(DELIVERY)
            .where(DELIVERY.c.id == bindparam("b_id"), held)
            .values(status=DeliveryStatus.pending.value, next_attempt_at=bindparam("b_next"),
                    claimed_at=None, attempts=DELIVERY.c.attempts - 1, lease_until=None,
                    error=func.coalesce(bindparam("b_error"), DELIVERY.c.error)),
            deferred_rows,
        )
    if sent_rows:
        _mark_sent(session, sent_rows, now, owner)
    if other_rows:
        session.connection().execute(
            update(DELIVERY)
            .where(DELIVERY.c.id == bindparam("b_id"), held)
            .values(status=bindparam("b_status"), next_attempt_at=bindparam("b_next"),
                    lease_until=None,
                    error=bindparam("b_error"), claimed_at=None,
                    message_id=func.coalesce(bindparam("b_msgid"),
                                             DELIVERY.c.message_id)),
            other_rows,
        )
    session.commit()
    return summary


def _held_by(owner: str) -> ColumnElement[bool]:
    """Still ``sending`` under this claim (any claim when the caller names none)."""
    sending = DELIVERY.c.status == DeliveryStatus.sending.value
    return and_(sending, DELIVERY.c.lease_owner == owner) if owner else sending


def _sent_fence(owner: str) -> ColumnElement[bool]:
    """Where a *sent* outcome may be written: held by ``owner``, or put back to
    ``pending`` by the sweeper with the same owner still on it (not claimed again)."""
    if not owner:
        return DELIVERY.c.status == DeliveryStatus.sending.value
    return and_(DELIVERY.c.lease_owner == owner,
                DELIVERY.c.status.in_([DeliveryStatus.sending.value,
                                       DeliveryStatus.pending.value]))


SentRow = tuple[int, str | None, str | None, int | None, str | None]
"""(delivery id, provider id, Message-ID, business id, variant) of one sent delivery."""

_SENT_COLUMNS = (column("id", DELIVERY.c.id.type), column("provider_id", String),
                 column("message_id", String), column("business_id", DELIVERY.c.business_id.type),
                 column("variant", String))
SQLITE_ROWS_PER_STATEMENT = 1000  # 5 parameters a row, far below SQLite's 32,766


def _mark_sent(session: Session, rows: Sequence[SentRow], now: datetime, owner: str = ""
               ) -> None:
    """The sent rows of a batch in one ``UPDATE ... FROM``, only rows still in ``sending``.

    Why: executemany of 250 single-row updates cost ~15 ms of PostgreSQL per batch
    (a round of bind/execute and an index probe each); one join with the batch's
    values does the same work at once.  PostgreSQL gets the values as five typed
    arrays through ``unnest``: the statement text is the same whatever the batch
    size, so it is prepared once.  SQLite (embedded mode) has no arrays: a ``VALUES``
    list in a CTE, chunked under its parameter limit.
    """
    if is_postgres(session):
        _mark_sent_postgres(session.connection(), rows, now, owner)
    else:
        _mark_sent_sqlite(session.connection(), rows, now, owner)


def _mark_sent_postgres(connection: Connection, rows: Sequence[SentRow], now: datetime,
                        owner: str) -> None:
    arrays = (cast(bindparam(f"b_{c.name}"), ARRAY(c.type)) for c in _SENT_COLUMNS)
    sent = func.unnest(*arrays).table_valued(*_SENT_COLUMNS).render_derived(name="sent")
    columns = zip(*rows, strict=True)
    params = {f"b_{c.name}": list(column_values)
              for c, column_values in zip(_SENT_COLUMNS, columns, strict=True)}
    connection.execute(_sent_update(_columns_of(sent), now, owner), params)


def _mark_sent_sqlite(connection: Connection, rows: Sequence[SentRow], now: datetime,
                      owner: str) -> None:
    """``UPDATE ... FROM`` needs SQLite 3.33; the engine already needs 3.35 for the
    ``UPDATE ... RETURNING`` of its claims, so there is no older path to keep."""
    for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
        chunk = list(rows[start:start + SQLITE_ROWS_PER_STATEMENT])
        sent = values(*_SENT_COLUMNS, name="sent").data(chunk).cte("sent")
        connection.execute(_sent_update(_columns_of(sent), now, owner))


def _columns_of(source: FromClause) -> dict[str, ColumnElement[Any]]:
    return {c.name: source.c[c.name] for c in _SENT_COLUMNS}


def _sent_update(sent: Mapping[str, ColumnElement[Any]], now: datetime, owner: str) -> Update:
    """Rows this claim holds become ``sent`` with the values of ``sent`` (columns of
    the joined row source, by name)."""
    return (
        update(DELIVERY)
        .where(DELIVERY.c.id == sent["id"], _sent_fence(owner))
        .values(status=DeliveryStatus.sent.value, sent_at=now, error=None, lease_until=None,
                provider_id=sent["provider_id"], message_id=sent["message_id"],
                business_id=func.coalesce(sent["business_id"], DELIVERY.c.business_id),
                variant=sent["variant"])
    )


def counts_by_status(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Delivery.status, func.count()).where(Delivery.run_id == run_id)
        .group_by(Delivery.status)
    ).all()
    counts = {s.value: 0 for s in DeliveryStatus}
    for status, n in rows:
        counts[str(status.value if hasattr(status, "value") else status)] = n
    return counts


def count_status(session: Session, run_id: int, status: DeliveryStatus,
                 limit: int | None = None) -> int:
    """Rows of a run in one status, counted up to ``limit`` (an index range, no GROUP BY)."""
    rows = select(Delivery.id).where(Delivery.run_id == run_id, Delivery.status == status)
    if limit is not None:
        rows = rows.limit(limit)
    return int(session.execute(select(func.count()).select_from(rows.subquery())).scalar_one())


def enqueue_due(
    session: Session, run_id: int, batch_size: int, now: datetime | None = None, *,
    only_new: bool = False,
) -> list[list[int]]:
    """Mark the due pending rows of a run as handed to the broker; their ids in batches.

    One ``UPDATE ... RETURNING`` does both: paging the ids out and marking them again
    with ``IN`` lists of thousands of ids took ~8 s for 100k rows on PostgreSQL here,
    this takes ~1.5 s. Batches are in id order (ids only, never bodies). ``only_new``
    skips rows already handed over once (PostgreSQL re-checks the condition on rows a
    concurrent statement just marked, so two callers never both get an id).
    """
    ids = mark_handed_over(session, run_id, now or utcnow(), only_new=only_new)
    session.commit()
    return in_batches(ids, batch_size)


def in_batches(ids: Sequence[int], batch_size: int) -> list[list[int]]:
    """``ids`` in id order, cut into batches of ``batch_size``."""
    ordered = sorted(ids)
    return [ordered[start:start + batch_size] for start in range(0, len(ordered), batch_size)]


def mark_handed_over(session: Session, run_id: int, now: datetime, *,
                     only_new: bool) -> list[int]:
    """The due pending ids of a run, marked as handed to the broker at ``now`` (in the
    caller's transaction: nothing is committed here)."""
    due = [Delivery.run_id == run_id, Delivery.status == DeliveryStatus.pending, _due(now)]
    if only_new:
        due.append(Delivery.enqueued_at.is_(None))
    return list(session.execute(
        update(Delivery)
        .where(*due)
        .values(enqueued_at=now)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).scalars())


def pending_batches(
    session: Session, run_id: int, batch_size: int, now: datetime | None = None
) -> list[list[int]]:
    """Due pending ids of a run in keyset-paginated batches (ids only, never bodies)."""
    now = now or utcnow()
    batches: list[list[int]] = []
    last = 0
    while True:
        ids = list(session.execute(
            select(Delivery.id)
            .where(Delivery.run_id == run_id, Delivery.status == DeliveryStatus.pending,
                   Delivery.id > last,
                   or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))
            .order_by(Delivery.id).limit(batch_size)
        ).scalars())
        if not ids:
            return batches
        batches.append(ids)
        last = ids[-1]


def requeue_stale(session: Session, now: datetime | None = None,
                  stale_after: timedelta = STALE_SENDING_AFTER) -> int:
    """``sending`` rows whose lease expired go back to ``pending`` (their worker is dead
    or stalled past its lease; it will not send them: it finds out when it renews).

    The owner stays on the row until someone claims it again, so a late *sent* from the
    stalled worker is still recorded (:func:`_sent_fence`).  ``enqueued_at`` is cleared
    so the same sweep hands them to the broker at once.  Rows claimed before leases
    existed (no ``lease_until``) fall back to ``stale_after`` since ``claimed_at``.
    """
    now = now or utcnow()
    expired = or_(Delivery.lease_until < now,
                  and_(Delivery.lease_until.is_(None), Delivery.claimed_at < now - stale_after))
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.sending, expired)
        .values(status=DeliveryStatus.pending, claimed_at=None, lease_until=None,
                enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount or 0)


def finish_if_done(session: Session, run_id: int, now: datetime | None = None) -> bool:
    """Mark a running run finished once nothing is pending or sending.

    Every batch calls this: it asks whether ONE open row exists (``LIMIT 1``), never
    how many, so it costs the same at the start of a 100k run as at its end.
    """
    open_row = session.execute(
        select(Delivery.id)
        .where(Delivery.run_id == run_id,
               Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.sending]))
        .limit(1)
    ).first()
    if open_row is not None:
        return False
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(CampaignRun)
        .where(CampaignRun.id == run_id, CampaignRun.status == RunStatus.running)
        .values(status=RunStatus.finished, finished_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)
