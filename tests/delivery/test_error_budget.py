"""The error budget pauses a run that burns its list, and only such a run.

The check runs after every batch; it counts failed rows and then sent rows only up to
the number that decides, so these cases sit on both sides of every boundary: the
minimum sample of 50, a share exactly at the budget, one failure over it, a count of
sent rows far above the cap, and a budget of zero.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.delivery.pipeline import _check_error_budget
from engine.models import CampaignRun, Delivery, RunStatus
from tests.factories import NOW, make_campaign, make_run


def _run_with(db: Session, sent: int, failed: int, pending: int = 0) -> int:
    run = make_run(db, make_campaign(db), status=RunStatus.running, started_at=NOW)
    rows = [{"run_id": run.id, "channel": "email", "recipient": f"{status}{i}@contoh.id",
             "status": status, "attempts": 1, "context": {}, "created_at": NOW}
            for status, n in (("sent", sent), ("failed", failed), ("pending", pending))
            for i in range(n)]
    if rows:
        db.execute(insert(Delivery), rows)
    db.commit()
    return run.id


@pytest.mark.parametrize(
    ("sent", "failed", "budget", "paused"),
    [
        (0, 0, 0.2, False),        # nothing done yet
        (1000, 0, 0.2, False),     # no failure at all
        (29, 20, 0.2, False),      # 49 done: below the minimum sample
        (30, 20, 0.2, True),       # 50 done, 40% failed
        (400, 100, 0.2, False),    # exactly at the budget is allowed
        (399, 100, 0.2, True),     # one sent less: over it
        (3000, 100, 0.2, False),   # far more sent than the cap counts
        (100, 1, 0.0, True),       # a zero budget pauses at the first failure
        (100, 0, 0.0, False),
    ],
)
def test_run_pauses_only_when_failures_exceed_the_budget(
    db: Session, settings: Settings, sent: int, failed: int, budget: float, paused: bool,
) -> None:
    run_id = _run_with(db, sent, failed, pending=10)
    run = db.get(CampaignRun, run_id)
    assert run is not None

    _check_error_budget(db, run, replace(settings, error_budget=budget))

    db.refresh(run)
    assert (run.status == RunStatus.paused) is paused
    if paused:
        assert run.status_reason is not None
        assert f"({failed} dari {sent + failed})" in run.status_reason
