"""Per-business API keys for the JSON API (order events, consent updates).

The key is a random token shown once; only its keyed digest
(:func:`engine.common.crypto.digest`, HMAC-SHA256 under the installation's secret) is stored in
``Business.api_key_digest``.  A leaked database therefore holds no usable key, and
lookup stays one indexed equality query.  Issuing a new key replaces the old one
(rotation = issue again).
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.crypto import digest
from engine.common.errors import NotFound
from engine.models import AuditLog, Business

KEY_PREFIX = "umkm_"
_PURPOSE = "apikey"
_MAX_KEY_CHARS = 200


class UnknownBusiness(NotFound, LookupError):
    """No business with that id."""


def _digest(token: str) -> str:
    return digest(token, _PURPOSE)


def _audit(session: Session, actor: str, action: str, business_id: int) -> None:
    session.add(AuditLog(actor=actor, action=action, entity="business",
                         entity_id=str(business_id), detail={}))


def issue_api_key(session: Session, business_id: int, actor: str = "system") -> str:
    """Create (or replace) the key of a business; the plain key is returned only here."""
    business = session.get(Business, business_id)
    if business is None:
        raise UnknownBusiness("apikey.err.unknown_business", id=business_id)
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    business.api_key_digest = _digest(token)
    _audit(session, actor, "business.apikey_issued", business_id)
    session.flush()
    return token


def revoke_api_key(session: Session, business_id: int, actor: str = "system") -> bool:
    """Remove the key; returns whether there was one."""
    business = session.get(Business, business_id)
    if business is None:
        raise UnknownBusiness("apikey.err.unknown_business", id=business_id)
    had = business.api_key_digest is not None
    business.api_key_digest = None
    _audit(session, actor, "business.apikey_revoked", business_id)
    session.flush()
    return had


def business_for_api_key(session: Session, token: str | None) -> Business | None:
    """The business a presented key belongs to, or ``None`` for a missing/wrong key."""
    if not token or not token.startswith(KEY_PREFIX) or len(token) > _MAX_KEY_CHARS:
        return None
    return session.scalars(
        select(Business).where(Business.api_key_digest == _digest(token))
    ).one_or_none()
