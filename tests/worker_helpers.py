"""Helpers for the worker integration tests (tests/delivery/test_workers_integration.py).

The world of one test: a migrated PostgreSQL database shared by the test process and
the real ``celery worker`` subprocesses, a Redis broker, the loopback SMTP server, and
the environment handed to the workers. Data is written in bulk (5,000 customers through
the ORM one by one would cost more than the sending itself).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.campaign.schema import CampaignSpec
from engine.config import Settings, get_settings, reset_settings
from engine.db import dispose_engines, session_factory
from engine.delivery import beat, scheduler
from engine.delivery.context import reset_process_state
from engine.delivery.enqueue import due_batches_for_run
from engine.models import (
    CampaignRun,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Delivery,
    DeliveryStatus,
    RunStatus,
    utcnow,
)
from tests.factories import make_business, make_optin, make_product
from tests.smtp_server import ReceivedMessage, ScriptedSMTPServer

BATCH_SIZE = 100
BASE_URL = "https://umkm.ttskab.go.id"

# A promotional campaign without a send window (the workers use the wall clock) that
# started long ago; ``{id}`` makes several campaigns per test possible.
PROMO_YAML = """\
version: 1
id: {id}
name: Promo Uji Pekerja {id}
type: promotional
schedule:
  start: 2026-01-01 08:00
audience:
  include: [{{consent: marketing}}]
products: {{opt_in: required, per_message: 2}}
offer: {{kind: discount, percent: 15, code: TENUN15, title: Diskon Tenun}}
channels:
  email:
    template: email/promotional.mjml
    subject: "{{{{ customer.first_name }}}}, diskon {{{{ offer.percent }}}}% tenun ikat TTS"
"""


@dataclass
class World:
    """Everything one worker test touches, wired to the same database and broker."""

    settings: Settings
    env: dict[str, str]  # what the worker subprocesses get
    smtp: ScriptedSMTPServer
    tmp: Path

    # -- database -------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_factory(self.settings)() as session:
            yield session

    def campaign(self, text: str) -> CampaignSpec:
        """A YAML campaign validated like `umkm campaign validate`."""
        path = self.tmp / f"campaign-{abs(hash(text))}.yaml"
        path.write_text(text)
        return load_campaign(path)

    def promo(self, key: str, recipients: int) -> int:
        """A launched (running) promotional run to ``recipients`` new customers."""
        with self.session() as session:
            add_catalog(session, key)
            add_customers(session, recipients, prefix=key)
            session.commit()
            spec = self.campaign(PROMO_YAML.format(id=key))
            result = scheduler.launch(session, spec, None)
            assert result.run is not None and result.planned == recipients, result
            assert result.run.status == RunStatus.running
            return result.run.id

    def counts(self, run_id: int) -> dict[str, int]:
        with self.session() as session:
            rows = session.execute(select(Delivery.status, func.count())
                                   .where(Delivery.run_id == run_id)
                                   .group_by(Delivery.status)).all()
        counts = {s.value: 0 for s in DeliveryStatus}
        counts.update({str(status.value): int(n) for status, n in rows})
        return counts

    def progress(self) -> tuple[int, tuple[tuple[str, int], ...]]:
        """What moves while the workers work: messages received, and every row's status."""
        with self.session() as session:
            rows = session.execute(select(Delivery.status, func.count())
                                   .group_by(Delivery.status)).all()
        return len(self.smtp.messages), tuple(sorted((str(s.value), int(n)) for s, n in rows))

    def run_status(self, run_id: int) -> str:
        with self.session() as session:
            run = session.get(CampaignRun, run_id)
            assert run is not None
            return run.status.value

    def wait_finished(self, run_id: int, timeout: float = 60) -> None:
        """The run is marked finished by the worker right after it records its last batch,
        a moment after the rows settle: wait for that commit instead of racing it."""
        wait_for(lambda: self.run_status(run_id) == "finished", timeout,
                 f"run {run_id} to be finished (it was {self.run_status(run_id)!r} at the start)",
                 step=0.1, progress=self.progress)

    def deliveries(self, run_id: int) -> dict[str, Delivery]:
        with self.session() as session:
            rows = list(session.scalars(select(Delivery).where(Delivery.run_id == run_id)))
            session.expunge_all()
        return {d.recipient: d for d in rows}

    # -- broker ---------------------------------------------------------------------
    def enqueue(self, run_id: int) -> int:
        """What `launch` / `resume` do: every due batch of the run to the broker."""
        from workers.tasks import enqueue_batches

        return enqueue_batches(due_batches_for_run(run_id, self.settings))

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        """Every beat job once in this process (what the beat tasks run), its batches
        enqueued to Redis; the count of each job by name, and ``enqueued``."""
        from workers.tasks import enqueue_batches

        reports = beat.run_all(self.settings, now)
        counts = {name: report.count for name, report in reports.items()}
        counts["enqueued"] = enqueue_batches(beat.batches_of(reports))
        return counts

    # -- waiting --------------------------------------------------------------------
    def wait_settled(self, run_id: int, timeout: float,
                     on_poll: Callable[[], object] | None = None, step: float = 0.5,
                     ) -> dict[str, int]:
        """Wait until nothing of the run is pending or sending (calling ``on_poll``,
        e.g. a beat tick, in between). The deadline follows progress: it fails only when the
        counts have not moved for ``timeout`` seconds, so a loaded machine is not a failure."""
        deadline = time.monotonic() + timeout
        last: dict[str, int] | None = None
        while True:
            counts = self.counts(run_id)
            if counts["pending"] == 0 and counts["sending"] == 0:
                return counts
            if counts != last:
                last, deadline = counts, time.monotonic() + timeout
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} made no progress for {timeout:.0f} s: "
                                     f"{counts}")
            if on_poll is not None:
                on_poll()
            time.sleep(step)


