"""Opens and clicks without a database commit per request (issue 22).

Why: ``/t/o`` and ``/t/c`` answered ~136 requests/s on PostgreSQL because each one
loaded its delivery and committed one row. Here a request needs no database round trip
once its delivery (and link) are known in this process:

* :class:`FactCache` keeps the immutable facts of deliveries and tracked links in
  bounded LRU caches (a click's redirect target is the URL stored for that link id,
  and nothing else: the cache holds only rows read from ``tracked_link``);
* the row of the event is built in the web process (:func:`open_row`, :func:`click_row`,
  the same values as :func:`engine.engagement.events.record_open` / ``record_click``),
  with a fresh ``event_key`` (UUID) per accepted request;
* with ``REDIS_URL`` the row is appended to a Redis stream (``XADD``) before the answer
  leaves; :mod:`engine.engagement.stream_consumer` writes the stream in bulk. Without
  Redis (the embedded default) the row is inserted at once, as before.

Exactly once: every row carries its ``event_key`` and :func:`insert_rows` inserts with
``ON CONFLICT (event_key) DO NOTHING`` (``INSERT OR IGNORE`` on SQLite): an entry read
twice (a consumer killed before ``XACK``), or an ``XADD`` whose answer was lost and was
then written directly, is stored once. Repeated opens are separate requests with their
own keys: every open is stored, unique opens are counted by reports (as before).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.db import session_factory
from engine.engagement.events import (
    CLICK,
    OPEN,
    is_bot_click_after,
    is_safe_target,
    is_scanner_agent,
    request_raw,
)
from engine.engagement.tracking import InvalidToken, parse_token
from engine.models import Delivery, DeliveryProduct, EngagementEvent, TrackedLink, utcnow

log = logging.getLogger(__name__)

#: The Redis stream of accepted opens and clicks, and its one consumer group.
STREAM_KEY = "umkm:tracking:events"
GROUP = "tracking-writers"
FIELD = "e"
#: Deliveries and links remembered per web process (a few MB at most).
CACHE_SIZE = 20_000

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A bounded least-recently-used map, safe across the threads of one process."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """What an event needs of its delivery; ``product_id``/``business_id`` are those of
    the first product the mail carried (the attribution of an open)."""

    id: int
    run_id: int | None
    customer_id: int | None
    channel: str
    sent_at: datetime | None
    product_id: int | None
    business_id: int | None


@dataclass(frozen=True, slots=True)
class LinkFacts:
    """A ``tracked_link`` row: its run, its stored target and its attribution."""

    id: int
    run_id: int | None
    url: str
    product_id: int | None
    business_id: int | None


def load_delivery(session: Session, delivery_id: int) -> DeliveryFacts | None:
    """The facts of one delivery and its first product, in two small queries."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    first = session.execute(
        select(DeliveryProduct.product_id, DeliveryProduct.business_id)
        .where(DeliveryProduct.delivery_id == delivery_id)
        .order_by(DeliveryProduct.position, DeliveryProduct.product_id).limit(1)
    ).first()
    product_id, business_id = (first[0], first[1]) if first else (None, delivery.business_id)
    return DeliveryFacts(delivery.id, delivery.run_id, delivery.customer_id,
                         delivery.channel, delivery.sent_at, product_id, business_id)


def load_link(session: Session, link_id: int) -> LinkFacts | None:
    link = session.get(TrackedLink, link_id)
    if link is None:
        return None
    return LinkFacts(link.id, link.run_id, link.url, link.product_id, link.business_id)


class FactCache:
    """Deliveries and links by id, read once per process.

    Unknown ids are not remembered (a later insert must be found). A delivery not yet
    sent is not remembered either: its ``sent_at`` decides the bot flag of a click.
    """

    def __init__(self, sessions: sessionmaker[Session], size: int = CACHE_SIZE) -> None:
        self.sessions = sessions
        self.deliveries: LruCache[int, DeliveryFacts] = LruCache(size)
        self.links: LruCache[int, LinkFacts] = LruCache(size)

    def cached_delivery(self, delivery_id: int) -> DeliveryFacts | None:
        return self.deliveries.get(delivery_id)

    def cached_link(self, link_id: int) -> LinkFacts | None:
        return self.links.get(link_id)

    def delivery(self, delivery_id: int) -> DeliveryFacts | None:
        found = self.deliveries.get(delivery_id)
        if found is None:
            with self.sessions() as session:
                found = load_delivery(session, delivery_id)
            if found is not None and found.sent_at is not None:
                self.deliveries.put(delivery_id, found)
        return found

    def link(self, link_id: int) -> LinkFacts | None:
        found = self.links.get(link_id)
        if found is None:
            with self.sessions() as session:
                found = load_link(session, link_id)
            if found is not None:
                self.links.put(link_id, found)
        return found


