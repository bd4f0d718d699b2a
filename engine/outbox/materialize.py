"""Outbox rows for an audience: one ``INSERT ... SELECT`` from the compiled audience query.

Planning 100k recipients never loops over customers in Python, and the unique
(run, recipient, channel) key makes a second materialization of the same run insert nothing.
Email runs (the scheduler) and WhatsApp runs (social planning) share it, so it lives below both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.campaign.audience import build_audience_query
from engine.campaign.schema import CampaignSpec
from engine.db import is_postgres
from engine.models import CampaignRun, Customer, Delivery, DeliveryStatus


def _insert_ignore(session: Session) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect."""
    return pg_insert(Delivery) if is_postgres(session) else sqlite_insert(Delivery)


# Delivery.context key: the A/B variant a row must get (the winner, for the rest).
AB_VARIANT = "ab_variant"


def test_group(customer_id: Any, run_id: int, share: int) -> Any:
    """Whether a customer is in the A/B test group of ``share`` percent: a SQL condition,
    deterministic per run (so a re-materialization picks the same people) and spread over
    the id range (7919 is prime to 100: consecutive ids cover every residue)."""
    return (customer_id * 7919 + run_id) % 100 < share


def materialize_audience(
    session: Session, run: CampaignRun, spec: CampaignSpec, now: datetime,
    extra_rules: list[dict[str, Any]] | None = None, channel: str = "email",
    winner: str | None = None,
) -> int:
    """Insert one pending outbox row per audience member in one statement; return count.

    The audience compiler reads the YAML vocabulary, so the rules are dumped in the
    stored (YAML) shape here; ``extra_rules`` (the retention scan's inactivity) are ANDed.
    With an A/B winner rule only the test group is inserted at first; ``winner`` (the
    decided variant) inserts everyone else, each row marked with that variant. The
    unique (run, recipient, channel) key keeps the test group out of the rest, so nobody
    gets two variants; consent and the frequency cap are evaluated again at that moment.
    """
    audience = spec.audience.model_dump(mode="json", by_alias=True, exclude_none=True)
    if extra_rules:
        audience["include"] = list(audience.get("include") or []) + extra_rules
    audience_q = build_audience_query(audience, campaign_type=spec.type, channel=channel,
                                      now=now).subquery()
    address = Customer.email if channel == "email" else Customer.phone
    rule = spec.email.winner if spec.email is not None and channel == "email" else None
    source = (
        select(
            literal(run.id, Integer), literal(channel, String), address, Customer.id,
            literal(DeliveryStatus.pending.value, String), literal(0, Integer),
            literal({AB_VARIANT: winner} if winner else {}, JSON), literal(now),
        )
        .where(Customer.id.in_(select(audience_q.c[0])))
        .order_by(Customer.id)
    )
    if rule is not None and winner is None:
        source = source.where(test_group(Customer.id, run.id, rule.test_share))
    stmt = _insert_ignore(session).from_select(
        ["run_id", "channel", "recipient", "customer_id", "status", "attempts", "context",
         "created_at"],
        source,
    ).on_conflict_do_nothing()
    session.execute(stmt)
    planned = session.execute(
        select(func.count()).select_from(Delivery).where(Delivery.run_id == run.id)
    ).scalar_one()
    run.planned = int(planned)
    session.flush()
    return int(planned)
