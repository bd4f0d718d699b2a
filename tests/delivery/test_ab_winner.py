"""Issue 19: the A/B winner rule. A known split with known clicks: the test group gets
both variants, the beat decides the winner once when due, and the rest of the audience
gets the winner only (nobody two variants; consent and the frequency cap still hold)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.campaign.loader import load_campaign
from engine.campaign.winner import WinnerRule
from engine.config import Settings
from engine.delivery import beat, scheduler
from engine.delivery.ab_winner import choose
from engine.delivery.enqueue import run_in_process
from engine.engagement.abstats import VariantRow, two_proportion_z, variant_results
from engine.models import AbWinner, Customer, Delivery, DeliveryStatus
from tests.factories import (
    NOW,
    make_business,
    make_campaign,
    make_customer,
    make_delivery,
    make_event,
    make_optin,
    make_product,
    make_run,
)
from tests.smtp_server import ScriptedSMTPServer

CAMPAIGN = """\
version: 1
id: promo-ab
name: Promo A/B
type: promotional
schedule:
  start: 2026-12-01 09:00
  send_window: {from: "08:00", to: "21:00"}
audience:
  include: [{consent: marketing}]
  frequency_cap: {max: 2, per_days: 7}
products: {opt_in: required, per_message: 1}
offer: {kind: discount, percent: 10, code: AB10, ends: 2026-12-31, title: Diskon}
channels:
  email:
    template: email/promotional.mjml
    subject: "Promo untuk {{ customer.first_name }}"
    variants:
      - {name: B, subject: "Diskon 10% khusus {{ customer.first_name }}"}
    winner: {after_hours: 4, metric: click_rate, test_share: 20}
"""
AUDIENCE = 100


def _world(db: Session, tmp: Path) -> tuple[int, set[int], set[int]]:
    """100 consenting customers, 3 without consent, 2 consenting ones already at the cap;
    the campaign launched at NOW. Returns (run, consenting ids, capped ids)."""
    shop = make_business(db, name="Tenun Boti")
    make_optin(db, make_product(db, shop, name="Selendang Boti", price=90_000), "promo-ab")
    ids = {make_customer(db, marketing=True, at=NOW - timedelta(days=30)).id
           for _ in range(AUDIENCE)}
    for _ in range(3):
        make_customer(db, marketing=False, at=NOW - timedelta(days=30))
    others = [make_run(db, make_campaign(db, type="promotional")) for _ in range(2)]
    capped = sorted(ids)[-2:]
    for customer_id in capped:
        for days, other in enumerate(others, start=1):
            make_delivery(db, other, db.get_one(Customer, customer_id),
                          at=NOW - timedelta(days=days))
    path = tmp / "promo-ab.yaml"
    path.write_text(CAMPAIGN)
    launched = scheduler.launch(db, load_campaign(path), str(path), now=NOW)
    assert launched.run is not None
    db.commit()
    return launched.run.id, ids, set(capped)


def _rows(db: Session, run_id: int) -> list[Delivery]:
    db.expire_all()
    return list(db.scalars(select(Delivery).where(Delivery.run_id == run_id)))


def test_the_winner_goes_to_the_rest(smtp_wired: tuple[Settings, Session],
                                     smtp_server: ScriptedSMTPServer, tmp_path: Path) -> None:
    settings, db = smtp_wired
    run_id, consenting, capped = _world(db, tmp_path)
    test_group = {c for c in consenting - capped if (c * 7919 + run_id) % 100 < 20}
    assert 10 <= len(test_group) <= 30
    assert {d.customer_id for d in _rows(db, run_id)} == test_group

    first = run_in_process(run_id, settings, NOW)
    assert first.sent == len(test_group)
    sent = _rows(db, run_id)
    by_variant = Counter(d.variant for d in sent)
    assert set(by_variant) == {"A", "B"}
    # Known clicks: every B recipient clicks, one A recipient clicks (once, human)
    a_rows = [d for d in sent if d.variant == "A"]
    for d in sent:
        if d.variant == "B" or d is a_rows[0]:
            make_event(db, db.get_one(Customer, d.customer_id), type="click",
                       delivery_id=d.id, run_id=run_id)
    db.commit()
    a, b = variant_results(db, run_id)
    assert (a.sent, a.unique_clicks, b.sent, b.unique_clicks) == (
        by_variant["A"], 1, by_variant["B"], by_variant["B"])
    expected = two_proportion_z(1, a.sent, b.sent, b.sent)
    assert expected is not None and expected.significant

    early = beat.run_job("due_runs", settings, NOW + timedelta(hours=3, minutes=59))
    assert early.count == 0 and db.scalar(select(AbWinner)) is None

    due = beat.run_job("due_runs", settings, NOW + timedelta(hours=4))
    assert due.count == 1
    winner = db.scalars(select(AbWinner)).one()
    rest = consenting - capped - test_group
    assert (winner.variant, winner.decided_by, winner.significant) == ("B", "significant", True)
    assert winner.rest_planned == len(rest)
    assert winner.figures["z"] == pytest.approx(expected.z)
    assert [v["sent"] for v in winner.figures["variants"]] == [a.sent, b.sent]
    assert sum(len(batch.delivery_ids) for batch in due.batches) == len(rest)

    assert beat.run_job("due_runs", settings, NOW + timedelta(hours=5)).count == 0  # once
    run_in_process(run_id, settings, NOW + timedelta(hours=4))
    final = _rows(db, run_id)
    assert len(db.scalars(select(AbWinner)).all()) == 1
    per_customer = Counter(d.customer_id for d in final)
    assert set(per_customer) == consenting - capped and set(per_customer.values()) == {1}
    assert all(d.status == DeliveryStatus.sent for d in final)
    assert Counter(d.variant for d in final) == {
        "A": by_variant["A"], "B": by_variant["B"] + len(rest)}
    assert {d.variant for d in final if d.customer_id in rest} == {"B"}
    subjects = Counter("khusus" in str(BytesParser(policy=policy.default).parsebytes(
        m.data)["subject"]) for m in smtp_server.messages)
    assert subjects[True] == by_variant["B"] + len(rest)

    from engine.cli.app import app

    shown = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["campaign", "ab", str(run_id)])
    assert shown.exit_code == 0, shown.output
    assert "Pemenang: varian B menurut rasio klik" in shown.output
    assert f"dikirim ke {len(rest)} penerima lainnya" in shown.output


def _row(variant: str, sent: int, clicks: int) -> VariantRow:
    return VariantRow(variant, sent, 0, clicks, 0)


def test_without_a_significant_difference_the_rule_decides() -> None:
    rows = [_row("A", 50, 5), _row("B", 50, 7)]
    best = WinnerRule(after_hours=4)
    assert choose(rows, best)[:2] == ("B", "best")
    control = WinnerRule(after_hours=4, if_not_significant="control")
    assert choose(rows, control)[:2] == ("A", "control")
    assert choose([_row("A", 500, 50), _row("B", 500, 90)], control)[:2] == ("B", "significant")
    assert choose([], best)[:2] == ("A", "no_data")
    # a tie is not significant: the earlier variant is the best estimate
    assert choose([_row("A", 40, 4), _row("B", 40, 4)], best)[:2] == ("A", "best")
