"""Server-side login sessions of the portal and the dashboard.

The browser's cookie carries only an opaque random id; the database keeps its SHA-256
(a leaked table cannot be replayed as cookies), the user, the CSRF token and the
times. A session ends when it is revoked (logout, password change, account disabled),
12 hours after login, or after :data:`IDLE_TIMEOUT` without a request. Because the
server decides, a copied cookie stops working the moment the session is revoked.

Like the rest of :mod:`engine.umkm`, functions ``flush`` but never ``commit``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.models import User, WebSessionRecord, aware, utcnow

SESSION_LIFETIME = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(hours=2)
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class ActiveSession:
    """What a request needs of a valid session (the user row is re-read for authorisation)."""

    raw_id: str
    csrf: str
    user_id: int
    username: str
    role: str


def hash_id(raw_id: str) -> str:
    """The stored form of a cookie id: a database dump does not yield usable cookies."""
    return hashlib.sha256(raw_id.encode()).hexdigest()


def new_raw_id() -> str:
    """256 random bits, URL-safe: unguessable, and carries no data about the user."""
    return secrets.token_urlsafe(32)


def create_session(db: Session, user: User, now: datetime | None = None) -> ActiveSession:
    """A brand-new session (new id and CSRF token: no fixation of a pre-login cookie)."""
    at = now or utcnow()
    raw_id = new_raw_id()
    record = WebSessionRecord(id_hash=hash_id(raw_id), user_id=user.id,
                              csrf=secrets.token_urlsafe(32), created_at=at,
                              last_seen_at=at, expires_at=at + SESSION_LIFETIME)
    db.add(record)
    db.flush()
    return ActiveSession(raw_id, record.csrf, user.id, user.username, user.role.value)


def _is_valid(record: WebSessionRecord, user: User, now: datetime) -> bool:
    """Not revoked, not expired, not idle too long, and the account still active."""
    expires = aware(record.expires_at)
    seen = aware(record.last_seen_at)
    return (record.revoked_at is None and user.active and expires is not None
            and seen is not None and now < expires and now - seen < IDLE_TIMEOUT)


def lookup_session(db: Session, raw_id: str, now: datetime | None = None
                   ) -> tuple[ActiveSession | None, bool]:
    """The valid session of a cookie id, and whether the id names a (possibly dead) session.

    The second value lets the caller replace the cookie of a revoked or expired session
    instead of keeping a dead id around. ``last_seen_at`` is refreshed at most once per
    :data:`TOUCH_EVERY` so reading pages does not write on every request.
    """
    at = now or utcnow()
    row = db.execute(select(WebSessionRecord, User).join(User, User.id == WebSessionRecord.user_id)
                     .where(WebSessionRecord.id_hash == hash_id(raw_id))).first()
    if row is None:
        return None, False
    record, user = row
    if not _is_valid(record, user, at):
        return None, True
    seen = aware(record.last_seen_at)
    if seen is not None and at - seen >= TOUCH_EVERY:
        record.last_seen_at = at
        db.flush()
    return ActiveSession(raw_id, record.csrf, user.id, user.username, user.role.value), True


def revoke_session(db: Session, raw_id: str, now: datetime | None = None) -> None:
    """End one session (logout): its cookie, wherever copied, is refused from now on."""
    db.execute(update(WebSessionRecord)
               .where(WebSessionRecord.id_hash == hash_id(raw_id),
                      WebSessionRecord.revoked_at.is_(None))
               .values(revoked_at=now or utcnow()))
    db.flush()


def revoke_user_sessions(db: Session, user_id: int, now: datetime | None = None) -> int:
    """End every session of a user (password change, account disabled); how many ended."""
    result = db.execute(update(WebSessionRecord)
                        .where(WebSessionRecord.user_id == user_id,
                               WebSessionRecord.revoked_at.is_(None))
                        .values(revoked_at=now or utcnow()))
    db.flush()
    return int(getattr(result, "rowcount", 0) or 0)
