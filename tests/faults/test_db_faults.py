"""PostgreSQL faults during delivery: the connection of the sending process is killed.

``pg_terminate_backend`` is called from another connection at a chosen moment (from the
SMTP server's hook at the Nth accepted message, i.e. while ``process_batch`` is sending).
The promises: no delivery is left half-written (a ``sent`` row always has its
Message-ID and time; everything else is ``pending`` or ``sending``), nothing is sent
twice while the rows are still claimed, and the sweeper finishes the batch with zero
lost and duplicates bounded by the batch that was in flight, each sharing one Message-ID.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import DBAPIError

from engine import dispatch
from engine.db import get_engine
from engine.models import Customer, Delivery
from tests.factories import NOW
from tests.faults.conftest import MailWorld, per_recipient

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


def test_connection_killed_mid_batch_leaves_rows_recoverable_and_loses_nothing(
    mail_world: MailWorld, killer: psycopg.Connection,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-db-putus", 10)
    killed: list[int] = []

    def kill_at_fourth(number: int, rcpt: str) -> None:
        if number == 4:
            killed.append(terminate_others(killer))

    w.smtp.on_accept = kill_at_fourth

    with pytest.raises(DBAPIError):
        dispatch.process_batch(run_id, ids, w.settings, NOW)

    assert killed and killed[0] >= 1, "nothing was terminated: the test is moot"
    w.smtp.on_accept = None
    in_flight = set(per_recipient(w.smtp.messages))
    assert len(in_flight) == 10  # SMTP went on; only the recording failed
    assert_no_row_half_written(w, run_id)
    assert w.counts(run_id)["sending"] == 10  # claimed, outcome not recorded
    # A retry of the same batch (Celery's, or a second dispatcher) sends nothing twice
    # while the claim is fresh.
    again = dispatch.process_batch(run_id, ids, w.settings, NOW + timedelta(minutes=1))
    assert again.claimed == 0 and len(w.smtp.messages) == 10

    batches = dispatch.sweep(w.settings, PAST_STALE)  # the beat's sweeper
    assert sum(len(b.delivery_ids) for b in batches) == 10
    for batch in batches:
        dispatch.process_batch(batch.run_id, batch.delivery_ids, w.settings, PAST_STALE)

    counts = w.counts(run_id)
    assert counts == {**counts, "sent": 10, "sending": 0, "pending": 0, "failed": 0}
    received = per_recipient(w.smtp.messages)
    assert set(received) == set(w.rows(run_id))  # lost: 0
    duplicated = {r for r, copies in received.items() if len(copies) > 1}
    assert duplicated <= in_flight and max(len(c) for c in received.values()) == 2
    rows = w.rows(run_id)
    for rcpt, copies in received.items():
        assert set(copies) == {rows[rcpt].message_id}, rcpt  # one Message-ID per delivery
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
    first = dispatch.process_batch(run_id, ids[:5], w.settings, NOW)
    assert first.sent == 5
    # The pooled connections die while idle (a PostgreSQL restart or failover).
    assert terminate_others(killer) >= 1

    second = dispatch.process_batch(run_id, ids[5:], w.settings, NOW)

    assert second.sent == 5  # pre-ping replaced the dead connection; no error surfaced
    received = per_recipient(w.smtp.messages)
    assert len(received) == 10 and all(len(c) == 1 for c in received.values())
    assert w.counts(run_id)["sent"] == 10
    with w.session() as session:
        assert session.scalar(select(Delivery.id).where(Delivery.run_id == run_id).limit(1))
