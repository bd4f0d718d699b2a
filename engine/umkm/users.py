"""Portal and dashboard accounts: Dinas admins and staff, and UMKM owners.

Passwords are hashed with Argon2id (argon2-cffi, RFC 9106 low-memory profile), never
stored or logged in clear. :func:`authenticate` spends the same work whether or not the
username exists, so response times do not reveal which accounts exist. A hash made with
older parameters is upgraded transparently at the next successful login.

Like :mod:`engine.umkm.businesses`, functions ``flush`` but never ``commit``: the caller owns
the unit of work. Errors are :class:`UserError` with a message ready to show.
"""

from __future__ import annotations

import re
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest
from engine.models import AuditLog, Business, Role, User
from engine.umkm.sessions import revoke_user_sessions

MIN_PASSWORD = 8
MAX_PASSWORD = 256
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,119}$")
STAFF_ROLES = frozenset({Role.dinas_admin, Role.dinas_staff})
# Accounts that act for the Dinas and so never own a UMKM (a pendamping of Pasal 9 included).
NO_BUSINESS_ROLES = STAFF_ROLES | {Role.pendamping}



class UserError(BadRequest):
    """A refusal with a message meant for the person at the keyboard (translated)."""


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """One hasher per process (argon2-cffi defaults: Argon2id, RFC 9106 low-memory)."""
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the username does not exist, to keep timing uniform.
    return hasher().hash("dummy-password-for-timing")


def normalize_username(username: str) -> str:
    return (username or "").strip().casefold()


def parse_role(role: str | Role) -> Role:
    try:
        return Role(str(role).strip())
    except ValueError:
        raise UserError("user.err.role", role=str(role)) from None


def check_password_policy(password: str, username: str = "") -> None:
    """Length limits only (NIST SP 800-63B): no composition rules that push people to
    write passwords down; the upper bound keeps hashing cost bounded."""
    if len(password) < MIN_PASSWORD:
        raise UserError("user.err.password_short", n=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise UserError("user.err.password_long", n=MAX_PASSWORD)
    if username and password.casefold() == username.casefold():
        raise UserError("user.err.password_same_as_username")


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str | Role,
    business_id: int | None = None,
    *,
    actor: str = "cli",
) -> User:
    """Create an account; an owner may be linked to a UMKM now or register one later."""
    name = normalize_username(username)
    if not _USERNAME_RE.match(name):
        raise UserError("user.err.username")
    role_value = parse_role(role)
    check_password_policy(password, name)
    if session.scalars(select(User.id).where(User.username == name)).first() is not None:
        raise UserError("user.err.duplicate", username=name)
    if business_id is not None:
        if role_value in NO_BUSINESS_ROLES:
            raise UserError("user.err.staff_business")
        _check_business_free(session, business_id)
    user = User(
        username=name,
        password_hash=hasher().hash(password),
        role=role_value,
        business_id=business_id,
        active=True,
    )
    session.add(user)
    session.flush()
    _audit(session, actor, "user.create", user, {"role": role_value.value,
                                                 "business_id": business_id})
    return user


def _check_business_free(session: Session, business_id: int) -> None:
    """One owner account per UMKM keeps "who changed this business" unambiguous."""
    if session.get(Business, business_id) is None:
        raise UserError("user.err.business_missing", id=business_id)
    holder = session.scalars(
        select(User.username).where(User.business_id == business_id)
    ).first()
    if holder is not None:
        raise UserError("user.err.business_taken", id=business_id, username=holder)


def get_user(session: Session, username: str) -> User:
    user = session.scalars(
        select(User).where(User.username == normalize_username(username))
    ).first()
    if user is None:
        raise UserError("user.err.not_found", username=username)
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, else ``None`` (same work either way)."""
    name = normalize_username(username)
    user = session.scalars(select(User).where(User.username == name)).first() if name else None
    if user is None or not user.active:
        _verify(_dummy_hash(), password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(password)
        session.flush()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(session: Session, user: User, new_password: str, *, actor: str = "cli") -> None:
    """Replace the password (admin reset or own change) and end every session of the user:
    whoever knew the old password may hold a cookie; the caller may open a new session."""
    check_password_policy(new_password, user.username)
    user.password_hash = hasher().hash(new_password)
    session.flush()
    revoke_user_sessions(session, user.id)
    _audit(session, actor, "user.password", user, {})


def change_password(session: Session, user: User, old_password: str, new_password: str) -> None:
    """The user's own change: the current password must be confirmed first."""
    if not _verify(user.password_hash, old_password):
        raise UserError("user.err.wrong_password")
    set_password(session, user, new_password, actor=user.username)


def link_business(session: Session, user: User, business_id: int, *, actor: str) -> None:
    """Give an owner account its UMKM (after the owner registered it in the portal)."""
    if user.role in NO_BUSINESS_ROLES:
        raise UserError("user.err.staff_business")
    if user.business_id == business_id:
        return
    _check_business_free(session, business_id)
    user.business_id = business_id
    session.flush()
    _audit(session, actor, "user.link_business", user, {"business_id": business_id})


def set_active(session: Session, user: User, active: bool, *, actor: str) -> None:
    """Disable (or re-enable) an account; its history stays in the audit log."""
    user.active = active
    session.flush()
    if not active:  # a disabled account must not stay logged in anywhere
        revoke_user_sessions(session, user.id)
    _audit(session, actor, "user.enable" if active else "user.disable", user, {})


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(func.lower(User.username))))


def is_staff(user: User) -> bool:
    return user.role in STAFF_ROLES


def _audit(session: Session, actor: str, action: str, user: User, detail: dict[str, object]
           ) -> None:
    session.add(AuditLog(actor=actor, action=action, entity="user", entity_id=str(user.id),
                         detail={"username": user.username, **detail}))
    session.flush()
