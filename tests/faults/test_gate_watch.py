"""Issue 22: the send gate watches the run's status instead of reading it per message.

On PostgreSQL the gate listens for the status trigger's notification (migration 0016)
and reads the status only when one arrived; on SQLite it reads it before every
message, as before.  Either way a pause made while the batch sends stops it within the
message already on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from engine.db import get_engine
from engine.delivery import control, gate
from engine.delivery.pipeline import process_batch
from engine.models import CampaignRun
from tests.factories import NOW
from tests.faults.conftest import MailWorld

STATUS_QUERY = "SELECT campaign_run.status FROM campaign_run"


@pytest.fixture
def status_reads(mail_world: MailWorld) -> Iterator[list[str]]:
    """Every status read of the gate, as statements seen by the engine."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if " ".join(statement.split()).startswith(STATUS_QUERY):
            seen.append(statement)

    engine = get_engine(mail_world.settings)
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def _postgres(w: MailWorld) -> bool:
    return get_engine(w.settings).dialect.name == "postgresql"


def test_the_gate_reads_the_status_once_a_batch_when_it_can_listen(
    mail_world: MailWorld, status_reads: list[str],
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-dengar", 12)

    result = process_batch(run_id, ids, w.settings, NOW)

    assert result.sent == 12
    assert len(status_reads) == (1 if _postgres(w) else 12)


def test_a_pause_while_the_batch_sends_stops_it_within_the_message_on_the_wire(
    mail_world: MailWorld, status_reads: list[str],
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-jeda-dengar", 12)

    def pause_at_fourth(number: int, _rcpt: str) -> None:
        if number == 4:
            with w.session() as session:
                run = session.get(CampaignRun, run_id)
                assert run is not None
                assert control.pause(session, run, "dijeda operator")

    w.smtp.on_accept = pause_at_fourth

    result = process_batch(run_id, ids, w.settings, NOW)

    w.smtp.on_accept = None
    assert result.stopped_by == gate.PAUSED
    assert 4 <= result.sent <= 5, result
    assert len(w.smtp.messages) == result.sent
    assert w.counts(run_id)["pending"] == 12 - result.sent
    if _postgres(w):  # the first read and the one after the notification
        assert len(status_reads) == 2
