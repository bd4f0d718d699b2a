"""CPU per message of the worker's code path, in ONE process:
``engine.delivery.pipeline.process_batch``.

Why a second benchmark: ``bench/e2e.py`` measures the whole system on a shared machine,
where wall-clock throughput moves with other people's load.  The CPU time one process
spends per message (render, MIME, DKIM, SMTP into Postfix's ``smtp-sink``, database
round trips) hardly does, so before/after figures of a change to the hot path come from
here.  Same services, data and campaign as ``bench/e2e.py`` (scratch PostgreSQL
database, private Redis, smtp-sink on loopback, RSA-2048 DKIM), no Celery::

    .venv/bin/python bench/cpu.py --recipients 5000 --passes 3

Each pass launches the campaign again for the same customers (the frequency cap allows
three sends per week), times ``time.process_time()`` around every batch and skips the
first batch (template compilation, connections).  Prints, per message of each pass, the
CPU of this process, of our PostgreSQL backends and of smtp-sink (from ``/proc``, so the
database must run on this machine) and the wall time, then the median CPU of this
process; ``--profile FILE`` writes a cProfile of the last pass.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e import (  # noqa: E402  (the path above makes `bench` importable)
    backend_cpu,
    cpu_seconds,
    start_services,
    write_campaign,
)


@dataclass
class PassFigures:
    """Per message of one pass: CPU ms of this process, of our PostgreSQL backends and of
    smtp-sink, wall ms; and how many messages."""

    cpu: float
    postgres: float
    sink: float
    wall: float
    sent: int
    faults: float = 0.0  # minor page faults of this process (dear in a nested VM)


def others_cpu(database: str, sink_pid: int) -> tuple[dict[int, float], float]:
    """CPU seconds of the PostgreSQL backends of ``database`` (by pid) and of smtp-sink."""
    return backend_cpu(database), cpu_seconds(sink_pid)


def one_pass(campaign: Path, profiler: cProfile.Profile | None, database: str,
             sink_pid: int) -> PassFigures:
    """The figures of one launched run, its first batch left out (warm-up)."""
    from engine.campaign.loader import load_campaign
    from engine.db import session_scope
    from engine.delivery import scheduler
    from engine.delivery.enqueue import due_batches_for_run
    from engine.delivery.pipeline import process_batch

    with session_scope() as session:
        launched = scheduler.launch(session, load_campaign(campaign),
                                    str(campaign), start_now=True)
        assert launched.run is not None
        run_id = launched.run.id
    batches = due_batches_for_run(run_id)
    process_batch(run_id, batches[0].delivery_ids)  # warm-up: compile, connect
    backends_before, sink_before = others_cpu(database, sink_pid)
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu = wall = 0.0
    sent = 0
    for batch in batches[1:]:
        if profiler is not None:
            profiler.enable()
        c0, w0 = time.process_time(), time.perf_counter()
        result = process_batch(run_id, batch.delivery_ids)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        if profiler is not None:
            profiler.disable()
        sent += result.sent
    if not sent:
        raise SystemExit("nothing was sent: check the campaign and the sink")
    backends_after, sink_after = others_cpu(database, sink_pid)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    postgres = sum(seconds - backends_before.get(pid, 0.0)
                   for pid, seconds in backends_after.items())
    per = 1000 / sent
    return PassFigures(cpu * per, postgres * per, (sink_after - sink_before) * per, wall * per,
                       sent, faults / sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile of the last pass")
    args = parser.parse_args()
    if not 1 <= args.passes <= 3:
        parser.error("--passes: 1 to 3 (the campaign's frequency cap is 3 per 7 days)")
    profile = args.profile.resolve() if args.profile else None
    workdir = Path(tempfile.mkdtemp(prefix="umkm-cpu-"))
    cleanups: list[Callable[[], None]] = []
    try:
        sink, _, db, _ = start_services(workdir, False, args.batch_size, cleanups)
        from engine.db import migrate

        migrate()
        from bench.seed import seed

        seed(db.url, args.recipients, 0)
        figures = []
        for number in range(args.passes):
            campaign = write_campaign(workdir, f"bench-cpu-{number}", "bench")
            last = number == args.passes - 1
            profiler = cProfile.Profile() if profile and last else None
            f = one_pass(campaign, profiler, db.name, sink.proc.pid)
            figures.append(f.cpu)
            print(f"pass {number + 1}: {f.sent:,} messages; ms per message: CPU {f.cpu:.3f}, "
                  f"PostgreSQL {f.postgres:.3f}, smtp-sink {f.sink:.3f}, wall {f.wall:.3f}; "
                  f"all parties {f.cpu + f.postgres + f.sink:.3f}; page faults {f.faults:.1f}")
            if profiler is not None and profile is not None:
                profiler.dump_stats(str(profile))
        print(f"median CPU {statistics.median(figures):.3f} ms/message "
              f"(sink received {sink.messages():,}); load average {os.getloadavg()}")
    finally:
        from engine.delivery.context import reset_process_state

        reset_process_state()
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        os.chdir(ROOT)


if __name__ == "__main__":
    main()
