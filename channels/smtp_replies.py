"""SMTP replies and smtplib exceptions as channel errors (RFC 5321 §4.2.1): 2xx sent,
4xx transient, 530/534/535/538 the relay login (auth), other 5xx permanent for that
recipient.  ``raw`` keeps the stage, the code and the server's words."""

from __future__ import annotations

import re
import smtplib
from typing import Any

from channels.base import (
    AuthChannelError,
    ChannelError,
    PermanentChannelError,
    TransientChannelError,
)

AUTH_REPLY_CODES = frozenset({530, 534, 535, 538})
_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def error_for_reply(stage: str, code: int, reply: bytes | str) -> ChannelError:
    """Classify one SMTP reply by its code; ``raw`` keeps the server's words."""
    text = _text(reply).strip()
    raw: dict[str, Any] = {"stage": stage, "code": code, "reply": text}
    enhanced = _ENHANCED.match(text)
    if enhanced:
        raw["enhanced_code"] = enhanced.group(1)
    message = f"{code} {text}".strip()
    if code in AUTH_REPLY_CODES:
        return AuthChannelError(message, raw=raw)
    if 400 <= code < 500:
        return TransientChannelError(message, raw=raw)
    if 500 <= code < 600:
        return PermanentChannelError(message, raw=raw)
    return TransientChannelError(f"balasan SMTP tak terduga: {message}", raw=raw)


def classify_smtp_exception(exc: smtplib.SMTPException) -> ChannelError:
    """Map any smtplib exception to the channel error tree, by reply code where there is one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (-1, b""))
        return error_for_reply("rcpt", code, reply)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return error_for_reply("mail", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPDataError):
        return error_for_reply("data", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = _text(exc.smtp_error)
        raw = {"stage": "auth", "code": exc.smtp_code, "reply": text}
        return AuthChannelError(f"login SMTP ditolak: {exc.smtp_code} {text}", raw=raw)
    if isinstance(exc, smtplib.SMTPConnectError):
        err = error_for_reply("connect", exc.smtp_code, exc.smtp_error)
        return TransientChannelError(err.message, raw=err.raw, affects_account=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return error_for_reply("reply", exc.smtp_code, exc.smtp_error)
    return TransientChannelError(f"galat SMTP: {exc}", raw={"exception": type(exc).__name__})
