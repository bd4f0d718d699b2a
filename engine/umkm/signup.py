"""One-time codes of an owner's own sign-up (issue 16), and the limits that replace a CAPTCHA.

A code is six random digits, valid for :data:`CODE_LIFETIME`, and dies after
:data:`MAX_TRIES` attempts. Only an HMAC (engine secret, purpose ``signup-code``) is
stored: a copied table cannot be brute-forced offline, which a plain hash of a
six-digit number could. Attempts are counted by one conditional ``UPDATE`` *before* the
code is compared, so parallel guesses cannot exceed the limit. Each code is bound to the
browser session that asked for it.

The per-contact and per-address limits reuse the atomic counters of
:mod:`engine.umkm.login_limit` (``login_attempt`` table) under their own key prefixes.

Contacts arrive normalized (e-mail lower-case, phone ``62...``): normalizing phone
numbers belongs to a higher layer. Like the rest of :mod:`engine.umkm`, functions
``flush`` but never ``commit``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.common.crypto import derived_key
from engine.common.errors import BadRequest, Conflict, EngineError
from engine.models import SignupCode, User, aware, utcnow
from engine.umkm import login_limit

CODE_LIFETIME = timedelta(minutes=10)
MAX_TRIES = 5
# After the code, the owner has this long to choose a user name and password.
CLAIM_LIFETIME = timedelta(minutes=30)
LIMIT_WINDOW = timedelta(hours=1)
PER_CONTACT = 3
PER_ADDRESS = 10


class TooManySignups(EngineError):
    """Too many codes for one contact or sign-ups from one address: 429."""

    http_status: ClassVar[int] = 429


class CodeError(BadRequest):
    """A wrong, expired, dead or already used code (the message says which)."""


def hash_code(code: str) -> str:
    return hmac.new(derived_key("signup-code"), code.encode(), hashlib.sha256).hexdigest()


def session_key(raw_session_id: str) -> str:
    """The stored form of the browser session a code belongs to."""
    return hashlib.sha256(f"signup|{raw_session_id}".encode()).hexdigest()


def _limit_key(kind: str, value: str) -> str:
    return f"signup-{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:40]


def count_start(db: Session, address: str, now: datetime | None = None) -> None:
    """Count one sign-up start from a client address; refuse beyond :data:`PER_ADDRESS`."""
    if login_limit.bump(db, _limit_key("addr", address), now, LIMIT_WINDOW) > PER_ADDRESS:
        raise TooManySignups("signup.err.too_many_address", n=PER_ADDRESS)


def count_code(db: Session, contact: str, now: datetime | None = None) -> None:
    """Count one code sent to a contact; refuse beyond :data:`PER_CONTACT` per hour."""
    if login_limit.bump(db, _limit_key("contact", contact), now, LIMIT_WINDOW) > PER_CONTACT:
        raise TooManySignups("signup.err.too_many_contact", n=PER_CONTACT)


def contact_taken(db: Session, contact: str) -> bool:
    """Whether an account was already made with this e-mail address or phone number."""
    return db.scalars(select(SignupCode.id).where(
        SignupCode.contact == contact, SignupCode.user_id.is_not(None))).first() is not None


def issue_code(db: Session, channel: str, contact: str, raw_session_id: str,
               now: datetime | None = None) -> tuple[SignupCode, str]:
    """A new code row for this session (older ones of the session stop counting)."""
    if contact_taken(db, contact):
        raise Conflict("signup.err.contact_taken")
    at = now or utcnow()
    code = f"{secrets.randbelow(10**6):06d}"
    row = SignupCode(channel=channel, contact=contact, code_hash=hash_code(code),
                     session_hash=session_key(raw_session_id), tries=0, created_at=at,
                     expires_at=at + CODE_LIFETIME)
    db.add(row)
    db.flush()
    return row, code


def latest(db: Session, raw_session_id: str) -> SignupCode | None:
    """The newest code of this browser session (the one its code form refers to)."""
    return db.scalars(select(SignupCode)
                      .where(SignupCode.session_hash == session_key(raw_session_id))
                      .order_by(SignupCode.id.desc())).first()


def verify_code(db: Session, raw_session_id: str, code: str,
                now: datetime | None = None) -> SignupCode:
    """Accept the right code once; every attempt (right or wrong) counts first."""
    at = now or utcnow()
    row = latest(db, raw_session_id)
    if row is None:
        raise CodeError("signup.err.no_code")
    if row.verified_at is not None:
        raise CodeError("signup.err.code_used")
    expires = aware(row.expires_at)
    if expires is None or at >= expires:
        raise CodeError("signup.err.code_expired")
    tries = db.execute(update(SignupCode)
                       .where(SignupCode.id == row.id, SignupCode.tries < MAX_TRIES)
                       .values(tries=SignupCode.tries + 1)
                       .returning(SignupCode.tries)).scalar()
    if tries is None:
        raise CodeError("signup.err.code_dead")
    entered = "".join(ch for ch in (code or "") if ch.isdigit())[:6]
    if not hmac.compare_digest(hash_code(entered), row.code_hash):
        left = MAX_TRIES - int(tries)
        raise CodeError("signup.err.code_wrong", left=left) if left else \
            CodeError("signup.err.code_dead")
    db.execute(update(SignupCode).where(SignupCode.id == row.id).values(verified_at=at))
    db.flush()
    db.refresh(row)
    return row


def verified_claim(db: Session, raw_session_id: str,
                   now: datetime | None = None) -> SignupCode | None:
    """The verified, not yet used code of this session, while the owner may still claim it."""
    row = latest(db, raw_session_id)
    if row is None or row.verified_at is None or row.user_id is not None:
        return None
    verified = aware(row.verified_at)
    if verified is None or (now or utcnow()) - verified > CLAIM_LIFETIME:
        return None
    return row


def claim(db: Session, row: SignupCode, user: User) -> None:
    """Tie the verified contact to the new account (it cannot be used for another one)."""
    if contact_taken(db, row.contact):
        raise Conflict("signup.err.contact_taken")
    row.user_id = user.id
    db.flush()


def owner_contact(db: Session, user_id: int) -> tuple[str, str] | None:
    """``(channel, contact)`` the owner verified at sign-up, for notices about the business."""
    row = db.scalars(select(SignupCode).where(SignupCode.user_id == user_id)
                     .order_by(SignupCode.id.desc())).first()
    return (row.channel, row.contact) if row is not None else None
