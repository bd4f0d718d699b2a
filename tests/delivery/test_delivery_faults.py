"""Acceptance of issue 14: leases, stop within one message, deferrals that cost nothing.

Real ``celery worker`` processes on real Redis and PostgreSQL send into the loopback SMTP
server; the beat's jobs run in this process (``World.tick``).  Timers are shortened in
the same ratios as production: a lease of 3-8 s against messages of a few ms (90 s
against 2.4 s), a relay pause of 1 s (60 s).  Every test counts what a recipient would
see and what the outbox says; none depends on how fast the machine is.
"""

from __future__ import annotations

import ast
import re
import signal
import time
from collections.abc import Callable

import pytest

from engine.delivery import control
from engine.models import CampaignRun
from tests.delivery.conftest import WorldFactory
from tests.services import CeleryWorkers, WorkerGroup
from tests.worker_helpers import BATCH_SIZE, World, per_recipient, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SUCCEEDED = re.compile(
    r"Task workers\.tasks\.send_batch\[[^\]]+\] succeeded in ([0-9.]+)s: (\{[^}]*\})")


def batch_log(workers: WorkerGroup) -> list[tuple[float, dict[str, int]]]:
    """(seconds, result) of every batch the workers logged as done."""
    return [(float(seconds), ast.literal_eval(found)) for i in range(len(workers))
            for seconds, found in SUCCEEDED.findall(workers.logs(i))]


def assert_each_exactly_once(w: World, run_id: int, n: int) -> None:
    counts = w.counts(run_id)
    assert counts == {**counts, "sent": n, "failed": 0, "pending": 0, "sending": 0}, counts
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.deliveries(run_id)), "someone got nothing"
    duplicated = {r: k for r, k in received.items() if k > 1}
    assert not duplicated, f"{len(duplicated)} recipients got a copy twice"


def ticking(w: World) -> Callable[[], None]:
    """The beat's sweeper and due-run jobs, as often as the test polls."""
    def tick() -> None:
        w.tick()
    return tick


