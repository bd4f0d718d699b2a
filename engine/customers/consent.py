"""Consent and suppression (UU 27/2022 PDP): withdrawal stops processing at once.

Consent is an append-only history (:class:`~engine.models.Consent`): every grant or
withdrawal is a new row with its time and source, so the state at any moment can be
proven later; the newest row wins.  A withdrawal also writes a
:class:`~engine.models.Suppression` row for the address: dispatch re-checks both at
send time (``engine.delivery.pipeline._blocked_at_send_time``), so the very next batch skips
the address even when it was planned into a run before the withdrawal.

Suppression reasons have a severity: a complaint or hard bounce is never downgraded to
"unsubscribed" by a later unsubscribe (transactional mail still goes to unsubscribed
addresses, but never to addresses that bounce or complain).

Who may lift a withdrawal (issue 13): customers and consent are shared by every
business, so a business must not undo what the *person* said.  A withdrawal the person
made (one-click or page unsubscribe, WhatsApp ``BERHENTI``, a complaint) is lifted only
by the person through a confirmed opt-in (:func:`confirm_opt_in`, the link of
:mod:`engine.customers.optin`).  A business may record consent it collected
(:func:`grant_by_business`) only while no withdrawal stands that someone other than this
business recorded; otherwise it is refused with a :class:`Conflict` and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.errors import Conflict
from engine.models import (
    Category,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Delivery,
    Suppression,
    SuppressionReason,
    utcnow,
)

_SEVERITY = {
    SuppressionReason.unsubscribed: 1,
    SuppressionReason.manual: 2,
    SuppressionReason.bounced: 3,
    SuppressionReason.complained: 4,
}
CATEGORIES = tuple(c.value for c in Category)
CHANNELS = (ConsentChannel.email.value, ConsentChannel.whatsapp.value)
SOURCE_CONFIRMED_OPT_IN = "confirmed_opt_in"
# Suppressions only the person can undo (a bounce is the mailbox's, never lifted here).
_PERSON_REASONS = (SuppressionReason.unsubscribed, SuppressionReason.complained)


# ----------------------------------------------------------------------------- consent rows
def latest_consent(session: Session, customer_id: int, channel: str,
                   purpose: ConsentPurpose = ConsentPurpose.marketing) -> Consent | None:
    """The row in force (newest ``recorded_at``, ties to the later id)."""
    return session.scalars(
        select(Consent).where(Consent.customer_id == customer_id,
                              Consent.channel == ConsentChannel(channel),
                              Consent.purpose == purpose)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1)
    ).first()


def has_consent(session: Session, customer_id: int, channel: str,
                purpose: ConsentPurpose = ConsentPurpose.marketing) -> bool:
    row = latest_consent(session, customer_id, channel, purpose)
    return bool(row is not None and row.granted)


def record_consent(session: Session, customer: Customer, channel: str,
                   purpose: ConsentPurpose | str, granted: bool, source: str,
                   at: datetime | None = None) -> Consent:
    """Append one consent row (never update: the history is the proof).

    Without an explicit ``at`` the row is stamped now, but never before the row in
    force: the newest row wins, so a clock-skewed or future-dated earlier row must not
    outrank the person's latest statement (a withdrawal has to take effect at once).
    """
    when = at
    if when is None:
        when = utcnow()
        current = latest_consent(session, customer.id, channel, ConsentPurpose(purpose))
        if current is not None:
            previous = current.recorded_at if current.recorded_at.tzinfo else \
                current.recorded_at.replace(tzinfo=UTC)
            when = max(when, previous)
    row = Consent(customer_id=customer.id, channel=ConsentChannel(channel),
                  purpose=ConsentPurpose(purpose), granted=granted, source=source[:120],
                  recorded_at=when)
    session.add(row)
    session.flush()
    return row


# ----------------------------------------------------------------------------- suppression
def address_for(customer: Customer, channel: str) -> str | None:
    """The address a channel reaches: email for email, phone for WhatsApp/SMS."""
    value = customer.email if channel == ConsentChannel.email.value else customer.phone
    return value.lower() if value and channel == ConsentChannel.email.value else value


def find_suppression(session: Session, channel: str, address: str) -> Suppression | None:
    return session.scalars(
        select(Suppression).where(Suppression.channel == channel,
                                  func.lower(Suppression.address) == address.lower())
    ).first()


def suppress(session: Session, channel: str, address: str, reason: SuppressionReason | str,
             detail: str | None = None) -> Suppression:
    """Add (or strengthen) the suppression of ``address`` on ``channel``.

    ``unique(channel, address)`` keeps one row per address; a more severe reason
    replaces a milder one, never the other way round.
    """
    reason = SuppressionReason(reason)
    existing = find_suppression(session, channel, address)
    if existing is None:
        existing = Suppression(channel=channel, address=address.lower() if channel == "email"
                               else address, reason=reason, detail=detail, created_at=utcnow())
        session.add(existing)
    elif _SEVERITY[reason] > _SEVERITY[SuppressionReason(existing.reason)]:
        existing.reason = reason
        existing.detail = detail
    session.flush()
    return existing


def lift_unsubscribe(session: Session, channel: str, address: str) -> bool:
    """Remove a suppression whose reason is ``unsubscribed`` (a renewed opt-in).

    Bounces, complaints and manual blocks stay: a new consent does not make a dead
    mailbox deliverable, and a complaint is not undone by a business's API call.
    """
    row = find_suppression(session, channel, address)
    if row is None or SuppressionReason(row.reason) != SuppressionReason.unsubscribed:
        return False
    session.delete(row)
    session.flush()
    return True


# ----------------------------------------------------------------------------- grant/withdraw
def grant(session: Session, customer: Customer, channel: str, source: str, *,
          purpose: ConsentPurpose | str = ConsentPurpose.marketing,
          at: datetime | None = None) -> tuple[Consent, bool]:
    """Record consent; returns (row, whether an 'unsubscribed' suppression was lifted)."""
    row = record_consent(session, customer, channel, purpose, True, source, at)
    address = address_for(customer, channel)
    lifted = False
    if address and ConsentPurpose(purpose) == ConsentPurpose.marketing:
        lifted = lift_unsubscribe(session, channel, address)
    return row, lifted


def withdraw(session: Session, customer: Customer, channel: str, source: str, *,
             purpose: ConsentPurpose | str = ConsentPurpose.marketing,
             at: datetime | None = None) -> Consent:
    """Record a withdrawal and suppress the channel's address (marketing stops now)."""
    row = record_consent(session, customer, channel, purpose, False, source, at)
    address = address_for(customer, channel)
    if address and ConsentPurpose(purpose) == ConsentPurpose.marketing:
        suppress(session, channel, address, SuppressionReason.unsubscribed, detail=source)
    return row


