"""The monthly report by mail: the beat sends last month's report to REPORT_RECIPIENTS.

Why here and registered as a hook: the beat lives in :mod:`engine.delivery.beat`, a floor
*below* reporting, so delivery may not import this module. Instead this module registers
its job with :func:`engine.delivery.beat.register_job` when it is imported, and whoever
runs the beat imports it: the Celery tasks (``workers.tasks``) and the embedded demo's
pass (``engine.cli.demo_pipeline``), both above reporting.

Once per month, also with two beats at the same moment: a :class:`ReportDispatch` row
with a unique period is inserted and committed *before* anything is sent; the beat that
loses the insert sends nothing. When sending fails the row is removed again, so the next
beat tries again. The report is the PDF (the HTML file when Chromium is missing).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, parseaddr

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from channels.base import OutboundMessage
from engine.common.formatting import WITA
from engine.common.i18n import t
from engine.config import Settings
from engine.db import session_factory
from engine.delivery import beat
from engine.delivery.beat import JobReport
from engine.models import ReportDispatch, utcnow
from engine.outbox.adapters import email_adapter
from engine.reporting.html import period_title, render_report_html
from engine.reporting.pdf import PdfUnavailable, html_to_pdf
from engine.reporting.periods import Period, parse_period

log = logging.getLogger(__name__)
JOB_NAME = "monthly_report"
REPORT_BY = "campaign"


def recipients(settings: Settings) -> list[str]:
    """``REPORT_RECIPIENTS=a@x.id, b@y.id``: the addresses, blanks dropped (empty = off)."""
    return [a.strip() for a in settings.report_recipients.split(",") if "@" in a]


def previous_month(now: datetime) -> Period:
    """The last whole WITA month before ``now`` (the report sent on the 1st is November's)."""
    local = now.astimezone(WITA)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return parse_period(f"{year:04d}-{month:02d}")


def _claim(session: Session, period: Period, to: list[str]) -> ReportDispatch | None:
    """Insert this month's row; ``None`` when another beat (or an earlier one) has it."""
    row = ReportDispatch(period=period.label, recipients=", ".join(to))
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return row


def report_attachment(session: Session, period: Period) -> tuple[bytes, str, str]:
    """(bytes, subtype, extension): the PDF, or the HTML file when no PDF can be made."""
    document = render_report_html(session, period, REPORT_BY)
    try:
        return html_to_pdf(document), "pdf", "pdf"
    except PdfUnavailable as exc:
        log.warning("monthly report as HTML: %s", exc)
        return document.encode("utf-8"), "html", "html"


def build_mail(settings: Settings, to: list[str], period: Period, data: bytes,
               subtype: str, ext: str, send_id: int) -> OutboundMessage:
    """One mail to every recipient with the report attached."""
    name, sender = parseaddr(settings.mail_from)
    domain = sender.rsplit("@", 1)[-1]
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((name, sender))
    message["To"] = ", ".join(to)
    message["Subject"] = t("report.monthly.subject", period=period_title(period))
    message["Date"] = formatdate(localtime=False)
    message_id = f"<laporan-{period.label}.{secrets.token_hex(6)}@{domain}>"
    message["Message-ID"] = message_id
    message.set_content(t("report.monthly.body", period=period_title(period)))
    maintype = "application" if subtype == "pdf" else "text"
    message.add_attachment(data, maintype=maintype, subtype=subtype,
                           filename=f"laporan-{period.label}.{ext}")
    return OutboundMessage(delivery_id=send_id, recipient=to[0], payload=message.as_bytes(),
                           message_id=message_id, envelope_from=sender, account="email",
                           crlf_only=True)


def send_monthly_report(settings: Settings, now: datetime) -> JobReport:
    """The beat job: last month's report to REPORT_RECIPIENTS, once per month."""
    to = recipients(settings)
    if not to:
        return JobReport()
    period = previous_month(now)
    with session_factory(settings)() as session:
        row = _claim(session, period, to)
        if row is None:
            return JobReport()
        try:
            data, subtype, ext = report_attachment(session, period)
            mail = build_mail(settings, to, period, data, subtype, ext, row.id)
            results = email_adapter(settings).send_batch([mail])
            if not results or str(results[0].status) != "sent":
                raise RuntimeError(str(results[0].error if results else "no result"))
        except Exception:
            log.warning("monthly report %s not sent; the next beat tries again", period.label,
                        exc_info=True)
            session.rollback()
            session.execute(delete(ReportDispatch).where(ReportDispatch.id == row.id))
            session.commit()
            return JobReport()
        row.sent_at, row.format = utcnow(), ext
        session.commit()
    return JobReport(count=1)


beat.register_job(JOB_NAME, send_monthly_report)
