"""The process harness itself: private Redis restarts on its port; real Celery workers
start, consume, answer ping and shut down warm (running task finished, exit code 0)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from celery import Celery

from tests.services import BeatFactory, CeleryWorkers, RedisServer, wait_until

pytestmark = pytest.mark.redis

SMOKE_APP = "tests.celery_smoke_app"


def test_private_redis_restarts_on_the_same_port(private_redis: RedisServer) -> None:
    port = private_redis.port
    private_redis.client().set("k", "v")

    private_redis.stop()
    assert not private_redis.running
    with pytest.raises(Exception, match="onnect"):
        private_redis.client().ping()

    private_redis.start()
    assert private_redis.port == port
    assert private_redis.client().ping()
    assert private_redis.client().get("k") is None  # no persistence by default


def test_private_redis_with_persistence_keeps_data(private_redis: RedisServer) -> None:
    private_redis.restart(persist=True)
    private_redis.client().set("k", "v")
    private_redis.restart()  # the AOF choice sticks
    assert private_redis.client().get("k") == b"v"


def _env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    var_dir = tmp_path / "var"
    var_dir.mkdir(exist_ok=True)
    return {"REDIS_URL": redis_url, "VAR_DIR": str(var_dir),
            "DATABASE_URL": f"sqlite:///{var_dir / 'umkm.db'}",
            "SECRET_KEY": "test-secret-key-not-for-production-0123456789"}


def test_worker_consumes_answers_ping_and_stops_warm(
    celery_workers: CeleryWorkers, clean_redis: str, tmp_path: Path
) -> None:
    group = celery_workers.start(1, _env(clean_redis, tmp_path), app=SMOKE_APP)
    assert group.alive(0) and group.pids[0]
    assert group.ping(0)

    client = Celery("client", broker=clean_redis)
    try:
        done = tmp_path / "done.txt"
        client.send_task("smoke.touch", (str(done),), queue="transactional")
        assert wait_until(done.exists, 30), group.logs(0)

        started, finished = tmp_path / "started", tmp_path / "finished"
        client.send_task("smoke.slow_touch", (str(started), str(finished), 1.5), queue="bulk")
        assert wait_until(started.exists, 30), group.logs(0)
    finally:
        client.close()

    assert group.stop_gracefully(0) == 0
    assert finished.read_text() == "finished"  # warm shutdown let the task finish
    assert not group.alive(0)
    assert "Warm shutdown" in group.logs(0)


def test_killed_worker_restarts_with_same_name(
    celery_workers: CeleryWorkers, clean_redis: str, tmp_path: Path
) -> None:
    group = celery_workers.start(1, _env(clean_redis, tmp_path), app=SMOKE_APP,
                                 queues=("bulk",), pool="solo")
    first_pid = group.pids[0]
    group.kill(0, signal.SIGKILL)
    assert group.pids == [None]

    group.restart(0)
    assert group.pids[0] not in (None, first_pid)
    assert group.ping(0)
    assert group.logs(0).count(f"{group.hostnames[0]} ready.") == 2


def test_beat_starts_and_stops(beat_process: BeatFactory, clean_redis: str,
                               tmp_path: Path) -> None:
    beat = beat_process.start(_env(clean_redis, tmp_path), app=SMOKE_APP)
    assert beat.alive and beat.pid
    assert beat.stop() == 0
    # its schedule state went to the test's tmp dir, not the working tree
    assert list(beat.schedule_path.parent.glob(beat.schedule_path.name + "*"))