# ----------------------------------------------------------------------------- who may lift
def business_source(business_id: int, label: str) -> str:
    """The source of a row a business asserted through the API: ``api:<id>:<label>``.

    Why the id first and a closing colon: a row proves which business asserted it, and
    no label can make business 1's row look like business 12's (``api:1:`` is not a
    prefix of ``api:12:``).
    """
    return f"api:{business_id}:{label}"


def _asserted_by(source: str | None, business_id: int) -> bool:
    """Whether ``source`` is a row this business itself recorded through the API."""
    return bool(source) and str(source).startswith(business_source(business_id, ""))


def standing_withdrawal(session: Session, customer: Customer, channel: str,
                        business_id: int) -> str | None:
    """The source of a marketing withdrawal on ``channel`` that this business may not undo.

    Why both places are read: the consent row in force is the person's statement, the
    suppression is what dispatch obeys, and either may be the person's (a WhatsApp
    opt-out suppresses a number even when the newer consent row is a business's).
    A withdrawal this same business recorded is its own to correct; a complaint always
    stands.  ``None`` means the business may record the consent it collected.
    """
    current = latest_consent(session, customer.id, channel)
    if current is not None and not current.granted and \
            not _asserted_by(current.source, business_id):
        return current.source
    address = address_for(customer, channel)
    row = find_suppression(session, channel, address) if address else None
    if row is None or SuppressionReason(row.reason) not in _PERSON_REASONS:
        return None
    if SuppressionReason(row.reason) == SuppressionReason.unsubscribed and \
            _asserted_by(row.detail, business_id):
        return None
    return row.detail or str(row.reason)


