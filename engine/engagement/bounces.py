"""Bounces (RFC 3464 DSN) and complaints (RFC 5965 ARF): parse, attribute, suppress.

Where notices come from: the bounce mailbox (a Maildir the MTA delivers to; CLI
``umkm bounces process`` and the beat task) and the HTTP webhook of a relay
(:mod:`web.bounce_routes`).  Both end in :func:`apply_notice`.

Attribution: our Message-ID is ``<umkm.RUN.DELIVERY.HASH@domain>``
(:func:`engine.engagement.tracking.message_id_for`); the returned original (``message/rfc822`` or
``text/rfc822-headers``) carries it, so a notice names the exact delivery, its run and
business.  The hash is recomputed, so a made-up id matching the pattern is not trusted.

Policy: a hard bounce (Action ``failed`` with a 5.x.x status) suppresses the address at
once; soft bounces (4.x.x, ``delayed``, and 5.2.2 "mailbox full", which clears by
itself) suppress after :data:`DEFAULT_SOFT_LIMIT` different deliveries bounced within
:data:`SOFT_WINDOW`; a complaint suppresses at once and withdraws marketing consent
(the recipient said "this is spam": UU 27/2022 objection).  Everything is idempotent
per delivery, so reading the same notice twice changes nothing.
"""

from __future__ import annotations

import email
import logging
import mailbox
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.customers import consent
from engine.db import session_scope
from engine.engagement import events
from engine.engagement.tracking import message_id_for
from engine.models import Customer, Delivery, SuppressionReason, utcnow

log = logging.getLogger(__name__)

NoticeKind = Literal["hard", "soft", "complaint"]
OutcomeAction = Literal["suppressed", "counted", "duplicate", "ignored"]

DEFAULT_SOFT_LIMIT = 3
SOFT_WINDOW = timedelta(days=30)
PROCESSED_FOLDER = "processed"
UNRECOGNISED_FOLDER = "unrecognised"
# 5.2.2 mailbox full: permanent by its class, temporary in practice (ESPs agree).
_SOFT_PERMANENT = {"5.2.2"}

