"""Sending the confirmed opt-in link (issue 13): to the very address the token names.

:mod:`engine.customers.optin` makes and verifies the link; this module delivers it, by
email through the configured email adapter (SMTP or ``.eml`` files) or by WhatsApp
through the sandbox channel.  It sits in the delivery layer because it needs the
message assembly and the channel adapters, which the customers layer may not import.

Why a rate limit stored in the database (``optin_link_send``): the self-service page
``/u/berlangganan-lagi`` is public, so without it anyone could flood a person who left
with links.  At most one link per (customer, channel) per :data:`RESEND_WINDOW` and
:data:`DAILY_LIMIT` per day, across every web process, CLI run and restart.

Who may call it: the Dinas (CLI ``umkm customers send-confirmation``) and the person
themself through the public page; the business API never does, so a business cannot
use it to mail people who withdrew.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from channels.base import OutboundMessage
from engine.common.errors import BadRequest, EngineError
from engine.common.i18n import t
from engine.config import Settings
from engine.customers import consent, optin
from engine.customers.cells import normalize_phone
from engine.message.mime import MessageSkeleton
from engine.models import Customer, OptinLinkSend, SuppressionReason, utcnow
from engine.outbox.adapters import email_adapter, sandbox_adapter

RESEND_WINDOW = timedelta(minutes=10)
DAILY_LIMIT = 3
_DAY = timedelta(days=1)
_PERSON_REASONS = frozenset({SuppressionReason.unsubscribed, SuppressionReason.complained})


class TooSoon(EngineError):
    """A link went to this (customer, channel) too recently: 429, nothing is sent."""

    http_status: ClassVar[int] = 429


class SendFailed(EngineError):
    """The channel did not accept the message (the attempt does not count)."""

    http_status: ClassVar[int] = 502


@dataclass(frozen=True)
class SentLink:
    """What was sent: the channel, the address it went to, the provider's id."""

    customer_id: int
    channel: str
    address: str
    provider_id: str | None


def find_customer(session: Session, address: str) -> tuple[Customer, str] | None:
    """The customer an email address or phone number names, with its channel."""
    value = (address or "").strip()[:254]
    if "@" in value:
        found = session.scalars(select(Customer).where(
            func.lower(Customer.email) == value.lower())).first()
        return (found, "email") if found is not None else None
    phone = normalize_phone(value) if value else None
    if not phone:
        return None
    found = session.scalars(select(Customer).where(
        or_(Customer.phone == phone, Customer.phone == value))).first()
    return (found, "whatsapp") if found is not None else None


def has_withdrawal(session: Session, customer: Customer, channel: str) -> bool:
    """Whether the person's own withdrawal stands on ``channel`` (what the link lifts)."""
    current = consent.latest_consent(session, customer.id, channel)
    if current is not None and not current.granted:
        return True
    address = consent.address_for(customer, channel)
    row = consent.find_suppression(session, channel, address) if address else None
    return row is not None and SuppressionReason(row.reason) in _PERSON_REASONS


