"""Issue 22: a launch that hands its run to the broker itself marks the rows as it
inserts them, instead of an ``UPDATE`` of every row afterwards.

What must hold is the hand-over rule of DESIGN §6: every id goes to the broker once
(a beat at the same moment takes none of them), and one the broker lost (the launcher
died before enqueueing) is handed over again by the sweeper after the grace period,
not before. A run that does not start at once is left to the beat, unmarked.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.delivery import scheduler
from engine.delivery.enqueue import due_batches_for_run, launch_batches, sweep
from engine.models import Delivery, aware
from engine.outbox import rows as outbox
from tests.delivery.test_frequency_cap_claim import CAMPAIGN
from tests.factories import NOW, make_business, make_customer, make_optin, make_product

RECIPIENTS = 12


def _launch(db: Session, tmp: Path, key: str, *, start: str = "2026-12-01 09:00",
            hand_over: bool = True) -> scheduler.LaunchResult:
    shop = make_business(db, name="Tenun Nunkolo")
    product = make_product(db, shop, name="Kain Tenun Buna", price=150_000)
    for _ in range(RECIPIENTS):
        make_customer(db, marketing=True, at=NOW - timedelta(days=60))
    make_optin(db, product, key)
    path = tmp / f"{key}.yaml"
    path.write_text(CAMPAIGN.format(key=key, cap=3).replace("start: 2026-12-01 09:00",
                                                             f"start: {start}"))
    result = scheduler.launch(db, load_campaign(path), str(path), now=NOW,
                              hand_over=hand_over)
    db.commit()
    return result


def _enqueued(db: Session, run_id: int) -> dict[int, object]:
    db.expire_all()
    return {i: aware(e) if e is not None else None for i, e in db.execute(
        select(Delivery.id, Delivery.enqueued_at).where(Delivery.run_id == run_id)).tuples()}


def test_a_launch_that_hands_over_marks_every_row_once_and_returns_them_in_batches(
        db: Session, settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, batch_size=5)
    result = _launch(db, tmp_path, "promo-serah")
    assert result.run is not None and result.planned == RECIPIENTS
    marked = _enqueued(db, result.run.id)
    assert sorted(result.handed_over) == sorted(marked) and len(marked) == RECIPIENTS
    assert set(marked.values()) == {NOW}
    batches = launch_batches(result, settings)
    assert [len(b.delivery_ids) for b in batches] == [5, 5, 2]
    assert [i for b in batches for i in b.delivery_ids] == sorted(marked)
    assert {b.run_id for b in batches} == {result.run.id}
    assert {b.campaign_type for b in batches} == {"promotional"}
    # A beat ticking at the same moment takes none of them: they are handed over.
    assert due_batches_for_run(result.run.id, settings, NOW, only_new=True) == []


def test_rows_a_launcher_never_enqueued_are_handed_over_again_after_the_grace_only(
        db: Session, settings: Settings, tmp_path: Path) -> None:
    result = _launch(db, tmp_path, "promo-hilang")  # ... and the launcher dies here
    assert result.run is not None
    grace = timedelta(seconds=settings.enqueue_grace_seconds)
    assert sweep(settings, NOW + grace - timedelta(seconds=1)) == []
    again = sweep(settings, NOW + grace + timedelta(seconds=1))
    assert sorted(i for b in again for i in b.delivery_ids) == sorted(result.handed_over)
    assert sweep(settings, NOW + grace + timedelta(seconds=2)) == []  # handed over once


def test_a_run_that_waits_for_its_start_is_left_unmarked_for_the_beat(
        db: Session, settings: Settings, tmp_path: Path) -> None:
    result = _launch(db, tmp_path, "promo-nanti", start="2026-12-05 09:00")
    assert result.run is not None and result.run.status.value == "scheduled"
    assert result.handed_over == [] and launch_batches(result, settings) == []
    assert set(_enqueued(db, result.run.id).values()) == {None}


def test_a_launch_without_hand_over_inserts_unmarked_rows(
        db: Session, settings: Settings, tmp_path: Path) -> None:
    result = _launch(db, tmp_path, "promo-biasa", hand_over=False)
    assert result.run is not None and result.run.status.value == "running"
    assert result.handed_over == [] and launch_batches(result, settings) == []
    assert set(_enqueued(db, result.run.id).values()) == {None}
    batches = outbox.enqueue_due(db, result.run.id, 5, NOW)
    assert sum(len(b) for b in batches) == RECIPIENTS


def test_the_post_rows_of_a_launch_that_hands_over_are_handed_over_with_the_mails(
        db: Session, settings: Settings, tmp_path: Path) -> None:
    """Posts are inserted by the ORM, not by the audience's ``INSERT``: they are marked
    after it, in the same transaction, and come back with the email ids."""
    shop = make_business(db, name="Tenun Nunkolo")
    product = make_product(db, shop, name="Kain Tenun Buna", price=150_000,
                           image_url=f"/media/{'a1' * 32}/square.jpg")
    for _ in range(3):
        make_customer(db, marketing=True, at=NOW - timedelta(days=60))
    make_optin(db, product, "promo-pos")
    path = tmp_path / "promo-pos.yaml"
    path.write_text(CAMPAIGN.format(key="promo-pos", cap=3)
                    + "  facebook: {template: social/promo.j2, per: product}\n")
    result = scheduler.launch(db, load_campaign(path), str(path), now=NOW, hand_over=True)
    db.commit()
    assert result.run is not None
    rows = {i: c for i, c in db.execute(select(Delivery.id, Delivery.channel)
                                        .where(Delivery.run_id == result.run.id)).tuples()}
    assert sorted(rows.values()) == ["email", "email", "email", "facebook"]
    assert sorted(result.handed_over) == sorted(rows)
    assert set(_enqueued(db, result.run.id).values()) == {NOW}
