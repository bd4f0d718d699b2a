"""Our own bounce reader: RFC 3464 DSNs, RFC 5965 ARF, and plain-text layouts.

It is the fast path for standard DSNs (no Perl round trip) and the whole analyser when
Sisimai is not installed (the embedded default).  Beyond the textbook format it copes
with what real servers send: multipart/report with a broken boundary (the
delivery-status block is found in the raw text), ``Action: expired`` or no Action,
a pipe or program as Final-Recipient, several ARF reports in one mail, feedback loops
sent as text/plain, and free-text bounces (qmail, Exim, Gmail...) read heuristically.
Auto-replies are recognised first: a vacation notice is never a bounce.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr
from typing import Literal

from engine.engagement.bounce_reasons import decide_reason, effective_status, is_hard, status_of
from engine.engagement.bounce_verp import VERP_RE, find_token

NoticeKind = Literal["hard", "soft", "complaint"]
AnalysisKind = Literal["bounce", "complaint", "auto-reply", "delivered", "not-a-bounce"]

MESSAGE_ID_RE = re.compile(
    r"<umkm\.(\d{1,19})\.(\d{1,19})\.([0-9a-f]{16})@([A-Za-z0-9.-]{1,253})>")
_NOT_ADDR = r"[^@\s<>()\[\]\"',;:\x00-\x1f\x7f]+"
_EMAIL_RE = re.compile(rf"^{_NOT_ADDR}@{_NOT_ADDR}\.{_NOT_ADDR}$")
_ADDR_IN_TEXT = re.compile(rf"<?({_NOT_ADDR}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ABUSE_TYPES = ("abuse", "fraud", "virus", "other", "complaint")
_DSN_TEXT = re.compile(
    r"content-type:\s*message/delivery-status[^\n]*\n(?:[ \t]*[\w-]+:[^\n]*\n)*\s*\n"
    r"(.*?)(?=\n--|\ncontent-type:|\Z)", re.I | re.S)
_ORIGINAL_START = re.compile(
    r"^(-+ ?(this is a copy of|below this line is a copy|original message|"
    r"the header of the original|a copy of the original|forwarded message|"
    r"headers of the original|original message headers)|.*original message follows|"
    r"content-type: (message/rfc822|text/rfc822-headers)|return-path: <|received: from )",
    re.I | re.M)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mailerdaemon|"
                            r"mail.?delivery.?(subsystem|system)|bounce", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status )?notification|delivery fail|failure notice|"
    r"returned mail|mail delivery failed|could not be delivered|non.?deliver|"
    r"delivery has failed|not delivered|delivery status|rejected|warning: could not|"
    r"mail system error|delayed mail|delivery problem|отчет о доставке|недоставлен", re.I)
_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?\s*(reply|response|antwort)|auto:|out of (the )?"
                           r"office|vacation|balasan otomatis|sedang cuti|away from)", re.I)
_FEEDBACK_TEXT = re.compile(r"complaint|abuse report|feedback[- ]loop|marked as spam|"
                            r"reported (this|as) (message|spam)|spam report", re.I)


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
    reason: str = ""
    analyser: str = "fallback"
    verp: tuple[int, str] | None = None


@dataclass(frozen=True)
class Analysis:
    """What one mail is and who it is about (``umkm bounces check`` prints this)."""

    kind: AnalysisKind
    notices: tuple[Notice, ...] = ()
    analyser: str = "fallback"


def address(field_value: str | None) -> str | None:
    """``rfc822; Budi@Example.net`` or ``<budi@example.net>`` -> ``budi@example.net``;
    a pipe, a program or a non-mail address type gives None."""
    if not field_value:
        return None
    value = str(field_value).strip()
    if ";" in value:
        kind, value = value.split(";", 1)
        if kind.strip().lower() not in ("rfc822", ""):
            return None
    value = value.strip()
    if value.startswith(("|", "/")):
        return None
    found = parseaddr(value)[1].strip().lower()
    return found if _EMAIL_RE.match(found) and not VERP_RE.search(found) else None


def one_line(value: str | None, limit: int = 500) -> str | None:
    if not value:
        return None
    return " ".join(_CONTROL.sub(" ", str(value)).split())[:limit] or None


def kind_of(reason: str) -> NoticeKind:
    return "hard" if is_hard(reason) else "soft"


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    inner = part.get_payload()
    return inner if isinstance(inner, str) else ""


def _split_blocks(text: str) -> list[Message]:
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [HeaderParser().parsestr(chunk.strip() + "\n") for chunk in chunks if chunk.strip()]


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return _split_blocks(_decoded(part))


def original_message_id(message: Message, raw_text: str) -> str | None:
    """Our Message-ID from the returned original, else anywhere in the mail."""
    found = MESSAGE_ID_RE.search(raw_text)
    return found.group(0) if found else None


def _dsn_recipients(blocks: list[Message], message_id: str | None,
                    verp: tuple[int, str] | None) -> list[Notice]:
    notices = []
    for block in blocks:
        if not any(block.get(h) for h in ("Final-Recipient", "Original-Recipient", "Action")):
            continue
        status_field = status_of(block.get("Status"))
        diagnostic = one_line(block.get("Diagnostic-Code"))
        action = str(block.get("Action", "")).strip().lower().split()[0:1]
        act = action[0] if action else ""
        if act in ("delivered", "relayed", "expanded"):
            continue
        if not act:
            if not status_field or status_field.startswith("2"):
                continue
            act = "failed" if status_field.startswith("5") else "delayed"
        status = effective_status(status_field, diagnostic)
        recipient = (address(block.get("Original-Recipient"))
                     or address(block.get("Final-Recipient"))
                     or address(block.get("X-Actual-Recipient")))
        if recipient is None and verp is None:
            continue
        reason = decide_reason(status, diagnostic, act)
        notices.append(Notice(kind=kind_of(reason), recipient=recipient,
                              message_id=message_id, status=status, action=act,
                              diagnostic=diagnostic, reason=reason, verp=verp))
    return notices


def _dsn_analysis(message: Message, raw_text: str,
                  verp: tuple[int, str] | None) -> Analysis | None:
    blocks: list[Message] = []
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status",
                                       "message/global-delivery-status"):
            blocks += _blocks(part)
    if not blocks:  # a broken boundary hides the part from the MIME parser
        for found in _DSN_TEXT.finditer(raw_text.replace("\r\n", "\n")):
            blocks += _split_blocks(found.group(1))
    if not blocks:
        return None
    notices = _dsn_recipients(blocks, original_message_id(message, raw_text), verp)
    if notices:
        return Analysis("bounce", tuple(notices))
    if any(str(b.get("Action", "")).strip().lower() in ("delivered", "relayed", "expanded")
           for b in blocks):
        return Analysis("delivered")
    return None


def _feedback_blocks(message: Message) -> list[Message]:
    found = []
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            found.append(next(iter(_blocks(part)), Message()))
    return found


def _original_to(message: Message) -> str | None:
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(first, Message) and first.get("To"):
                return address(str(first["To"]))
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser().parsestr(_decoded(part))
            if headers.get("To"):
                return address(str(headers["To"]))
    return None


def _complaint(block: Message, message: Message, raw_text: str,
               verp: tuple[int, str] | None) -> Notice | None:
    feedback_type = str(block.get("Feedback-Type", "abuse")).strip().lower()
    if feedback_type not in _ABUSE_TYPES:
        return None  # not-spam, auth-failure: no complaint from the recipient
    recipient = address(block.get("Original-Rcpt-To")) or (
        None if verp else _original_to(message))
    if recipient is None and verp is None:
        return None
    return Notice(kind="complaint", recipient=recipient,
                  message_id=original_message_id(message, raw_text),
                  feedback_type="abuse" if feedback_type == "complaint" else feedback_type,
                  reason="feedback", verp=verp)


def _arf_analysis(message: Message, raw_text: str,
                  verp: tuple[int, str] | None) -> Analysis | None:
    blocks = _feedback_blocks(message)
    if not blocks:
        body = "\n".join(_decoded(p) for p in message.walk()
                         if p.get_content_type() == "text/plain")
        subject = str(message.get("Subject", ""))
        if "feedback-type:" in body.lower():
            blocks = [b for b in _split_blocks(body) if b.get("Feedback-Type")]
        elif _FEEDBACK_TEXT.search(subject) and (_FEEDBACK_TEXT.search(body)):
            blocks = [Message()]
    if not blocks:
        return None
    notices = [n for b in blocks if (n := _complaint(b, message, raw_text, verp))]
    return Analysis("complaint", tuple(notices)) if notices else Analysis("not-a-bounce")


def is_auto_reply(message: Message) -> bool:
    """Vacation and out-of-office answers (RFC 3834 headers or their usual subjects)."""
    if any(p.get_content_type() in ("message/delivery-status", "message/feedback-report")
           for p in message.walk()):
        return False
    sender = str(message.get("From", ""))
    if _BOUNCE_SENDER.search(sender):
        return False
    auto = str(message.get("Auto-Submitted", "")).lower().startswith("auto-replied")
    flagged = any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Vacation"))
    precedence = str(message.get("Precedence", "")).lower() == "auto_reply"
    return auto or flagged or precedence or bool(_AUTO_SUBJECT.search(
        str(message.get("Subject", ""))))


def _plain_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            break
        if part.get_content_type() in ("text/plain", "text/html"):
            text = _decoded(part)
            if part.get_content_type() == "text/html":
                text = re.sub(r"<[^>]+>", " ", text)
            texts.append(text)
    body = "\n".join(texts)
    cut = _ORIGINAL_START.search(body)
    return body[:cut.start()] if cut else body


def _text_analysis(message: Message, raw_text: str, verp: tuple[int, str] | None,
                   ours: set[str]) -> Analysis | None:
    """Free-text bounces: the addresses named before the returned original."""
    subject, sender = str(message.get("Subject", "")), str(message.get("From", ""))
    if not (_BOUNCE_SENDER.search(sender) or _BOUNCE_SUBJECT.search(subject)):
        return None
    body = _plain_text(message)
    found: dict[str, str] = {}
    for line_no, line in enumerate(lines := body.splitlines()):
        for candidate in _ADDR_IN_TEXT.findall(line):
            addr = address(candidate)
            if addr and addr not in ours and not _BOUNCE_SENDER.search(addr):
                around = " ".join(lines[line_no:line_no + 4])
                found.setdefault(addr, around)
    if not found and verp is None:
        return None
    status = status_of(body)
    notices = []
    for recipient, around in (found.items() or [(None, body)]):
        diagnostic = one_line(around if status_of(around) or len(found) > 1 else body)
        code = effective_status(status_of(around) or status, diagnostic)
        temporary = bool(code and code.startswith("4")) or bool(
            re.search(r"delayed|will (keep|continue) (trying|to try)|still trying|"
                      r"not yet been delivered|retry", body, re.I))
        act = "delayed" if temporary else "failed"
        reason = decide_reason(code, diagnostic or body, act)
        notices.append(Notice(kind=kind_of(reason), recipient=recipient,
                              message_id=original_message_id(message, raw_text), status=code,
                              action=act, diagnostic=diagnostic, reason=reason, verp=verp))
    return Analysis("bounce", tuple(notices))


def parse_message(raw: bytes | str) -> tuple[Message, str]:
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    return email.message_from_bytes(data), data.decode("utf-8", "replace")


def fallback_analysis(raw: bytes | str, *, text_layouts: bool = True) -> Analysis:
    """Our own verdict on one mail; ``text_layouts=False`` is the fast path (standard
    DSN/ARF only) tried before Sisimai."""
    message, raw_text = parse_message(raw)
    verp = find_token(raw_text)
    if is_auto_reply(message):
        return Analysis("auto-reply")
    for reader in (_dsn_analysis, _arf_analysis):
        found = reader(message, raw_text, verp)
        if found is not None:
            return found
    if text_layouts:
        ours = {a for a in (address(str(message.get("To", ""))),) if a}
        found = _text_analysis(message, raw_text, verp, ours)
        if found is not None:
            return found
    return Analysis("not-a-bounce")


def with_analyser(analysis: Analysis, analyser: str) -> Analysis:
    """Label who decided: ``verp`` when only the return path named the recipient."""
    notices = tuple(replace(n, analyser="verp" if n.recipient is None and n.verp
                            else analyser) for n in analysis.notices)
    label = notices[0].analyser if notices else analyser
    return Analysis(analysis.kind, notices, label)


def parse_report(raw: bytes | str) -> list[Notice]:
    """The notices of one DSN or ARF mail (fallback parser); :class:`NotAReport` for
    anything else.  Delivery reports give an empty list."""
    analysis = fallback_analysis(raw)
    if analysis.kind in ("bounce", "complaint"):
        return list(analysis.notices)
    if analysis.kind == "delivered":
        return []
    raise NotAReport("bukan laporan pengiriman (DSN) maupun laporan keluhan (ARF)")
