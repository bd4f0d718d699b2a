"""Pasal 11-12: the annual plan file, its storage and target vs realisation per quarter.

The dataset below is small and every figure is known by hand, so each realisation is
asserted exactly, quarter by quarter (WITA quarters of 2026), for seven indicators
(trainings and guidance come from a registered function).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.models import Delivery, EngagementEvent, SocialPost
from engine.reporting import programme_plan
from engine.reporting.html import render_plan_section, render_report_html
from engine.reporting.plan_file import (
    PlanFileError,
    parse_plan_text,
    plan_of,
    save_plan,
    set_targets,
    targets_of,
)
from engine.reporting.programme_plan import monitor_plan, quarter_bounds
from tests.factories import (
    make_business,
    make_campaign,
    make_customer,
    make_delivery,
    make_event,
    make_run,
)

YEAR = 2026
END_OF_YEAR = date(2026, 12, 31)
PLAN_YAML = """\
year: 2026
title: Rencana uji
targets:
  umkm_terdaftar: [1, 2, 3, 4]
  umkm_layak: [1, 2, 2, 3]
  kampanye: [1, 1, 1, 1]
  jangkauan: [0, 10, 100, 0]
  minat: [0, 4, 0, 2]
budget:
  - {source: apbd, description: Pelatihan, amount: 100000000, used: 25000000}
  - {source: lainnya, amount: 5000000}
partners:
  - {name: Bappeda TTS, kind: pemerintah, role: perencanaan}
