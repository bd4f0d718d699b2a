"""Buffered opens and clicks (issue 22): Redis stream in, bulk insert out, exactly once.

Real Redis (this session's private database number, emptied per test) and both
database backends. A consumer "killed" between XREADGROUP and XACK is simulated by
dropping the object after it read (and after it wrote); the real SIGKILL of a running
``umkm tracking consume`` is the last test.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.db import get_engine, session_factory
from engine.delivery import beat
from engine.engagement import events
from engine.engagement.ingest import (
    FIELD,
    GROUP,
    STREAM_KEY,
    encode_row,
    load_delivery,
    open_row,
)
from engine.engagement.stream_consumer import StreamConsumer
from engine.engagement.tracking import make_click_token, make_open_token
from engine.models import EngagementEvent, utcnow
from tests.services import wait_until
from tests.web.test_tracking_web import BROWSER, World, add_link, make_world
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
SCANNER = "Mozilla/5.0 (compatible; Barracuda Sentinel)"
COMPARED = ("type", "channel", "delivery_id", "run_id", "customer_id", "business_id",
            "product_id", "link_id", "suspected_bot", "raw")


@pytest.fixture
def buffered(settings: Settings, clean_redis: str) -> Settings:
    """The same database, with the Redis of this test session: events are buffered."""
    return dataclasses.replace(settings, redis_url=clean_redis)


@pytest.fixture
def stream(clean_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(clean_redis)
    yield client
    client.close()


def pending(stream: redis.Redis) -> int:
    summary: Any = stream.xpending(STREAM_KEY, GROUP)
    return int(summary["pending"])


def consumer(settings: Settings, stream: redis.Redis, name: str, **options: Any
             ) -> StreamConsumer:
    return StreamConsumer(stream, session_factory(settings), name=name, **options)


def stored(db: Session) -> list[EngagementEvent]:
    db.expire_all()
    return list(db.scalars(select(EngagementEvent).order_by(EngagementEvent.id)))


def signature(rows: list[EngagementEvent]) -> list[tuple[Any, ...]]:
    return sorted((tuple(getattr(r, c) for c in COMPARED) for r in rows), key=repr)


def hit_everything(client: TestClient, world: World) -> None:
    """Two opens and two clicks, by a person and by a scanner."""
    opened = f"/t/o/{make_open_token(world.delivery.id)}"
    clicked = f"/t/c/{make_click_token(world.delivery.id, world.link.id)}"
    for agent in (BROWSER, SCANNER):
        assert client.get(opened, headers={"User-Agent": agent}).status_code == 200
        answer = client.get(clicked, headers={"User-Agent": agent}, follow_redirects=False)
        assert answer.status_code == 302


def buffer_opens(settings: Settings, stream: redis.Redis, world: World, n: int) -> list[str]:
    """``n`` accepted opens as the web app appends them (one XADD each)."""
    with session_factory(settings)() as session:
        facts = load_delivery(session, world.delivery.id)
    assert facts is not None
    ids: list[Any] = [stream.xadd(STREAM_KEY, {FIELD: encode_row(open_row(facts, BROWSER))})
                      for _ in range(n)]
    return [i.decode() for i in ids]


def test_buffered_events_equal_the_direct_path(settings: Settings, buffered: Settings,
                                               stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    with TestClient(create_app(settings)) as direct:
        hit_everything(direct, world)
    direct_rows = stored(db)
    assert len(direct_rows) == 4
    with TestClient(create_app(buffered)) as client:
        hit_everything(client, world)
    assert len(stored(db)) == 4  # buffered: nothing written by the web requests
    assert stream.xlen(STREAM_KEY) == 4

    report = consumer(settings, stream, "c1").drain()

    assert (report.read, report.dropped) == (4, 0)
    rows = stored(db)
    buffered_rows = rows[4:]
    assert signature(buffered_rows) == signature(direct_rows)
    # ...and both equal what the ORM path of engine.engagement.events stores.
    for agent in (BROWSER, SCANNER):
        events.record_open(db, world.delivery, user_agent=agent)
        events.record_click(db, world.delivery, world.link, user_agent=agent)
    db.commit()
    assert signature(stored(db)[8:]) == signature(buffered_rows)
    assert all(r.event_key for r in buffered_rows)
    assert stream.xlen(STREAM_KEY) == 0  # stored entries are deleted from the stream


def test_consumer_killed_after_reading_loses_nothing(settings: Settings, stream: redis.Redis,
                                                     db: Session) -> None:
    world = make_world(db)
    buffer_opens(settings, stream, world, 5)
    dead = consumer(settings, stream, "dead")
    dead.ensure_group()
    assert len(dead.read_new()) == 5  # read, then "killed" before writing or XACK

    patient = consumer(settings, stream, "patient", claim_idle_ms=3_600_000)
    assert patient.drain().read == 0  # a live consumer's fresh entries are not taken
    report = consumer(settings, stream, "heir", claim_idle_ms=0).drain()

    assert (report.read, report.reclaimed) == (5, 5)
    assert len(stored(db)) == 5
    assert pending(stream) == 0


def test_consumer_killed_after_commit_before_ack_writes_once(
        settings: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    buffer_opens(settings, stream, world, 7)
    dead = consumer(settings, stream, "dead")
    dead.ensure_group()
    entries = dead.read_new()
    dead.write(entries)  # committed, then killed before XACK
    assert len(stored(db)) == 7
    assert pending(stream) == 7

    report = consumer(settings, stream, "heir", claim_idle_ms=0).drain()

    assert report.reclaimed == 7
    assert len(stored(db)) == 7  # no duplicate rows
    assert pending(stream) == 0


def test_a_consumer_restarted_under_its_name_rereads_its_own_pending_at_once(
        settings: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    buffer_opens(settings, stream, world, 3)
    first = consumer(settings, stream, "consume-1")
    first.ensure_group()
    first.write(first.read_new())  # killed before XACK

    report = consumer(settings, stream, "consume-1", claim_idle_ms=3_600_000).drain()

    assert (report.read, report.reclaimed) == (3, 3)
    assert len(stored(db)) == 3


def members(stream: redis.Redis) -> set[str]:
    found: Any = stream.xinfo_consumers(STREAM_KEY, GROUP)
    return {m["name"].decode() for m in found}


def test_idle_members_without_pending_entries_are_forgotten(
        settings: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    buffer_opens(settings, stream, world, 2)
    holder = consumer(settings, stream, "holder")
    holder.ensure_group()
    holder.read_new(count=1)  # one entry pending: must stay a member
    done = consumer(settings, stream, "done")
    done.handle(done.read_new())
    assert members(stream) == {"holder", "done"}

    assert consumer(settings, stream, "beat").forget_idle_consumers(idle_ms=0) == 1

    assert members(stream) == {"holder"}


def test_the_same_stream_entry_consumed_twice_gives_one_row(
        settings: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    buffer_opens(settings, stream, world, 2)
    worker = consumer(settings, stream, "c1")
    worker.ensure_group()
    entries = worker.read_new()
    worker.write(entries)
    worker.write(entries)
    # An XADD retried after a lost answer: two entries, one event key.
    with session_factory(settings)() as session:
        facts = load_delivery(session, world.delivery.id)
    assert facts is not None
    again = encode_row(open_row(facts, BROWSER, key="retried-xadd"))
    stream.xadd(STREAM_KEY, {FIELD: again})
    stream.xadd(STREAM_KEY, {FIELD: again})
    worker.ack(entries)
    assert worker.drain().read == 2

    rows = stored(db)
    assert len(rows) == 3
    assert len({r.event_key for r in rows}) == 3


def test_a_forged_token_never_reaches_the_buffer(buffered: Settings, stream: redis.Redis,
                                                 db: Session) -> None:
    world = make_world(db)
    good_open = make_open_token(world.delivery.id)
    good_click = make_click_token(world.delivery.id, world.link.id)
    forged = [f"/t/o/{good_open[:-1]}{'A' if good_open[-1] != 'A' else 'B'}",
              f"/t/o/{make_open_token(world.delivery.id + 1000)}",
              f"/t/o/{good_click}",
              f"/t/c/{good_click[:-2]}",
              f"/t/c/{good_open}",
              f"/t/c/{make_click_token(world.delivery.id, world.link.id + 999)}",
              "/t/c/aHR0cHM6Ly9ldmlsLmV4YW1wbGU"]
    with TestClient(create_app(buffered)) as client:
        for path in forged:
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 404, path
            assert "location" not in answer.headers
    assert stream.exists(STREAM_KEY) == 0
    assert stored(db) == []


def test_redis_down_the_event_is_written_directly(settings: Settings, db: Session) -> None:
    from tests.services import free_port

    world = make_world(db)
    down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(down)) as client:
        answer = client.get(f"/t/o/{make_open_token(world.delivery.id)}",
                            headers={"User-Agent": BROWSER})
    assert answer.status_code == 200
    [row] = stored(db)
    assert (row.type, row.delivery_id, row.event_key is not None) == (
        "open", world.delivery.id, True)


def test_head_is_no_open_and_no_click(buffered: Settings, stream: redis.Redis,
                                      db: Session) -> None:
    world = make_world(db)
    with TestClient(create_app(buffered)) as client:
        for path in (f"/t/o/{make_open_token(world.delivery.id)}",
                     f"/t/c/{make_click_token(world.delivery.id, world.link.id)}"):
            answer = client.head(path, follow_redirects=False)
            assert (answer.status_code, answer.headers.get("allow")) == (405, "GET"), path
    assert stream.exists(STREAM_KEY) == 0


def _queries_during(settings: Settings, action: Any) -> int:
    count = [0]

    def counted(*_: Any) -> None:
        count[0] += 1

    engine = get_engine(settings)
    event.listen(engine, "before_cursor_execute", counted)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count[0]


def test_click_redirect_cold_and_warm_goes_to_the_stored_url_only(
        buffered: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    other = make_world(db)  # another run: its link is cached too, and stays foreign
    unsafe = add_link(db, world.delivery.run_id, "javascript:alert(1)")
    db.commit()
    token = make_click_token(world.delivery.id, world.link.id)
    foreign = make_click_token(world.delivery.id, other.link.id)
    with TestClient(create_app(buffered)) as client:
        def follow(t: str) -> Any:
            return client.get(f"/t/c/{t}", headers={"User-Agent": BROWSER},
                              follow_redirects=False)

        assert follow(make_click_token(other.delivery.id, other.link.id)).status_code == 302
        cold = follow(token)
        warm: list[Any] = []
        queries = _queries_during(buffered, lambda: warm.append(follow(token)))
        for _ in range(2):  # cold, then warm: never followed
            assert follow(foreign).status_code == 404
            assert follow(make_click_token(world.delivery.id, unsafe.id)).status_code == 404

    assert cold.status_code == warm[0].status_code == 302
    assert cold.headers["location"] == warm[0].headers["location"] == world.link.url
    assert queries == 0  # warm: no database round trip at all
    assert stream.xlen(STREAM_KEY) == 3  # the three good clicks, nothing else


def test_the_beat_job_drains_the_stream(buffered: Settings, settings: Settings,
                                        stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    buffer_opens(settings, stream, world, 4)
    assert beat.JOBS["tracking_drain"](settings, utcnow()).count == 0  # embedded: no-op
    assert beat.JOBS["tracking_drain"](buffered, utcnow()).count == 4
    assert len(stored(db)) == 4


def _consume_process(buffered: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": buffered.redis_url}
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "tracking", "consume",
                             "--batch", "50", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_of_a_running_consumer_loses_and_doubles_nothing(
        buffered: Settings, settings: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    total = 3000
    buffer_opens(settings, stream, world, total)

    def count() -> int:
        with session_factory(settings)() as session:
            return int(session.scalar(select(func.count()).select_from(EngagementEvent)) or 0)

    running = _consume_process(buffered, "--name", "victim")
    try:
        assert wait_until(lambda: count() > 0 or running.poll() is not None, timeout=300)
        running.send_signal(signal.SIGKILL)
    finally:
        running.wait()
    assert running.returncode == -signal.SIGKILL, running.stderr.read() if running.stderr else ""
    restarted = _consume_process(buffered, "--once", "--claim-idle", "0")
    _, err = restarted.communicate(timeout=600)
    assert restarted.returncode == 0, err.decode()

    assert count() == total
    assert len({r.event_key for r in stored(db)}) == total
    assert stream.xlen(STREAM_KEY) == 0


def test_consume_without_redis_says_so_and_fails(sqlite_settings: Settings) -> None:
    from typer.testing import CliRunner

    import engine.cli.tracking  # noqa: F401  (registers the command group)
    from engine.cli.app import app

    result = CliRunner().invoke(app, ["--lang", "en", "tracking", "consume", "--once"])
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output


def test_consume_once_drains_and_reports(buffered: Settings, settings: Settings,
                                         stream: redis.Redis, db: Session,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import engine.cli.tracking  # noqa: F401
    from engine.cli.app import app
    from engine.config import reset_settings

    world = make_world(db)
    buffer_opens(settings, stream, world, 6)
    monkeypatch.setenv("REDIS_URL", buffered.redis_url)
    reset_settings()
    result = CliRunner().invoke(app, ["--lang", "en", "tracking", "consume", "--once"])
    assert result.exit_code == 0, result.output
    assert "Events written: 6" in result.output
    assert len(stored(db)) == 6
