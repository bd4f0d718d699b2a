"""The lease a worker holds on its claimed rows while it sends them (issue 14).

A claim (:func:`engine.outbox.rows.claim`) is valid until ``lease_until`` on the clock
of the claim (the wall clock, or the beat's own instant); the sweeper requeues a row
only after that.  The worker keeps, on its own monotonic clock, a conservative copy of
the expiry (taken *before* each renewal was asked, so it can only be earlier than the
database's), and before every message it asks :meth:`Lease.holds`: when less than two
thirds of the lease are left it renews first, in one statement for the whole batch.  A
message is therefore sent only while at least two thirds of a lease remain, which is
what keeps one slow answer from letting the sweeper hand the same row to a second
worker; a row lost anyway (the process stalled past its lease) is not sent at all, and
the batch goes on with the others.

Why renewal is lazy instead of a heartbeat thread: the batch's own thread is the one
that sends, so a stalled thread must also stop renewing, or the lease would protect a
worker that can no longer finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from engine.outbox.rows import renew

RENEW_WHEN_LEFT = 2 / 3  # renew once less than this share of the lease remains


class Lease:
    """The rows one claim holds and until when (monotonic); renews on demand."""

    def __init__(self, owner: str, delivery_ids: Iterable[int], seconds: float,
                 connection: Callable[[], Connection], *, claimed_at: datetime,
                 clock: Callable[[], float] = time.monotonic,
                 started: float | None = None) -> None:
        self.owner = owner
        self.seconds = max(1.0, float(seconds))
        self._connection = connection  # the caller's autocommit connection, as it is now
        self._clock = clock
        self._held = set(delivery_ids)
        self._started = clock() if started is None else started
        self._claimed_at = claimed_at  # the claim's clock (wall, or the caller's own)
        self._valid_until = self._started + self.seconds
        self.renewals = 0
        self.lost: set[int] = set()

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    def remaining(self) -> float:
        """Seconds of lease left by the worker's own (conservative) reckoning."""
        return self._valid_until - self._clock()

    def holds(self, delivery_id: int) -> bool:
        """Whether this claim may send ``delivery_id`` now (renewing first if due)."""
        if delivery_id not in self._held:
            return False
        if self.remaining() < self.seconds * RENEW_WHEN_LEFT:
            self.renew()
        return delivery_id in self._held

    def renew(self) -> None:
        """Extend the lease of every row still held; forget the rows no longer ours."""
        asked_at = self._clock()
        wall = self._claimed_at + timedelta(seconds=asked_at - self._started + self.seconds)
        still = renew(self._connection(), self._held, self.owner, wall)
        self.lost |= self._held - still
        self._held = still
        self._valid_until = asked_at + self.seconds
        self.renewals += 1