def _reserve(session: Session, customer: Customer, channel: str, requested_by: str,
             now: datetime) -> OptinLinkSend:
    """Count this send, or refuse with :class:`TooSoon` when the limit is reached."""
    recent = list(session.scalars(
        select(OptinLinkSend.sent_at).where(
            OptinLinkSend.customer_id == customer.id, OptinLinkSend.channel == channel,
            OptinLinkSend.sent_at > now - _DAY)
        .order_by(OptinLinkSend.sent_at.desc()).with_for_update()))
    minutes = int(RESEND_WINDOW.total_seconds() // 60)
    if recent and _aware(recent[0]) > now - RESEND_WINDOW:
        raise TooSoon("optin.send.too_soon", minutes=minutes)
    if len(recent) >= DAILY_LIMIT:
        raise TooSoon("optin.send.daily_limit", n=DAILY_LIMIT)
    row = OptinLinkSend(customer_id=customer.id, channel=channel, sent_at=now,
                        requested_by=requested_by[:120])
    session.add(row)
    session.flush()
    return row


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; the column stores UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sender(settings: Settings) -> tuple[str, str, str]:
    raw = settings.mail_from.strip()
    name, addr = ("", raw)
    if "<" in raw:
        left, right = raw.rsplit("<", 1)
        name, addr = left.strip().strip('"'), right.rstrip(">").strip()
    domain = settings.dkim_domain or addr.rsplit("@", 1)[-1]
    return name, addr, domain


@dataclass(frozen=True)
class Link:
    """A link in a small mail: the bare URL in the text part, a button in the HTML part."""

    url: str
    label: str


def build_small_mail(settings: Settings, address: str, to_name: str | None, subject: str,
                     parts: Sequence[str | Link], *, tag: str, send_id: int
                     ) -> OutboundMessage:
    """A small transactional plain + HTML mail (opt-in link, sign-up code, owner notice)."""
    name, addr, domain = _sender(settings)
    skeleton = MessageSkeleton(from_addr=addr, from_name=name or None, domain=domain)
    text = "".join(f"{p.url if isinstance(p, Link) else p}\r\n\r\n" for p in parts)
    page = "".join(
        f'<p><a href="{html.escape(p.url, quote=True)}">{html.escape(p.label)}</a></p>'
        if isinstance(p, Link) else f"<p>{html.escape(p)}</p>" for p in parts)
    message_id = f"<{tag}-{send_id}.{secrets.token_hex(6)}@{domain}>"
    raw = skeleton.build(to_addr=address, to_name=to_name, subject=subject,
                         text=text.rstrip("\r\n") + "\r\n", html=page,
                         message_id=message_id)
    return OutboundMessage(delivery_id=send_id, recipient=address, payload=raw,
                           message_id=message_id, envelope_from=addr, account="email",
                           crlf_only=True)


def build_email(settings: Settings, customer: Customer, address: str, url: str,
                send_id: int) -> OutboundMessage:
    """A small plain + HTML mail in the current language carrying the link."""
    greeting = t("optin.mail.greeting", name=(customer.name or "").split(" ")[0] or "Kak")
    return build_small_mail(settings, address, customer.name or None, t("optin.mail.subject"),
                            [greeting, t("optin.mail.body"), Link(url, t("optin.button")),
                             t("optin.mail.ignore")], tag="optin", send_id=send_id)


def transmit(settings: Settings, channel: str, address: str, *,
             mail: Callable[[], OutboundMessage], wa_text: str, kind: str, tag: str,
             send_id: int) -> str | None:
    """Send one small message by email (configured adapter) or WhatsApp (sandbox only).

    Raises :class:`SendFailed` when the channel refused it, ``BadRequest`` when the
    channel cannot carry it here (a live WhatsApp template is not configured for it).
    """
    if channel == "email":
        results = email_adapter(settings).send_batch([mail()])
    elif channel == "whatsapp" and settings.social_mode == "sandbox":
        wa = OutboundMessage(delivery_id=send_id, recipient=address, account="dinas",
                             payload={"to": address, "text": wa_text, "kind": kind},
                             message_id=f"{tag}-{send_id}")
        with sandbox_adapter(settings, "whatsapp") as adapter:
            results = adapter.send_batch([wa])
    else:
        raise BadRequest("optin.send.channel_unavailable", channel=channel)
    result = results[0] if results else None
    if result is None or str(result.status) != "sent":
        raise SendFailed("optin.send.failed", channel=channel,
                         error=str(result.error if result else "-")[:200])
    return result.provider_id


def _transmit(settings: Settings, customer: Customer, channel: str, address: str,
              url: str, send_id: int) -> str | None:
    return transmit(settings, channel, address,
                    mail=lambda: build_email(settings, customer, address, url, send_id),
                    wa_text=t("optin.wa.text", url=url), kind="confirm_opt_in", tag="optin",
                    send_id=send_id)


def send_confirmation(session: Session, settings: Settings, customer: Customer,
                      channel: str, *, requested_by: str, now: datetime | None = None
                      ) -> SentLink:
    """Send the confirmation link for (customer, channel) to its current address.

    Commits the rate-limit row before sending (so two parallel requests cannot both
    pass), and removes it again when the channel refused the message.
    """
    address = consent.address_for(customer, channel)
    if channel not in consent.CHANNELS or not address:
        raise BadRequest("optin.send.no_address", channel=channel)
    row = _reserve(session, customer, channel, requested_by, now or utcnow())
    session.commit()
    url = optin.confirmation_url(settings.base_url, customer, channel)
    try:
        provider_id = _transmit(settings, customer, channel, address, url, row.id)
    except EngineError:
        session.execute(delete(OptinLinkSend).where(OptinLinkSend.id == row.id))
        session.commit()
        raise
    return SentLink(customer.id, channel, address, provider_id)


def request_from_person(session: Session, settings: Settings, address: str, *,
                        client: str, now: datetime | None = None) -> bool:
    """The self-service page: send a link only to a person whose withdrawal stands.

    Returns whether a link went out; callers must answer the same either way (the page
    must not reveal whether an address is on anyone's list).
    """
    found = find_customer(session, address)
    if found is None:
        return False
    customer, channel = found
    if not has_withdrawal(session, customer, channel):
        return False
    try:
        send_confirmation(session, settings, customer, channel,
                          requested_by=f"self:{client}"[:120], now=now)
    except (TooSoon, SendFailed, BadRequest):
        session.rollback()
        return False
    return True
