"""Pasal 13-14: agreements (terms, PDF refusals, the one expiry reminder) and complaints."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.errors import InvalidInput, NotFound
from engine.config import Settings
from engine.delivery import beat
from engine.models import Agreement, AuditLog, Complaint
from engine.umkm import agreements, supervision
from tests.factories import make_business

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09.00 WITA on 1 December 2026
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _agreement(s: Session, end: date, name: str = "Lokapasar Uji") -> Agreement:
    return agreements.create_agreement(
        s, provider_name=name, kind="lokapasar", parties="Pemda; PT Uji",
        rights_obligations="Hak dan kewajiban.", start_date=date(2026, 1, 1), end_date=end,
        actor="admin")


def _reminders(s: Session) -> int:
    return int(s.scalar(select(func.count(AuditLog.id)).where(
        AuditLog.action == agreements.REMINDER_ACTION)) or 0)


@pytest.mark.parametrize(("fields", "code"), [
    ({"provider_name": " "}, "agreement.bad_name"),
    ({"kind": "bank"}, "agreement.bad_kind"),
    ({"end_date": None}, "agreement.dates_required"),
    ({"end_date": date(2025, 12, 31)}, "agreement.end_before_start"),
])
def test_an_agreement_needs_a_name_a_known_kind_and_a_term(db: Session, fields: dict[str, object],
                                                           code: str) -> None:
    values: dict[str, object] = {"provider_name": "Kurir", "kind": "kurir", "parties": "",
                                 "rights_obligations": "", "start_date": date(2026, 1, 1),
                                 "end_date": date(2026, 12, 31), "actor": "admin", **fields}
    with pytest.raises(InvalidInput) as info:
        agreements.create_agreement(db, **values)  # type: ignore[arg-type]
    assert info.value.code == code


def test_the_expiry_reminder_is_recorded_once_per_agreement(db: Session) -> None:
    soon = _agreement(db, date(2026, 12, 20), "Segera berakhir")
    _agreement(db, date(2027, 6, 30), "Masih lama")
    _agreement(db, date(2026, 11, 30), "Sudah berakhir")
    edge = _agreement(db, date(2026, 12, 31), "Tepat 30 hari")
    db.commit()
    assert agreements.remind_expiring(db, NOW, 30) == [soon.id, edge.id]
    db.commit()
    assert agreements.remind_expiring(db, NOW + timedelta(days=1), 30) == []
    assert agreements.remind_expiring(db, NOW + timedelta(days=5), 30) == []
    db.commit()
    assert _reminders(db) == 2
    detail = db.scalars(select(AuditLog.detail).where(
        AuditLog.entity_id == str(soon.id), AuditLog.action == agreements.REMINDER_ACTION)).one()
    assert detail["days_left"] == 19
    assert [a.id for a in agreements.open_reminders(db, date(2026, 12, 1))] == [soon.id, edge.id]


def test_the_beat_job_reminds_with_the_configured_window(settings: Settings, db: Session) -> None:
    later = _agreement(db, date(2027, 1, 20), "45 hari lagi")
    db.commit()
    assert beat.JOBS["agreement_reminders"](settings, NOW).count == 0  # 30 days: too early
    wider = dataclasses.replace(settings, agreement_reminder_days=60)
    assert beat.JOBS["agreement_reminders"](wider, NOW).count == 1
    assert beat.JOBS["agreement_reminders"](wider, NOW).count == 0  # once only
    db.expire_all()
    assert db.get(Agreement, later.id).reminded_at is not None  # type: ignore[union-attr]


def test_the_reminder_is_mailed_once_when_an_address_is_set(settings: Settings,
                                                            db: Session) -> None:
    soon = _agreement(db, date(2026, 12, 20), "Kurir Segera")
    db.commit()
    mailed = dataclasses.replace(settings, agreement_reminder_to="dinas@umkm.ttskab.go.id")
    assert beat.JOBS["agreement_reminders"](mailed, NOW).count == 1
    assert beat.JOBS["agreement_reminders"](mailed, NOW).count == 0
    outbox = Path(settings.var_dir) / "outbox" / "email"
    mails = [p.read_bytes() for p in outbox.glob("*.eml")]
    assert len(mails) == 1, mails
    assert b"dinas@umkm.ttskab.go.id" in mails[0]
    assert f"/dinas/kesepakatan/{soon.id}".encode() in mails[0]


@pytest.mark.parametrize(("data", "code"), [
    (b"", "agreement.doc_empty"),
    (b"GIF89a not a pdf", "agreement.doc_not_pdf"),
    (b"<html>%PDF-1.4</html>", "agreement.doc_not_pdf"),
    (PDF + b"x" * 2048, "agreement.doc_too_big"),
])
def test_only_a_bounded_pdf_is_accepted(data: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        agreements.check_pdf(data, max_bytes=1024)
    assert info.value.code == code


def test_a_pdf_is_stored_by_content_and_read_back(db: Session, settings: Settings) -> None:
    agreement = _agreement(db, date(2027, 1, 1))
    key = agreements.attach_document(db, settings, agreement, PDF, "../../kontrak.pdf", "admin")
    assert key.endswith(".pdf") and len(key) == 68
    assert agreement.document_name == "kontrak.pdf"  # the name's folders are dropped
    assert agreements.read_document(settings, agreement) == PDF
    agreement.document_key = "../secret.key"
    assert agreements.read_document(settings, agreement) is None


def test_complaints_have_one_subject_and_follow_ups(db: Session) -> None:
    business = make_business(db)
    other = make_business(db)
    agreement = _agreement(db, date(2027, 1, 1))
    with pytest.raises(InvalidInput):
        supervision.create_complaint(db, text="x", actor="a", business_id=business.id,
                                     agreement_id=agreement.id)
    with pytest.raises(InvalidInput):
        supervision.create_complaint(db, text="x", actor="a")
    with pytest.raises(InvalidInput):
        supervision.create_complaint(db, text="  ", actor="a", business_id=business.id)
    with pytest.raises(InvalidInput):
        supervision.create_complaint(db, text="x", actor="a", business_id=10**9)
    mine = supervision.create_complaint(db, text="Kemasan rusak", actor="admin",
                                        business_id=business.id)
    supervision.create_complaint(db, text="Pembayaran terlambat", actor="admin",
                                 agreement_id=agreement.id)
    supervision.create_complaint(db, text="Lain", actor="admin", business_id=other.id)
    supervision.follow_up(db, mine.id, note="Sudah ditelepon", status="ditindaklanjuti",
                          actor="admin")
    supervision.follow_up(db, mine.id, note="Kemasan diganti", status="selesai", actor="admin")
    with pytest.raises(InvalidInput):
        supervision.follow_up(db, mine.id, note="x", status="ditutup", actor="admin")
    with pytest.raises(NotFound):
        supervision.follow_up(db, 10**9, note="x", status="selesai", actor="admin")
    db.commit()
    assert db.get(Complaint, mine.id).status == "selesai"  # type: ignore[union-attr]
    assert [c.text for c in supervision.complaints_of_business(db, business.id)] == [
        "Kemasan rusak"]
    notes = supervision.follow_ups(db, [mine.id])[mine.id]
    assert [n.status for n in notes] == ["ditindaklanjuti", "selesai"]
    assert [c.text for c in supervision.list_complaints(db, "open")] == [
        "Lain", "Pembayaran terlambat"]
