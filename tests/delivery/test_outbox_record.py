"""``outbox.record``: the sent rows of a batch in one statement, on SQLite and PostgreSQL.

What must hold besides the statement count: only rows still in ``sending`` change (a row
the sweeper handed back, or one already sent, keeps its values), a missing business id
keeps the stored one, and columns that are NULL in every row work too (PostgreSQL has to
type the arrays it unnests).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from engine.models import Delivery, DeliveryStatus
from engine.outbox import rows as outbox
from tests.factories import (
    NOW,
    make_business,
    make_campaign,
    make_customer,
    make_delivery,
    make_run,
)


def _deliveries(db: Session, statuses: list[str]) -> list[int]:
    business = make_business(db)
    run = make_run(db, make_campaign(db))
    ids = []
    for status in statuses:
        customer = make_customer(db)
        ids.append(make_delivery(db, run, customer, status=status, business_id=business.id,
                                 message_id="<old@x>", error="earlier failure").id)
    db.commit()
    return ids


@pytest.fixture
def updates(db: Session) -> Iterator[list[tuple[str, bool]]]:
    """(SQL, executemany) of every UPDATE of ``delivery`` sent to the database."""
    seen: list[tuple[str, bool]] = []
    engine = db.get_bind()

    def log(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
            executemany: bool) -> None:
        if "UPDATE delivery" in statement:
            seen.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", log)
    yield seen
    event.remove(engine, "before_cursor_execute", log)


def _rows(db: Session, ids: list[int]) -> dict[int, Delivery]:
    db.expire_all()
    return {d.id: d for d in db.scalars(select(Delivery).where(Delivery.id.in_(ids)))}


def test_sent_rows_are_one_statement_and_only_sending_rows_change(
    db: Session, updates: list[tuple[str, bool]]
) -> None:
    ids = _deliveries(db, ["sending"] * 4 + ["pending", "sent"])
    business_of = {row.id: row.business_id for row in _rows(db, ids).values()}
    other = make_business(db, name="UMKM Lain")
    db.commit()
    outcomes = [outbox.Outcome(i, "sent", provider_id=f"Q{i}", message_id=f"<m{i}@x>",
                               business_id=other.id if n % 2 else None,
                               variant="B" if n == 0 else None)
                for n, i in enumerate(ids)]
    summary = outbox.record(db, outcomes, {i: 1 for i in ids}, max_attempts=3, now=NOW)

    assert summary.sent == 6
    assert [executemany for _, executemany in updates] == [False]
    rows = _rows(db, ids)
    for n, i in enumerate(ids[:4]):
        row = rows[i]
        assert row.status == DeliveryStatus.sent and row.error is None
        assert (row.provider_id, row.message_id) == (f"Q{i}", f"<m{i}@x>")
        assert row.business_id == (other.id if n % 2 else business_of[i])
        assert row.variant == ("B" if n == 0 else None)
        assert row.sent_at is not None
    pending, sent = rows[ids[4]], rows[ids[5]]
    assert pending.status == DeliveryStatus.pending and pending.provider_id is None
    assert sent.provider_id is None and sent.message_id == "<old@x>"


def test_columns_null_in_every_row(db: Session, updates: list[tuple[str, bool]]) -> None:
    ids = _deliveries(db, ["sending", "sending"])
    outbox.record(db, [outbox.Outcome(i, "sent") for i in ids], {}, max_attempts=3, now=NOW)
    rows = _rows(db, ids)
    assert {r.status for r in rows.values()} == {DeliveryStatus.sent}
    assert all(r.business_id is not None and r.message_id is None for r in rows.values())
    assert len(updates) == 1


def test_sqlite_splits_large_batches_under_its_parameter_limit(
    db: Session, updates: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "SQLITE_ROWS_PER_STATEMENT", 2)
    ids = _deliveries(db, ["sending"] * 5)
    outbox.record(db, [outbox.Outcome(i, "sent", provider_id="Q") for i in ids], {},
                  max_attempts=3, now=NOW)
    assert {r.provider_id for r in _rows(db, ids).values()} == {"Q"}
    expected = 1 if db.get_bind().dialect.name == "postgresql" else 3
    assert len(updates) == expected