def click_target(delivery: DeliveryFacts | None,
                 link: LinkFacts | None) -> tuple[DeliveryFacts, LinkFacts] | None:
    """The rule of :func:`engine.engagement.events.link_for_click` on cached facts: the
    link belongs to the delivery's run and its stored URL is a safe http(s) target."""
    if delivery is None or link is None or link.run_id != delivery.run_id:
        return None
    if not is_safe_target(link.url):
        return None
    return delivery, link


# ----------------------------------------------------------------------------- rows
def new_event_key() -> str:
    """128 random bits in hex, as ``uuid4().hex`` looked, at a fifth of its cost."""
    return secrets.token_hex(16)


def _row(type_: str, delivery: DeliveryFacts, *, product_id: int | None,
         business_id: int | None, link_id: int | None, suspected_bot: bool,
         at: datetime, user_agent: str | None, key: str | None) -> dict[str, Any]:
    return {"event_key": key or new_event_key(), "type": type_, "channel": delivery.channel,
            "delivery_id": delivery.id, "run_id": delivery.run_id,
            "customer_id": delivery.customer_id, "business_id": business_id,
            "product_id": product_id, "link_id": link_id, "suspected_bot": suspected_bot,
            "occurred_at": at, "raw": request_raw(user_agent)}


def open_row(delivery: DeliveryFacts, user_agent: str | None, at: datetime | None = None,
             key: str | None = None) -> dict[str, Any]:
    """The ``engagement_event`` row of one open (as ``events.record_open`` stores it)."""
    return _row(OPEN, delivery, product_id=delivery.product_id,
                business_id=delivery.business_id, link_id=None,
                suspected_bot=is_scanner_agent(user_agent), at=at or utcnow(),
                user_agent=user_agent, key=key)


def click_row(delivery: DeliveryFacts, link: LinkFacts, user_agent: str | None,
              at: datetime | None = None, key: str | None = None) -> dict[str, Any]:
    """The row of one click (as ``events.record_click`` stores it)."""
    at = at or utcnow()
    return _row(CLICK, delivery, product_id=link.product_id, business_id=link.business_id,
                link_id=link.id, suspected_bot=is_bot_click_after(delivery.sent_at,
                                                                  user_agent, at),
                at=at, user_agent=user_agent, key=key)


def encode_row(row: dict[str, Any]) -> str:
    return json.dumps({**row, "occurred_at": row["occurred_at"].isoformat()},
                      separators=(",", ":"))


def decode_row(data: str | bytes) -> dict[str, Any]:
    """A stream entry's row; :class:`ValueError` for anything that is not one."""
    row = json.loads(data)
    if not isinstance(row, dict) or not isinstance(row.get("event_key"), str):
        raise ValueError("not a tracking event")
    row["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
    return row


#: The columns of a buffered event row (the keys :func:`_row` writes).
EVENT_COLUMNS = ("event_key", "type", "channel", "delivery_id", "run_id", "customer_id",
                 "business_id", "product_id", "link_id", "suspected_bot", "occurred_at", "raw")
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
# The entries' JSON, as they are, parsed by PostgreSQL: one statement per batch and no
# Python work per row (a row per statement cost the writer ~50 us and PostgreSQL ~65 us
# per event). Only the named columns are taken from an entry, never ``id``.
_JSON_INSERT = text(
    f"INSERT INTO engagement_event ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
    "FROM json_populate_recordset(NULL::engagement_event, CAST(:rows AS json)) "
    "ON CONFLICT (event_key) DO NOTHING")


def insert_encoded(session: Session, entries: Sequence[str]) -> None:
    """Insert encoded rows (:func:`encode_row`) in one statement; stored keys are skipped.

    On PostgreSQL the JSON goes to the database unparsed: an entry that is no event
    row makes the statement fail (``DataError`` or ``IntegrityError``) and the caller
    decodes the batch row by row instead. Elsewhere the rows are decoded here.
    """
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_JSON_INSERT, {"rows": f"[{','.join(entries)}]"})
    else:
        insert_rows(session, [decode_row(entry) for entry in entries])


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows in one statement; a row whose ``event_key`` is stored is skipped."""
    if not rows:
        return
    table: Table = EngagementEvent.__table__  # type: ignore[assignment]
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = pg_insert(table).on_conflict_do_nothing(index_elements=["event_key"])
    else:
        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["event_key"])
    session.execute(statement, list(rows))


# ----------------------------------------------------------------------------- the web side
#: A batch Redis has not answered within this long fails; its requests are written
#: directly (same ``event_key``: an ``XADD`` that landed all the same is stored once).
APPEND_TIMEOUT_S = 5.0


def xadd_head(key: str) -> bytes:
    """The fixed start of ``XADD <key> * e <row>`` in RESP (the row's bulk string follows)."""
    raw = key.encode()
    return b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\n%s\r\n" % (
        len(raw), raw, FIELD.encode())


def xadd_command(head: bytes, data: bytes) -> bytes:
    return b"%s$%d\r\n%s\r\n" % (head, len(data), data)


