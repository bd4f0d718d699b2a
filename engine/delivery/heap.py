"""The worker's long-lived heap, frozen out of Python's full garbage collections.

Why: a worker holds ~190k long-lived container objects (modules, SQLAlchemy metadata,
compiled templates, a run's caches), and every full collection walks all of them: in
``bench/cpu.py`` the collector took ~70 µs of CPU per message, most of it in two or
three full collections per 5,000 messages.  ``gc.freeze()`` moves what exists into a
generation the collector never walks (the CPython documentation suggests it for
long-lived servers); the per-message garbage is collected as before.

The price of freezing is that an object frozen and later left in an unreachable cycle
is not reclaimed until it is unfrozen.  So the heap is frozen again, after one full
collection (tens of milliseconds), when the process works on a run whose caches were
built after the last freeze, at most every :data:`REFREEZE_SECONDS`: what an earlier
run left behind is collected then, and a process that serves many short runs
(receipts) collects at most once per interval.
"""

from __future__ import annotations

import gc
import threading
import time

__all__ = ["REFREEZE_SECONDS", "after_batch", "reset"]

REFREEZE_SECONDS = 30.0
_RUNS_REMEMBERED = 256  # bounded; a forgotten run may freeze again (rate-limited)

_lock = threading.Lock()
_state: dict[str, float] = {"frozen_at": float("-inf")}
_runs_since_freeze: set[int] = set()  # runs whose batches ran before the last freeze


def after_batch(run_id: int, now: float | None = None) -> bool:
    """After a batch of ``run_id``: freeze the heap when this run is new to the frozen
    heap and the last freeze is old enough.  True when it froze (for tests)."""
    clock = time.monotonic() if now is None else now
    with _lock:
        if run_id in _runs_since_freeze:
            return False
        if clock - _state["frozen_at"] < REFREEZE_SECONDS:
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _state["frozen_at"] = clock
        if len(_runs_since_freeze) >= _RUNS_REMEMBERED:
            _runs_since_freeze.clear()
        _runs_since_freeze.add(run_id)
        return True


def reset() -> None:
    """Unfreeze and forget (tests, the end of a worker)."""
    with _lock:
        gc.unfreeze()
        _state["frozen_at"] = float("-inf")
        _runs_since_freeze.clear()
