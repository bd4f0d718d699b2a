"""The check before every message of a batch: lease, pause, cancel, window, shutdown.

Why per message and not per batch (issue 14): a batch of 250 to a slow relay runs for
minutes, so a pause, a cancel or the end of the send window checked only between
batches let dozens of messages out after the click, and a run smaller than one batch
could not be paused at all.  The gate asks the database for the run's status before
each message (one primary-key read on an autocommit connection of its own, so it sees
a click made a moment ago even on SQLite, where the batch's session holds a snapshot)
and the lease whether the row is still ours (renewing it when due).  At most the
message already on the wire goes out after the click.

The answer is ``None`` (send) or the reason to stop; :data:`LEASE_LOST` stops only
that message, every other reason the rest of the batch, which goes back to
``pending`` without spending an attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from channels.base import OutboundMessage
from engine.campaign.schema import CampaignSpec
from engine.campaign.window import in_send_window
from engine.config import Settings
from engine.db import get_engine
from engine.delivery import stopping
from engine.models import CampaignRun, RunStatus, utcnow
from engine.outbox.lease import Lease

LEASE_LOST = "lease_lost"
SHUTDOWN = "shutdown"
WINDOW = "window"
PAUSED = "paused"
CANCELLED = "cancelled"
STOPPED = "stopped"  # finished or failed under it


class SendGate:
    """Callable handed to the channel's ``send_batch``: ``gate(message) -> reason | None``."""

    def __init__(self, run_id: int, spec: CampaignSpec, lease: Lease, connection: Connection,
                 clock: Callable[[], datetime], reconnect: Callable[[], Connection]) -> None:
        self.run_id = run_id
        self.spec = spec
        self.lease = lease
        self.connection = connection
        self._reconnect = reconnect
        self._clock = clock
        self.stopped_by: str | None = None
        self.stopped_at: datetime | None = None  # the gate's clock when it stopped

    def __call__(self, message: OutboundMessage) -> str | None:
        try:
            return self._check(message)
        except DBAPIError:
            # One lost connection (a database restart, a killed backend) is replaced
            # once; a database that stays away ends the batch with the error.
            self.connection.invalidate()
            self.connection = self._reconnect()
            return self._check(message)

    def _check(self, message: OutboundMessage) -> str | None:
        reason = self._batch_reason()
        if reason is not None:
            if self.stopped_by is None:
                self.stopped_by, self.stopped_at = reason, self._clock()
            return reason
        if not self.lease.holds(message.delivery_id):
            return LEASE_LOST
        return None

    def _batch_reason(self) -> str | None:
        if stopping.requested():
            return SHUTDOWN
        status = self.connection.execute(
            select(CampaignRun.status).where(CampaignRun.id == self.run_id)).scalar_one_or_none()
        value = getattr(status, "value", status)
        if value == RunStatus.paused.value:
            return PAUSED
        if value == RunStatus.cancelled.value:
            return CANCELLED
        if value != RunStatus.running.value:
            return STOPPED
        if not in_send_window(self.spec, self._clock()):
            return WINDOW
        return None


@contextmanager
def open_gate(settings: Settings, run_id: int, spec: CampaignSpec, owner: str,
              claimed: list[int], fixed_now: datetime | None,
              claimed_at: float, claim_clock: datetime) -> Iterator[SendGate]:
    """A gate with its own autocommit connection for the duration of one batch;
    ``claimed_at`` is the monotonic time taken just before the claim was asked, and
    ``claim_clock`` the instant the claim's lease was counted from."""
    engine = get_engine(settings)
    holder: list[SendGate] = []
    gate_connection = _autocommit(engine)
    try:
        lease = Lease(owner, claimed, settings.lease_seconds, lambda: holder[0].connection,
                      claimed_at=claim_clock, started=claimed_at)
        holder.append(SendGate(run_id, spec, lease, gate_connection,
                               (lambda: fixed_now) if fixed_now is not None else utcnow,
                               lambda: _autocommit(engine)))
        yield holder[0]
    finally:
        (holder[0].connection if holder else gate_connection).close()


def _autocommit(engine: Engine) -> Connection:
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
