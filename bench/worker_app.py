"""The production Celery app plus per-task timings, for ``bench/e2e.py`` only.

Workers of the benchmark run ``celery -A bench.worker_app worker``: the very same app,
tasks and settings as ``workers.celery_app``, with two signal handlers that push one
small JSON record per task (start, end, batch size, RSS of the pool process) to a Redis
list. Nothing here is imported by the engine, so production carries no overhead.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery.signals import task_postrun, task_prerun

from workers.celery_app import app

__all__ = ["TIMINGS_KEY", "app"]

TIMINGS_KEY = "umkm:bench:timings"
_started: dict[str, tuple[float, float]] = {}
_client: list[redis.Redis] = []


def _redis() -> redis.Redis:
    """One client per pool process, made after the fork."""
    if not _client:
        _client.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
    return _client[0]


def _memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in kB."""
    rss = hwm = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


@task_prerun.connect
def _before(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = (time.time(), time.perf_counter())


@task_postrun.connect
def _after(task_id: str | None = None, args: Any = None, retval: Any = None,
           **_: Any) -> None:
    started = _started.pop(task_id or "", None)
    if started is None:
        return
    rss, hwm = _memory_kb()
    record = {"start": started[0], "end": time.time(),
              "seconds": time.perf_counter() - started[1], "pid": os.getpid(),
              "size": len(args[1]) if args and len(args) > 1 else 0,
              "result": retval if isinstance(retval, dict) else {},
              "rss_kb": rss, "hwm_kb": hwm}
    _redis().rpush(TIMINGS_KEY, json.dumps(record))