def _settle(future: asyncio.Future[None], error: BaseException | None = None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class StreamAppender:
    """``XADD`` with group commit: the rows of concurrent requests go in one write.

    Why: one round trip per request costs a syscall pair and a wake-up of Redis each;
    while a batch is in flight the next requests queue up and go together in the next
    one. Each request still waits until Redis took *its* entry (durable before the
    answer). The commands are packed here (one fixed head, one bulk string) and sent
    on one connection of our own: redis-py's pipeline machinery cost ~17 us per entry,
    this ~3 (docs/performance.md, "Tracking"). Bound to the event loop it was made on
    (one per uvicorn worker).
    """

    def __init__(self, redis_url: str, key: str = STREAM_KEY) -> None:
        import redis.asyncio as aredis

        self.pool = aredis.ConnectionPool.from_url(redis_url)
        self.key = key
        self._head = xadd_head(key)
        self._connection: Any = None
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, data: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((data.encode(), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._send(batch)
            except Exception as exc:  # every waiter left falls back (see Ingest.accept)
                for _, future in batch:
                    _settle(future, exc)

    async def _send(self, batch: list[tuple[bytes, asyncio.Future[None]]]) -> None:
        """One write of the batch, then one reply per entry, in order; an error reply
        fails its own request only, a broken or silent connection the rest."""
        from redis.exceptions import ResponseError

        connection = self._connection
        if connection is None:
            connection = self.pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(APPEND_TIMEOUT_S):
                if not connection.is_connected:
                    await connection.connect()
                self._connection = connection
                await connection.send_packed_command(
                    b"".join([xadd_command(self._head, data) for data, _ in batch]),
                    check_health=False)
                for _, future in batch:
                    try:
                        await connection.read_response()
                    except ResponseError as exc:
                        _settle(future, exc)
                    else:
                        _settle(future)
        except BaseException:
            self._connection = None  # replies may be out of step: never reuse it
            await connection.disconnect(nowait=True)
            raise


class Ingest:
    """What the tracking routes call: facts from the cache, rows to the buffer.

    With ``REDIS_URL`` a row goes to the stream; if Redis does not answer it is written
    directly instead (same ``event_key``: should the ``XADD`` have landed after all, the
    consumer's insert is skipped). Without Redis every row is written directly.
    """

    def __init__(self, settings: Settings) -> None:
        self.sessions = session_factory(settings)
        self.facts = FactCache(self.sessions)
        self.redis_url = settings.redis_url
        self._appender: StreamAppender | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def delivery(self, delivery_id: int) -> DeliveryFacts | None:
        found = self.facts.cached_delivery(delivery_id)
        if found is None:
            found = await asyncio.to_thread(self.facts.delivery, delivery_id)
        return found

    async def link(self, link_id: int) -> LinkFacts | None:
        found = self.facts.cached_link(link_id)
        if found is None:
            found = await asyncio.to_thread(self.facts.link, link_id)
        return found

    async def track_open(self, token: str, user_agent: str | None) -> bool:
        """Record one open of the pixel ``token``; ``False`` (nothing recorded) for a
        token that fails verification or names no delivery we know."""
        try:
            data = parse_token(token, "open")
        except InvalidToken:
            return False
        assert data.delivery_id is not None
        delivery = await self.delivery(data.delivery_id)
        if delivery is None:
            return False
        await self.accept(open_row(delivery, user_agent))
        return True

    async def track_click(self, token: str, user_agent: str | None) -> str | None:
        """Record one click of ``token`` and return where it goes: the URL stored in
        ``tracked_link`` for the token's link, when that link belongs to the delivery's
        run and is a safe http(s) target. ``None`` (nothing recorded) otherwise."""
        try:
            data = parse_token(token, "click")
        except InvalidToken:
            return None
        assert data.delivery_id is not None and data.link_id is not None
        found = click_target(await self.delivery(data.delivery_id),
                             await self.link(data.link_id))
        if found is None:
            return None
        delivery, link = found
        await self.accept(click_row(delivery, link, user_agent))
        return link.url

    def write_direct(self, rows: Iterable[dict[str, Any]]) -> None:
        with self.sessions() as session:
            insert_rows(session, list(rows))
            session.commit()

    def _stream(self) -> StreamAppender:
        """One appender per event loop (a test client runs its own loop)."""
        loop = asyncio.get_running_loop()
        if self._appender is None or self._loop is not loop:
            self._appender, self._loop = StreamAppender(self.redis_url), loop
        return self._appender

    async def accept(self, row: dict[str, Any]) -> None:
        """Make the event durable before the answer leaves."""
        if not self.redis_url:
            await asyncio.to_thread(self.write_direct, [row])
            return
        from redis.exceptions import RedisError

        try:
            await self._stream().append(encode_row(row))
        except (RedisError, OSError):
            log.warning("tracking stream unavailable; event written directly", exc_info=True)
            await asyncio.to_thread(self.write_direct, [row])
