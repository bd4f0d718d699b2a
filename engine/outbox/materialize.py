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


def materialize_audience(
    session: Session, run: CampaignRun, spec: CampaignSpec, now: datetime,
    extra_rules: list[dict[str, Any]] | None = None, channel: str = "email",
) -> int:
    """Insert one pending outbox row per audience member in one statement; return count.

    The audience compiler reads the YAML vocabulary, so the rules are dumped in the
    stored (YAML) shape here; ``extra_rules`` (the retention scan's inactivity) are ANDed.
    """
    audience = spec.audience.model_dump(mode="json", by_alias=True, exclude_none=True)
    if extra_rules:
        audience["include"] = list(audience.get("include") or []) + extra_rules
    audience_q = build_audience_query(audience, campaign_type=spec.type, channel=channel,
                                      now=now).subquery()
    address = Customer.email if channel == "email" else Customer.phone
    source = (
        select(
            literal(run.id, Integer), literal(channel, String), address, Customer.id,
            literal(DeliveryStatus.pending.value, String), literal(0, Integer),
            literal({}, JSON), literal(now),
        )
        .where(Customer.id.in_(select(audience_q.c[0])))
        .order_by(Customer.id)
    )
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
