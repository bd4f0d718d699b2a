"""Fixtures and hypothesis profiles of the fault suite.

Profiles: ``faults-fast`` (``make test``: bounded examples, the suite stays within a few
minutes) and ``faults-long`` (``make faults`` sets ``HYPOTHESIS_PROFILE=faults-long``:
ten times more examples). Tests take their settings from :func:`fuzz`, so the profile
never leaks into other test modules.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import scheduler
from engine.delivery.context import reset_process_state
from engine.models import Delivery, DeliveryStatus
from engine.outbox.adapters import email_adapter
from tests.factories import NOW
from tests.smtp_server import ReceivedMessage, ScriptedSMTPServer, _abort, _Controller, _Handler
from tests.worker_helpers import PROMO_YAML, add_catalog, add_customers

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,  # no .hypothesis/ directories in the tmp dirs the fixtures chdir to
    "print_blob": True,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large],
}
hsettings.register_profile("faults-fast", max_examples=200, **_COMMON)
hsettings.register_profile("faults-long", max_examples=2000, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "faults-fast")
if PROFILE not in ("faults-fast", "faults-long"):
    PROFILE = "faults-fast"


def fuzz(share: float = 1.0) -> hsettings:
    """The active profile, with ``share`` of its examples (costly properties use less)."""
    base = hsettings.get_profile(PROFILE)
    return hsettings(base, max_examples=max(10, int(base.max_examples * share)))


# ----------------------------------------------------------------------------- SMTP faults
class FaultySMTPServer(ScriptedSMTPServer):
    """The scripted server plus faults *after* a message was accepted (queued):

    ``lose_reply[rcpt] = "drop"``: the message is kept, then the connection is cut before
    the 250 reply goes out; ``"hold"``: the 250 reply waits ``hold_seconds`` (longer than
    the client's timeout). Either way the sender cannot know the message went out.
    ``on_accept(number, rcpt)`` runs in the server thread after each accepted message
    (e.g. to kill the sender's database connection at the Nth message).
    """

    def __init__(self) -> None:
        super().__init__()
        self.lose_reply: dict[str, str] = {}
        self.hold_seconds = 5.0
        self.on_accept: Callable[[int, str], None] | None = None
        self._fault_lock = threading.Lock()

    def start(self) -> None:
        controller = _Controller(self)
        controller.handler = _FaultHandler(self)
        self._controller = controller
        controller.start()
        self.port = controller.port
        with self._lock:
            self._connections = 0

    def take_reply_fault(self, rcpt: str) -> str | None:
        """The fault for this recipient, once (the retry is answered normally)."""
        with self._fault_lock:
            return self.lose_reply.pop(rcpt, None)


class _FaultHandler(_Handler):
    owner: FaultySMTPServer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if not reply.startswith("250"):
            return reply
        rcpt = envelope.rcpt_tos[0]
        if self.owner.on_accept is not None:
            self.owner.on_accept(len(self.owner.messages), rcpt)
        fault = self.owner.take_reply_fault(rcpt)
        if fault == "drop":
            self.owner._record_attempt(rcpt, "accepted, reply dropped")
            _abort(server)
        if fault == "hold":
            self.owner._record_attempt(rcpt, "accepted, reply held")
            await asyncio.sleep(self.owner.hold_seconds)
        return reply


@pytest.fixture
def faulty_smtp() -> Iterator[FaultySMTPServer]:
    server = FaultySMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- mail world
BASE_URL = "https://umkm.ttskab.go.id"


@dataclass
class MailWorld:
    """Settings wired to the loopback SMTP server, and a small running campaign."""

    settings: Settings
    smtp: FaultySMTPServer
    tmp: Path

    def session(self) -> Session:
        return session_factory(self.settings)()

    def promo(self, key: str, recipients: int) -> tuple[int, list[int]]:
        """A running promotional run to ``recipients`` customers; its delivery ids."""
        with self.session() as session:
            add_catalog(session, key)
            add_customers(session, recipients, prefix=key,
                          consent_at=NOW - timedelta(days=400))
            session.commit()
            path = self.tmp / f"{key}.yaml"
            path.write_text(PROMO_YAML.format(id=key))
            spec = load_campaign(path)
            result = scheduler.launch(session, spec, None, now=NOW)
            assert result.run is not None and result.planned == recipients, result
            run_id = result.run.id
            ids = list(session.scalars(select(Delivery.id).where(Delivery.run_id == run_id)
                                       .order_by(Delivery.id)))
        return run_id, ids

    def rows(self, run_id: int) -> dict[str, Delivery]:
        with self.session() as session:
            rows = list(session.scalars(select(Delivery).where(Delivery.run_id == run_id)))
            session.expunge_all()
        return {d.recipient: d for d in rows}

    def counts(self, run_id: int) -> dict[str, int]:
        with self.session() as session:
            found = session.execute(select(Delivery.status, func.count())
                                    .where(Delivery.run_id == run_id)
                                    .group_by(Delivery.status)).all()
        counts = {s.value: 0 for s in DeliveryStatus}
        counts.update({str(status.value): int(n) for status, n in found})
        return counts

    def smtp_timeout(self, seconds: float) -> None:
        """The SMTP timeout of this process's channel (dispatch has no setting for it)."""
        adapter: Any = email_adapter(self.settings)
        adapter.timeout = seconds

    def short_timeout(self, floor: float = 5.0) -> float:
        """A timeout that a healthy reply beats on this machine now, set on the channel.

        A test of timeouts needs a timeout short enough to keep the test quick, yet long
        enough that the server's ordinary replies never hit it; on a machine whose cores
        are busy with other work (load 10 on two cores), 0.5 s is not always that: one
        healthy DATA reply took longer in a loaded CI run. The deadline follows the
        server's own pace: a few plain SMTP sessions are timed and the timeout is many
        times the slowest, never below ``floor`` (5 s: with the suite in three processes
        beside other work, a healthy 30 kB DATA reply once took over 2 s while the
        sessions timed just before were quick). Silent replies are held eight times as
        long, so "the client did not wait for them" stays a structural fact.
        """
        slowest = max(self._session_seconds() for _ in range(3))
        timeout = max(floor, 25 * slowest)
        self.smtp_timeout(timeout)
        self.smtp.hold_seconds = 8 * timeout
        return timeout

    def _session_seconds(self) -> float:
        """How long one connect, EHLO, NOOP, QUIT with the loopback server takes."""
        started = time.monotonic()
        with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=60) as client:
            client.ehlo()
            client.noop()
        return time.monotonic() - started


@pytest.fixture
def mail_world(settings: Settings, faulty_smtp: FaultySMTPServer, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[MailWorld]:
    monkeypatch.setenv("SMTP_HOST", faulty_smtp.host)
    monkeypatch.setenv("SMTP_PORT", str(faulty_smtp.port))
    monkeypatch.setenv("BASE_URL", BASE_URL)
    for key in ("DKIM_KEY_PATH", "DKIM_SELECTOR", "DKIM_DOMAIN", "SMTP_RATE", "SMTP_USER",
                "SMTP_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    reset_settings()
    reset_process_state()
    try:
        yield MailWorld(get_settings(), faulty_smtp, tmp_path)
    finally:
        reset_process_state()


def per_recipient(messages: list[ReceivedMessage]) -> dict[str, list[str]]:
    """``{recipient: [Message-ID of every copy received]}``."""
    found: dict[str, list[str]] = {}
    for message in messages:
        assert len(message.rcpt_tos) == 1, message.rcpt_tos
        found.setdefault(message.rcpt_tos[0], []).append(message.message_id)
    return found