def make_world(settings_env: dict[str, str], database_url: str, redis_url: str,
               smtp: ScriptedSMTPServer, tmp: Path, monkeypatch: Any) -> World:
    """Point this process (settings, Celery producer) and the workers' env at the same
    database, broker and SMTP server."""
    from tests.conftest import TEST_SECRET

    var_dir = tmp / "var"
    var_dir.mkdir(exist_ok=True)
    env = {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": TEST_SECRET,
        "VAR_DIR": str(var_dir), "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port),
        "BASE_URL": BASE_URL, "BATCH_SIZE": str(BATCH_SIZE), "UMKM_LANG": "id",
        "LANG": "C.UTF-8", **settings_env,
    }
    monkeypatch.chdir(tmp)  # no stray .env of the repository
    for key in ("DKIM_KEY_PATH", "DKIM_SELECTOR", "DKIM_DOMAIN", "SMTP_USER",
                "SMTP_PASSWORD", "SMTP_RATE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    dispose_engines()
    reset_process_state()
    settings = get_settings()
    from workers.celery_app import reconfigure

    reconfigure(settings)
    return World(settings, env, smtp, tmp)


# ----------------------------------------------------------------------------- data
def add_catalog(session: Session, campaign_key: str) -> None:
    """One eligible UMKM with two products opted in to the campaign."""
    shop = make_business(session, name=f"Tenun Ikat {campaign_key}")
    for name, price in (("Kain Tenun Buna", 150_000), ("Selendang Futus", 85_000)):
        make_optin(session, make_product(session, shop, name=name, price=price), campaign_key)


def add_customers(session: Session, n: int, *, prefix: str, marketing: bool = True,
                  consent_at: datetime | None = None) -> list[int]:
    """``n`` customers (``{prefix}-{i}@contoh.id``) with a marketing consent, in bulk."""
    at = consent_at or utcnow() - timedelta(days=400)
    rows = [{"email": f"{prefix}-{i:05d}@contoh.id", "name": f"Pelanggan {i}",
             "kecamatan_code": "53.02.01", "preferences": {}, "attributes": {}, "tags": [],
             "created_at": at} for i in range(n)]
    ids = list(session.scalars(insert(Customer).returning(Customer.id), rows))
    if marketing:
        session.execute(insert(Consent), [
            {"customer_id": cid, "channel": ConsentChannel.email,
             "purpose": ConsentPurpose.marketing, "granted": True, "source": "formulir",
             "recorded_at": at} for cid in ids])
    session.flush()
    return ids


# ----------------------------------------------------------------------------- checks
def per_recipient(messages: list[ReceivedMessage]) -> Counter[str]:
    """How many messages each recipient received (one RCPT per message is asserted)."""
    counts: Counter[str] = Counter()
    for message in messages:
        assert len(message.rcpt_tos) == 1, message.rcpt_tos
        counts[message.rcpt_tos[0]] += 1
    return counts


def message_ids(messages: list[ReceivedMessage], recipient: str) -> set[str]:
    return {m.message_id for m in messages if m.rcpt_tos == [recipient]}


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05,
             progress: Callable[[], object] | None = None) -> None:
    """Poll ``check``; with ``progress``, ``timeout`` is how long nothing may move.

    On a loaded machine the workers are slower, not stuck: a deadline that follows progress
    (e.g. :meth:`World.progress`, messages received and rows settled) fails only when the
    system under test has stopped moving, never because it moved slowly.
    """
    deadline = time.monotonic() + timeout
    seen = progress() if progress is not None else None
    while not check():
        if progress is not None:
            now = progress()
            if now != seen:
                seen, deadline = now, time.monotonic() + timeout
        if time.monotonic() > deadline:
            still = "made no progress for" if progress is not None else "timed out after"
            raise AssertionError(f"{still} {timeout:.0f} s waiting for {what}")
        time.sleep(step)

