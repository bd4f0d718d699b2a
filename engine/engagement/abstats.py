"""A/B results of one campaign run: per variant, with a two-proportion z-test (issue 19).

Why on the engagement floor: the beat decides an A/B winner rule's variant
(:mod:`engine.delivery.ab_winner`) on the same figures the report shows
(:mod:`engine.reporting.abtest` re-exports this module), so both sit below delivery.

Per variant (``Delivery.variant``, written when the mail is sent): messages **sent**,
**unique opens** and **unique clicks** (recipients with at least one human event, as in
the report's email funnel, :mod:`engine.reporting.sources`) and **leads** (human
WhatsApp order-button presses from that variant's mails).  Each variant after the first
is compared with the first on the click rate (unique clicks / sent) with the pooled
two-proportion z-test; the two-sided p-value comes from the normal distribution through
``math.erf``, so no statistics package is needed.  Why clicks by default: opens are
inflated by mail-privacy proxies, clicks are what the campaign is for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from engine.models import Delivery, DeliveryStatus, EngagementEvent

SIGNIFICANCE = 0.05  # two-sided


@dataclass(frozen=True)
class ZTest:
    """``z`` of proportion b minus proportion a, and its two-sided p-value."""

    z: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


def two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> ZTest | None:
    """Pooled two-proportion z-test; ``None`` when it is undefined (an empty group, or
    no variance at all: every or no recipient of both groups clicked)."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (hits_a + hits_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return None
    z = (hits_b / n_b - hits_a / n_a) / math.sqrt(variance)
    p_value = 1 - math.erf(abs(z) / math.sqrt(2))  # = 2 * (1 - Phi(|z|))
    return ZTest(z, max(0.0, min(1.0, p_value)))


@dataclass(frozen=True)
class VariantRow:
    variant: str
    sent: int
    unique_opens: int
    unique_clicks: int
    leads: int
    versus_first: ZTest | None = None  # click rate against the first variant

    @property
    def click_rate(self) -> float:
        return self.unique_clicks / self.sent if self.sent else 0.0

    @property
    def open_rate(self) -> float:
        return self.unique_opens / self.sent if self.sent else 0.0


def _human(kind: str) -> ColumnElement[int]:
    """1 for a human event of ``kind`` (mail scanners' bot events do not count)."""
    e: Any = EngagementEvent
    return case((and_(e.type == kind, e.suspected_bot.is_not(True)), 1), else_=0)


def variant_results(session: Session, run_id: int) -> list[VariantRow]:
    """One row per variant of the run's sent mail, in name order (``A`` first)."""
    e = EngagementEvent
    per_delivery = (
        select(e.delivery_id,
               func.max(_human("open")).label("opened"),
               func.max(_human("click")).label("clicked"),
               func.sum(_human("lead")).label("leads"))
        .join(Delivery, Delivery.id == e.delivery_id)
        .where(Delivery.run_id == run_id)
        .group_by(e.delivery_id)
        .subquery("per_delivery")
    )
    variant = func.coalesce(Delivery.variant, "A")
    stmt = (
        select(variant.label("variant"), func.count(Delivery.id),
               func.coalesce(func.sum(per_delivery.c.opened), 0),
               func.coalesce(func.sum(per_delivery.c.clicked), 0),
               func.coalesce(func.sum(per_delivery.c.leads), 0))
        .outerjoin(per_delivery, per_delivery.c.delivery_id == Delivery.id)
        .where(Delivery.run_id == run_id, Delivery.channel == "email",
               Delivery.status == DeliveryStatus.sent)
        .group_by(variant).order_by(variant)
    )
    rows = [VariantRow(str(v), int(n), int(o), int(c), int(leads))
            for v, n, o, c, leads in session.execute(stmt).tuples()]
    if not rows:
        return rows
    first = rows[0]
    return [first] + [
        VariantRow(r.variant, r.sent, r.unique_opens, r.unique_clicks, r.leads,
                   two_proportion_z(first.unique_clicks, first.sent, r.unique_clicks, r.sent))
        for r in rows[1:]]
