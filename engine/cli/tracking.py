"""``umkm tracking consume``: the writer of the tracking stream (opens and clicks).

With ``REDIS_URL`` the web process appends each open and click to a Redis stream
(:mod:`engine.engagement.ingest`); this command stores them in bulk, exactly once
(:mod:`engine.engagement.stream_consumer`). The beat job ``tracking_drain`` does the
same every beat interval; a running ``consume`` brings the delay down to about a second.
SIGTERM or Ctrl-C stop it after the batch in hand; a SIGKILL loses nothing (its pending
entries are taken over after ``--claim-idle`` seconds, or at once under the same name).
"""

from __future__ import annotations

import signal
from types import FrameType

import redis
import typer

from engine.cli.app import console, fail, sub
from engine.cli.business import ensure_database
from engine.common.i18n import t
from engine.config import get_settings
from engine.db import session_factory
from engine.engagement.stream_consumer import DrainReport, StreamConsumer, consumer_name

tracking_app = sub("tracking", "Pelacakan buka dan klik: penulis antrean Redis ke database.")


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop ends after the batch it is writing."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def set(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopped = True


def _print(report: DrainReport) -> None:
    console.print(t("cli.tracking.done", read=report.read, reclaimed=report.reclaimed,
                    dropped=report.dropped))


@tracking_app.command("consume")
def consume(
    once: bool = typer.Option(False, "--once", help="Kosongkan antrean lalu berhenti."),
    name: str = typer.Option("", "--name", help="Nama konsumen (bawaan: consume-host-pid)."),
    claim_idle: float = typer.Option(
        60.0, "--claim-idle", help="Detik sebelum entri konsumen lain yang mati diambil alih."),
    batch: int = typer.Option(1000, "--batch", min=1, help="Entri per transaksi."),
) -> None:
    """Tulis peristiwa buka/klik dari antrean Redis ke database, tepat sekali."""
    settings = get_settings()
    if not settings.redis_url:
        fail(t("cli.tracking.no_redis"))
    ensure_database()
    client = redis.Redis.from_url(settings.redis_url)
    consumer = StreamConsumer(client, session_factory(settings),
                              name=name or consumer_name("consume"), batch=batch,
                              claim_idle_ms=int(claim_idle * 1000))
    try:
        if once:
            _print(consumer.drain())
            return
        stop = StopFlag()
        signal.signal(signal.SIGTERM, stop.set)
        signal.signal(signal.SIGINT, stop.set)
        console.print(t("cli.tracking.started", name=consumer.name))
        _print(consumer.run(stop))
    finally:
        client.close()
