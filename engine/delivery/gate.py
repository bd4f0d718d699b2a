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

On PostgreSQL the status is not read before every message but *watched* (issue 22):
a trigger on ``campaign_run`` (migration 0016) sends ``NOTIFY umkm_run_<id>`` when a
run's status changes, the gate's connection listens before it reads the status
once, and before each message it only looks whether a notification arrived (a
non-blocking read of its socket, ~2 µs) and reads the status again when one did.  A
status query per message was 250 round trips a batch: ~0.1 ms of worker CPU and
~0.05 ms of PostgreSQL per message here.  Without the trigger (a database not
migrated) and on SQLite the status is read before every message, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text
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
NOTIFY_TRIGGER = "campaign_run_status_notify"  # migration 0016
_trigger_checked: dict[str, bool] = {}  # database URL -> whether the trigger is there


def notify_channel(run_id: int) -> str:
    """The LISTEN/NOTIFY channel of one run's status (the trigger's ``pg_notify``)."""
    return f"umkm_run_{int(run_id)}"


class StatusWatch:
    """Whether a run's status may have changed since the gate last read it.

    Listening (PostgreSQL with the trigger): only after a notification, or when the
    connection was replaced.  Not listening: always, so the status is read before
    every message.
    """

    def __init__(self, run_id: int, listening: bool) -> None:
        self.run_id = run_id
        self.listening = listening
        self._changed = True  # nothing read yet
        self._driver: Any = None

    def attach(self, connection: Connection) -> None:
        """LISTEN on a (new) autocommit connection; the next check reads the status."""
        self._changed = True
        if not self.listening:
            return
        connection.exec_driver_sql(f'LISTEN "{notify_channel(self.run_id)}"')
        self._driver = connection.connection.driver_connection
        # Notifications that arrive while a lease renewal runs on this connection are
        # handed to this handler by psycopg; the others are read in :meth:`changed`.
        self._driver.add_notify_handler(self._notified)

    def _notified(self, _notify: object) -> None:
        self._changed = True

    def changed(self) -> bool:
        """True when the status must be read again (and forget the notification)."""
        if not self.listening:
            return True
        if not self._changed:
            pgconn = self._driver.pgconn
            try:
                pgconn.consume_input()  # non-blocking: whatever the socket holds
            except Exception:  # a lost connection: the status query reconnects
                return True
            while pgconn.notifies() is not None:
                self._changed = True
        changed, self._changed = self._changed, False
        return changed

    def detach(self, connection: Connection) -> None:
        """Stop listening before the connection goes back to the pool."""
        if self._driver is None:
            return
        with contextlib.suppress(Exception):
            self._driver.remove_notify_handler(self._notified)
        with contextlib.suppress(Exception):
            connection.exec_driver_sql("UNLISTEN *")
        self._driver = None


def _can_listen(engine: Engine, connection: Connection) -> bool:
    """PostgreSQL with the status trigger installed (checked once per database)."""
    if engine.dialect.name != "postgresql":
        return False
    url = engine.url.render_as_string(hide_password=True)
    found = _trigger_checked.get(url)
    if found is None:
        found = _trigger_checked[url] = connection.execute(
            text("SELECT count(*) FROM pg_trigger WHERE tgname = :name AND NOT tgisinternal"),
            {"name": NOTIFY_TRIGGER}).scalar_one() > 0
    return bool(found)


class SendGate:
    """Callable handed to the channel's ``send_batch``: ``gate(message) -> reason | None``."""

    def __init__(self, run_id: int, spec: CampaignSpec, lease: Lease, connection: Connection,
                 clock: Callable[[], datetime], reconnect: Callable[[], Connection],
                 watch: StatusWatch | None = None) -> None:
        self.run_id = run_id
        self.spec = spec
        self.lease = lease
        self.connection = connection
        self._reconnect = reconnect
        self._clock = clock
        self.watch = watch or StatusWatch(run_id, listening=False)
        self._status: object = None
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
            self.watch.attach(self.connection)
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
        if self.watch.changed():
            self._status = self.connection.execute(
                select(CampaignRun.status).where(CampaignRun.id == self.run_id)
            ).scalar_one_or_none()
        value = getattr(self._status, "value", self._status)
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
    watch = StatusWatch(run_id, listening=False)
    try:
        watch = StatusWatch(run_id, listening=_can_listen(engine, gate_connection))
        watch.attach(gate_connection)  # before the first read of the status
        lease = Lease(owner, claimed, settings.lease_seconds, lambda: holder[0].connection,
                      claimed_at=claim_clock, started=claimed_at)
        holder.append(SendGate(run_id, spec, lease, gate_connection,
                               (lambda: fixed_now) if fixed_now is not None else utcnow,
                               lambda: _autocommit(engine), watch))
        yield holder[0]
    finally:
        last = holder[0].connection if holder else gate_connection
        watch.detach(last)
        last.close()


def _autocommit(engine: Engine) -> Connection:
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
