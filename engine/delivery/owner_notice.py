"""Messages to a UMKM owner of their own: the sign-up code and the verification outcome.

Both go through :func:`engine.delivery.optin_mail.transmit` (the configured email
adapter, or the WhatsApp sandbox writing ``var/outbox/whatsapp/``), the same path as the
confirmed opt-in link. This module sits in the delivery layer because it needs those
adapters and phone normalization, which :mod:`engine.umkm` may not import.

:func:`decide_and_notify` is THE approve/reject entry point: every caller (the
dashboard, scripts) that decides through it tells the owner, whatever screen was used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest, Conflict, EngineError
from engine.common.i18n import t
from engine.config import Settings
from engine.customers.cells import normalize_phone
from engine.delivery.optin_mail import Link, build_small_mail, transmit
from engine.models import AuditLog, Business, User
from engine.umkm import signup, verification, wilayah

log = logging.getLogger(__name__)
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Contact:
    channel: str  # "email" or "whatsapp"
    address: str  # lower-case e-mail, or a phone number as 62...


def parse_contact(value: str) -> Contact:
    """An e-mail address or an Indonesian mobile number, normalized; else 400 saying so."""
    text = (value or "").strip()
    if "@" in text:
        if len(text) > 254 or not _EMAIL_RE.fullmatch(text):
            raise BadRequest("signup.err.contact")
        return Contact("email", text.casefold())
    phone = normalize_phone(text) if text else None
    if not phone:
        raise BadRequest("signup.err.contact")
    return Contact("whatsapp", phone)


def start_signup(db: Session, settings: Settings, contact: Contact, *, client: str,
                 raw_session_id: str) -> None:
    """Count the start (address, then contact), make a code and send it.

    The counters and the code row are committed before sending, so parallel requests
    see each other's counts; a code the channel refused is left unusable and counted,
    which is what keeps a flood of failing sends bounded too.
    """
    signup.count_start(db, client)
    db.commit()
    if signup.contact_taken(db, contact.address):
        raise Conflict("signup.err.contact_taken")
    signup.count_code(db, contact.address)
    db.commit()
    row, code = signup.issue_code(db, contact.channel, contact.address, raw_session_id)
    db.commit()
    minutes = int(signup.CODE_LIFETIME.total_seconds() // 60)
    transmit(settings, contact.channel, contact.address,
             mail=lambda: build_small_mail(
                 settings, contact.address, None, t("signup.mail.subject", code=code),
                 [t("signup.mail.body", code=code, minutes=minutes), t("signup.mail.ignore")],
                 tag="signup", send_id=row.id),
             wa_text=t("signup.wa.text", code=code, minutes=minutes), kind="signup_code",
             tag="signup", send_id=row.id)


def _owner_address(db: Session, business: Business) -> Contact | None:
    """Where the owner hears about their business: the contact verified at sign-up, else
    the business's own e-mail or WhatsApp number."""
    owner_id = db.scalars(select(User.id).where(User.business_id == business.id)).first()
    verified = signup.owner_contact(db, owner_id) if owner_id is not None else None
    if verified is not None:
        return Contact(*verified)
    if business.email:
        return Contact("email", business.email)
    if business.whatsapp:
        return Contact("whatsapp", business.whatsapp)
    return None


def notify_decision(db: Session, settings: Settings, business: Business) -> bool:
    """Tell the owner the outcome and the staff's reason; whether a message went out.

    A failing channel never undoes the decision: it is logged and audited instead.
    """
    decision = verification.latest_decision(db, business)
    contact = _owner_address(db, business)
    if decision is None or contact is None:
        return False
    key = "signup.notice.approved" if decision.verified else "signup.notice.rejected"
    kecamatan = wilayah.kecamatan_name(business.kecamatan_code) or business.kecamatan_code
    body = t(key, name=business.name, kecamatan=kecamatan,
             reason=decision.note or t("signup.notice.no_reason"))
    portal = settings.base_url.rstrip("/") + "/portal"
    try:
        transmit(settings, contact.channel, contact.address,
                 mail=lambda: build_small_mail(
                     settings, contact.address, business.owner_name,
                     t("signup.notice.subject", name=business.name),
                     [body, Link(portal, t("signup.notice.open_portal"))],
                     tag="verify", send_id=business.id),
                 wa_text=f"{body}\n{portal}", kind="verification", tag="verify",
                 send_id=business.id)
    except EngineError as exc:
        log.warning("verification notice for business %s not sent: %s", business.id, exc)
        db.add(AuditLog(actor="system", action="business.notice_failed", entity="business",
                        entity_id=str(business.id), detail={"channel": contact.channel}))
        db.commit()
        return False
    return True


def decide_and_notify(db: Session, settings: Settings, business: Business, *, approve: bool,
                      binaan: bool, group: str | None, note: str | None, actor: str) -> bool:
    """Record the decision (committed), then tell the owner; whether the notice went out."""
    verification.decide(db, business, approve=approve, binaan=binaan, group=group, note=note,
                        actor=actor)
    db.commit()
    return notify_decision(db, settings, business)