def grant_by_business(session: Session, customer: Customer, channel: str, business_id: int,
                      label: str, *, purpose: ConsentPurpose | str = ConsentPurpose.marketing
                      ) -> tuple[Consent, bool]:
    """Record marketing consent a business says it collected, unless the person withdrew.

    Raises :class:`Conflict` (409, nothing written) when a withdrawal stands that the
    person made or another party recorded: only the person lifts it, by the confirmed
    opt-in link the Dinas sends (:func:`engine.customers.optin.confirmation_url`).
    """
    if ConsentPurpose(purpose) == ConsentPurpose.marketing and \
            standing_withdrawal(session, customer, channel, business_id) is not None:
        raise Conflict("consent.withdrawn_by_person", channel=channel)
    return grant(session, customer, channel, business_source(business_id, label),
                 purpose=purpose)


def lift_person_suppression(session: Session, channel: str, address: str) -> bool:
    """Remove an ``unsubscribed`` or ``complained`` suppression (the person's own opt-in).

    Why complaints too: the complaint was the person's act, and the confirmed opt-in is
    the person's newer one.  Bounces and manual blocks stay.
    """
    row = find_suppression(session, channel, address)
    if row is None or SuppressionReason(row.reason) not in _PERSON_REASONS:
        return False
    session.delete(row)
    session.flush()
    return True


def confirm_opt_in(session: Session, customer: Customer, channel: str) -> tuple[Consent, bool]:
    """The person confirmed the opt-in link: consent with source ``confirmed_opt_in``.

    Only the web route of a verified confirmation token calls this; returns the row and
    whether a suppression was lifted.
    """
    row = record_consent(session, customer, channel, ConsentPurpose.marketing, True,
                         SOURCE_CONFIRMED_OPT_IN)
    address = address_for(customer, channel)
    lifted = bool(address) and lift_person_suppression(session, channel, str(address))
    return row, lifted


# ----------------------------------------------------------------------------- unsubscribe
@dataclass
class UnsubscribeResult:
    customer_id: int | None
    channel: str
    address: str | None
    changed: bool            # consent or categories changed by this call
    muted_categories: list[str] = field(default_factory=list)


def _customer_of(session: Session, target: Delivery | Customer) -> Customer | None:
    if isinstance(target, Customer):
        return target
    if target.customer_id is not None:
        return session.get(Customer, target.customer_id)
    return None


def _clean_categories(categories: Iterable[str]) -> list[str]:
    return sorted({c for c in categories if c in CATEGORIES})


def mute_categories(session: Session, customer: Customer, categories: Sequence[str]) -> bool:
    """Keep the subscription but stop offers of ``categories`` (preference centre).

    Stored in ``Customer.preferences["muted_categories"]``; stated interests
    (``preferences["categories"]``) lose the muted ones. Returns whether it changed.
    """
    muted = _clean_categories(categories)
    prefs = dict(customer.preferences or {})
    interests = [c for c in prefs.get("categories") or [] if c not in muted]
    new = {**prefs, "muted_categories": muted}
    if prefs.get("categories") is not None:
        new["categories"] = interests
    if new == prefs:
        return False
    customer.preferences = new
    session.flush()
    return True


