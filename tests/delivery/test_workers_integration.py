"""Acceptance of issue 4: real ``celery worker`` processes on real Redis and PostgreSQL.

Each test launches a campaign in this process, hands its batches to Redis, and lets
worker subprocesses claim, render and send into the loopback SMTP server, then checks
what a recipient would see (how many mails, which Message-ID) and what the outbox says.
Workers use the wall clock; time-dependent engine steps (retention, retries) get an
explicit ``now`` in this process. The crash and broker-loss tests shrink
``LEASE_SECONDS`` / ``ENQUEUE_GRACE_SECONDS`` so the sweeper acts within seconds;
the SMTP server is slowed a little (``SMTP_DELAY``) so a batch is in flight long enough
to be hit.
"""

from __future__ import annotations

import ast
import re
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from engine.common.formatting import WITA
from engine.delivery import control, scheduler
from engine.delivery.enqueue import due_batches_for_run
from engine.models import (
    CampaignRun,
    Customer,
    Delivery,
    OrderEvent,
    OrderStatus,
    RunStatus,
    utcnow,
)
from tests.factories import make_business, make_customer, make_order, make_product
from tests.services import BeatFactory, CeleryWorkers, RedisServer, WorkerGroup
from tests.smtp_server import Rule
from tests.worker_helpers import (
    BATCH_SIZE,
    World,
    message_ids,
    per_recipient,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

WorldFactory = Callable[..., World]
REPO = Path(__file__).resolve().parents[2]
CONFIRMED = REPO / "campaigns" / "transactional-order-confirmed.yaml"
SUCCEEDED = re.compile(
    r"Task workers\.tasks\.send_batch\[[^\]]+\] succeeded in [0-9.]+s: (\{[^}]*\})")


def test_5000_recipients_through_two_workers_each_get_exactly_one_message(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    w = world()
    run_id = w.promo("promo-lima-ribu", 5000)
    workers = celery_workers.start(2, w.env)
    started = time.monotonic()
    assert w.enqueue(run_id) == 50

    counts = w.wait_settled(run_id, timeout=120)
    elapsed = time.monotonic() - started

    assert counts["sent"] == 5000, counts
    received = per_recipient(w.smtp.messages)
    assert len(received) == 5000
    assert set(received.values()) == {1}
    assert set(received) == set(w.deliveries(run_id))
    w.wait_finished(run_id)
    # both workers did part of the work
    for i in range(2):
        assert "succeeded" in workers.logs(i), workers.logs(i)[-2000:]
    print(f"5000 messages in {elapsed:.1f} s")


# ----------------------------------------------------------------------------- helpers
SMTP_DELAY = 0.004  # s per SMTP step: a batch of 100 takes ~1.5 s, long enough to hit


def sending_rows(w: World, run_id: int) -> dict[str, int]:
    """``{recipient: delivery id}`` of the rows some worker holds right now."""
    return {r: d.id for r, d in w.deliveries(run_id).items() if d.status.value == "sending"}


def restarted_queue_length(redis_server: RedisServer) -> int:
    """Stop Redis (SIGTERM), start it again on its port; the batches left in `bulk`."""
    redis_server.stop()
    redis_server.start()
    client = redis_server.client()
    try:
        length: int = client.llen("bulk")  # type: ignore[assignment]  # sync client
        return length
    finally:
        client.close()


def assert_each_duplicate_shares_one_message_id(w: World, run_id: int,
                                                duplicated: set[str]) -> None:
    rows = w.deliveries(run_id)
    messages = w.smtp.messages
    for recipient in duplicated:
        assert message_ids(messages, recipient) == {rows[recipient].message_id}, recipient


def assert_all_sent_duplicates_only_in_flight(w: World, run_id: int, counts: dict[str, int],
                                              total: int, in_flight: set[str]) -> None:
    """Everyone got the mail; only the batches in flight at the fault went out twice,
    each copy with the same Message-ID; the run finished."""
    assert counts == {**counts, "sent": total, "failed": 0, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.deliveries(run_id)), "someone got nothing"
    duplicated = {r for r, n in received.items() if n > 1}
    assert duplicated <= in_flight, duplicated - in_flight
    assert_each_duplicate_shares_one_message_id(w, run_id, duplicated)
    w.wait_finished(run_id)


# ----------------------------------------------------------------------------- crash
def test_sigkill_mid_batch_duplicates_only_in_flight_with_one_message_id(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    w = world(LEASE_SECONDS="8", ENQUEUE_GRACE_SECONDS="2")
    w.smtp.delay = SMTP_DELAY
    run_id = w.promo("promo-sigkill", 1200)
    workers = celery_workers.start(2, w.env)
    w.enqueue(run_id)

    wait_for(lambda: len(w.smtp.messages) >= 150, 60, "the first 150 messages", progress=w.progress)
    wait_for(lambda: len(sending_rows(w, run_id)) > BATCH_SIZE, 10,
             "both workers holding a batch", progress=w.progress)
    workers.kill(0, signal.SIGKILL)  # the worker and its pool child, mid-batch
    # The survivor drains the queue; the dead worker's claimed rows stay `sending`.
    wait_for(lambda: w.counts(run_id)["pending"] == 0
             and w.counts(run_id)["sending"] <= BATCH_SIZE, 60, "the survivor to drain",
             progress=w.progress)
    time.sleep(1.0)
    in_flight = set(sending_rows(w, run_id))  # what the dead worker held
    assert in_flight, "the kill did not hit a batch in flight"
    assert len(in_flight) <= BATCH_SIZE
    assert w.run_status(run_id) == "running", "finished while deliveries are in flight"

    # The beat's sweeper: stale `sending` back to pending, then re-enqueued.
    counts = w.wait_settled(run_id, timeout=60, on_poll=w.tick, step=1.0)

    assert counts == {**counts, "sent": 1200, "failed": 0, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.deliveries(run_id)), "someone got nothing"
    duplicated = {r for r, n in received.items() if n > 1}
    assert max(received.values()) <= 2
    assert duplicated <= in_flight, duplicated - in_flight
    assert len(duplicated) <= BATCH_SIZE  # prefetch 1, concurrency 1: one batch
    assert_each_duplicate_shares_one_message_id(w, run_id, duplicated)
    w.wait_finished(run_id)


# ----------------------------------------------------------------------------- broker loss
def test_redis_restart_without_persistence_loses_nothing(
    world: WorldFactory, celery_workers: CeleryWorkers, private_redis: RedisServer,
) -> None:
    w = world(redis_url=private_redis.url, LEASE_SECONDS="8",
              ENQUEUE_GRACE_SECONDS="2")
    w.smtp.delay = SMTP_DELAY
    run_id = w.promo("promo-redis-restart", 1500)
    celery_workers.start(2, w.env)
    assert w.enqueue(run_id) == 15

    wait_for(lambda: len(w.smtp.messages) >= 200, 60, "the first 200 messages", progress=w.progress)
    in_flight = set(sending_rows(w, run_id))
    assert restarted_queue_length(private_redis) == 0  # no AOF: every queued batch is gone
    time.sleep(3.0)  # the in-flight batches finish without a broker
    assert w.counts(run_id)["pending"] > 0, "nothing left to recover: the test is moot"

    counts = w.wait_settled(run_id, timeout=90, on_poll=w.tick, step=1.0)

    assert_all_sent_duplicates_only_in_flight(w, run_id, counts, 1500, in_flight)


# ----------------------------------------------------------------------------- operations
def test_pause_resume_and_graceful_restart_send_no_duplicates(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    w = world()
    w.smtp.delay = SMTP_DELAY
    run_id = w.promo("promo-jeda", 1500)
    workers = celery_workers.start(2, w.env)
    w.enqueue(run_id)

    wait_for(lambda: len(w.smtp.messages) >= 150, 60, "the first 150 messages", progress=w.progress)
    with w.session() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        assert control.pause(session, run, "dijeda operator")
    time.sleep(0.5)  # a batch that read `running` just before the pause claims now
    # Batches already running finish; every later batch is refused while paused.
    wait_for(lambda: w.counts(run_id)["sending"] == 0, 30, "in-flight batches to end",
             progress=w.progress)
    at_pause = len(w.smtp.messages)
    time.sleep(3.0)
    assert len(w.smtp.messages) == at_pause, "mail sent while paused"
    paused = w.counts(run_id)
    assert paused["pending"] > 0 and paused["sent"] == at_pause
    assert w.run_status(run_id) == "paused"

    assert workers.stop_gracefully(0) == 0  # idle restart while paused
    workers.restart(0)
    with w.session() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        assert control.resume(session, run)
    assert w.enqueue(run_id) > 0
    wait_for(lambda: len(w.smtp.messages) >= at_pause + 300, 60, "sending to resume",
             progress=w.progress)
    assert workers.stop_gracefully(1) == 0  # warm shutdown while batches are sending
    workers.restart(1)

    counts = w.wait_settled(run_id, timeout=90)
    assert counts == {**counts, "sent": 1500, "failed": 0, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.deliveries(run_id))
    assert set(received.values()) == {1}, "duplicates after pause/resume or restart"
    w.wait_finished(run_id)


def test_two_dispatchers_for_the_same_run_send_each_message_once(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    from workers.tasks import dispatch_run, enqueue_batches

    w = world()
    run_id = w.promo("promo-dua-pengirim", 1000)
    # Two dispatchers (two `dispatch_run`, e.g. a double-clicked resume) ...
    dispatch_run.delay(run_id)
    dispatch_run.delay(run_id)
    # ... and every batch handed over twice in a row, so both workers race on it.
    batches = due_batches_for_run(run_id, w.settings)
    for batch in batches:
        enqueue_batches([batch, batch])
    workers = celery_workers.start(2, w.env)

    counts = w.wait_settled(run_id, timeout=90)
    broker = redis.Redis.from_url(w.settings.redis_url)
    wait_for(lambda: broker.llen("bulk") == 0 and len(handled(workers)) >= 2 * len(batches),
             30, "every handed-over batch to be processed", progress=w.progress)
    time.sleep(1.0)  # the last task's log line
    broker.close()

    assert counts == {**counts, "sent": 1000, "failed": 0, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert len(received) == 1000 and set(received.values()) == {1}
    results = handled(workers)
    assert sum(r["claimed"] for r in results) == 1000  # each delivery claimed once
    assert all(d.attempts == 1 for d in w.deliveries(run_id).values())
    assert len(results) >= 2 * len(batches)  # the duplicate hand-overs really ran
    w.wait_finished(run_id)


# ----------------------------------------------------------------------------- SMTP replies
def test_451_is_retried_and_delivered_550_fails_alone_rest_recorded(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    w = world()
    run_id = w.promo("promo-balasan-smtp", 300)
    rows = w.deliveries(run_id)
    recipients = sorted(rows)
    later = recipients[10:250:50]  # 5 greylisted, spread over the batches
    bad = recipients[35:300:60]  # 5 unknown mailboxes
    for address in later:
        w.smtp.script[address] = Rule("451 4.7.1 Greylisted, coba lagi nanti", times=1)
    for address in bad:
        w.smtp.script[address] = "550 5.1.1 Mailbox tidak ada"
    celery_workers.start(2, w.env)
    w.enqueue(run_id)

    wait_for(lambda: w.counts(run_id)["sending"] == 0
             and w.counts(run_id)["sent"] == 290, 60, "the first pass", progress=w.progress)
    rows = w.deliveries(run_id)
    for address in bad:
        assert rows[address].status.value == "failed"
        assert "550" in (rows[address].error or "") and "5.1.1" in (rows[address].error or "")
    for address in later:
        row = rows[address]
        assert row.status.value == "pending" and row.attempts == 1, (address, row.status)
        assert row.next_attempt_at is not None and row.next_attempt_at > utcnow()
    assert w.run_status(run_id) == "running"

    # The backoff (15-30 s) passes: make the retries due instead of sleeping.
    with w.session() as session:
        session.execute(update(Delivery).where(Delivery.recipient.in_(later))
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    counts = w.wait_settled(run_id, timeout=60, on_poll=w.tick, step=1.0)

    assert counts == {**counts, "sent": 295, "failed": 5, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert set(received.values()) == {1}
    assert set(received) == set(recipients) - set(bad)
    attempts = w.smtp.attempts
    for address in later:
        assert [o for r, o in attempts if r == address] == [
            "451 4.7.1 Greylisted, coba lagi nanti", "accepted"]
    for address in bad:
        assert [o for r, o in attempts if r == address] == ["550 5.1.1 Mailbox tidak ada"]
    rows = w.deliveries(run_id)
    assert all(rows[a].status.value == "sent" and rows[a].attempts == 2 for a in later)
    w.wait_finished(run_id)


# ----------------------------------------------------------------------------- triggers
RETENTION_YAML = """\
version: 1
id: retensi-pekerja
name: Kami Rindu Anda
type: retention
schedule:
  trigger: {inactive_days: 90, cooldown_days: 60}
audience:
  include: [{consent: marketing}, {no_purchase_days: 90}]
products: {opt_in: optional, per_message: 2}
offer: {kind: discount, percent: 10, code: KEMBALI10, title: Diskon pelanggan setia}
channels:
  email:
    template: email/retention.mjml
    subject: "{{ customer.first_name }}, sudah {{ days_inactive }} hari"
"""


def test_retention_once_per_cooldown_and_none_after_a_new_order(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    w = world()
    # The beat's clock: today 09.00 WITA (the daily scan runs from 08.00).
    today = datetime.now(WITA).replace(hour=9, minute=0, second=0, microsecond=0)
    with w.session() as session:
        shop = make_business(session, name="Tenun Ikat Nunkolo")
        kain = make_product(session, shop, name="Kain Tenun Buna", price=150_000)

        def customer(name: str, days_since_order: int) -> Customer:
            c = make_customer(session, name=name, marketing=True,
                              at=today - timedelta(days=200))
            make_order(session, c, [kain], at=today - timedelta(days=days_since_order))
            return c

        returns = customer("Ana Tanone", 91)  # won back, then buys again
        stays = customer("Benyamin Tahun", 91)  # stays away
        active = customer("Citra Nubatonis", 89)  # bought recently: no mail today
        emails = [str(c.email) for c in (returns, stays, active)]
        returns_id = returns.id
        session.commit()
        assert scheduler.launch(session, w.campaign(RETENTION_YAML), None).activated_only
    celery_workers.start(2, w.env)

    def day(n: int) -> list[str]:
        """The beat tick of day ``n``, its batches sent by the workers."""
        before = len(w.smtp.messages)
        report = w.tick(today + timedelta(days=n))
        assert report["retention_scan"] == 1
        with w.session() as session:
            run = session.scalars(select(CampaignRun).order_by(CampaignRun.id.desc())).first()
            assert run is not None
            w.wait_settled(run.id, timeout=30)
        time.sleep(0.5)
        return [r for m in w.smtp.messages[before:] for r in m.rcpt_tos]

    assert sorted(day(0)) == sorted(emails[:2])
    assert day(1) == [], "a second mail within the 60-day cooldown"
    with w.session() as session:
        make_order(session, session.get_one(Customer, returns_id), [kain],
                   at=today + timedelta(days=2))
        session.commit()
    # Day 61: Benyamin's cooldown is over, Citra has now been away 150 days; Ana bought
    # 59 days ago and must not be mailed.
    assert sorted(day(61)) == sorted(emails[1:]), "mailed after a new order, or not at all"


def test_order_confirmation_overtakes_a_running_5000_bulk_campaign(
    world: WorldFactory, celery_workers: CeleryWorkers, beat_process: BeatFactory,
) -> None:
    w = world(BEAT_INTERVAL_SECONDS="1")
    w.smtp.delay = 0.001  # a little throttle, as a real relay would
    bulk_id = w.promo("promo-besar", 5000)
    with w.session() as session:
        confirmed = w.campaign(CONFIRMED.read_text())
        assert scheduler.launch(session, confirmed, str(CONFIRMED)).activated_only
        shop = make_business(session, name="Tenun Ikat Nunkolo")
        kain = make_product(session, shop, name="Kain Tenun Buna", price=150_000)
        buyer = make_customer(session, name="Maria Goreti Benu", email="maria@contoh.id")
        session.commit()
    assert w.enqueue(bulk_id) == 50
    celery_workers.start(2, w.env)
    beat_process.start(w.env)  # the real beat: every job every second

    wait_for(lambda: len(w.smtp.messages) >= 500, 60, "the bulk campaign to be under way",
             progress=w.progress)
    with w.session() as session:
        order = make_order(session, session.get_one(Customer, buyer.id), [kain], at=utcnow())
        session.add(OrderEvent(order_id=order.id, kind=OrderStatus.confirmed,
                               occurred_at=utcnow(), source="api"))
        session.commit()
        ref = order.external_ref

    wait_for(lambda: "maria@contoh.id" in w.smtp.recipients(), 60, "the order confirmation",
             progress=w.progress)
    w.wait_settled(bulk_id, timeout=120)
    arrivals = [m.rcpt_tos[0] for m in w.smtp.messages]
    confirmation_at = arrivals.index("maria@contoh.id")
    bulk_after = len(arrivals) - 1 - confirmation_at
    assert len(arrivals) == 5001 and arrivals.count("maria@contoh.id") == 1
    assert bulk_after >= 1000, f"only {bulk_after} bulk messages were still to go"
    message = next(m for m in w.smtp.messages if m.rcpt_tos == ["maria@contoh.id"])
    assert ref in str(message.message["Subject"])
    w.wait_finished(bulk_id)


# ----------------------------------------------------------------------------- more broker faults
def test_redis_restart_with_persistence_keeps_the_queue_and_loses_nothing(
    world: WorldFactory, celery_workers: CeleryWorkers, private_redis: RedisServer,
) -> None:
    """Production runs Redis with its append-only file (docker-compose.yml): a restart
    keeps the queued batches, so the workers carry on without the sweeper."""
    private_redis.restart(persist=True)
    w = world(redis_url=private_redis.url)
    w.smtp.delay = SMTP_DELAY
    run_id = w.promo("promo-redis-aof", 1500)
    celery_workers.start(2, w.env)
    assert w.enqueue(run_id) == 15

    wait_for(lambda: len(w.smtp.messages) >= 200, 60, "the first 200 messages", progress=w.progress)
    in_flight = set(sending_rows(w, run_id))
    queued = restarted_queue_length(private_redis)  # SIGTERM: the AOF is written first
    assert queued > 0, "the AOF kept no queued batch: the test is moot"

    # No beat tick here: the queue itself survived, nothing needs re-enqueueing.
    counts = w.wait_settled(run_id, timeout=90)

    assert_all_sent_duplicates_only_in_flight(w, run_id, counts, 1500, in_flight)


def test_task_outliving_the_visibility_timeout_is_redelivered_but_sends_nothing_twice(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    """A batch slower than Redis' visibility timeout is handed to the idle second worker
    while the first still sends it; the copy claims nothing (its rows are `sending`)."""
    w = world(BROKER_VISIBILITY_TIMEOUT="2")
    w.smtp.delay = 0.015  # 4 SMTP steps per message: the one batch of 100 takes ~6 s
    run_id = w.promo("promo-visibility", BATCH_SIZE)
    workers = celery_workers.start(2, w.env)
    assert w.enqueue(run_id) == 1

    wait_for(lambda: any(r["claimed"] == 0 for r in handled(workers)), 60,
             "a redelivered copy to be handled", progress=w.progress)
    copy_done_at = len(w.smtp.messages)
    counts = w.wait_settled(run_id, timeout=60)
    time.sleep(3.0)  # later copies, restored again, run and log

    assert counts == {**counts, "sent": BATCH_SIZE, "failed": 0, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.deliveries(run_id))
    assert max(received.values()) == 1, "a redelivered batch was sent again"
    assert copy_done_at < BATCH_SIZE, "the copy only ran after the batch: the test is moot"
    results = handled(workers)
    assert sum(r["claimed"] for r in results) == BATCH_SIZE  # the copies claimed nothing
    assert all(d.attempts == 1 for d in w.deliveries(run_id).values())
    w.wait_finished(run_id)


def test_two_beats_at_once_start_the_run_once_and_send_each_message_once(
    world: WorldFactory, celery_workers: CeleryWorkers, beat_process: BeatFactory,
) -> None:
    """Two ``celery beat`` processes (a second one left running by mistake): both tick
    every second, both start the scheduled run, sweep and enqueue; the database decides."""
    w = world(BEAT_INTERVAL_SECONDS="1", ENQUEUE_GRACE_SECONDS="5")
    run_id = w.promo("promo-dua-beat", 1000)
    with w.session() as session:
        shop = make_business(session, name="Tenun Ikat Nunkolo")
        kain = make_product(session, shop, name="Kain Tenun Buna", price=150_000)
        buyer = make_customer(session, name="Maria Goreti Benu", email="maria@contoh.id")
        assert scheduler.launch(session, w.campaign(CONFIRMED.read_text()),
                                str(CONFIRMED)).activated_only
        # The promotion is due a few seconds from now: the beats start it.
        session.execute(update(CampaignRun).where(CampaignRun.id == run_id).values(
            status=RunStatus.scheduled, started_at=None,
            scheduled_at=utcnow() + timedelta(seconds=4)))
        session.commit()
    workers = celery_workers.start(2, w.env)
    beats = [beat_process.start(w.env), beat_process.start(w.env)]

    wait_for(lambda: len(w.smtp.messages) >= 100, 60, "the beats to start the run",
             progress=w.progress)
    with w.session() as session:
        order = make_order(session, session.get_one(Customer, buyer.id), [kain], at=utcnow())
        session.add(OrderEvent(order_id=order.id, kind=OrderStatus.confirmed,
                               occurred_at=utcnow(), source="api"))
        session.commit()
    counts = w.wait_settled(run_id, timeout=120)
    wait_for(lambda: "maria@contoh.id" in w.smtp.recipients(), 30, "the order confirmation",
             progress=w.progress)
    time.sleep(3.0)  # a few more ticks of both beats: nothing more may go out

    assert all(beat.alive for beat in beats)
    for beat in beats:
        assert beat.logs().count("Sending due task sweeper") >= 5, beat.logs()[-1000:]
    assert counts == {**counts, "sent": 1000, "failed": 0, "skipped": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert len(received) == 1001 and max(received.values()) == 1, received.most_common(3)
    with w.session() as session:
        runs = session.scalars(select(CampaignRun.id)).all()
        assert len(runs) == 2, "a beat created a second run"  # the promo + one confirmation
    ticks = sum(workers.logs(i).count("workers.tasks.beat_sweeper") for i in range(2))
    assert ticks >= 10
    w.wait_finished(run_id)


def handled(workers: WorkerGroup) -> list[dict[str, int]]:
    """The result of every `send_batch` the workers logged as succeeded."""
    return [ast.literal_eval(found) for i in range(len(workers))
            for found in SUCCEEDED.findall(workers.logs(i))]