# ----------------------------------------------------------------------------- leases
def test_a_relay_slower_than_the_lease_sends_nothing_twice(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    """Before leases, the sweeper requeued `sending` rows after STALE_AFTER_SECONDS
    whether or not their worker lived: a batch slower than that went out twice."""
    lease = 3.0
    # STALE_AFTER_SECONDS was the recovery timer before leases: the same 3 s for both.
    w = world(LEASE_SECONDS=str(int(lease)), STALE_AFTER_SECONDS=str(int(lease)),
              ENQUEUE_GRACE_SECONDS="2")
    w.smtp.delay = 0.012  # per SMTP step: a batch of 100 takes several leases
    run_id = w.promo("promo-relai-lambat", 3 * BATCH_SIZE)
    workers = celery_workers.start(2, w.env)
    w.enqueue(run_id)

    w.wait_settled(run_id, timeout=60, on_poll=ticking(w), step=0.5)

    assert_each_exactly_once(w, run_id, 3 * BATCH_SIZE)
    assert all(d.attempts == 1 for d in w.deliveries(run_id).values())
    wait_for(lambda: sum(r.get("sent", 0) for _, r in batch_log(workers)) >= 3 * BATCH_SIZE,
             30, "the workers' log lines", progress=w.progress)
    slowest = max(seconds for seconds, r in batch_log(workers) if r.get("claimed"))
    assert slowest > lease, f"no batch outlived its lease ({slowest:.1f} s): the test is moot"
    w.wait_finished(run_id)


def test_sigterm_to_the_whole_process_group_mid_batch_sends_nothing_twice(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    """`kill -TERM -PGID` (systemd's KillMode=control-group) reaches the pool child too:
    it now ends its batch within one message, records it, and hands the rest back."""
    w = world(LEASE_SECONDS="8", ENQUEUE_GRACE_SECONDS="2")
    w.smtp.delay = 0.004
    total = 12 * BATCH_SIZE
    run_id = w.promo("promo-sigterm", total)
    workers = celery_workers.start(2, w.env)
    w.enqueue(run_id)
    wait_for(lambda: len(w.smtp.messages) >= 150, 60, "the first 150 messages", progress=w.progress)
    wait_for(lambda: w.counts(run_id)["sending"] > BATCH_SIZE, 30, "both workers mid-batch",
             progress=w.progress)

    workers.kill(0, signal.SIGTERM, whole_group=True)
    wait_for(lambda: not workers.alive(0), 60, "worker 0 to end after SIGTERM", progress=w.progress)
    assert "WorkerLostError" not in workers.logs(0), "the pool child died mid-batch"
    assert "batch stopped on request" in workers.logs(0), "SIGTERM hit no batch: moot"
    workers.restart(0)

    w.wait_settled(run_id, timeout=60, on_poll=ticking(w), step=0.5)
    assert_each_exactly_once(w, run_id, total)
    w.wait_finished(run_id)


# ----------------------------------------------------------------------------- deferrals
def test_ten_minutes_of_421_compressed_fails_nothing_and_spends_no_attempt(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    """A relay answering 421 for a while (60 s pauses in production, 1 s here; ten
    pauses of it) used to spend one attempt per message and fail them after five."""
    w = world(RELAY_RETRY_SECONDS="1", ENQUEUE_GRACE_SECONDS="2")
    total = 3 * BATCH_SIZE
    run_id = w.promo("promo-421", total)
    for recipient in w.deliveries(run_id):
        w.smtp.script[recipient] = "421 4.3.2 Layanan tidak tersedia, coba lagi nanti"
    celery_workers.start(2, w.env)
    w.enqueue(run_id)
    tick = ticking(w)
    # Each pass tries only the first message of each batch (the 421 holds the rest):
    # ten refusals per batch are ten relay pauses.
    refused, last_change = 0, time.monotonic()
    while refused < 10 * 3:
        tick()
        time.sleep(0.3)
        now = sum(1 for _, outcome in w.smtp.attempts if outcome.startswith("421"))
        if now != refused:
            refused, last_change = now, time.monotonic()
        assert time.monotonic() - last_change < 30, f"the retries stopped at {refused}"
        assert w.counts(run_id)["failed"] == 0
    w.smtp.script.clear()  # the relay is back

    w.wait_settled(run_id, timeout=60, on_poll=tick, step=0.5)
    assert_each_exactly_once(w, run_id, total)
    assert {d.attempts for d in w.deliveries(run_id).values()} == {1}


# ----------------------------------------------------------------------------- control
def test_cancel_mid_batch_lets_at_most_one_message_per_worker_out(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    w = world()
    w.smtp.delay = 0.004
    total = 15 * BATCH_SIZE
    run_id = w.promo("promo-batal", total)
    celery_workers.start(2, w.env)
    w.enqueue(run_id)
    wait_for(lambda: len(w.smtp.messages) >= 150, 60, "the first 150 messages", progress=w.progress)
    wait_for(lambda: w.counts(run_id)["sending"] > BATCH_SIZE, 30, "both workers mid-batch",
             progress=w.progress)

    with w.session() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        control.cancel(session, run, "dibatalkan operator")
    at_click = len(w.smtp.messages)
    wait_for(lambda: w.counts(run_id)["sending"] == 0, 30, "the batches to stop",
             progress=w.progress)

    after = len(w.smtp.messages) - at_click
    assert after <= 2, f"{after} messages went out after the cancel"
    counts = w.counts(run_id)
    assert counts["pending"] == 0 and counts["sent"] == len(w.smtp.messages)
    assert counts["skipped"] == total - counts["sent"]
    assert w.run_status(run_id) == "cancelled"


def test_a_run_smaller_than_one_batch_can_be_paused_and_resumed_once(
    world: WorldFactory, celery_workers: CeleryWorkers,
) -> None:
    """150 recipients in one batch of 250: before, "Jeda" waited for the whole batch."""
    w = world(BATCH_SIZE="250")
    w.smtp.delay = 0.01
    run_id = w.promo("promo-jeda-kecil", 150)
    celery_workers.start(2, w.env)
    assert w.enqueue(run_id) == 1
    wait_for(lambda: len(w.smtp.messages) >= 20, 60, "the first 20 messages", progress=w.progress)

    with w.session() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        assert control.pause(session, run, "dijeda operator")
    at_click = len(w.smtp.messages)
    wait_for(lambda: w.counts(run_id)["sending"] == 0, 30, "the batch to stop", progress=w.progress)

    assert len(w.smtp.messages) - at_click <= 1
    paused = w.counts(run_id)
    assert paused["pending"] == 150 - paused["sent"] and paused["pending"] > 0
    assert w.run_status(run_id) == "paused"
    assert {d.attempts for d in w.deliveries(run_id).values()
            if d.status.value == "pending"} == {0}, "a paused row spent an attempt"

    with w.session() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        assert control.resume(session, run)
    assert w.enqueue(run_id) >= 1
    w.wait_settled(run_id, timeout=60)
    assert_each_exactly_once(w, run_id, 150)
    w.wait_finished(run_id)