def unsubscribe(session: Session, delivery_or_customer: Delivery | Customer, channel: str,
                source: str, categories: Sequence[str] | None = None,
                at: datetime | None = None) -> UnsubscribeResult:
    """Stop marketing on ``channel`` to the person behind a delivery or customer.

    ``categories=None`` withdraws marketing consent for the channel (time and source
    recorded) and suppresses the address: the next batch skips it.  A list of
    categories mutes only those product categories and keeps the subscription.
    Calling it again is harmless (a repeated withdrawal adds no second row).
    """
    customer = _customer_of(session, delivery_or_customer)
    address: str | None
    if isinstance(delivery_or_customer, Delivery) and delivery_or_customer.channel == channel:
        address = delivery_or_customer.recipient
    else:
        address = address_for(customer, channel) if customer is not None else None
    if categories is not None:
        changed = customer is not None and mute_categories(session, customer, categories)
        return UnsubscribeResult(customer.id if customer else None, channel, address, changed,
                                 _clean_categories(categories))
    changed = False
    if customer is not None and (has_consent(session, customer.id, channel)
                                 or latest_consent(session, customer.id, channel) is None):
        withdraw(session, customer, channel, source, at=at)
        changed = True
    if address:
        before = find_suppression(session, channel, address)
        suppress(session, channel, address, SuppressionReason.unsubscribed, detail=source)
        changed = changed or before is None
    return UnsubscribeResult(customer.id if customer else None, channel, address, changed)


# ----------------------------------------------------------------------------- preference centre
@dataclass
class PreferenceResult:
    unsubscribed: list[str] = field(default_factory=list)   # channels withdrawn now
    granted: list[str] = field(default_factory=list)        # channels (re)granted now
    categories: list[str] = field(default_factory=list)     # categories still wanted


def channels_of(customer: Customer | None, delivery: Delivery | None = None) -> list[str]:
    """The marketing channels a person can be reached on (the preference centre rows)."""
    found = [c for c in CHANNELS if customer is not None and address_for(customer, c)]
    if delivery is not None and delivery.channel in CHANNELS and delivery.channel not in found:
        found.insert(0, delivery.channel)
    return found


def set_categories(session: Session, customer: Customer, wanted: Sequence[str]) -> bool:
    """Stated interests = ``wanted``; every other category is muted."""
    keep = _clean_categories(wanted)
    prefs = dict(customer.preferences or {})
    new = {**prefs, "categories": keep,
           "muted_categories": [c for c in CATEGORIES if c not in keep]}
    if new == prefs:
        return False
    customer.preferences = new
    session.flush()
    return True


def save_preferences(session: Session, target: Delivery | Customer, channels: Sequence[str],
                     categories: Sequence[str] | None, source: str, *,
                     own_channel: str | None = None,
                     at: datetime | None = None) -> PreferenceResult:
    """Apply the preference-centre form.

    Unchecked channels are withdrawn; checked channels whose consent was withdrawn are
    granted again (an explicit opt-in by the person on our page); the checked
    categories become the stated interests.  ``own_channel`` is the channel the link
    came by (a delivery's channel by default): unchecking it always records a
    withdrawal, other channels only when the person had consented there.
    """
    customer = _customer_of(session, target)
    delivery = target if isinstance(target, Delivery) else None
    own = own_channel or (delivery.channel if delivery is not None else None)
    result = PreferenceResult()
    for channel in channels_of(customer, delivery):
        consented = customer is not None and has_consent(session, customer.id, channel)
        if channel not in channels:
            if channel != own and not consented:
                continue  # never subscribed there: nothing to withdraw
            outcome = unsubscribe(session, target, channel, source, at=at)
            if outcome.changed:
                result.unsubscribed.append(channel)
        elif customer is not None and not consented:
            grant(session, customer, channel, source, at=at)
            result.granted.append(channel)
    if customer is not None and categories is not None:
        set_categories(session, customer, categories)
        result.categories = _clean_categories(categories)
    return result
