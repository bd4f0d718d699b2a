"""Pasal 8 and 9 services, their report figures and the CLI commands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app
from engine.common.errors import BadRequest, Conflict, NotFound
from engine.config import Settings
from engine.db import session_scope
from engine.models import GuidanceRequest, RegistrationSource, Role, utcnow
from engine.reporting.programme_guidance import guidance_summary
from engine.reporting.programme_training import training_participation
from engine.umkm import guidance, trainings
from tests.web_helpers import NIK_A, NIK_B, make_eligible_business, make_user

runner = CliRunner(env={"COLUMNS": "200"})


def _training(db: Session, capacity: int = 5, days: int = 3, topic: str = "Foto produk"
              ) -> int:
    return trainings.create_training(db, topic=topic, trainer="Dinas", capacity=capacity,
                                     starts_at=utcnow() + timedelta(days=days),
                                     place="Aula", actor="t").id


def test_training_rules(db: Session) -> None:
    a, _ = make_eligible_business(db, "Tenun A", NIK_A)
    b, _ = make_eligible_business(db, "Madu B", NIK_B, kecamatan="53.02.03")
    tid = _training(db, capacity=1)
    with pytest.raises(BadRequest):
        trainings.check_online_url("ftp://x.example")
    with pytest.raises(BadRequest):
        trainings.create_training(db, topic="x", trainer="y", capacity=5, starts_at=utcnow(),
                                  actor="t")  # neither place nor link
    trainings.register(db, tid, a, source=RegistrationSource.portal, actor="a")
    with pytest.raises(Conflict, match="sudah terdaftar"):
        trainings.register(db, tid, a, source=RegistrationSource.portal, actor="a")
    with pytest.raises(Conflict, match="penuh"):
        trainings.register(db, tid, b, source=RegistrationSource.whatsapp, actor="s")
    past = _training(db, days=-1)
    with pytest.raises(Conflict, match="ditutup"):
        trainings.register(db, past, b, source=RegistrationSource.portal, actor="b")
    assert trainings.parse_wita("2026-12-10 09:00") == datetime(2026, 12, 10, 1, tzinfo=UTC)
    link = trainings.whatsapp_link(trainings.get_training(db, tid), "Tenun A")
    assert link.startswith("https://wa.me/?text=") and "Foto%20produk" in link


def test_participation_per_kecamatan_and_business(db: Session) -> None:
    a, _ = make_eligible_business(db, "Tenun A", NIK_A)              # Kota Soe
    b, _ = make_eligible_business(db, "Madu B", NIK_B, kecamatan="53.02.03")
    first, second = _training(db, topic="Satu"), _training(db, topic="Dua", days=4)
    for tid in (first, second):
        trainings.register(db, tid, a, source=RegistrationSource.portal, actor="a")
    trainings.register(db, first, b, source=RegistrationSource.whatsapp, actor="s")
    trainings.record_attendance(db, first, a.id, True, actor="s")
    trainings.record_attendance(db, second, a.id, False, actor="s")
    trainings.record_attendance(db, first, b.id, True, actor="s")
    result = training_participation(db)
    by_kec = {r.label: (r.registrations, r.attended, r.trainings) for r in result.by_kecamatan}
    assert by_kec == {"Kota Soe": (2, 1, 2), "Mollo Utara": (1, 1, 1)}
    by_biz = {r.label: (r.registrations, r.attended) for r in result.by_business}
    assert by_biz == {"Tenun A": (2, 1), "Madu B": (1, 1)}
    assert (result.registrations, result.attended, result.trainings_held) == (3, 2, 2)
    later = training_participation(db, utcnow() + timedelta(days=10), None)
    assert later.registrations == 0 and later.trainings_held == 0


def test_guidance_rules_and_median_first_response(db: Session) -> None:
    a, _ = make_eligible_business(db, "Tenun A", NIK_A)
    b, _ = make_eligible_business(db, "Madu B", NIK_B, kecamatan="53.02.03")
    helper = make_user(db, "pendamping-x", Role.pendamping)
    staff = make_user(db, "staf-x", Role.dinas_staff)
    with pytest.raises(BadRequest):
        guidance.create_request(db, a, "pajak", "x", actor="a")
    r1 = guidance.create_request(db, a, "legalitas", "NIB", actor="a")
    r2 = guidance.create_request(db, a, "legalitas", "PIRT", actor="a")
    r3 = guidance.create_request(db, b, "pemasaran", "Toko daring", actor="b")
    guidance.create_request(db, b, "permodalan", "KUR", actor="b")  # never answered
    with pytest.raises(BadRequest, match="bukan tenaga pendamping"):
        guidance.assign(db, r1, staff, actor="admin")
    base = datetime(2026, 12, 1, 8, tzinfo=UTC)
    for req, hours in ((r1, 2), (r2, 6), (r3, 10)):
        req.created_at = base
        guidance.assign(db, req, helper, actor="admin")
        req.assigned_at = base + timedelta(hours=hours)
    with pytest.raises(NotFound):
        guidance.log_session(db, r1, staff, held_on=date(2026, 12, 2), duration_minutes=30,
                             notes="x")
    guidance.log_session(db, r1, helper, held_on=date(2026, 12, 2), duration_minutes=30,
                         notes="Isi OSS", private_notes="rahasia")
    db.flush()
    assert r1.status.value == "berjalan" and r2.status.value == "ditugaskan"
    assert guidance.sessions_of(db, r1.id)[0].private_notes is None
    assert guidance.sessions_of(db, r1.id, private=True)[0].private_notes == "rahasia"
    summary = guidance_summary(db)
    topics = {r.key: (r.requests, r.sessions, r.waiting, r.median_response_hours)
              for r in summary.by_topic}
    assert topics["legalitas"] == (2, 1, 0, 4.0)      # median of 2 h and 6 h
    assert topics["pemasaran"] == (1, 0, 0, 10.0)
    assert topics["permodalan"][0] == 1 and topics["permodalan"][2:] == (1, None)
    assert topics["manajemen"] == (0, 0, 0, None)
    kec = {r.label: (r.requests, r.median_response_hours) for r in summary.by_kecamatan}
    assert kec == {"Kota Soe": (2, 4.0), "Mollo Utara": (2, 10.0)}
    guidance.close_request(db, r1, helper)
    with pytest.raises(Conflict):
        guidance.log_session(db, r1, helper, held_on=date(2026, 12, 3), duration_minutes=5,
                             notes="x")


def test_cli_training_and_guidance(sqlite_settings: Settings) -> None:
    with session_scope() as db:
        business, _ = make_eligible_business(db, "Tenun A", NIK_A)
        make_user(db, "pendamping-cli", Role.pendamping)
        request = guidance.create_request(db, business, "manajemen", "Pembukuan", actor="a")
        bid, rid = business.id, request.id
    added = runner.invoke(app, ["pelatihan", "add", "--topic", "Foto produk", "--trainer",
                                "Dinas", "--start", "2030-03-05 10:00", "--capacity", "1",
                                "--place", "Aula"])
    assert added.exit_code == 0, added.output
    assert "Pelatihan #1 dibuat: Foto produk, Selasa, 5 Maret 2030, 10.00 WITA." in added.output
    assert runner.invoke(app, ["pelatihan", "register", "1", str(bid)]).exit_code == 0
    again = runner.invoke(app, ["pelatihan", "register", "1", str(bid)])
    assert again.exit_code != 0 and "sudah terdaftar" in again.output
    attend = runner.invoke(app, ["pelatihan", "attend", "1", str(bid)])
    assert "Kehadiran Tenun A di pelatihan #1: Hadir." in attend.output
    listed = runner.invoke(app, ["pelatihan", "list"])
    assert "Foto produk" in listed.output and "1/1" in listed.output
    bad = runner.invoke(app, ["pendampingan", "assign", str(rid), "tidak-ada"])
    assert bad.exit_code != 0
    done = runner.invoke(app, ["pendampingan", "assign", str(rid), "pendamping-cli"])
    assert f"Permintaan #{rid} ditugaskan kepada pendamping-cli." in done.output
    rows = runner.invoke(app, ["pendampingan", "list"])
    assert "Manajemen" in rows.output and "Ditugaskan" in rows.output
    with session_scope() as db:
        assert db.get(GuidanceRequest, rid).pendamping_id is not None  # type: ignore[union-attr]
