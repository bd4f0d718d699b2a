"""What the DMARC aggregate reports say, per day and sending IP (``umkm dmarc report``,
``/dinas/dmarc``).

Per (UTC day of the report's period, source IP): the messages receivers saw, the share
whose SPF and DKIM were *aligned* with the From domain (``policy_evaluated``, what DMARC
decides on), and whether the IP is one of the relay's (:mod:`engine.delivery.dmarc_sources`).
An unknown source with volume is the line to act on: a forgotten sender, or spoofing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.delivery.dmarc_sources import is_known, known_networks
from engine.models import DmarcRecord, DmarcReport, aware, utcnow


@dataclass(frozen=True)
class SourceDay:
    """One line of the summary."""

    day: date
    source_ip: str
    volume: int
    spf_pass: int
    dkim_pass: int
    known: bool

    @property
    def spf_rate(self) -> float:
        return self.spf_pass / self.volume if self.volume else 0.0

    @property
    def dkim_rate(self) -> float:
        return self.dkim_pass / self.volume if self.volume else 0.0

    @property
    def dmarc_pass(self) -> bool:
        """Every message aligned on SPF or DKIM is what DMARC needs; shown as a flag."""
        return self.volume > 0 and (self.spf_pass == self.volume or self.dkim_pass == self.volume)


@dataclass(frozen=True)
class Summary:
    lines: list[SourceDay]
    reports: int

    @property
    def unknown(self) -> list[SourceDay]:
        return [line for line in self.lines if not line.known and line.volume]

    @property
    def volume(self) -> int:
        return sum(line.volume for line in self.lines)


def summarize(session: Session, settings: Settings, days: int = 30,
              now: datetime | None = None) -> Summary:
    """Reports whose period began within the last ``days`` UTC days (``days=1``: yesterday's
    reports, which arrive today, and today's), newest first."""
    since = datetime.combine((now or utcnow()).date() - timedelta(days=days), time(), UTC)
    spf = func.sum(case((DmarcRecord.spf_aligned.is_(True), DmarcRecord.count), else_=0))
    dkim = func.sum(case((DmarcRecord.dkim_aligned.is_(True), DmarcRecord.count), else_=0))
    query = (select(DmarcReport.date_begin, DmarcRecord.source_ip, func.sum(DmarcRecord.count),
                    spf, dkim)
             .join(DmarcReport, DmarcReport.id == DmarcRecord.report_id)
             .where(DmarcReport.date_begin >= since)
             .group_by(DmarcReport.date_begin, DmarcRecord.source_ip))
    networks = known_networks(settings)
    totals: dict[tuple[date, str], list[int]] = {}
    for begin, ip, volume, spf_n, dkim_n in session.execute(query).tuples():
        day = (aware(begin) or begin).date()  # reports of one day share it; summed per day
        acc = totals.setdefault((day, ip), [0, 0, 0])
        acc[0] += int(volume or 0)
        acc[1] += int(spf_n or 0)
        acc[2] += int(dkim_n or 0)
    lines = [SourceDay(day, ip, v, s, d, is_known(ip, networks))
             for (day, ip), (v, s, d) in totals.items()]
    lines.sort(key=lambda line: (-line.day.toordinal(), -line.volume, line.source_ip))
    reports = int(session.scalar(select(func.count()).select_from(DmarcReport)
                                 .where(DmarcReport.date_begin >= since)) or 0)
    return Summary(lines, reports)
