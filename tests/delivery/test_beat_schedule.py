"""The beat schedule: one entry per periodic job, each its own task with its own limits.

Why it is shaped so: when every job ran in one tick task, a slow provider behind the
social-metrics poll held back the sweeper and the start of due campaigns for as long as
it hung. Separate entries are sent by the beat on their own, separate tasks are taken
by free worker slots on their own, and a hard time limit bounds how long any one job
can occupy a slot. These tests check that structure; none of them waits on a clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.delivery import beat
from workers import tasks
from workers.celery_app import BEAT_JOBS, QUEUE_BEAT, app, make_celery


def _task(name: str) -> Any:
    return app.tasks[name]


def test_the_schedule_has_one_entry_per_engine_job_each_with_its_own_task(
    settings: Settings,
) -> None:
    schedule = make_celery(settings).conf.beat_schedule
    assert set(schedule) == set(beat.JOBS) == set(BEAT_JOBS)
    task_names = [entry["task"] for entry in schedule.values()]
    assert len(set(task_names)) == len(task_names), "two jobs share one task"
    for name, entry in schedule.items():
        assert entry["task"] == BEAT_JOBS[name].task
        assert entry["schedule"] == settings.beat_interval_seconds
        assert entry["task"] in app.tasks, f"{entry['task']} is not a registered task"


@pytest.mark.parametrize("job", sorted(BEAT_JOBS))
def test_every_beat_task_has_its_own_soft_and_hard_time_limit(job: str) -> None:
    task = _task(BEAT_JOBS[job].task)
    assert task.soft_time_limit == BEAT_JOBS[job].soft_time_limit
    assert task.time_limit == BEAT_JOBS[job].time_limit
    assert 0 < task.soft_time_limit < task.time_limit
    assert app.conf.task_routes[task.name] == {"queue": QUEUE_BEAT}


def test_the_sweeper_never_waits_for_the_social_metrics_job() -> None:
    """Two entries, two tasks, two limits: the beat sends the sweeper on its own
    schedule whatever the metrics task is doing, and the metrics task can hold a worker
    slot for at most its own hard limit. Nothing runs both jobs in one task."""
    sweeper, metrics = BEAT_JOBS["sweeper"], BEAT_JOBS["social_metrics"]
    assert sweeper.task != metrics.task
    schedule = app.conf.beat_schedule
    assert schedule["sweeper"]["task"] == sweeper.task
    assert schedule["social_metrics"]["task"] == metrics.task
    assert _task(metrics.task).time_limit == metrics.time_limit
    assert _task(sweeper.task).time_limit == sweeper.time_limit
    assert not any(entry["task"] == "workers.tasks.beat_tick" for entry in schedule.values())
    assert "workers.tasks.beat_tick" not in app.tasks


@pytest.mark.parametrize("job", sorted(BEAT_JOBS))
def test_every_beat_task_runs_its_job_on_an_empty_database(db: Session, job: str) -> None:
    """Each task runs alone (eagerly here, as `umkm serve` and `make demo` run the
    same code) and reports what its job did and how many batches it enqueued."""
    result = _task(BEAT_JOBS[job].task).apply().get()
    assert result == {"count": 0, "enqueued": 0}


def test_run_all_runs_each_job_once_at_one_clock(db: Session, settings: Settings) -> None:
    reports = beat.run_all(settings)
    assert list(reports) == list(beat.JOBS)
    assert beat.batches_of(reports) == []
    assert tasks.run_beat_job("sweeper") == {"count": 0, "enqueued": 0}
