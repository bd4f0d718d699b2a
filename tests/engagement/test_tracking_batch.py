"""The fast halves of buffered tracking (issue 22): one statement per batch in the
writer, hand-packed ``XADD`` with group commit in the web process.

Both must store exactly what the slower forms stored, and fall back without losing or
doubling an event when something is wrong: an entry that is no event, a delivery
deleted meanwhile, a Redis error reply, a Redis that never answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.db import session_factory
from engine.engagement import ingest
from engine.engagement.ingest import (
    EVENT_COLUMNS,
    FIELD,
    STREAM_KEY,
    StreamAppender,
    click_row,
    decode_row,
    encode_row,
    insert_encoded,
    insert_rows,
    load_delivery,
    load_link,
    open_row,
)
from engine.engagement.stream_consumer import StreamConsumer
from engine.engagement.tracking import make_open_token
from engine.models import DeliveryProduct, EngagementEvent, utcnow
from tests.web.test_tracking_web import BROWSER, World, make_world
from web.app import create_app

STORED = (*EVENT_COLUMNS, "post_id", "value")


@pytest.fixture
def stream(clean_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(clean_redis)
    yield client
    client.close()


def rows_of(db: Session) -> list[dict[str, Any]]:
    db.expire_all()
    found = db.scalars(select(EngagementEvent).order_by(EngagementEvent.id))
    return [{c: getattr(row, c) for c in STORED} for row in found]


def event_rows(settings: Settings, world: World, key: str,
               at: datetime | None = None) -> list[dict[str, Any]]:
    """An open and a click of ``world`` as the web process builds them, at ``at``."""
    with session_factory(settings)() as session:
        delivery = load_delivery(session, world.delivery.id)
        link = load_link(session, world.link.id)
    assert delivery is not None and link is not None
    at = at or utcnow().replace(microsecond=123456)
    return [open_row(delivery, BROWSER, at=at, key=f"{key}-open"),
            click_row(delivery, link, "Mozilla/5.0 (compatible; Barracuda Sentinel)",
                      at=at, key=f"{key}-click")]


def test_rows_carry_exactly_the_columns_the_statement_takes(settings: Settings,
                                                            db: Session) -> None:
    world = make_world(db)
    for row in event_rows(settings, world, "k"):
        assert tuple(row) == EVENT_COLUMNS


def test_one_statement_stores_what_row_by_row_inserts_store(settings: Settings,
                                                            db: Session) -> None:
    world = make_world(db)
    at = utcnow().replace(microsecond=123456)  # one instant: the rows must differ in key only
    by_statement = event_rows(settings, world, "json", at)
    one_by_one = event_rows(settings, world, "rows", at)
    with session_factory(settings)() as session:
        insert_encoded(session, [encode_row(row) for row in by_statement])
        insert_rows(session, one_by_one)
        session.commit()

    stored = rows_of(db)
    assert len(stored) == 4
    for json_row, plain_row in zip(stored[:2], stored[2:], strict=True):
        assert json_row["event_key"].removeprefix("json") == \
            plain_row["event_key"].removeprefix("rows")
        assert {k: v for k, v in json_row.items() if k != "event_key"} == \
            {k: v for k, v in plain_row.items() if k != "event_key"}
    assert [decode_row(encode_row(row)) for row in by_statement] == by_statement


def consumer(settings: Settings, stream: redis.Redis) -> StreamConsumer:
    worker = StreamConsumer(stream, session_factory(settings), name="c1", linger_ms=0)
    worker.ensure_group()
    return worker


def test_an_entry_that_is_no_event_is_dropped_and_the_rest_stored(
        settings: Settings, stream: redis.Redis, db: Session) -> None:
    world = make_world(db)
    good = [encode_row(row) for row in event_rows(settings, world, "k")]
    for data in (good[0], "not json at all", '{"event_key": "x"}', "[1, 2]", good[1]):
        stream.xadd(STREAM_KEY, {FIELD: data})
    stream.xadd(STREAM_KEY, {"other": "field"})

    report = consumer(settings, stream).drain()

    assert (report.read, report.dropped) == (6, 4)
    assert sorted(r["event_key"] for r in rows_of(db)) == ["k-click", "k-open"]
    assert stream.xlen(STREAM_KEY) == 0


def test_a_delivery_deleted_meanwhile_drops_only_its_events(
        settings: Settings, stream: redis.Redis, db: Session) -> None:
    kept, gone = make_world(db), make_world(db)
    entries = [*event_rows(settings, kept, "kept"), *event_rows(settings, gone, "gone")]
    for row in entries:
        stream.xadd(STREAM_KEY, {FIELD: encode_row(row)})
    db.execute(delete(DeliveryProduct).where(DeliveryProduct.delivery_id == gone.delivery.id))
    db.delete(db.get(type(gone.delivery), gone.delivery.id))
    db.commit()

    report = consumer(settings, stream).drain()

    assert (report.read, report.dropped) == (4, 2)
    assert sorted(r["event_key"] for r in rows_of(db)) == ["kept-click", "kept-open"]


# ----------------------------------------------------------------------------- appender
def test_the_packed_xadd_is_what_redis_py_would_send(clean_redis: str,
                                                     stream: redis.Redis) -> None:
    data = '{"event_key":"\u00e4 \\r\\n $5 *3","n":1}'

    async def append() -> None:
        await StreamAppender(clean_redis).append(data)

    asyncio.run(append())
    entries: Any = stream.xrange(STREAM_KEY)
    [(_, fields)] = entries
    assert fields == {FIELD.encode(): data.encode()}


def test_concurrent_appends_each_get_their_own_entry(clean_redis: str,
                                                     stream: redis.Redis) -> None:
    async def many() -> None:
        appender = StreamAppender(clean_redis)
        await asyncio.gather(*(appender.append(f'{{"n":{n}}}') for n in range(200)))

    asyncio.run(many())
    entries: Any = stream.xrange(STREAM_KEY)
    stored = [fields[FIELD.encode()] for _, fields in entries]
    assert sorted(stored) == sorted(f'{{"n":{n}}}'.encode() for n in range(200))


def test_an_error_reply_falls_back_to_a_direct_write(settings: Settings, clean_redis: str,
                                                     stream: redis.Redis,
                                                     db: Session) -> None:
    world = make_world(db)
    stream.set(STREAM_KEY, "not a stream")  # every XADD: WRONGTYPE
    buffered = dataclasses.replace(settings, redis_url=clean_redis)
    with TestClient(create_app(buffered)) as client:
        for _ in range(3):  # the connection stays usable after error replies
            answer = client.get(f"/t/o/{make_open_token(world.delivery.id)}",
                                headers={"User-Agent": BROWSER})
            assert answer.status_code == 200
    assert len(rows_of(db)) == 3


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


def test_a_redis_that_never_answers_falls_back_after_the_timeout(
        settings: Settings, silent_redis: str, db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "APPEND_TIMEOUT_S", 0.3)
    world = make_world(db)
    buffered = dataclasses.replace(settings, redis_url=silent_redis)
    with TestClient(create_app(buffered)) as client:
        answer = client.get(f"/t/o/{make_open_token(world.delivery.id)}",
                            headers={"User-Agent": BROWSER})
    assert answer.status_code == 200
    [row] = rows_of(db)
    assert (row["type"], row["delivery_id"]) == ("open", world.delivery.id)
