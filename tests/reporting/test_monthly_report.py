"""The monthly report mail (issue 19): last month's PDF to REPORT_RECIPIENTS, once."""

from __future__ import annotations

import email
import threading
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.db import session_factory
from engine.delivery import beat
from engine.models import ReportDispatch
from engine.reporting import monthly
from tests.reporting.test_reports import build_history

NEW_YEAR = datetime(2026, 12, 31, 18, 5, tzinfo=UTC)  # 1 January 2027, 02.05 WITA


def _mails(settings: Settings) -> list[Message]:
    files = sorted(Path(settings.var_dir).rglob("*.eml"))
    return [email.message_from_bytes(f.read_bytes()) for f in files]


def test_no_recipients_means_no_mail(settings: Settings, db: Session) -> None:
    assert monthly.send_monthly_report(replace(settings, report_recipients=" "), NEW_YEAR
                                       ).count == 0
    assert db.scalars(select(ReportDispatch)).all() == []
    assert _mails(settings) == []


def test_the_beat_mails_last_months_pdf_once(settings: Settings, db: Session) -> None:
    build_history(db)
    on = replace(settings, report_recipients="kadis@ttskab.go.id, , sekretaris@ttskab.go.id")
    assert "monthly_report" in beat.JOBS  # registered by engine.reporting.monthly
    counts: list[int] = []
    beats = [threading.Thread(target=lambda: counts.append(
        monthly.send_monthly_report(on, NEW_YEAR).count)) for _ in range(2)]
    for thread in beats:
        thread.start()
    for thread in beats:
        thread.join()
    assert sorted(counts) == [0, 1]  # two beats at the same moment: one mail
    assert beat.JOBS["monthly_report"](on, NEW_YEAR).count == 0  # and never again
    [mail] = _mails(settings)
    assert mail["To"] == "kadis@ttskab.go.id, sekretaris@ttskab.go.id"
    assert "Desember 2026" in mail["Subject"]
    [attachment] = [p for p in mail.walk() if p.get_filename()]
    assert attachment.get_filename() == "laporan-2026-12.pdf"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes) and payload.startswith(b"%PDF")
    with session_factory(settings)() as fresh:
        [row] = fresh.scalars(select(ReportDispatch)).all()
        assert row.period == "2026-12" and row.format == "pdf" and row.sent_at is not None
        assert row.recipients == "kadis@ttskab.go.id, sekretaris@ttskab.go.id"


def test_without_chromium_the_html_report_is_sent(settings: Settings, db: Session,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.reporting.pdf.chromium_path", lambda: None)
    on = replace(settings, report_recipients="kadis@ttskab.go.id")
    assert monthly.send_monthly_report(on, NEW_YEAR).count == 1
    [mail] = _mails(settings)
    [attachment] = [p for p in mail.walk() if p.get_filename()]
    assert attachment.get_filename() == "laporan-2026-12.html"
    assert attachment.get_content_type() == "text/html"
