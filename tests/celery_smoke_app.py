"""The real Celery configuration (workers.celery_app.make_celery) without the engine's
tasks, plus two trivial ones: lets the process harness be tested on its own, before and
independently of workers.tasks / engine.delivery.pipeline.

Run as ``celery -A tests.celery_smoke_app worker ...``.
"""

from __future__ import annotations

import time
from pathlib import Path

from workers.celery_app import make_celery

app = make_celery()
app.conf.include = []  # no workers.tasks: this app must not need the engine's dispatch


@app.task(name="smoke.touch")
def touch(path: str, text: str = "done") -> str:
    """Write ``text`` to ``path``: the test sees that a task really ran in the worker."""
    Path(path).write_text(text)
    return text


@app.task(name="smoke.slow_touch")
def slow_touch(started: str, path: str, seconds: float) -> None:
    """Mark the start, work ``seconds``, then write ``path``: a task in flight for
    shutdown tests (a warm shutdown must let it finish)."""
    Path(started).write_text("started")
    time.sleep(seconds)
    Path(path).write_text("finished")
