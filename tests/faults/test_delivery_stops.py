"""Issue 14: the send window closing mid-batch, and embedded mode on a full disk.

The window test drives :func:`engine.delivery.pipeline.process_batch` in this process
with the gate's clock crossing the end of the window after the fifth message (the
clock is the one thing a test cannot wait for: the window ends at 20.00 WITA).  The
disk test mounts a real, tiny tmpfs under the demo's outbox so that writing mail fails
with ``ENOSPC`` exactly as a full disk does, then grows it as an operator would.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from engine.campaign.loader import load_campaign
from engine.cli.app import app
from engine.config import Settings
from engine.db import session_scope
from engine.delivery import gate, pipeline, scheduler
from engine.demo.history import HISTORY_KEY
from engine.models import Campaign, CampaignRun, Delivery, DeliveryStatus, aware
from tests.factories import NOW
from tests.faults.conftest import MailWorld
from tests.worker_helpers import PROMO_YAML, add_catalog, add_customers

WINDOW_YAML = PROMO_YAML.replace(
    "  start: 2026-01-01 08:00\n",
    '  start: 2026-01-01 08:00\n  send_window: {{from: "08:00", to: "20:00"}}\n')
BEFORE_CLOSE = datetime(2026, 12, 1, 11, 59, 0, tzinfo=UTC)  # 19.59 WITA
AFTER_CLOSE = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)  # 20.00.30 WITA
NEXT_OPEN = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # 08.00 WITA the next morning


def _window_run(w: MailWorld, n: int) -> tuple[int, list[int]]:
    with w.session() as session:
        add_catalog(session, "promo-jendela")
        add_customers(session, n, prefix="promo-jendela", consent_at=NOW - timedelta(days=400))
        session.commit()
        path = w.tmp / "promo-jendela.yaml"
        path.write_text(WINDOW_YAML.format(id="promo-jendela"))
        result = scheduler.launch(session, load_campaign(path), None, now=NOW)
        assert result.run is not None
        run_id = result.run.id
        ids = list(session.scalars(select(Delivery.id).where(Delivery.run_id == run_id)
                                   .order_by(Delivery.id)))
    return run_id, ids


def test_the_window_closing_mid_batch_stops_it_within_one_message(
    mail_world: MailWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = mail_world
    run_id, ids = _window_run(w, 12)
    accepted: list[str] = []
    w.smtp.on_accept = lambda number, rcpt: accepted.append(rcpt)
    monkeypatch.setattr(pipeline, "utcnow", lambda: BEFORE_CLOSE)
    monkeypatch.setattr(gate, "utcnow",
                        lambda: AFTER_CLOSE if len(accepted) >= 5 else BEFORE_CLOSE)

    result = pipeline.process_batch(run_id, ids, w.settings)

    assert (result.claimed, result.sent, result.deferred) == (12, 5, 7)
    assert result.stopped_by == gate.WINDOW
    assert len(w.smtp.messages) == 5
    rows = w.rows(run_id)
    waiting = [r for r in rows.values() if r.status == DeliveryStatus.pending]
    assert len(waiting) == 7
    assert {r.attempts for r in waiting} == {0}, "a row held by the window spent an attempt"
    assert {aware(r.next_attempt_at) for r in waiting} == {NEXT_OPEN}


# ----------------------------------------------------------------------------- full disk
@pytest.fixture
def tiny_disk(sqlite_settings: Settings) -> Iterator[Path]:
    """A 64 KiB tmpfs where the demo writes its mail (``var/outbox/email``)."""
    folder = Path(sqlite_settings.var_dir) / "outbox" / "email"
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_embedded_demo_on_a_full_disk_exits_1_then_recovers_without_a_duplicate(
    tiny_disk: Path,
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["demo"])

    assert first.exit_code == 1, first.output
    assert "pesan belum terkirim" in first.output and "No space left" in first.output
    with session_scope() as session:
        held = session.scalars(select(Delivery).where(
            Delivery.channel == "email", Delivery.status == DeliveryStatus.pending)).all()
        assert held and all("No space left" in (d.error or "") for d in held)
        assert {d.attempts for d in held} == {0}, "a full disk spent attempts"

    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    second = runner.invoke(app, ["demo"])

    assert second.exit_code == 0, second.output
    with session_scope() as session:
        # The demo's year of history is written as sent rows, never as files: left out.
        mails = session.scalars(
            select(Delivery).join(CampaignRun, Delivery.run_id == CampaignRun.id)
            .join(Campaign, CampaignRun.campaign_id == Campaign.id)
            .where(Delivery.channel == "email", Campaign.key != HISTORY_KEY)).all()
        statuses = {d.status for d in mails}
        assert DeliveryStatus.pending not in statuses and DeliveryStatus.sending not in statuses
        sent = [d for d in mails if d.status == DeliveryStatus.sent]
        assert {d.attempts for d in sent} == {1}
        files = sorted(tiny_disk.glob("*.eml"))
        assert len(files) == len(sent) == len({d.message_id for d in sent})
