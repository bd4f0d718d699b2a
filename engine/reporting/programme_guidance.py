"""Pasal 9 figures for the monthly report: requests, sessions and the median time to a
first response, per topic and per kecamatan.

Why the median: one request left waiting over a holiday would drag a mean for months;
the median says how long a typical UMKM waits. The first response is the earlier of the
assignment of a pendamping and the first logged session (a pendamping may be named
after already calling the owner). Requests without any response yet are counted as
requests and left out of the median (``waiting`` says how many). A period selects
requests by the time they were made.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Business, GuidanceRequest, GuidanceSession, GuidanceTopic, aware
from engine.umkm import wilayah

__all__ = ["GuidanceRow", "GuidanceSummary", "guidance_summary"]


@dataclass(frozen=True)
class GuidanceRow:
    key: str
    label: str
    requests: int
    sessions: int
    waiting: int
    median_response_hours: float | None


@dataclass
class GuidanceSummary:
    by_topic: list[GuidanceRow] = field(default_factory=list)
    by_kecamatan: list[GuidanceRow] = field(default_factory=list)


@dataclass
class _Facts:
    topic: str
    kecamatan: str
    sessions: int
    response_hours: float | None


def _facts(session: Session, start: datetime | None, end: datetime | None) -> list[_Facts]:
    firsts = (select(GuidanceSession.request_id, func.count().label("n"),
                     func.min(GuidanceSession.created_at).label("first"))
              .group_by(GuidanceSession.request_id).subquery())
    query = (select(GuidanceRequest.topic, Business.kecamatan_code, GuidanceRequest.created_at,
                    GuidanceRequest.assigned_at, firsts.c.n, firsts.c.first)
             .join(Business, Business.id == GuidanceRequest.business_id)
             .outerjoin(firsts, firsts.c.request_id == GuidanceRequest.id))
    if start is not None:
        query = query.where(GuidanceRequest.created_at >= start)
    if end is not None:
        query = query.where(GuidanceRequest.created_at < end)
    out = []
    for topic, code, created, assigned, count, first in session.execute(query).all():
        answers = [a for a in (aware(assigned), aware(first)) if a is not None]
        hours = ((min(answers) - aware(created)).total_seconds() / 3600  # type: ignore[operator]
                 if answers else None)
        out.append(_Facts(str(topic), code, int(count or 0), hours))
    return out


def _row(key: str, label: str, facts: list[_Facts]) -> GuidanceRow:
    hours = [f.response_hours for f in facts if f.response_hours is not None]
    return GuidanceRow(key, label, len(facts), sum(f.sessions for f in facts),
                       len(facts) - len(hours), round(median(hours), 1) if hours else None)


def guidance_summary(session: Session, start: datetime | None = None,
                     end: datetime | None = None) -> GuidanceSummary:
    """Every topic of Pasal 9 ayat (1) is listed, even with no request (a gap is news)."""
    facts = _facts(session, start, end)
    by_topic: dict[str, list[_Facts]] = defaultdict(list)
    by_kec: dict[str, list[_Facts]] = defaultdict(list)
    for fact in facts:
        by_topic[fact.topic].append(fact)
        by_kec[fact.kecamatan].append(fact)
    summary = GuidanceSummary()
    summary.by_topic = [_row(topic.value, topic.value, by_topic.get(topic.value, []))
                        for topic in GuidanceTopic]
    summary.by_kecamatan = sorted(
        (_row(code, wilayah.kecamatan_name(code) or code, rows) for code, rows in by_kec.items()),
        key=lambda r: (-r.requests, r.label))
    return summary
