"""Domain warm-up (engine.outbox.warmup): a compressed clock of several days, one and
two claimers at once; no local day above its quota, every message sent exactly once,
the held rows still pending (no attempt spent), never failed or skipped."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.db import is_postgres, session_factory
from engine.delivery import scheduler
from engine.delivery.enqueue import run_in_process
from engine.models import Delivery, DeliveryStatus, WarmupDay, aware
from engine.outbox import rows, warmup
from tests.factories import (
    NOW,
    make_business,
    make_campaign,
    make_customer,
    make_optin,
    make_product,
    make_run,
)
from tests.smtp_server import ScriptedSMTPServer

pytestmark = pytest.mark.warmup
SCHEDULE = "100,200,400"
DAY1 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09.00 WITA
WITA = timedelta(hours=8)


def _settings(settings: Settings, start: str = "") -> Settings:
    return replace(settings, warmup_schedule=SCHEDULE, warmup_start=start,
                   smtp_host="relay.contoh.id")


def _outbox(db: Session, n: int) -> list[int]:
    run = make_run(db, make_campaign(db))
    db.execute(insert(Delivery), [
        {"run_id": run.id, "channel": "email", "recipient": f"p{i}@contoh.id",
         "status": DeliveryStatus.pending, "attempts": 0, "context": {}} for i in range(n)])
    db.commit()
    return list(db.scalars(select(Delivery.id).where(Delivery.run_id == run.id)
                           .order_by(Delivery.id)))


def _claim_and_send(settings: Settings, ids: list[int], now: datetime) -> list[int]:
    """What the pipeline does with one batch: admit, claim, then record each as sent."""
    with session_factory(settings)() as session:
        admitted = warmup.admit(session, settings, ids, now)
        owner = rows.new_owner()
        claimed = rows.claim(session, admitted.ids, now, owner=owner)
        if claimed:
            session.execute(update(Delivery).where(Delivery.id.in_(claimed),
                                                   Delivery.lease_owner == owner)
                            .values(status=DeliveryStatus.sent, sent_at=now))
            session.commit()
    return claimed


def _sent_per_local_day(db: Session) -> dict[date, int]:
    days: Counter[date] = Counter()
    for sent_at in db.scalars(select(Delivery.sent_at).where(Delivery.sent_at.is_not(None))):
        moment = aware(sent_at)
        assert moment is not None
        days[(moment + WITA).date()] += 1
    return dict(days)


def test_schedule_parsing_and_quotas() -> None:
    schedule = warmup.parse_schedule("200, 400,800")
    assert schedule is not None
    assert [schedule.quota(d) for d in (0, 1, 2, 3, 4)] == [200, 200, 400, 800, None]
    assert warmup.parse_schedule("off") is None and warmup.parse_schedule("Mati") is None
    for bad in ("", "200,x", "200,-5", "0,100"):
        with pytest.raises(warmup.BadSchedule):
            warmup.parse_schedule(bad)


def test_a_bad_schedule_falls_back_to_the_default(settings: Settings) -> None:
    schedule = warmup.schedule_of(replace(settings, warmup_schedule="dua ratus"))
    assert schedule is not None and schedule.quotas[:3] == (200, 400, 800)


def test_compressed_clock_one_claimer(settings: Settings, db: Session) -> None:
    live = _settings(settings)
    ids = _outbox(db, 1000)
    per_day: list[int] = []
    for day in range(5):
        sent = 0
        for hour in range(0, 10, 2):  # five beats a day, each claiming batches of 150
            now = DAY1 + timedelta(days=day, hours=hour)
            for start in range(0, len(ids), 150):
                sent += len(_claim_and_send(live, ids[start:start + 150], now))
        per_day.append(sent)
    assert per_day == [100, 200, 400, 300, 0]  # day 4 is past the schedule: no limit
    db.expire_all()
    assert db.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.sent)) == 1000
    assert set(db.scalars(select(Delivery.attempts))) == {1}  # holding spent no attempt
    assert db.get(WarmupDay, date(2026, 12, 1)).claimed == 100  # type: ignore[union-attr]


def test_held_rows_stay_pending_until_tomorrow(settings: Settings, db: Session) -> None:
    live = _settings(settings)
    ids = _outbox(db, 130)
    assert len(_claim_and_send(live, ids, DAY1)) == 100
    db.expire_all()
    statuses = Counter(db.scalars(select(Delivery.status)))
    assert statuses == {DeliveryStatus.sent: 100, DeliveryStatus.pending: 30}
    waiting = set(db.scalars(select(Delivery.next_attempt_at)
                             .where(Delivery.status == DeliveryStatus.pending)))
    tomorrow = datetime(2026, 11, 30, 16, tzinfo=UTC) + timedelta(days=1)  # 00.00 WITA
    assert {aware(w) for w in waiting} == {tomorrow}
    assert _claim_and_send(live, ids, DAY1 + timedelta(hours=5)) == []
    assert len(_claim_and_send(live, ids, tomorrow)) == 30


def test_in_flight_mail_counts_against_the_day(settings: Settings, db: Session) -> None:
    live = _settings(settings)
    ids = _outbox(db, 150)
    with session_factory(live)() as session:
        first = rows.claim(session, warmup.admit(session, live, ids[:60], DAY1).ids, DAY1)
    assert len(first) == 60  # claimed, still sending (not recorded yet)
    assert len(_claim_and_send(live, ids[60:], DAY1)) == 40


def test_warmup_start_setting_and_days_needed(settings: Settings, db: Session) -> None:
    live = _settings(settings, start="2026-11-30")  # today is day 2: 200
    assert warmup.quota_on(db, live, DAY1) == 200
    assert warmup.days_needed(db, live, 150, DAY1) == 1
    assert warmup.days_needed(db, live, 700, DAY1) == 3  # 200 + 400, then no limit
    assert warmup.days_needed(db, _settings(settings), 700, DAY1) == 3  # 100+200+400
    assert warmup.days_needed(db, _settings(settings), 701, DAY1) == 4
    off = replace(live, warmup_schedule="off")
    assert warmup.quota_on(db, off, DAY1) is None
    assert warmup.days_needed(db, off, 10_000, DAY1) == 1
    files_only = replace(live, smtp_host="")  # .eml files: nothing to warm up
    assert warmup.quota_on(db, files_only, DAY1) is None


def test_first_send_starts_the_schedule(settings: Settings, db: Session) -> None:
    live = _settings(settings)
    ids = _outbox(db, 5)
    _claim_and_send(live, ids[:1], DAY1 - timedelta(days=1))  # the domain's first mail
    assert warmup.quota_on(db, live, DAY1) == 200


def test_two_concurrent_claimers_never_exceed_a_day(settings: Settings, db: Session) -> None:
    if not is_postgres(db):
        pytest.skip("row locks across connections: PostgreSQL (SQLite serializes writers)")
    live = _settings(settings)
    ids = _outbox(db, 900)
    halves = [ids[0::2], ids[1::2]]  # each worker its own share, as the broker hands them
    sent: list[list[int]] = [[], []]
    for day in range(4):
        barrier = threading.Barrier(2)

        def worker(n: int, now: datetime = DAY1 + timedelta(days=day),
                   barrier: threading.Barrier = barrier) -> None:
            barrier.wait()  # both start the day at once
            for hour in range(3):
                mine = halves[n]
                for start in range(0, len(mine), 40):
                    sent[n] += _claim_and_send(live, mine[start:start + 40],
                                               now + timedelta(hours=hour))

        threads = [threading.Thread(target=worker, args=(n,)) for n in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    db.expire_all()
    per_day = _sent_per_local_day(db)
    assert per_day == {date(2026, 12, 1): 100, date(2026, 12, 2): 200,
                       date(2026, 12, 3): 400, date(2026, 12, 4): 200}
    everything = sent[0] + sent[1]
    assert len(everything) == len(set(everything)) == 900


def test_campaign_plan_says_how_many_days(sqlite_settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from engine.cli.app import app
    from engine.config import reset_settings
    from tests.campaign.test_campaign_plan_truth import PROMO, _promo_world

    with session_factory(sqlite_settings)() as session:
        _promo_world(session)  # five customers get the promo email
    monkeypatch.setenv("WARMUP_SCHEDULE", "2,2")
    monkeypatch.setenv("SMTP_HOST", "relay.contoh.id")
    reset_settings()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["campaign", "plan", str(PROMO)])
    assert result.exit_code == 0, result.output
    assert ("kuota hari ini 2 email; 5 email kampanye ini butuh sekitar 3 hari"
            in " ".join(result.output.split()))
    monkeypatch.setenv("WARMUP_SCHEDULE", "off")
    reset_settings()
    quiet = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["campaign", "plan", str(PROMO)])
    assert "Pemanasan domain" not in quiet.output


PROMO_YAML = """\
version: 1
id: promo-pemanasan
name: Promo pemanasan
type: promotional
schedule:
  start: 2026-12-01 09:00
  end: 2026-12-31 20:00
  send_window: {from: "08:00", to: "21:00"}
