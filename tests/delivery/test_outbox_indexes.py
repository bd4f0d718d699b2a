"""Issue 22 (migration 0017): the run index holds every row but the sent ones, and every
query that looked for a run's rows by status through it still finds them through it.

The planner uses a partial index only when it can prove that the query's condition
implies the index's; with sequential scans ruled out, the plan names the index the
query would use on a table of millions, on both backends.
"""

from __future__ import annotations

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from engine.db import is_postgres
from engine.models import Delivery, DeliveryStatus

INDEX = "ix_delivery_run_unsent"


def _plan(db: Session, query: Select[tuple[int]]) -> str:
    sql = str(query.compile(db.get_bind(), compile_kwargs={"literal_binds": True}))
    if is_postgres(db):
        db.execute(text("SET LOCAL enable_seqscan = off"))
        db.execute(text("SET LOCAL enable_bitmapscan = off"))
        rows = [str(r) for r in db.execute(text("EXPLAIN " + sql)).scalars()]
    else:
        rows = [str(r[-1]) for r in db.execute(text("EXPLAIN QUERY PLAN " + sql))]
    plan = "\n".join(rows)
    db.rollback()
    return plan


def _of_run(*statuses: DeliveryStatus) -> Select[tuple[int]]:
    return select(Delivery.id).where(Delivery.run_id == 1, Delivery.status.in_(statuses)
                                     if len(statuses) > 1 else Delivery.status == statuses[0])


def test_open_failed_and_skipped_rows_of_a_run_are_found_through_the_run_index(
        db: Session) -> None:
    for statuses in ((DeliveryStatus.pending,), (DeliveryStatus.sending,),
                     (DeliveryStatus.failed,), (DeliveryStatus.skipped,),
                     (DeliveryStatus.pending, DeliveryStatus.sending)):
        assert INDEX in _plan(db, _of_run(*statuses)), statuses


def test_sent_rows_are_not_in_the_run_index_on_postgresql(db: Session) -> None:
    """SQLite keeps the whole index: it uses a partial one only for a query that
    repeats the index's condition, and ``status = 'pending'`` does not."""
    plan = _plan(db, _of_run(DeliveryStatus.sent))
    assert (INDEX not in plan) is is_postgres(db), plan
    assert "ix_delivery_run_status" not in plan
