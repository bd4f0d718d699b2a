"""The studio's test send: the campaign as one chosen recipient would get it, to the
staff member's *own* address, marked ``[UJI]`` (issue 18).

Why through the real mail channel: a test that skips the relay proves nothing about
what the inbox shows (``email_adapter``: SMTP when configured, else ``.eml`` files).
Why it never counts: no run, no delivery row, no tracking links (the preview's links
go straight to their UTM targets), so campaign figures stay what customers did.
Why an own address only: :class:`~engine.models.StaffContact` holds the addresses an
admin recorded for that user; nothing typed in the browser is ever a destination.
Rate limit: :data:`RATE_MAX` per user per :data:`RATE_WINDOW`, counted on the
``audit_log`` rows that record every test send (written before sending).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.base import OutboundMessage
from engine.campaign.schema import CampaignSpec
from engine.common.errors import BadRequest, EngineError
from engine.common.i18n import t
from engine.config import Settings
from engine.customers.cells import normalize_phone
from engine.delivery.optin_mail import _sender, transmit
from engine.delivery.preview import EmailPreview, render_previews
from engine.delivery.preview_social import share_kit_text
from engine.message.mime import MessageSkeleton
from engine.models import AuditLog, StaffContact, User, utcnow

ACTION = "campaign.test_send"
PREFIX = "[UJI] "
RATE_MAX = 5
RATE_WINDOW = timedelta(minutes=10)
CHANNELS = ("email", "whatsapp")


class TooManyTests(EngineError):
    """More test sends than :data:`RATE_MAX` in :data:`RATE_WINDOW`: 429, nothing sent."""

    http_status = 429


def contact_of(session: Session, user: User) -> StaffContact | None:
    return session.scalars(select(StaffContact).where(StaffContact.user_id == user.id)).first()


def set_contact(session: Session, user: User, *, email: str | None,
                whatsapp: str | None, actor: str) -> StaffContact:
    """Record (or clear with ``""``) a staff member's own addresses; audited."""
    row = contact_of(session, user) or StaffContact(user_id=user.id)
    if email is not None:
        email = email.strip()
        if email and ("@" not in email or len(email) > 254 or " " in email):
            raise BadRequest("studio.trial.bad_email", value=email[:60])
        row.email = email or None
    if whatsapp is not None:
        phone = normalize_phone(whatsapp) if whatsapp.strip() else ""
        if phone is None:
            raise BadRequest("studio.trial.bad_phone", value=whatsapp[:40])
        row.whatsapp = phone or None
    row.updated_at = utcnow()
    session.add(row)
    session.add(AuditLog(actor=actor, action="user.contact", entity="user",
                         entity_id=str(user.id), detail={"username": user.username}))
    session.flush()
    return row


def address_for(session: Session, user: User, channel: str) -> str:
    """The user's own address on ``channel``, or a 400 saying who can record it."""
    if channel not in CHANNELS:
        raise BadRequest("studio.trial.bad_channel", value=channel[:20])
    contact = contact_of(session, user)
    address = (contact.email if channel == "email" else contact.whatsapp) if contact else None
    if not address:
        raise BadRequest(f"studio.trial.no_{channel}", username=user.username)
    return address


def _reserve(session: Session, user: User, channel: str, campaign: str,
             customer_id: int | None) -> AuditLog:
    since = utcnow() - RATE_WINDOW
    used = session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == ACTION, AuditLog.actor == user.username, AuditLog.at >= since)) or 0
    if used >= RATE_MAX:
        raise TooManyTests("studio.trial.too_many", n=RATE_MAX,
                           minutes=int(RATE_WINDOW.total_seconds() // 60))
    row = AuditLog(actor=user.username, action=ACTION, entity="campaign", entity_id=campaign,
                   detail={"campaign": campaign, "channel": channel,
                           "customer": customer_id})
    session.add(row)
    session.commit()  # counted before sending: two clicks at once cannot both pass
    return row


def _mail(settings: Settings, preview: EmailPreview, address: str,
          send_id: int) -> OutboundMessage:
    name, addr, domain = _sender(settings)
    skeleton = MessageSkeleton(from_addr=addr, from_name=name or None, domain=domain)
    message_id = f"<uji-{send_id}.{secrets.token_hex(6)}@{domain}>"
    raw = skeleton.build(to_addr=address, to_name=None, subject=PREFIX + preview.subject,
                         text=preview.text, html=preview.html, message_id=message_id)
    return OutboundMessage(delivery_id=send_id, recipient=address, payload=raw,
                           message_id=message_id, envelope_from=addr, account="email",
                           crlf_only=True)


def send_test(session: Session, settings: Settings, spec: CampaignSpec, user: User,
              channel: str, customer_id: int | None = None) -> str:
    """Send variant A for ``customer_id`` (or the sample) to the user's own address;
    returns that address. Raises ``BadRequest`` / :class:`TooManyTests` / ``SendFailed``."""
    address = address_for(session, user, channel)
    previews = render_previews(session, spec, 1, customer_id) if spec.email else []
    kit = share_kit_text(session, spec) if channel == "whatsapp" else None
    if channel == "email" and not previews:
        raise BadRequest("studio.trial.no_mail")
    if channel == "whatsapp" and kit is None and not previews:
        raise BadRequest("studio.trial.no_whatsapp_text")
    row = _reserve(session, user, channel, spec.id, customer_id)
    wa_text = PREFIX + (kit if kit is not None else previews[0].text)
    try:
        transmit(settings, channel, address,
                 mail=lambda: _mail(settings, previews[0], address, row.id),
                 wa_text=wa_text, kind="studio_test", tag="uji", send_id=row.id)
    except EngineError as exc:
        row.detail = {**row.detail, "ok": False, "error": str(exc)[:200]}
        session.commit()
        raise
    row.detail = {**row.detail, "ok": True}
    session.commit()
    return address


def label(channel: str) -> str:
    return t(f"studio.trial.channel.{channel}")
