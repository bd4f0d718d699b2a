"""Kesepakatan bersama with digital service providers (Perbup TTS 17/2025 Pasal 13-14).

Pasal 13 protects UMKM that use digital services through agreements between the Pemda
and the provider; Pasal 14(3) supervises their rights and obligations and their *term*
(jangka waktu). So an agreement is a row with its term, its signed PDF and a reminder
before it ends: :func:`remind_expiring` (a beat job) records one notice per agreement,
``reminder_days`` before the end, which the agreements page shows to admins.

The PDF is not a photo, so it does not go to the media store (which only keeps
normalised JPEG variants); it is kept content-addressed under ``var/agreements/`` as
``<sha256>.pdf``. A file is accepted only when it is small enough and starts with the
PDF magic bytes ``%PDF-``: the name and the browser's content type are not trusted.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, InvalidInput, NotFound
from engine.config import Settings
from engine.media.files import write_atomically
from engine.models import Agreement, AuditLog

KINDS: tuple[str, ...] = ("lokapasar", "kurir", "pembayaran", "platform", "lainnya")
PDF_MAGIC = b"%PDF-"
DOCUMENT_KEY = re.compile(r"^[0-9a-f]{64}\.pdf$")
REMINDER_ACTION = "agreement.expiry_reminder"
ACTOR = "beat"
LOCAL_TZ = ZoneInfo("Asia/Makassar")  # the Dinas counts days in WITA


def parse_date(value: str) -> date | None:
    """A typed date (``2026-12-31``, form or CLI); empty is None, anything else a 400."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadRequest("agreement.bad_date", value=text[:20]) from exc


def documents_dir(settings: Settings) -> Path:
    return Path(settings.var_dir) / "agreements"


def create_agreement(session: Session, *, provider_name: str, kind: str, parties: str,
                     rights_obligations: str, start_date: date | None, end_date: date | None,
                     actor: str) -> Agreement:
    """A new agreement after checking what a person can get wrong (400 saying which)."""
    name = provider_name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("agreement.bad_name")
    if kind not in KINDS:
        raise InvalidInput("agreement.bad_kind", kind=kind, allowed=", ".join(KINDS))
    if start_date is None or end_date is None:
        raise InvalidInput("agreement.dates_required")
    if end_date < start_date:
        raise InvalidInput("agreement.end_before_start")
    agreement = Agreement(provider_name=name, kind=kind, parties=parties.strip()[:5000],
                          rights_obligations=rights_obligations.strip()[:20000],
                          start_date=start_date, end_date=end_date, created_by=actor)
    session.add(agreement)
    session.flush()
    session.add(AuditLog(actor=actor, action="agreement.create", entity="agreement",
                         entity_id=str(agreement.id), detail={"provider": name}))
    return agreement


def get_agreement(session: Session, agreement_id: int) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound("agreement.not_found", id=agreement_id)
    return agreement


def list_agreements(session: Session) -> list[Agreement]:
    return list(session.scalars(select(Agreement).order_by(Agreement.end_date, Agreement.id)))


def check_pdf(data: bytes, max_bytes: int) -> None:
    """Refuse what is not a PDF of bounded size (the bytes decide, not the file name)."""
    if not data:
        raise InvalidInput("agreement.doc_empty")
    if len(data) > max_bytes:
        raise InvalidInput("agreement.doc_too_big", limit=max_bytes // (1024 * 1024))
    if not data.startswith(PDF_MAGIC):
        raise InvalidInput("agreement.doc_not_pdf")


def attach_document(session: Session, settings: Settings, agreement: Agreement, data: bytes,
                    filename: str, actor: str) -> str:
    """Store the signed PDF of ``agreement`` and return its key."""
    check_pdf(data, settings.agreement_max_bytes)
    key = hashlib.sha256(data).hexdigest() + ".pdf"
    path = documents_dir(settings) / key
    if not path.is_file():
        write_atomically(path, data)
    agreement.document_key = key
    agreement.document_name = Path(filename or "kesepakatan.pdf").name[:200]
    session.add(AuditLog(actor=actor, action="agreement.document", entity="agreement",
                         entity_id=str(agreement.id), detail={"key": key}))
    return key


def read_document(settings: Settings, agreement: Agreement) -> bytes | None:
    key = agreement.document_key
    if not key or not DOCUMENT_KEY.match(key):
        return None
    path = documents_dir(settings) / key
    return path.read_bytes() if path.is_file() else None


def days_left(agreement: Agreement, today: date) -> int:
    return (agreement.end_date - today).days


def remind_expiring(session: Session, now: datetime, days: int) -> list[int]:
    """Record one reminder for each agreement ending within ``days`` (not yet ended and not
    reminded before); returns their ids. Idempotent: ``reminded_at`` marks the ones done."""
    today = now.astimezone(LOCAL_TZ).date()
    due = session.scalars(
        select(Agreement).where(Agreement.reminded_at.is_(None),
                                Agreement.end_date >= today,
                                Agreement.end_date <= today + timedelta(days=days))
        .order_by(Agreement.id).with_for_update(skip_locked=True)).all()
    for agreement in due:
        agreement.reminded_at = now
        session.add(AuditLog(actor=ACTOR, action=REMINDER_ACTION, entity="agreement",
                             entity_id=str(agreement.id),
                             detail={"provider": agreement.provider_name,
                                     "end_date": agreement.end_date.isoformat(),
                                     "days_left": days_left(agreement, today)}))
    session.flush()
    return [a.id for a in due]


def open_reminders(session: Session, today: date) -> list[Agreement]:
    """Agreements reminded about that have not ended yet: the admins' notice list."""
    return list(session.scalars(
        select(Agreement).where(Agreement.reminded_at.is_not(None), Agreement.end_date >= today)
        .order_by(Agreement.end_date)))
