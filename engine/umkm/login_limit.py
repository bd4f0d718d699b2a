"""Login throttling that holds under concurrency and across web processes.

Each key (one user name, one client address, and one global key against password
spraying) has one row in ``login_attempt`` whose counter is raised by a single atomic
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (SQLite >= 3.35 and PostgreSQL
alike). The web layer raises the counters *before* the password hash is verified, so
N parallel requests get N distinct counts and only those within the limit ever reach
Argon2: the check and the increment cannot be separated by a race.

A successful login resets its user-name counter and gives back its unit of the address
and global counters, so only failures (and refused attempts) accumulate. Windows are
fixed: a counter whose window began more than :data:`WINDOW` ago restarts at 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.models import LoginAttempt, utcnow

WINDOW = timedelta(minutes=15)
PER_USERNAME = 5
PER_ADDRESS = 20
GLOBAL = 200
GLOBAL_KEY = "global"


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one attempt: allowed to verify the password, or not."""

    allowed: bool
    username_hits: int
    address_hits: int
    global_hits: int


def username_key(username: str) -> str:
    """Hashed, so an arbitrarily long or odd input is a fixed-size key."""
    return "user:" + hashlib.sha256(username.encode()).hexdigest()[:40]


def address_key(address: str) -> str:
    return "addr:" + hashlib.sha256(address.encode()).hexdigest()[:40]


def bump(db: Session, key: str, now: datetime | None = None,
         window: timedelta = WINDOW) -> int:
    """Atomically count one attempt for ``key`` and return the count in its window.

    Other throttles (the owner sign-up) share the table with their own key prefixes and
    windows, so no second counter table is needed.
    """
    at = now or utcnow()
    stale = LoginAttempt.window_start < at - window
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(LoginAttempt).values(attempt_key=key, window_start=at, hits=1)
    stmt = upsert.on_conflict_do_update(
        index_elements=[LoginAttempt.attempt_key],
        set_={"hits": case((stale, 1), else_=LoginAttempt.hits + 1),
              "window_start": case((stale, at), else_=LoginAttempt.window_start)},
    ).returning(LoginAttempt.hits)
    return int(db.execute(stmt).scalar_one())


def count_attempt(db: Session, username: str, address: str,
                  now: datetime | None = None) -> Verdict:
    """Raise all three counters; ``allowed`` only while every one is within its limit."""
    user_hits = bump(db, username_key(username), now)
    addr_hits = bump(db, address_key(address), now)
    global_hits = bump(db, GLOBAL_KEY, now)
    allowed = (user_hits <= PER_USERNAME and addr_hits <= PER_ADDRESS
               and global_hits <= GLOBAL)
    return Verdict(allowed, user_hits, addr_hits, global_hits)


def record_success(db: Session, username: str, address: str) -> None:
    """Reset the user name's counter; refund this attempt on the shared counters."""
    db.execute(delete(LoginAttempt).where(LoginAttempt.attempt_key == username_key(username)))
    db.execute(update(LoginAttempt)
               .where(LoginAttempt.attempt_key.in_([address_key(address), GLOBAL_KEY]),
                      LoginAttempt.hits > 0)
               .values(hits=LoginAttempt.hits - 1))
    db.flush()
