"""The writer of the tracking stream: Redis stream entries to ``engagement_event`` rows.

One consumer group (:data:`engine.engagement.ingest.GROUP`); each consumer reads with
``XREADGROUP``, inserts the batch in one transaction, commits, then ``XACK`` and
``XDEL``. Why this order is exactly once:

* killed before the commit: nothing was stored, the entries stay pending in the group;
* killed after the commit, before ``XACK``: the rows are stored and the entries pending;
  written again, ``ON CONFLICT (event_key) DO NOTHING`` skips every one of them;
* pending entries are taken over with ``XAUTOCLAIM`` once idle ``claim_idle_ms`` (a
  dead consumer's), and a consumer restarted under its old name first re-reads its own
  pending entries (``XREADGROUP ... 0``).

A consumer runs as ``umkm tracking consume`` (low latency) or as the beat job
``tracking_drain`` (every beat interval); both may run together.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.engagement.ingest import (
    FIELD,
    GROUP,
    STREAM_KEY,
    decode_row,
    insert_encoded,
    insert_rows,
)

log = logging.getLogger(__name__)

BATCH = 1000
#: A short read waits this long for more entries: under a steady trickle of clicks one
#: transaction then carries hundreds of rows instead of a handful (CPU per row).
LINGER_MS = 200
#: A pending entry idle this long belongs to a dead consumer and is taken over.
CLAIM_IDLE_MS = 60_000
#: A group member with nothing pending and idle this long is forgotten (beat runs and
#: restarts name a consumer per process; the group must not collect them forever).
FORGET_IDLE_MS = 3_600_000

Entry = tuple[str, dict[Any, Any]]


def consumer_name(prefix: str) -> str:
    """``<prefix>-<host>-<pid>``: unique per process, readable in ``XINFO CONSUMERS``."""
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}"


@dataclass
class DrainReport:
    """Entries read (``read``), of them taken over from pending (``reclaimed``), and
    entries that were no event or whose row the database refused (``dropped``)."""

    read: int = 0
    reclaimed: int = 0
    dropped: int = 0

    def add(self, other: DrainReport) -> None:
        self.read += other.read
        self.reclaimed += other.reclaimed
        self.dropped += other.dropped


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_text(fields: dict[Any, Any]) -> str:
    """The encoded row of an entry, or ``""`` when it has none (or not UTF-8)."""
    data = fields.get(FIELD.encode(), fields.get(FIELD))
    if isinstance(data, bytes):
        try:
            return data.decode()
        except UnicodeDecodeError:
            return ""
    return data if isinstance(data, str) else ""


class StreamConsumer:
    """One member of the consumer group; see the module docstring for the guarantees."""

    def __init__(self, client: redis.Redis, sessions: sessionmaker[Session], *, name: str,
                 batch: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS,
                 linger_ms: int = LINGER_MS, key: str = STREAM_KEY,
                 group: str = GROUP) -> None:
        self.client = client
        self.sessions = sessions
        self.name = name
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.linger_ms = linger_ms
        self.key = key
        self.group = group
        self._own_pending_done = False

    def ensure_group(self) -> None:
        """Create the stream and group if missing (``BUSYGROUP`` = already there)."""
        try:
            self.client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ----------------------------------------------------------------------- reading
    def read_new(self, block_ms: int | None = None, count: int | None = None) -> list[Entry]:
        """New entries for this consumer; they are pending until :meth:`ack`."""
        answer = self.client.xreadgroup(self.group, self.name, {self.key: ">"},
                                        count=count or self.batch, block=block_ms)
        return self._entries(answer)

    def read_lingering(self, block_ms: int) -> list[Entry]:
        """Wait up to ``block_ms`` for entries, then up to ``linger_ms`` to fill a batch."""
        entries = self.read_new(block_ms)
        deadline = time.monotonic() + self.linger_ms / 1000
        while entries and len(entries) < self.batch:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            more = self.read_new(left_ms, self.batch - len(entries))
            if not more:
                break
            entries += more
        return entries

    def read_own_pending(self) -> list[Entry]:
        """Entries this consumer name read before and never acknowledged (a restart)."""
        answer = self.client.xreadgroup(self.group, self.name, {self.key: "0"},
                                        count=self.batch)
        return self._entries(answer)

    def claim_idle(self) -> list[Entry]:
        """Take over pending entries of any consumer idle at least ``claim_idle_ms``."""
        claimed: list[Entry] = []
        cursor = "0-0"
        while True:
            answer: Any = self.client.xautoclaim(self.key, self.group, self.name,
                                                 self.claim_idle_ms, start_id=cursor,
                                                 count=self.batch)
            cursor = _text(answer[0])
            claimed += [(_text(i), f) for i, f in answer[1] if f]
            if cursor == "0-0" or len(claimed) >= self.batch:
                return claimed

    @staticmethod
    def _entries(answer: Any) -> list[Entry]:
        if not answer:
            return []
        return [(_text(entry_id), fields or {}) for _, entries in answer
                for entry_id, fields in entries]

    # ----------------------------------------------------------------------- writing
    def write(self, entries: list[Entry]) -> int:
        """Store the rows of ``entries`` (committed); returns how many were dropped.

        The whole batch in one statement first; if the database refuses it (an entry
        that is no event, a delivery deleted meanwhile) the batch is decoded and
        written again by :meth:`write_decoded`, which drops only what is wrong."""
        encoded = [_entry_text(fields) for _, fields in entries]
        if all(encoded):
            try:
                with self.sessions() as session:
                    insert_encoded(session, encoded)
                    session.commit()
                return 0
            except (DataError, IntegrityError, ValueError):
                log.warning("tracking batch refused as a whole; written row by row",
                            exc_info=True)
        return self.write_decoded(entries)

    def write_decoded(self, entries: list[Entry]) -> int:
        """Decode each entry (dropping what is no event), then insert, row by row if
        the database refuses the batch; returns how many were dropped."""
        rows, dropped = [], 0
        for entry_id, fields in entries:
            try:
                data = fields.get(FIELD.encode(), fields.get(FIELD))
                rows.append(decode_row(data if isinstance(data, str | bytes) else b""))
            except (ValueError, TypeError, KeyError):
                log.error("tracking entry %s is no event; dropped", entry_id)
                dropped += 1
        try:
            with self.sessions() as session:
                insert_rows(session, rows)
                session.commit()
        except IntegrityError:  # e.g. a delivery deleted meanwhile: row by row
            dropped += self._write_one_by_one(rows)
        return dropped

    def _write_one_by_one(self, rows: list[dict[str, Any]]) -> int:
        dropped = 0
        for row in rows:
            try:
                with self.sessions() as session:
                    insert_rows(session, [row])
                    session.commit()
            except IntegrityError:
                log.error("tracking event %s refused by the database; dropped",
                          row.get("event_key"), exc_info=True)
                dropped += 1
        return dropped

    def ack(self, entries: list[Entry]) -> None:
        """Acknowledge and delete (the stream keeps only what is not stored yet)."""
        if not entries:
            return
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.key, self.group, *ids)
        pipe.xdel(self.key, *ids)
        pipe.execute()

    def handle(self, entries: list[Entry]) -> DrainReport:
        dropped = self.write(entries)
        self.ack(entries)
        return DrainReport(read=len(entries), dropped=dropped)

    # ----------------------------------------------------------------------- loops
    def reclaim(self) -> DrainReport:
        """Own pending entries (once per consumer object), then idle ones of others."""
        report = DrainReport()
        while not self._own_pending_done:
            entries = self.read_own_pending()
            if not entries:
                self._own_pending_done = True
                break
            report.add(self.handle(entries))
        while entries := self.claim_idle():
            report.add(self.handle(entries))
        report.reclaimed = report.read
        return report

    def forget_idle_consumers(self, idle_ms: int = FORGET_IDLE_MS) -> int:
        """Delete members without pending entries, idle ``idle_ms`` (safe: a deleted
        member that reads again is simply created again)."""
        members: Any = self.client.xinfo_consumers(self.key, self.group)
        gone = [_text(m["name"]) for m in members if int(m["pending"]) == 0
                and int(m["idle"]) >= idle_ms and _text(m["name"]) != self.name]
        for name in gone:
            self.client.xgroup_delconsumer(self.key, self.group, name)
        return len(gone)

    def drain(self, max_entries: int | None = None) -> DrainReport:
        """Everything the stream holds now (pending first), then return."""
        self.ensure_group()
        self.forget_idle_consumers()
        report = self.reclaim()
        while max_entries is None or report.read < max_entries:
            entries = self.read_new()
            if not entries:
                break
            report.add(self.handle(entries))
        return report

    def run(self, stop: Callable[[], bool], block_ms: int = 1000) -> DrainReport:
        """Consume until ``stop()``: wait up to ``block_ms`` for new entries, and look
        for a dead consumer's entries whenever the stream is quiet."""
        self.ensure_group()
        report = self.reclaim()
        while not stop():
            entries = self.read_lingering(block_ms)
            if entries:
                report.add(self.handle(entries))
            else:
                report.add(self.reclaim())
        return report


def drain_once(redis_url: str, sessions: sessionmaker[Session], prefix: str = "beat",
               max_entries: int | None = None) -> DrainReport:
    """One drain by a fresh consumer (the beat job): returns when the stream is empty."""
    client = redis.Redis.from_url(redis_url)
    try:
        return StreamConsumer(client, sessions, name=consumer_name(prefix)).drain(max_entries)
    finally:
        client.close()
