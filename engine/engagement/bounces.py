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

import logging
import mailbox
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.customers import consent
from engine.db import session_scope
from engine.engagement import bounce_verp, events, sisimai_bridge
from engine.engagement.bounce_parse import (
    MESSAGE_ID_RE,
    Analysis,
    AnalysisKind,
    NotAReport,
    Notice,
    NoticeKind,
    address,
    fallback_analysis,
    kind_of,
    one_line,
    parse_report,
    with_analyser,
)
from engine.engagement.bounce_reasons import decide_reason
from engine.engagement.bounce_verp import find_token
from engine.engagement.tracking import message_id_for
from engine.models import Customer, Delivery, SuppressionReason, utcnow

log = logging.getLogger(__name__)

AnalysisKindT = AnalysisKind
OutcomeAction = Literal["suppressed", "counted", "duplicate", "ignored"]
__all__ = ["MESSAGE_ID_RE", "Analysis", "NotAReport", "Notice", "NoticeKind", "Outcome",
           "analyse", "apply_notice", "handle_raw", "parse_report", "process_maildir"]

DEFAULT_SOFT_LIMIT = 3
SOFT_WINDOW = timedelta(days=30)
PROCESSED_FOLDER = "processed"
UNRECOGNISED_FOLDER = "unrecognised"


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


def configured_soft_window() -> timedelta:
    """The window soft bounces are counted in (``SOFT_BOUNCE_WINDOW_DAYS``, default 30)."""
    from engine.config import get_settings

    days = get_settings().soft_bounce_window_days
    return timedelta(days=days) if days > 0 else SOFT_WINDOW


# ----------------------------------------------------------------------------- analysing
# Sisimai's catch-all verdicts, which its diagnostic text often makes precise: "5.0.0
# No such user here" is an unknown user even though Sisimai 4 files it as "filtered".
_VAGUE = frozenset({"undefined", "onhold", "filtered", "securityerror", "expired",
                    "systemerror"})


def refine_reason(reason: str, status: str | None, diagnostic: str | None) -> str:
    """Sisimai's reason, unless it is vague and the diagnostic names a specific one."""
    if reason not in _VAGUE:
        return reason
    ours = decide_reason(None if (status or "").endswith(".0.900") or (status or "")
                         .endswith(".0.910") else status, diagnostic)
    return ours if ours not in ("undefined", "onhold") else reason


def _sisimai_analysis(raw: bytes) -> Analysis | None:
    """Sisimai's verdict, or None when it has nothing to say or failed."""
    try:
        records = sisimai_bridge.bridge().analyse(raw)
    except sisimai_bridge.BridgeError:
        log.warning("Sisimai failed; using the fallback parser", exc_info=True)
        return None
    if not records:
        return None
    reasons = {str(r.get("reason", "")) for r in records}
    if reasons <= {"vacation"}:
        return Analysis("auto-reply", analyser="sisimai")
    if reasons <= {"delivered"}:
        return Analysis("delivered", analyser="sisimai")
    verp = find_token(raw.decode("utf-8", "replace"))
    notices = []
    for record in records:
        reason = str(record.get("reason") or "undefined")
        if reason in ("delivered", "vacation"):
            continue
        bare_id = str(record.get("messageid") or "").strip("<>")
        message_id = f"<{bare_id}>" if bare_id else None
        recipient = address(str(record.get("recipient") or ""))
        if reason == "feedback":
            notices.append(Notice(kind="complaint", recipient=recipient, message_id=message_id,
                                  feedback_type=str(record.get("feedbacktype") or "abuse")
                                  .lower(), reason="feedback", analyser="sisimai",
                                  verp=verp))
            continue
        status = str(record.get("deliverystatus") or "") or None
        diagnostic = one_line(str(record.get("diagnosticcode") or ""))
        reason = refine_reason(reason, status, diagnostic)
        notices.append(Notice(kind=kind_of(reason), recipient=recipient,
                              message_id=message_id, status=status,
                              action=str(record.get("action") or "failed"),
                              diagnostic=diagnostic, reason=reason, analyser="sisimai",
                              verp=verp))
    kind: AnalysisKindT = "complaint" if all(n.kind == "complaint" for n in notices) \
        else "bounce"
    return Analysis(kind, tuple(notices), "sisimai")


def analyse(raw: bytes | str, *, use_sisimai: bool | None = None) -> Analysis:
    """What one mail is: standard DSN/ARF by our fast path, the rest by Sisimai when it
    is installed, else by our plain-text fallback.  Never raises on odd input."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    fast = fallback_analysis(data, text_layouts=False)
    if fast.kind != "not-a-bounce" and (fast.notices or fast.kind != "complaint"):
        return with_analyser(fast, "fallback")
    if sisimai_bridge.available() if use_sisimai is None else use_sisimai:
        found = _sisimai_analysis(data)
        if found is not None and found.notices:
            return with_analyser(found, "sisimai")
        if found is not None:
            return found
    return with_analyser(fallback_analysis(data), "fallback")


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


def delivery_for_verp(session: Session, token: tuple[int, str]) -> Delivery | None:
    """The delivery a VERP return path names, only when its MAC verifies."""
    delivery = session.get(Delivery, token[0])
    if delivery is None or not bounce_verp.verify(token[0], token[1], delivery.recipient):
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
    if notice.verp is not None:
        delivery = delivery_for_verp(session, notice.verp)
        if delivery is None:  # a forged or mangled return path: act on nothing
            return Outcome(notice.kind, "ignored", None, None, "token VERP tidak sah")
    else:
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
                         detail=f"{source}: {notice.reason or notice.status or 'hard'} "
                         f"{notice.status or ''} {notice.diagnostic or ''}".strip()[:500])
        return Outcome("hard", "suppressed" if event else "duplicate", address, delivery_id)
    event = events.record_bounce(session, delivery, facts, hard=False, at=now)
    if event is None:
        return Outcome("soft", "duplicate", address, delivery_id)
    limit = soft_limit or configured_soft_limit()
    window = configured_soft_window()
    count = events.soft_bounces_since(session, address, now - window)
    if count >= limit:
        consent.suppress(session, "email", address, SuppressionReason.bounced,
                         detail=f"{source}: {count} soft bounce dalam {window.days} hari "
                         f"({notice.reason or notice.status or 'soft'})")
        return Outcome("soft", "suppressed", address, delivery_id, f"{count}/{limit}")
    return Outcome("soft", "counted", address, delivery_id, f"{count}/{limit}")


def handle_raw(session: Session, raw: bytes | str, *, source: str = "dsn",
               now: datetime | None = None, soft_limit: int | None = None) -> list[Outcome]:
    """Analyse one mail and apply each notice (raises :class:`NotAReport` for mail that
    is no bounce or complaint; a delivered report gives no outcome)."""
    return [apply_notice(session, notice, source=source, now=now, soft_limit=soft_limit)
            for notice in notices_of(raw)]


def notices_of(raw: bytes | str) -> list[Notice]:
    """The notices :func:`analyse` finds; :class:`NotAReport` when it is no report."""
    analysis = analyse(raw)
    if analysis.kind in ("bounce", "complaint", "delivered"):
        return list(analysis.notices)
    raise NotAReport(f"bukan laporan pantulan maupun keluhan ({analysis.kind})")


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
    by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome, reason: str = "") -> None:
        self.outcomes.append(outcome)
        self.by_reason[reason or outcome.kind] += 1
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
            notices = notices_of(raw)
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
        for notice, outcome in zip(notices, outcomes, strict=True):
            report.add(outcome, notice.reason)
        _move(box, key, raw, processed)
    return report
