"""Report periods: whole calendar months in the programme's time zone (WITA).

``2026-12`` (a month), ``2026`` (a year) or ``2026-10..2026-12`` (months, inclusive).
Why months and a fixed zone: Pasal 15 reporting is monthly and the Dinas reads dates in
WITA (``Asia/Makassar``), so a message sent at 23:30 WITA on 30 November belongs to
November even though it is already December in some other zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from engine.common.errors import BadRequest

DEFAULT_TZ = "Asia/Makassar"


class ReportError(BadRequest, ValueError):
    """A report request that cannot be answered (bad period, grouping or window)."""


@dataclass(frozen=True)
class Period:
    """Whole calendar months in the programme's time zone; ``end`` is exclusive."""

    label: str
    first: date  # first day of the first month (local)
    last: date  # first day of the last month (local)
    tz: str = DEFAULT_TZ

    @property
    def start(self) -> datetime:
        return _local_midnight_utc(self.first, self.tz)

    @property
    def end(self) -> datetime:
        return _local_midnight_utc(_add_months(self.last, 1), self.tz)

    @property
    def months(self) -> list[str]:
        """``["2026-10", "2026-11", "2026-12"]``: the month keys this period covers."""
        keys: list[str] = []
        month = self.first
        while month <= self.last:
            keys.append(f"{month.year:04d}-{month.month:02d}")
            month = _add_months(month, 1)
        return keys

    def extended_back(self, months: int) -> Period:
        """The same end, starting at least ``months`` months earlier (for trend charts)."""
        first = min(self.first, _add_months(self.last, -(months - 1)))
        return Period(f"{first:%Y-%m}..{self.last:%Y-%m}", first, self.last, self.tz)


_MONTH = r"(\d{4})-(\d{1,2})"
_PERIOD_RE = re.compile(rf"^(?:(\d{{4}})|{_MONTH}|{_MONTH}\.\.{_MONTH})$")


def parse_period(text: str, tz: str = DEFAULT_TZ) -> Period:
    """``2026-12`` (a month), ``2026`` (a year) or ``2026-10..2026-12`` (months, inclusive)."""
    match = _PERIOD_RE.match(text.strip())
    if match is None:
        raise ReportError("report.bad_period", text=text)
    year, m_year, m_month, a_year, a_month, b_year, b_month = match.groups()
    try:
        if year:
            first, last = date(int(year), 1, 1), date(int(year), 12, 1)
        elif m_year:
            first = last = date(int(m_year), int(m_month), 1)
        else:
            first, last = date(int(a_year), int(a_month), 1), date(int(b_year), int(b_month), 1)
    except ValueError as exc:
        raise ReportError("report.bad_period", text=text) from exc
    if first > last:
        raise ReportError("report.bad_range", text=text)
    return Period(text.strip(), first, last, tz)


PROGRAMME_START = date(2025, 1, 1)  # Perbup TTS 17/2025: no fact is older


def all_time(now: datetime | None = None, tz: str = DEFAULT_TZ) -> Period:
    """Every month from the programme's start to the current WITA month (run figures)."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    last = date(today.year, today.month, 1)
    return Period("semua", min(PROGRAMME_START, last), last, tz)


def recent_months(months: int, now: datetime | None = None, tz: str = DEFAULT_TZ) -> Period:
    """The last ``months`` whole WITA months up to the current one (UMKM page trends)."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    last = date(today.year, today.month, 1)
    first = _add_months(last, -(months - 1))
    return Period(f"{first:%Y-%m}..{last:%Y-%m}", first, last, tz)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _local_midnight_utc(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_now_date(tz: str = DEFAULT_TZ) -> date:
    """Today's date in the programme's time zone (what the Dinas calls "today")."""
    return datetime.now(ZoneInfo(tz)).date()
