"""A stop request for the batch in flight: SIGTERM ends a batch within one message.

Why: ``kill -TERM -PGID`` and systemd's default ``KillMode=control-group`` signal the
Celery pool children along with their parent.  Billiard's own handler turns that into
``SystemExit`` in the middle of a batch: the messages already sent are never recorded,
the rows stay ``sending`` until their lease runs out and then go out again.  Instead,
while a batch is in flight, SIGTERM only *asks* it to stop: the send gate
(:mod:`engine.delivery.gate`) refuses the next message, the batch records what it sent,
hands the untried rest back without spending an attempt, and returns; the parent's warm
shutdown then ends the child in the ordinary way.  Between batches the previous
handler runs as before (the idle child exits at once).

A pool child that alone got SIGTERM gives back its batch and goes on with the next one:
the signal stops a batch, never a message half way.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

_stop = threading.Event()
_busy = threading.Event()
_previous: dict[int, Any] = {}


def requested() -> bool:
    """Whether the batch in flight was asked to stop."""
    return _stop.is_set()


def request() -> None:
    """Ask the batch in flight to stop before its next message (tests, embedded mode)."""
    _stop.set()


@contextmanager
def batch_in_progress() -> Iterator[None]:
    """Mark a batch as running; a stop asked during it ends with it."""
    _busy.set()
    try:
        yield
    finally:
        _busy.clear()
        if _stop.is_set():
            log.warning("batch stopped on request (SIGTERM): untried messages handed back")
        _stop.clear()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _busy.is_set():
        _stop.set()
        return
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def install_sigterm_handler() -> bool:
    """Take over SIGTERM in this process (a pool child); idempotent. Returns whether
    it was installed now."""
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm:
        return False
    _previous[signal.SIGTERM] = current
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True
