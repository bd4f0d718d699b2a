"""Leased claims (issue 14): who holds a row, until when, and what a late answer may write.

Each rule is checked at its boundary so that flipping a comparison or moving it by one
second makes a test fail: the sweeper's expiry test (``<``, not ``<=``), the renewal
threshold of :class:`engine.outbox.lease.Lease`, the owner fence of every write.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from engine.db import get_engine
from engine.models import Delivery, DeliveryStatus, aware
from engine.outbox import rows as outbox
from engine.outbox.lease import Lease
from tests.factories import NOW, make_campaign, make_customer, make_delivery, make_run


def _pending(db: Session, n: int, **fields: Any) -> list[int]:
    run = make_run(db, make_campaign(db))
    ids = [make_delivery(db, run, make_customer(db), status="pending", **fields).id
           for _ in range(n)]
    db.commit()
    return ids


def _set(db: Session, delivery_id: int, **values: object) -> None:
    db.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))
    db.commit()


def _row(db: Session, delivery_id: int) -> Delivery:
    db.expire_all()
    row = db.get(Delivery, delivery_id)
    assert row is not None
    return row


def test_a_claim_records_its_owner_and_lease_and_a_second_claim_gets_nothing(
    db: Session,
) -> None:
    ids = _pending(db, 3)
    assert outbox.claim(db, ids, NOW, owner="A", lease_seconds=30) == ids
    assert outbox.claim(db, ids, NOW, owner="B", lease_seconds=30) == []
    row = _row(db, ids[0])
    assert (row.status, row.lease_owner, row.attempts) == (DeliveryStatus.sending, "A", 1)
    assert aware(row.lease_until) == NOW + timedelta(seconds=30)


def test_the_sweeper_requeues_only_expired_leases(db: Session) -> None:
    ids = _pending(db, 3)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    expiry = NOW + timedelta(seconds=30)
    assert outbox.requeue_stale(db, expiry) == 0  # at the expiry itself: still held
    _set(db, ids[0], enqueued_at=NOW)
    assert outbox.requeue_stale(db, expiry + timedelta(seconds=1)) == 3
    row = _row(db, ids[0])
    assert row.status == DeliveryStatus.pending
    assert row.lease_owner == "A"  # kept: a late "sent" of A is still recorded
    assert row.lease_until is None and row.enqueued_at is None


def test_rows_claimed_before_leases_fall_back_to_the_stale_timer(db: Session) -> None:
    old = _pending(db, 2)
    for delivery_id in old:
        _set(db, delivery_id, status=DeliveryStatus.sending, claimed_at=NOW)
    stale = timedelta(minutes=10)
    assert outbox.requeue_stale(db, NOW + stale, stale) == 0
    assert outbox.requeue_stale(db, NOW + stale + timedelta(seconds=1), stale) == 2


def test_renew_extends_only_rows_this_owner_still_holds(db: Session) -> None:
    ids = _pending(db, 3)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    _set(db, ids[1], lease_owner="B")  # the sweeper gave it away and B claimed it
    _set(db, ids[2], status=DeliveryStatus.sent)
    until = NOW + timedelta(minutes=5)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        held = outbox.renew(conn, ids, "A", until)
    assert held == {ids[0]}
    assert aware(_row(db, ids[0]).lease_until) == until
    assert aware(_row(db, ids[1]).lease_until) == NOW + timedelta(seconds=30)


def test_a_late_answer_never_overwrites_another_claim(db: Session) -> None:
    ids = _pending(db, 4)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    outbox.requeue_stale(db, NOW + timedelta(minutes=1))  # A stalled past its lease
    outbox.claim(db, ids[2:], NOW + timedelta(minutes=1), owner="B", lease_seconds=30)
    outcomes = [outbox.Outcome(ids[0], "sent", message_id="<0@x>"),  # requeued, unclaimed
                outbox.Outcome(ids[1], "transient", error="451"),    # requeued, unclaimed
                outbox.Outcome(ids[2], "sent", message_id="<2@x>"),  # B holds it now
                outbox.Outcome(ids[3], "permanent", error="550")]    # B holds it now
    outbox.record(db, outcomes, {i: 1 for i in ids}, 5, NOW, owner="A")
    rows = [_row(db, i) for i in ids]
    assert rows[0].status == DeliveryStatus.sent  # it went out: recorded, never resent
    assert rows[1].status == DeliveryStatus.pending and rows[1].error is None
    assert [r.status for r in rows[2:]] == [DeliveryStatus.sending] * 2
    assert {r.lease_owner for r in rows[2:]} == {"B"}


def test_held_back_rows_get_their_attempt_back_and_wait_as_long_as_told(db: Session) -> None:
    ids = _pending(db, 3)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    outcomes = [outbox.Outcome(ids[0], "deferred", retry_after=0.0, error="dijeda"),
                outbox.Outcome(ids[1], "deferred", retry_after=7.0, error="421 tutup"),
                outbox.Outcome(ids[2], "deferred")]
    summary = outbox.record(db, outcomes, {i: 1 for i in ids}, 5, NOW, owner="A")
    assert summary.deferred == 3
    rows = [_row(db, i) for i in ids]
    assert [r.attempts for r in rows] == [0, 0, 0]
    assert [aware(r.next_attempt_at) for r in rows] == [
        NOW, NOW + timedelta(seconds=7), NOW + timedelta(seconds=60)]
    assert rows[1].error == "421 tutup" and rows[1].lease_until is None


def test_release_hands_back_only_the_owners_rows(db: Session) -> None:
    ids = _pending(db, 2)
    outbox.claim(db, ids[:1], NOW, owner="A", lease_seconds=30)
    outbox.claim(db, ids[1:], NOW, owner="B", lease_seconds=30)
    outbox.release(db, ids, "A")
    a, b = _row(db, ids[0]), _row(db, ids[1])
    assert (a.status, a.attempts) == (DeliveryStatus.pending, 0)
    assert (b.status, b.attempts) == (DeliveryStatus.sending, 1)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_renews_before_two_thirds_are_gone_and_drops_rows_it_lost(
    db: Session,
) -> None:
    ids = _pending(db, 2)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=9)
    clock = _Clock()
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        lease = Lease("A", ids, 9, lambda: conn, claimed_at=NOW, clock=clock,
                      started=clock.now)
        clock.now += 3.0  # 6 s left: exactly two thirds, no renewal yet
        assert lease.holds(ids[0]) and lease.renewals == 0
        clock.now += 0.5  # less than two thirds left: renew first
        assert lease.holds(ids[0]) and lease.renewals == 1
        assert aware(_row(db, ids[0]).lease_until) == NOW + timedelta(seconds=3.5 + 9)
        _set(db, ids[1], lease_owner="B")
        clock.now += 4.0
        assert not lease.holds(ids[1])
        assert lease.lost == {ids[1]} and lease.held == frozenset({ids[0]})
        assert not lease.holds(12345678)  # never claimed


def test_a_claim_takes_only_rows_due_by_now_and_stamps_its_time(db: Session) -> None:
    due = _pending(db, 1, next_attempt_at=NOW)
    later = _pending(db, 1, next_attempt_at=NOW + timedelta(seconds=1))
    assert outbox.claim(db, due + later, NOW, owner="A", lease_seconds=30) == due
    assert aware(_row(db, due[0]).claimed_at) == NOW
    assert _row(db, later[0]).status == DeliveryStatus.pending


def test_the_stale_timer_is_only_for_rows_without_a_lease_and_only_for_sending(
    db: Session,
) -> None:
    leased, done = _pending(db, 1), _pending(db, 1)
    long_ago = NOW - timedelta(hours=1)
    _set(db, leased[0], status=DeliveryStatus.sending, claimed_at=long_ago,
         lease_until=NOW + timedelta(seconds=30), lease_owner="A")
    _set(db, done[0], status=DeliveryStatus.sent, claimed_at=long_ago)
    assert outbox.requeue_stale(db, NOW, timedelta(minutes=10)) == 0
    assert _row(db, done[0]).status == DeliveryStatus.sent
    outbox.requeue_stale(db, NOW + timedelta(seconds=31))
    row = _row(db, leased[0])
    assert row.status == DeliveryStatus.pending and row.claimed_at is None


def test_renew_touches_only_the_ids_it_is_given(db: Session) -> None:
    ids = _pending(db, 2)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert outbox.renew(conn, ids[:1], "A", NOW + timedelta(minutes=5)) == {ids[0]}
    assert aware(_row(db, ids[1]).lease_until) == NOW + timedelta(seconds=30)


def test_release_clears_the_claim(db: Session) -> None:
    ids = _pending(db, 1)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    outbox.release(db, ids, "A")
    row = _row(db, ids[0])
    assert row.claimed_at is None and row.lease_until is None


def test_an_owner_less_record_writes_any_sending_row_and_a_fenced_one_no_settled_row(
    db: Session,
) -> None:
    ids = _pending(db, 2)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    outbox.record(db, [outbox.Outcome(ids[0], "sent", message_id="<a@x>")], {ids[0]: 1}, 5, NOW)
    assert _row(db, ids[0]).status == DeliveryStatus.sent
    late = _pending(db, 1)
    outbox.claim(db, late, NOW, owner="A", lease_seconds=30)
    outbox.record(db, [outbox.Outcome(late[0], "permanent", error="550")], {late[0]: 1}, 5, NOW)
    assert _row(db, late[0]).status == DeliveryStatus.failed
    _set(db, ids[1], status=DeliveryStatus.skipped)  # cancelled meanwhile
    outbox.record(db, [outbox.Outcome(ids[1], "sent", message_id="<b@x>")], {ids[1]: 1}, 5,
                  NOW, owner="A")
    assert _row(db, ids[1]).status == DeliveryStatus.skipped


def test_a_lease_counts_its_renewals_and_keeps_every_row_it_lost(db: Session) -> None:
    ids = _pending(db, 3)
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=9)
    clock = _Clock()
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        lease = Lease("A", ids, 0.5, lambda: conn, claimed_at=NOW, clock=clock)
        assert lease.seconds == 1.0  # never shorter than a second
        lease = Lease("A", ids, 9, lambda: conn, claimed_at=NOW, clock=clock)
        assert lease.remaining() == 9.0  # started now when not told otherwise
        _set(db, ids[1], lease_owner="B")
        clock.now += 4.0
        lease.holds(ids[0])
        assert lease.remaining() == 9.0 and lease.renewals == 1
        _set(db, ids[2], lease_owner="B")
        clock.now += 4.0
        lease.holds(ids[0])
        assert lease.renewals == 2 and lease.lost == {ids[1], ids[2]}


def test_record_retries_below_the_attempt_cap_fails_at_it_and_counts_exactly(
    db: Session,
) -> None:
    ids = _pending(db, 7, message_id="<kept@x>")
    outbox.claim(db, ids, NOW, owner="A", lease_seconds=30)
    attempts = {i: 1 for i in ids} | {ids[1]: 5, ids[3]: 5}
    outcomes = [outbox.Outcome(ids[0], "transient", error="451 nanti", retry_after=40),
                outbox.Outcome(ids[1], "transient", error="451 lagi"),   # at the cap
                outbox.Outcome(ids[2], "auth", error="535", retry_after=10),
                outbox.Outcome(ids[3], "auth", error="535"),             # at the cap
                outbox.Outcome(ids[4], "skipped", error="consent_withdrawn"),
                outbox.Outcome(ids[5], "permanent", error="x" * 5000)]
    summary = outbox.record(db, outcomes, attempts, 5, NOW, owner="A")
    assert (summary.retried, summary.failed, summary.skipped, summary.sent) == (2, 3, 1, 0)
    rows = [_row(db, i) for i in ids]
    assert [r.status for r in rows] == [
        DeliveryStatus.pending, DeliveryStatus.failed, DeliveryStatus.pending,
        DeliveryStatus.failed, DeliveryStatus.skipped, DeliveryStatus.failed,
        DeliveryStatus.sending]  # the last one had no outcome: untouched
    assert aware(rows[0].next_attempt_at) == NOW + timedelta(seconds=40)
    assert aware(rows[2].next_attempt_at) == NOW + timedelta(seconds=10)
    assert rows[1].next_attempt_at is None and rows[4].next_attempt_at is None
    assert rows[0].error == "451 nanti" and rows[4].error == "consent_withdrawn"
    assert rows[5].error == "x" * 2000
    assert {r.message_id for r in rows} == {"<kept@x>"}
    assert all(r.lease_until is None and r.claimed_at is None for r in rows[:6])
    assert rows[6].lease_until is not None
