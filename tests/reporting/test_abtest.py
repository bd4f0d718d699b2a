"""Issue 19: per-variant A/B figures and the two-proportion z-test, on a known split."""

from __future__ import annotations

import math

import pytest
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.db import session_factory
from engine.reporting.abtest import two_proportion_z, variant_results
from tests.factories import make_campaign, make_customer, make_delivery, make_event, make_run


def test_z_test_matches_the_textbook_values() -> None:
    # 10 % vs 14 % of 1000 each: z = 0.04 / sqrt(0.12 * 0.88 * 0.002) = 2.7524, p = 0.0059
    result = two_proportion_z(100, 1000, 140, 1000)
    assert result is not None
    assert result.z == pytest.approx(2.7524, abs=1e-4)
    assert result.p_value == pytest.approx(0.005916, abs=1e-5)
    assert result.significant
    # symmetric, and a small difference on small groups is not significant
    assert two_proportion_z(140, 1000, 100, 1000).z == pytest.approx(-result.z)  # type: ignore[union-attr]
    small = two_proportion_z(5, 50, 7, 50)
    assert small is not None and not small.significant
    assert small.p_value == pytest.approx(1 - math.erf(abs(small.z) / math.sqrt(2)))


def test_z_test_is_undefined_without_data_or_variance() -> None:
    assert two_proportion_z(0, 0, 3, 10) is None
    assert two_proportion_z(0, 10, 0, 10) is None
    assert two_proportion_z(10, 10, 20, 20) is None


def test_variant_results_of_a_known_split(db: Session) -> None:
    """A: 40 sent, 8 opened, 4 clicked (one by a bot only), 1 lead; B: 40 sent,
    20 opened, 12 clicked, 3 leads; a failed B row and a bot click do not count."""
    run = make_run(db, make_campaign(db))
    plan = {"A": (40, 8, 4, 1), "B": (40, 20, 12, 3)}
    for variant, (sent, opened, clicked, leads) in plan.items():
        for n in range(sent):
            customer = make_customer(db)
            delivery = make_delivery(db, run, customer, variant=variant)
            if n < opened:
                make_event(db, customer, type="open", delivery_id=delivery.id)
                make_event(db, customer, type="open", delivery_id=delivery.id)  # twice: unique
            if n < clicked:
                make_event(db, customer, type="click", delivery_id=delivery.id)
            if n < leads:
                make_event(db, customer, type="lead", channel="whatsapp",
                           delivery_id=delivery.id)
            if variant == "A" and n == sent - 1:
                make_event(db, customer, type="click", delivery_id=delivery.id,
                           suspected_bot=True)
    make_delivery(db, run, make_customer(db), variant="B", status="failed")
    db.commit()

    a, b = variant_results(db, run.id)
    assert (a.variant, a.sent, a.unique_opens, a.unique_clicks, a.leads) == ("A", 40, 8, 4, 1)
    assert (b.variant, b.sent, b.unique_opens, b.unique_clicks, b.leads) == ("B", 40, 20, 12, 3)
    assert a.versus_first is None
    assert b.click_rate == pytest.approx(0.3) and a.click_rate == pytest.approx(0.1)
    expected = two_proportion_z(4, 40, 12, 40)
    assert b.versus_first == expected and expected is not None
    assert expected.z == pytest.approx(2.2361, abs=1e-4) and expected.significant


def test_cli_prints_the_variants_with_indonesian_numbers(sqlite_settings: Settings) -> None:
    from typer.testing import CliRunner

    from engine.cli.app import app

    db = session_factory(sqlite_settings)()
    try:
        run = make_run(db, make_campaign(db))
        for variant, clicked in (("A", 4), ("B", 12)):
            for n in range(40):
                customer = make_customer(db)
                delivery = make_delivery(db, run, customer, variant=variant)
                if n < clicked:
                    make_event(db, customer, type="click", delivery_id=delivery.id)
        db.commit()
        run_id = run.id
    finally:
        db.close()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["campaign", "ab", str(run_id)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()
             if line.strip()[:2] in ("A ", "B ")}
    assert "10,0%" in lines["A"] and "30,0%" in lines["B"]
    assert "2,24" in lines["B"] and "signifikan" in lines["B"]
    assert "belum signifikan" not in lines["B"]
    assert "p < 0,05" in result.output
    missing = CliRunner().invoke(app, ["campaign", "ab", "999"])
    assert missing.exit_code != 0 and "Traceback" not in missing.output