audience:
  include: [{consent: marketing}]
products: {opt_in: required, per_message: 1}
offer: {kind: discount, percent: 10, code: HANGAT10, ends: 2026-12-31, title: Diskon Hangat}
channels:
  email:
    template: email/promotional.mjml
    subject: "Promo untuk {{ customer.first_name }}"
"""


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {"WARMUP_SCHEDULE": "4", "BATCH_SIZE": "3"}


def test_the_pipeline_holds_mail_over_the_quota_until_the_next_day(
        smtp_wired: tuple[Settings, Session], smtp_server: ScriptedSMTPServer,
        tmp_path: Path) -> None:
    """The real claim -> render -> SMTP -> record path: 4 on day 1, the rest on day 2."""
    live, db = smtp_wired
    product = make_product(db, make_business(db, name="Tenun Nunkolo"), name="Kain Buna")
    for _ in range(10):
        make_customer(db, marketing=True, at=NOW - timedelta(days=60))
    make_optin(db, product, "promo-pemanasan")
    path = tmp_path / "promo.yaml"
    path.write_text(PROMO_YAML)
    launched = scheduler.launch(db, load_campaign(path), str(path), now=NOW)
    assert launched.run is not None and launched.planned == 10
    db.commit()
    day1 = run_in_process(launched.run.id, live, NOW)
    assert (day1.sent, day1.failed, day1.skipped) == (4, 0, 0)
    assert day1.deferred == 6
    assert len(smtp_server.messages) == 4
    later_today = run_in_process(launched.run.id, live, NOW + timedelta(hours=6))
    assert later_today.sent == 0
    day2 = run_in_process(launched.run.id, live, NOW + timedelta(days=1))
    assert (day2.sent, day2.failed) == (6, 0)
    recipients = [r for m in smtp_server.messages for r in m.rcpt_tos]
    assert len(recipients) == len(set(recipients)) == 10
    db.expire_all()
    assert set(db.scalars(select(Delivery.attempts))) == {1}