"""


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _dataset(s: Session) -> None:
    """Registered 1/3/3/4 and eligible 1/2/2/3 by quarter end; runs 1/2/0/0; delivered
    emails 2 in Q2; social reach 120 in Q3; leads 2 in Q2 and 1 in Q4."""
    b1 = make_business(s, created_at=utc(2026, 2, 1))
    b2 = make_business(s, created_at=utc(2026, 5, 2))
    make_business(s, created_at=utc(2026, 5, 3), eligible=False)
    make_business(s, created_at=utc(2026, 10, 4))
    make_business(s, created_at=utc(2027, 1, 5))  # next year: never counted in 2026
    campaign = make_campaign(s)
    make_run(s, campaign, started_at=utc(2026, 1, 15))
    r2 = make_run(s, campaign, started_at=utc(2026, 4, 10))
    make_run(s, campaign, started_at=utc(2026, 4, 20))
    make_run(s, campaign)  # never started
    customer = make_customer(s)
    sent = [make_delivery(s, r2, make_customer(s), at=utc(2026, 5, 5), business_id=b1.id)
            for _ in range(3)]
    make_event(s, customer, type="hard_bounce", delivery_id=sent[0].id, at=utc(2026, 5, 6))
    post_delivery = Delivery(run_id=r2.id, channel="facebook", recipient="page:dinas",
                             status="sent", sent_at=utc(2026, 8, 3), created_at=utc(2026, 8, 3))
    s.add(post_delivery)
    s.flush()
    post = SocialPost(delivery_id=post_delivery.id, platform="facebook", business_id=b2.id,
                      status="published", published_at=utc(2026, 8, 3))
    s.add(post)
    s.flush()
    for value, day in ((50, 4), (120, 9)):  # the latest snapshot counts
        s.add(EngagementEvent(type="reach", channel="facebook", post_id=post.id,
                              delivery_id=post_delivery.id, value=float(value),
                              occurred_at=utc(2026, 8, day)))
    for at, bot in ((utc(2026, 5, 10), False), (utc(2026, 6, 1), False),
                    (utc(2026, 6, 2), True), (utc(2026, 11, 20), False)):
        make_event(s, customer, type="lead", business_id=b1.id, at=at, suspected_bot=bot)
    s.commit()


def test_quarters_are_whole_wita_months() -> None:
    assert quarter_bounds(2026, 1) == (date(2026, 1, 1), date(2026, 4, 1))
    assert quarter_bounds(2026, 4) == (date(2026, 10, 1), date(2027, 1, 1))
    period = programme_plan.period_of(date(2026, 10, 1), date(2027, 1, 1))
    assert period.months == ["2026-10", "2026-11", "2026-12"]
    # 1 October 00:00 WITA is 30 September 16:00 UTC.
    assert period.start == utc(2026, 9, 30, 16)


def test_target_vs_realisation_on_a_known_dataset(db: Session) -> None:
    _dataset(db)
    save_plan(db, YEAR, parse_plan_text(PLAN_YAML, "plan.yaml", YEAR), "uji")
    db.commit()
    m = monitor_plan(db, YEAR, today=END_OF_YEAR)
    realised = {row.key: row.realised for row in m.indicators}
    assert realised["umkm_terdaftar"] == [1, 3, 3, 4]
    assert realised["umkm_layak"] == [1, 2, 2, 3]
    assert realised["umkm_aktif_digital"] == [0, 1, 1, 1]
    assert realised["kampanye"] == [1, 2, 0, 0]
    assert realised["jangkauan"] == [0, 2, 120, 0]
    assert realised["minat"] == [0, 2, 0, 1]
    assert realised["pelatihan"] == [0, 0, 0, 0]  # nothing registered yet
    registered = m.indicator("umkm_terdaftar")
    assert registered.targets == [1, 2, 3, 4]
    assert (registered.year_target, registered.year_realised) == (4, 4)  # a stock: Q4
    runs = m.indicator("kampanye")
    assert (runs.year_target, runs.year_realised) == (4, 3)  # a flow: the sum
    assert runs.percent == pytest.approx(0.75)
    assert m.indicator("umkm_aktif_digital").targets == [None] * 4
    assert m.indicator("umkm_aktif_digital").percent is None
    assert (m.budget_total, m.budget_used) == (105_000_000, 25_000_000)
    assert [p.name for p in m.partners] == ["Bappeda TTS"]


def test_quarters_not_begun_have_no_realisation(db: Session) -> None:
    _dataset(db)
    m = monitor_plan(db, YEAR, today=date(2026, 5, 15))
    assert m.indicator("kampanye").realised == [1, 2, None, None]
    assert m.plan is None


def test_a_registered_indicator_counts(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[date, date]] = []

    def trainings(_s: Session, start: date, end: date) -> int:
        seen.append((start, end))
        return start.month

    monkeypatch.setitem(programme_plan.REALISATION, "pelatihan", programme_plan.REALISATION[
        "pelatihan"])
    programme_plan.register_indicator("pelatihan", trainings)
    m = monitor_plan(db, YEAR, today=END_OF_YEAR)
    assert m.indicator("pelatihan").realised == [1, 4, 7, 10]
    assert seen[1] == (date(2026, 4, 1), date(2026, 7, 1))
    with pytest.raises(ValueError):
        programme_plan.register_indicator("tidak_ada", trainings)


def test_saving_again_replaces_the_plan_and_the_form_keeps_budget(db: Session) -> None:
    save_plan(db, YEAR, parse_plan_text(PLAN_YAML, "plan.yaml", YEAR), "uji")
    set_targets(db, YEAR, {"kampanye": [5, 5, 5, 5]}, "admin")
    db.commit()
    plan = plan_of(db, YEAR)
    assert plan is not None and plan.updated_by == "admin"
    targets = targets_of(db, plan)
    assert targets["kampanye"] == [5, 5, 5, 5]
    assert targets["umkm_terdaftar"] == [None] * 4  # the form replaces every target
    assert monitor_plan(db, YEAR, today=END_OF_YEAR).budget_total == 105_000_000


@pytest.mark.parametrize(("text", "expected"), [
    ("targets:\n  kampanye: [1, 2, 3]\n", "plan.yaml:2:13: perlu tepat 4 target"),
    ("targets:\n  kampanyee: [1, 2, 3, 4]\n", "plan.yaml:2:3: kunci 'kampanyee' tidak dikenal"),
    ("targets:\n  minat: [1, -2, 3, 4]\n", "plan.yaml:2:14: target tidak boleh negatif: -2"),
    ("targets:\n  minat: [1, dua, 3, 4]\n", "plan.yaml:2:14: harus bilangan bulat"),
    ("budget:\n  - source: apbdes\n    amount: 1\n", "plan.yaml:2:13: nilai 'apbdes' tidak sah"),
    ("budget:\n  - source: apbd\n", "plan.yaml:2:5: kunci wajib 'amount' tidak ada"),
    ("budget:\n  - {source: apbn, amount: -5}\n", "harus paling sedikit 0"),
    ("year: 2025\n", "plan.yaml:1:7: tahun di berkas (2025) tidak sama dengan tahun perintah"),
    ("partners:\n  - kind: swasta\n", "kunci wajib 'name' tidak ada"),
    ("targets: [\n", "plan.yaml:"),
])
def test_plan_file_errors_are_indonesian_with_their_place(text: str, expected: str) -> None:
    with pytest.raises(PlanFileError) as info:
        parse_plan_text(text, "plan.yaml", YEAR)
    assert expected in str(info.value), str(info.value)


def test_every_problem_of_a_file_is_listed_at_once() -> None:
    text = "targets:\n  minat: [1, 2]\n  kampanye: [1, 2, 3, -4]\nwarna: merah\n"
    with pytest.raises(PlanFileError) as info:
        parse_plan_text(text, "p.yaml", YEAR)
    assert len(info.value.problems) == 1  # the schema refuses the unknown key first
    with pytest.raises(PlanFileError) as info:
        parse_plan_text(text.replace("warna: merah\n", ""), "p.yaml", YEAR)
    assert [p.line for p in info.value.problems] == [2, 3]


def test_cli_set_and_report(settings: object, tmp_path: Path) -> None:
    import engine.cli  # noqa: F401 - loads every command group
    from engine.cli.app import app

    good = tmp_path / "rencana.yaml"
    good.write_text(PLAN_YAML, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["rencana", "set", "2026", "--file", str(good)])
    assert result.exit_code == 0, result.output
    assert "Rencana 2026 disimpan: 5 indikator bertarget, 2 baris anggaran, 1 mitra" \
        in result.output
    report = runner.invoke(app, ["rencana", "report", "2026"])
    assert report.exit_code == 0, report.output
    assert "UMKM terdaftar" in report.output and "Rp" in report.output
    bad = tmp_path / "salah.yaml"
    bad.write_text("targets:\n  kampanye: [1, 2]\n", encoding="utf-8")
    refused = runner.invoke(app, ["rencana", "set", "2026", "--file", str(bad)])
    assert refused.exit_code != 0
    assert "salah.yaml:2:13" in refused.output and "perlu tepat 4 target" in refused.output


def test_the_html_report_of_the_year_carries_the_plan_section(db: Session) -> None:
    _dataset(db)
    save_plan(db, YEAR, parse_plan_text(PLAN_YAML, "plan.yaml", YEAR), "uji")
    db.commit()
    section = str(render_plan_section(monitor_plan(db, YEAR, today=END_OF_YEAR)))
    assert 'data-chart="plan-kampanye"' in section
    assert 'data-series="target" data-key="q1" data-value="1"' in section
    assert 'data-series="realised" data-key="q2" data-value="2"' in section
    assert "Rp 100.000.000" in section
    document = render_report_html(db, "2026", "campaign")
    assert 'id="programme-plan"' in document
    assert 'id="programme-plan"' not in render_report_html(db, "2026-11..2027-01",
                                                           "campaign")


def test_demo_seed_gives_a_full_plan_two_agreements_and_a_complaint(db: Session) -> None:
    from sqlalchemy import func, select

    from engine.demo.plan_seed import seed_plan
    from engine.models import Agreement, Complaint
    from engine.umkm.agreements import remind_expiring

    reference = utc(2026, 12, 1, 1)
    make_business(db)
    seed_plan(db, reference)
    seed_plan(db, reference)  # a second run adds nothing
    db.commit()
    m = monitor_plan(db, 2026, today=END_OF_YEAR)
    assert all(row.year_target for row in m.indicators)  # all eight indicators have targets
    assert {b.source for b in m.budget} == {"apbd", "apbn", "lainnya"} and len(m.partners) == 3
    assert db.scalar(select(func.count(Agreement.id))) == 2
    assert db.scalar(select(func.count(Complaint.id))) == 1
    assert len(remind_expiring(db, reference, 30)) == 1  # only one ends within 30 days
