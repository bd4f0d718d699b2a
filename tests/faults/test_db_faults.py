"""PostgreSQL faults during delivery: the connection of the sending process is killed.

``pg_terminate_backend`` is called from another connection at a chosen moment (from the
SMTP server's hook at the Nth accepted message, i.e. while ``process_batch`` is sending).
The promises: no delivery is left half-written (a ``sent`` row always has its
Message-ID and time; everything else is ``pending`` or ``sending``), nothing is sent
twice while the rows are still claimed, and the sweeper finishes the batch with zero
lost and duplicates bounded by the batch that was in flight, each sharing one Message-ID.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, inspect, select, update

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.db import get_engine
from engine.delivery import beat, scheduler
from engine.delivery.pipeline import process_batch
from engine.models import (
    CampaignRun,
    Customer,
    Delivery,
    DeliveryStatus,
    OrderEvent,
    OrderStatus,
)
from tests.factories import NOW, make_business, make_customer, make_order, make_product
from tests.faults.conftest import MailWorld, per_recipient
from tests.worker_helpers import PROMO_YAML, add_catalog, add_customers

pytestmark = [pytest.mark.postgres,
              pytest.mark.parametrize("settings", ["postgres"], indirect=True)]

PAST_STALE = NOW + timedelta(minutes=11)  # the sweeper's stale-claim limit is 10 minutes


@pytest.fixture
def killer(mail_world: MailWorld) -> Iterator[psycopg.Connection]:
    """A separate admin connection that can terminate the engine's connections."""
    url = mail_world.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def terminate_others(conn: psycopg.Connection) -> int:
    """Kill every other client connection to this test database; how many were killed."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'").fetchall()
    return sum(1 for (ok,) in rows if ok)


def assert_no_row_half_written(w: MailWorld, run_id: int) -> None:
    for row in w.rows(run_id).values():
        if row.status.value == "sent":
            assert row.message_id and row.sent_at, (row.recipient, row.message_id)
        else:
            assert row.status.value in ("pending", "sending"), (row.recipient, row.status)


def test_connection_killed_mid_batch_is_replaced_and_the_batch_records_everything(
    mail_world: MailWorld, killer: psycopg.Connection,
) -> None:
    """Every connection of the worker is killed while it sends (issue 14: the send gate
    checks the run before each message): the gate replaces its connection once, the
    record takes a fresh one, and the batch ends with every message sent once."""
    w = mail_world
    run_id, ids = w.promo("promo-db-putus", 10)
    killed: list[int] = []

    def kill_at_fourth(number: int, rcpt: str) -> None:
        if number == 4:
            killed.append(terminate_others(killer))

    w.smtp.on_accept = kill_at_fourth

    result = process_batch(run_id, ids, w.settings, NOW)

    assert killed and killed[0] >= 1, "nothing was terminated: the test is moot"
    w.smtp.on_accept = None
    assert (result.claimed, result.sent) == (10, 10)
    counts = w.counts(run_id)
    assert counts == {**counts, "sent": 10, "sending": 0, "pending": 0, "failed": 0}
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.rows(run_id))
    assert max(len(c) for c in received.values()) == 1
    assert_no_row_half_written(w, run_id)
    # The schema and the other tables are intact after the dropped connection.
    with w.session() as session:
        assert session.scalar(select(Customer.id).limit(1)) is not None
        assert "delivery" in inspect(get_engine(w.settings)).get_table_names()


def test_connection_killed_between_batches_is_replaced_and_sends_once(
    mail_world: MailWorld, killer: psycopg.Connection,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-db-idle", 10)
    first = process_batch(run_id, ids[:5], w.settings, NOW)
    assert first.sent == 5
    # The pooled connections die while idle (a PostgreSQL restart or failover).
    assert terminate_others(killer) >= 1

    second = process_batch(run_id, ids[5:], w.settings, NOW)

    assert second.sent == 5  # pre-ping replaced the dead connection; no error surfaced
    received = per_recipient(w.smtp.messages)
    assert len(received) == 10 and all(len(c) == 1 for c in received.values())
    assert w.counts(run_id)["sent"] == 10
    with w.session() as session:
        assert session.scalar(select(Delivery.id).where(Delivery.run_id == run_id).limit(1))


# ----------------------------------------------------------------------------- two beats
CONFIRMED = Path(__file__).resolve().parents[2] / "campaigns" / "transactional-order-confirmed.yaml"
TICKERS = 4  # beat ticks released at the same instant, each on its own connection


def _concurrent_ticks(settings: Settings, now: datetime) -> list[dict[str, beat.JobReport]]:
    """Run every beat job in ``TICKERS`` threads at once (a barrier releases them together)."""
    barrier = threading.Barrier(TICKERS)
    reports: list[dict[str, beat.JobReport]] = []
    errors: list[BaseException] = []

    def tick() -> None:
        barrier.wait()
        try:
            reports.append(beat.run_all(settings, now))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=tick) for _ in range(TICKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(reports) == TICKERS
    return reports


def test_concurrent_beat_ticks_start_each_run_once_and_hand_over_each_id_once(
    mail_world: MailWorld,
) -> None:
    """Two (or four) beats ticking at the same instant: every step of the tick is one
    atomic statement or guarded by a unique key, so each scheduled run starts once, each
    order event makes one run, and each delivery id goes to the broker once."""
    w = mail_world
    handed: Counter[int] = Counter()
    with w.session() as session:
        campaign = load_campaign(CONFIRMED)
        assert scheduler.launch(session, campaign, str(CONFIRMED), now=NOW).activated_only
        shop = make_business(session, name="Tenun Ikat Nunkolo")
        kain = make_product(session, shop, name="Kain Tenun Buna", price=150_000)
        session.commit()
    for round_ in range(5):  # a race can hide in one round; five rarely
        now = NOW + timedelta(minutes=round_)
        ids = scheduled_promo(w, f"promo-beat-{round_}", now)
        with w.session() as session:
            buyers = [make_customer(session, name=f"Pembeli {round_}-{i}") for i in range(5)]
            for buyer in buyers:
                order = make_order(session, buyer, [kain], at=now)
                session.add(OrderEvent(order_id=order.id, kind=OrderStatus.confirmed,
                                       occurred_at=now, source="api"))
            session.commit()

        reports = _concurrent_ticks(w.settings, now)

        assert sum(r["due_runs"].count for r in reports) == 1, "the run was started twice"
        assert sum(r["order_triggers"].count for r in reports) == 5, "an order event made two runs"
        for report in reports:
            for batch in beat.batches_of(report):
                handed.update(batch.delivery_ids)
        assert set(ids) <= set(handed), "a delivery of the started run was never handed over"

    assert max(handed.values()) == 1, [i for i, n in handed.items() if n > 1][:10]
    with w.session() as session:
        keys = session.scalars(select(CampaignRun.trigger_key)
                               .where(CampaignRun.trigger_key.like("order-event:%"))).all()
        pending = session.scalar(select(func.count()).select_from(Delivery)
                                 .where(Delivery.status == DeliveryStatus.pending))
    assert len(keys) == len(set(keys)) == 25
    assert len(handed) == pending == 5 * 300 + 25  # every pending row, each handed once


def scheduled_promo(w: MailWorld, key: str, at: datetime) -> list[int]:
    """A promotion to the first 300 customers, scheduled for ``at``; its delivery ids."""
    with w.session() as session:
        if not session.scalar(select(func.count()).select_from(Customer)):
            add_customers(session, 300, prefix="pelanggan", consent_at=NOW - timedelta(days=400))
        add_catalog(session, key)
        session.commit()
        path = w.tmp / f"{key}.yaml"
        path.write_text(PROMO_YAML.format(id=key).replace("2026-01-01 08:00", "2099-01-01 08:00"))
        result = scheduler.launch(session, load_campaign(path), None, now=NOW)
        assert result.run is not None and result.planned == 300, result
        run_id = result.run.id
        session.execute(update(CampaignRun).where(CampaignRun.id == run_id)
                        .values(scheduled_at=at))
        session.commit()
        return list(session.scalars(select(Delivery.id).where(Delivery.run_id == run_id)))