MESSAGE_ID_RE = re.compile(
    r"<umkm\.(\d{1,19})\.(\d{1,19})\.([0-9a-f]{16})@([A-Za-z0-9.-]{1,253})>")
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_NOT_ADDR = r"[^@\s<>\x00-\x1f\x7f]+"
_EMAIL_RE = re.compile(rf"^{_NOT_ADDR}@{_NOT_ADDR}\.{_NOT_ADDR}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class NotAReport(ValueError):
    """A mail that is neither a delivery-status nor a feedback report (auto-reply, spam)."""


@dataclass(frozen=True)
class Notice:
    """One recipient's bounce or one complaint, as the report states it."""

    kind: NoticeKind
    recipient: str | None
    message_id: str | None = None
    status: str | None = None
    action: str | None = None
    diagnostic: str | None = None
    feedback_type: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What :func:`apply_notice` did with one notice."""

    kind: NoticeKind
    action: OutcomeAction
    address: str | None
    delivery_id: int | None
    reason: str = ""


def configured_soft_limit() -> int:
    """Soft bounces before suppression (setting ``UMKM_SOFT_BOUNCE_LIMIT``, default 3)."""
    from engine.config import get_settings

    limit = get_settings().soft_bounce_limit
    return limit if limit > 0 else DEFAULT_SOFT_LIMIT


# ----------------------------------------------------------------------------- parsing
def _address(field_value: str | None) -> str | None:
    """``rfc822; Budi@Example.net`` or ``<budi@example.net>`` -> ``budi@example.net``."""
    if not field_value:
        return None
    value = str(field_value).strip()
    if ";" in value:
        kind, value = value.split(";", 1)
        if kind.strip().lower() not in ("rfc822", ""):
            return None
    address = parseaddr(value.strip())[1].strip().lower()
    return address if _EMAIL_RE.match(address) else None


def _status(value: str | None) -> str | None:
    found = _STATUS_RE.search(str(value or ""))
    return ".".join(found.groups()) if found else None


def _one_line(value: str | None, limit: int = 500) -> str | None:
    if not value:
        return None
    return " ".join(_CONTROL.sub(" ", str(value)).split())[:limit] or None


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        decoded = part.get_payload(decode=True)
        text = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else text
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [HeaderParser().parsestr(chunk) for chunk in chunks if chunk.strip()]


def _original_message_id(report: Message, raw_text: str) -> str | None:
    """Our Message-ID from the returned original, else anywhere in the report."""
    for part in report.walk():
        ctype = part.get_content_type()
        headers: Message | None = None
        if ctype == "message/rfc822":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            headers = first if isinstance(first, Message) else None
        elif ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            headers = HeaderParser().parsestr(text)
        if headers is not None and headers.get("Message-ID"):
            found = MESSAGE_ID_RE.search(str(headers["Message-ID"]))
            if found:
                return found.group(0)
    found = MESSAGE_ID_RE.search(raw_text)
    return found.group(0) if found else None


def _classify(action: str, status: str | None) -> NoticeKind | None:
    if action == "delayed":
        return "soft"
    if action != "failed":
        return None  # delivered, relayed, expanded: not a bounce
    if status is None or (status.startswith("5.") and status not in _SOFT_PERMANENT):
        return "hard"
    return "soft"


def _dsn_notices(report: Message, raw_text: str) -> list[Notice]:
    part = next((p for p in report.walk()
                 if p.get_content_type() == "message/delivery-status"), None)
    if part is None:
        raise NotAReport("laporan tanpa bagian message/delivery-status")
    message_id = _original_message_id(report, raw_text)
    notices = []
    for block in _blocks(part)[1:]:  # the first block is per-message
        action = str(block.get("Action", "")).strip().lower()
        status = _status(block.get("Status"))
        kind = _classify(action, status)
        if kind is None:
            continue
        recipient = _address(block.get("Original-Recipient")) or _address(
            block.get("Final-Recipient"))
        notices.append(Notice(kind=kind, recipient=recipient, message_id=message_id,
                              status=status, action=action,
                              diagnostic=_one_line(block.get("Diagnostic-Code"))))
    return notices


def _arf_notices(report: Message, raw_text: str) -> list[Notice]:
    part = next((p for p in report.walk()
                 if p.get_content_type() == "message/feedback-report"), None)
    if part is None:
        raise NotAReport("laporan tanpa bagian message/feedback-report")
    fields = _blocks(part)
    block = fields[0] if fields else Message()
    feedback_type = str(block.get("Feedback-Type", "abuse")).strip().lower()
    if feedback_type not in ("abuse", "fraud", "virus", "other"):
        return []  # not-spam, auth-failure reports: no complaint from the recipient
    recipient = _address(block.get("Original-Rcpt-To"))
    return [Notice(kind="complaint", recipient=recipient,
                   message_id=_original_message_id(report, raw_text),
                   feedback_type=feedback_type)]


def parse_report(raw: bytes | str) -> list[Notice]:
    """The notices of one DSN or ARF mail; :class:`NotAReport` for anything else.

    A DSN may list several recipients, each its own notice; successful delivery
    reports give an empty list.
    """
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    message = email.message_from_bytes(data)
    raw_text = data.decode("utf-8", "replace")
    for part in message.walk():
        if part.get_content_type() != "multipart/report":
            continue
        report_type = str(part.get_param("report-type") or "").lower()
        if report_type == "delivery-status":
            return _dsn_notices(part, raw_text)
        if report_type == "feedback-report":
            return _arf_notices(part, raw_text)
    raise NotAReport("bukan laporan pengiriman (DSN) maupun laporan keluhan (ARF)")


# ----------------------------------------------------------------------------- applying
def delivery_for_message_id(session: Session, message_id: str | None) -> Delivery | None:
    """Our delivery behind a Message-ID, only when the id is genuinely ours."""
    found = MESSAGE_ID_RE.search(message_id or "")
    if not found:
        return None
    run_id, delivery_id, _, domain = found.groups()
    expected = message_id_for(int(delivery_id), int(run_id), domain)
    if expected != found.group(0):
        return None
    delivery = session.get(Delivery, int(delivery_id))
    if delivery is None or delivery.run_id != int(run_id):
        return None
    if delivery.message_id and delivery.message_id != expected:
        return None
    return delivery


def _known_address(session: Session, address: str) -> bool:
    """Only addresses we mail are acted on: a forged notice cannot block strangers."""
    lowered = address.lower()
    customer = session.scalar(
        select(Customer.id).where(func.lower(Customer.email) == lowered).limit(1))
    if customer is not None:
        return True
    return session.scalar(
        select(Delivery.id).where(func.lower(Delivery.recipient) == lowered,
                                  Delivery.channel == "email").limit(1)) is not None


def _complaint_withdraws_consent(session: Session, address: str, source: str) -> None:
    customer = session.scalars(
        select(Customer).where(func.lower(Customer.email) == address.lower()).limit(1)
    ).first()
    if customer is not None and consent.has_consent(session, customer.id, "email"):
        consent.record_consent(session, customer, "email", "marketing", False, source)


def apply_notice(session: Session, notice: Notice, *, source: str = "dsn",
                 now: datetime | None = None, soft_limit: int | None = None) -> Outcome:
    """Record the event and suppress as the policy says (see the module docstring)."""
    now = now or utcnow()
    delivery = delivery_for_message_id(session, notice.message_id)
    address = (delivery.recipient if delivery is not None else notice.recipient) or ""
    delivery_id = delivery.id if delivery is not None else None
    if not address:
        return Outcome(notice.kind, "ignored", None, delivery_id, "tanpa alamat penerima")
    address = address.lower()
    if delivery is None and not _known_address(session, address):
        return Outcome(notice.kind, "ignored", address, None, "alamat tidak dikenal")
    facts = events.BounceFacts(address=address, status=notice.status,
                               diagnostic=notice.diagnostic, source=source,
                               feedback_type=notice.feedback_type)
    if notice.kind == "complaint":
        event = events.record_complaint(session, delivery, facts, at=now)
        consent.suppress(session, "email", address, SuppressionReason.complained,
                         detail=f"{source}: {notice.feedback_type or 'abuse'}")
        _complaint_withdraws_consent(session, address, f"complaint:{source}")
        return Outcome("complaint", "suppressed" if event else "duplicate", address, delivery_id)
    if notice.kind == "hard":
        event = events.record_bounce(session, delivery, facts, hard=True, at=now)
        consent.suppress(session, "email", address, SuppressionReason.bounced,
                         detail=f"{source}: {notice.status or 'hard'} {notice.diagnostic or ''}"
                         .strip())
        return Outcome("hard", "suppressed" if event else "duplicate", address, delivery_id)
    event = events.record_bounce(session, delivery, facts, hard=False, at=now)
    if event is None:
        return Outcome("soft", "duplicate", address, delivery_id)
    limit = soft_limit or configured_soft_limit()
    count = events.soft_bounces_since(session, address, now - SOFT_WINDOW)
    if count >= limit:
        consent.suppress(session, "email", address, SuppressionReason.bounced,
                         detail=f"{source}: {count} soft bounce dalam 30 hari")
        return Outcome("soft", "suppressed", address, delivery_id, f"{count}/{limit}")
    return Outcome("soft", "counted", address, delivery_id, f"{count}/{limit}")


def handle_raw(session: Session, raw: bytes | str, *, source: str = "dsn",
               now: datetime | None = None, soft_limit: int | None = None) -> list[Outcome]:
    """Parse one report and apply each notice (raises :class:`NotAReport`)."""
    return [apply_notice(session, notice, source=source, now=now, soft_limit=soft_limit)
            for notice in parse_report(raw)]


# ----------------------------------------------------------------------------- Maildir
@dataclass
class MaildirReport:
    """Counts of one pass over the bounce mailbox (for the CLI and the beat log)."""

    messages: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    suppressed: int = 0
    duplicates: int = 0
    ignored: int = 0
    unrecognised: int = 0
    errors: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.kind == "hard":
            self.hard += 1
        elif outcome.kind == "soft":
            self.soft += 1
        else:
            self.complaints += 1
        if outcome.action == "suppressed":
            self.suppressed += 1
        elif outcome.action == "duplicate":
            self.duplicates += 1
        elif outcome.action == "ignored":
            self.ignored += 1


def _folder(box: mailbox.Maildir, name: str) -> mailbox.Maildir:
    if name in box.list_folders():
        return box.get_folder(name)
    return box.add_folder(name)


def _move(box: mailbox.Maildir, key: str, raw: bytes, target: mailbox.Maildir) -> None:
    """Into ``target``'s cur/ flagged Seen, then out of the inbox (a crash in between
    leaves a copy that a second pass handles idempotently)."""
    message = mailbox.MaildirMessage(raw)
    message.set_subdir("cur")
    message.add_flag("S")
    target.add(message)
    box.discard(key)


def process_maildir(path: str | Path, settings: Settings | None = None, *,
                    soft_limit: int | None = None, now: datetime | None = None,
                    ) -> MaildirReport:
    """Handle every mail in the Maildir's inbox (new/ and cur/) once.

    Handled reports move to the ``processed`` folder and other mail to
    ``unrecognised`` (for a person to read), so a second pass finds nothing to do.  A
    mail whose database work fails stays in place and is retried next time.
    """
    root = Path(path)
    if not (root / "new").is_dir() or not (root / "cur").is_dir():
        raise FileNotFoundError(f"bukan folder Maildir: {root}")
    box = mailbox.Maildir(str(root), factory=None, create=False)
    processed = _folder(box, PROCESSED_FOLDER)
    unrecognised = _folder(box, UNRECOGNISED_FOLDER)
    report = MaildirReport()
    for key in sorted(box.iterkeys()):
        try:
            raw = box.get_bytes(key)
        except KeyError:  # taken by a concurrent pass
            continue
        report.messages += 1
        try:
            notices = parse_report(raw)
        except NotAReport:
            report.unrecognised += 1
            _move(box, key, raw, unrecognised)
            continue
        try:
            with session_scope(settings) as session:
                outcomes = [apply_notice(session, n, source="maildir", now=now,
                                         soft_limit=soft_limit) for n in notices]
        except Exception:
            log.exception("bounce %s could not be applied; left in the inbox", key)
            report.errors += 1
            continue
        for outcome in outcomes:
            report.add(outcome)
        _move(box, key, raw, processed)
    return report
