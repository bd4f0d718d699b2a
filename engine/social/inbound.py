"""Inbound WhatsApp messages (Cloud API webhooks): the 24-hour window and opt-outs.

A free-form WhatsApp text may go to a customer only inside the 24-hour window the
customer opens by writing to us: :func:`record_whatsapp_inbound` keeps the time of their
last message (:func:`last_inbound` reads it back when :mod:`engine.social.publish` builds
the messages) and honours opt-out keywords at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import (
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Delivery,
    DeliveryStatus,
    Suppression,
    SuppressionReason,
    aware,
    utcnow,
)
from engine.social.plan import WHATSAPP

WA_LAST_INBOUND = "whatsapp_last_inbound_at"
WA_WINDOW = timedelta(hours=24)
# Cloud API errors that mean the number cannot receive WhatsApp at all (not on WhatsApp,
# blocked, unreachable): suppressed like a hard bounce.  Others (131047 outside the 24 h
# window, 131049 Meta's per-user marketing limit) only fail that one message.
WA_UNREACHABLE = frozenset({131026})


@dataclass
class InboundSummary:
    """What :func:`record_whatsapp_inbound` did with one webhook."""

    messages: int = 0
    opt_outs: int = 0
    unknown_numbers: int = 0
    failed: int = 0
    unreachable: int = 0


def _phone_candidates(wa_id: str) -> list[str]:
    """The ways a customer's phone may be stored for a WhatsApp id (``62...``, ``+62...``,
    ``0...``)."""
    digits = "".join(ch for ch in wa_id if ch.isdigit())
    found = [digits, f"+{digits}"]
    if digits.startswith("62"):
        found.append("0" + digits[2:])
    return found


def record_whatsapp_inbound(session: Session, events: Iterable[Any],
                            now: datetime | None = None) -> InboundSummary:
    """Apply parsed Cloud API webhook events (``channels.whatsapp.parse_webhook``).

    Every customer message opens the 24-hour service window (its time is kept on
    ``Customer.attributes``); an opt-out keyword withdraws WhatsApp marketing consent
    at once (UU 27/2022: withdrawal stops processing) and suppresses the number, so
    pending and future messages to it are skipped. Commits.
    """
    now = now or utcnow()
    summary = InboundSummary()
    for event in events:
        if getattr(event, "kind", None) == "status":
            _status(session, event, summary)
            continue
        if getattr(event, "kind", None) != "message":
            continue
        summary.messages += 1
        customer = session.scalars(select(Customer).where(
            Customer.phone.in_(_phone_candidates(event.wa_id)))).first()
        if customer is None:
            summary.unknown_numbers += 1
        else:
            _note_inbound(customer, event.timestamp)
        if event.opt_out:
            summary.opt_outs += 1
            _opt_out(session, customer, event, now)
    session.commit()
    return summary


def _note_inbound(customer: Customer, at: datetime) -> None:
    """Keep the newest message time only: webhooks may arrive out of order."""
    previous = last_inbound(customer)
    if previous is None or at > previous:
        customer.attributes = {**(customer.attributes or {}), WA_LAST_INBOUND: at.isoformat()}


def _opt_out(session: Session, customer: Customer | None, event: Any, now: datetime) -> None:
    """Withdraw consent (when the number is known) and suppress it, known or not."""
    address = customer.phone if customer and customer.phone else event.wa_id
    if customer is not None:
        session.add(Consent(customer_id=customer.id, channel=ConsentChannel.whatsapp,
                            purpose=ConsentPurpose.marketing, granted=False,
                            source="whatsapp:opt-out", recorded_at=now))
    exists = session.scalars(select(Suppression.id).where(
        Suppression.channel == WHATSAPP, Suppression.address == address)).first()
    if exists is None:
        session.add(Suppression(channel=WHATSAPP, address=address,
                                reason=SuppressionReason.unsubscribed,
                                detail=f"WhatsApp: {str(event.text or '')[:200]}"))
    session.flush()


def last_inbound(customer: Customer | None) -> datetime | None:
    """When the customer last wrote to us on WhatsApp (opens the 24-hour window)."""
    value = ((customer.attributes or {}) if customer else {}).get(WA_LAST_INBOUND)
    try:
        return aware(datetime.fromisoformat(str(value))) if value else None
    except ValueError:
        return None


def _status(session: Session, event: Any, summary: InboundSummary) -> None:
    """A ``failed`` status turns our sent delivery failed (with Meta's error code), so
    reports stop counting it as sent; an unreachable number is suppressed."""
    if event.status != "failed":
        return
    errors = list(event.errors or ())
    code = int(errors[0].get("code") or 0) if errors and str(
        errors[0].get("code", "")).isdigit() else 0
    title = str(errors[0].get("title") or errors[0].get("message") or "") if errors else ""
    delivery = session.scalars(select(Delivery).where(
        Delivery.provider_id == event.message_id, Delivery.channel == WHATSAPP)).first() \
        if event.message_id else None
    if delivery is None:
        return
    summary.failed += 1
    delivery.status = DeliveryStatus.failed
    delivery.error = f"whatsapp {code}: {title}"[:500]
    if code not in WA_UNREACHABLE:
        return
    summary.unreachable += 1
    address = delivery.recipient
    exists = session.scalars(select(Suppression.id).where(
        Suppression.channel == WHATSAPP, Suppression.address == address)).first()
    if exists is None:
        session.add(Suppression(channel=WHATSAPP, address=address,
                                reason=SuppressionReason.bounced,
                                detail=f"WhatsApp {code}: {title}"[:200]))
    session.flush()
