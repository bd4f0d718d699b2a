"""SMTP faults through the real delivery pipeline (``engine.delivery.pipeline.process_batch``).

Each test launches a small promotional campaign, lets the loopback SMTP server misbehave
in one documented way, and checks what a recipient sees (how many copies, which
Message-ID) and what the outbox says: sent, duplicates and lost are counted explicitly.
The clock is :data:`tests.factories.NOW`; a retry pass runs at ``LATER`` (past every
backoff), so no test sleeps through a backoff.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.delivery.pipeline import process_batch
from tests.factories import NOW
from tests.faults.conftest import FaultySMTPServer, MailWorld, per_recipient
from tests.smtp_server import Rule

LATER = NOW + timedelta(hours=2)


@pytest.fixture(autouse=True, params=["pipelining", "one-by-one"])
def smtp_mode(request: pytest.FixtureRequest, faulty_smtp: FaultySMTPServer) -> None:
    """Every fault twice: with PIPELINING announced (RFC 2920, as Postfix does) and without."""
    faulty_smtp.pipelining = request.param == "pipelining"


def aware(value: datetime | None) -> datetime:
    """SQLite reads datetimes back naive (they are UTC)."""
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def tally(w: MailWorld, run_id: int) -> tuple[int, set[str], set[str]]:
    """(recipients reached, recipients with more than one copy, recipients never reached)."""
    received = per_recipient(w.smtp.messages)
    planned = set(w.rows(run_id))
    duplicated = {r for r, copies in received.items() if len(copies) > 1}
    return len(set(received) & planned), duplicated, planned - set(received)


def assert_copies_share_the_stored_message_id(w: MailWorld, run_id: int) -> None:
    rows = w.rows(run_id)
    for rcpt, copies in per_recipient(w.smtp.messages).items():
        assert set(copies) == {rows[rcpt].message_id}, (rcpt, copies, rows[rcpt].message_id)


# ----------------------------------------------------------------------------- 4xx
def test_451_spends_an_attempt_421_holds_the_rest_back_and_all_arrive_once(
    mail_world: MailWorld,
) -> None:
    """One greylisted recipient spends one attempt; a 421 is the relay closing, so that
    message and the untried rest wait without spending any (issue 14)."""
    w = mail_world
    run_id, ids = w.promo("promo-421-451", 12)
    recipients = sorted(w.rows(run_id))
    grey, closing = recipients[3], recipients[7]
    w.smtp.script[grey] = Rule("451 4.7.1 Greylisted, coba lagi nanti", times=1)
    w.smtp.script[closing] = Rule("421 4.3.2 Layanan ditutup sementara", times=1)

    first = process_batch(run_id, ids, w.settings, NOW)

    assert (first.sent, first.retried, first.failed, first.deferred) == (6, 1, 0, 5)
    rows = w.rows(run_id)
    assert rows[grey].status.value == "pending" and rows[grey].attempts == 1
    assert (rows[grey].error or "").startswith("451")
    for rcpt in recipients[7:]:
        row = rows[rcpt]
        assert row.status.value == "pending" and row.attempts == 0, rcpt
        assert aware(row.next_attempt_at) > NOW
    assert (rows[closing].error or "").startswith("421")
    assert w.smtp.connections == 1  # 421 closed the session; nothing more was tried
    # Not due yet: a pass at the same instant sends nothing.
    assert process_batch(run_id, ids, w.settings, NOW).claimed == 0

    second = process_batch(run_id, ids, w.settings, LATER)

    assert (second.claimed, second.sent) == (6, 6)
    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (12, set(), set())
    assert [o for r, o in w.smtp.attempts if r == grey] == [
        "451 4.7.1 Greylisted, coba lagi nanti", "accepted"]
    rows = w.rows(run_id)
    assert rows[grey].status.value == "sent" and rows[grey].attempts == 2
    assert rows[closing].status.value == "sent" and rows[closing].attempts == 1
    assert_copies_share_the_stored_message_id(w, run_id)
    assert w.counts(run_id)["sent"] == 12


# ----------------------------------------------------------------------------- 5xx
def test_550_fails_only_that_recipient_and_is_never_retried(mail_world: MailWorld) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-550", 12)
    recipients = sorted(w.rows(run_id))
    unknown, refused = recipients[2], recipients[9]
    w.smtp.script[unknown] = "550 5.1.1 Mailbox tidak ada"
    w.smtp.script[refused] = Rule("554 5.7.1 Pesan ditolak", stage="data")

    first = process_batch(run_id, ids, w.settings, NOW)

    assert (first.sent, first.retried, first.failed) == (10, 0, 2)
    rows = w.rows(run_id)
    assert rows[unknown].status.value == "failed" and "550 5.1.1" in (rows[unknown].error or "")
    assert rows[refused].status.value == "failed" and "554 5.7.1" in (rows[refused].error or "")
    assert process_batch(run_id, ids, w.settings, LATER).claimed == 0
    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (10, set(), {unknown, refused})
    assert w.smtp.connections == 1  # a refused recipient does not cost the session
    assert w.counts(run_id) == {**w.counts(run_id), "sent": 10, "failed": 2, "pending": 0}


# ----------------------------------------------------------------------------- drops
def test_connection_dropped_after_n_messages_loses_nothing_and_duplicates_nothing(
    mail_world: MailWorld,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-putus", 20)
    w.smtp.drop_after(5, times=2)  # the 6th and the 11th MAIL FROM: connection aborted

    first = process_batch(run_id, ids, w.settings, NOW)

    assert (first.sent, first.retried, first.failed) == (18, 2, 0)
    assert w.smtp.connections == 3
    waiting = [r for r in w.rows(run_id).values() if r.status.value == "pending"]
    assert len(waiting) == 2
    assert all("MAIL" in (r.error or "") for r in waiting), [r.error for r in waiting]

    second = process_batch(run_id, ids, w.settings, LATER)

    assert second.sent == 2
    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (20, set(), set())  # dropped before DATA: no copy
    assert_copies_share_the_stored_message_id(w, run_id)


def test_reply_lost_after_the_final_dot_duplicates_only_that_message_with_one_message_id(
    mail_world: MailWorld,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-balasan-hilang", 10)
    in_flight = sorted(w.rows(run_id))[4]
    w.smtp.lose_reply[in_flight] = "drop"  # accepted and queued, then the line is cut

    first = process_batch(run_id, ids, w.settings, NOW)

    assert (first.sent, first.retried) == (9, 1)
    row = w.rows(run_id)[in_flight]
    assert row.status.value == "pending" and "DATA" in (row.error or "")
    second = process_batch(run_id, ids, w.settings, LATER)
    assert second.sent == 1

    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (10, {in_flight}, set())
    assert len(per_recipient(w.smtp.messages)[in_flight]) == 2  # bounded: one extra copy
    assert_copies_share_the_stored_message_id(w, run_id)  # the inbox can de-duplicate


# ----------------------------------------------------------------------------- timeouts
def test_no_reply_after_the_final_dot_times_out_and_resends_with_the_same_message_id(
    mail_world: MailWorld,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-tanpa-balasan", 8)
    in_flight = sorted(w.rows(run_id))[2]
    w.short_timeout()  # the held reply waits far longer than the SMTP timeout
    w.smtp.lose_reply[in_flight] = "hold"

    started = time.monotonic()
    first = process_batch(run_id, ids, w.settings, NOW)
    elapsed = time.monotonic() - started

    assert elapsed < w.smtp.hold_seconds, f"the batch waited {elapsed:.1f} s for a silent server"
    assert (first.sent, first.retried, first.failed) == (7, 1, 0)
    row = w.rows(run_id)[in_flight]
    assert row.status.value == "pending"
    # The outcome-unknown attempt is on record: the timeout, at DATA, with its Message-ID.
    assert "waktu habis" in (row.error or "") and "DATA" in (row.error or ""), row.error
    assert row.message_id
    w.smtp_timeout(60)  # the resend is what is tested here, not the timeout again
    second = process_batch(run_id, ids, w.settings, LATER)
    assert second.sent == 1

    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (8, {in_flight}, set())
    assert len(per_recipient(w.smtp.messages)[in_flight]) == 2
    assert_copies_share_the_stored_message_id(w, run_id)


def test_outcome_unknown_resend_is_logged_with_its_message_id(
    mail_world: MailWorld, caplog: pytest.LogCaptureFixture,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-log-ganda", 3)
    in_flight = sorted(w.rows(run_id))[1]
    w.smtp.lose_reply[in_flight] = "drop"
    with caplog.at_level(logging.INFO):
        process_batch(run_id, ids, w.settings, NOW)
        process_batch(run_id, ids, w.settings, LATER)
    message_id = w.rows(run_id)[in_flight].message_id or "?"
    assert any(message_id in r.getMessage() for r in caplog.records), caplog.text


def test_hanging_server_stops_the_batch_after_two_timeouts_and_nothing_is_lost(
    mail_world: MailWorld,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-lambat", 20)
    timeout = w.short_timeout(floor=0.3)
    w.smtp.delay = 8 * timeout  # every MAIL/RCPT/DATA reply waits far beyond the timeout

    started = time.monotonic()
    first = process_batch(run_id, ids, w.settings, NOW)
    elapsed = time.monotonic() - started

    # Two timeouts in a row: the relay is hanging, the rest of the batch is not tried
    # (250 x 30 s would hold a worker for two hours) and spends none of its attempts.
    assert elapsed < 10 * timeout, elapsed  # 20 timeouts would take 20 timeouts
    assert (first.sent, first.retried, first.failed, first.deferred) == (0, 2, 0, 18)
    rows = sorted(w.rows(run_id).values(), key=lambda r: r.id)
    assert all("waktu habis" in (r.error or "") and r.attempts == 1 for r in rows[:2])
    assert all(r.status.value == "pending" and r.attempts == 0 for r in rows[2:])
    assert all(r.next_attempt_at is not None for r in rows)

    w.smtp.delay = 0.0  # the relay recovers
    w.smtp_timeout(30.0)  # and the operator's normal timeout is back (a loaded CI host
    # can take longer than 0.3 s for a healthy reply)
    second = process_batch(run_id, ids, w.settings, LATER)

    assert second.sent == 20
    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (20, set(), set())


def test_timeouts_with_answers_in_between_cost_one_timeout_each_and_stop_nothing(
    mail_world: MailWorld,
) -> None:
    w = mail_world
    run_id, ids = w.promo("promo-tersendat", 10)
    silent = [sorted(w.rows(run_id))[i] for i in (2, 5, 8)]
    w.short_timeout()
    for recipient in silent:
        w.smtp.lose_reply[recipient] = "hold"

    first = process_batch(run_id, ids, w.settings, NOW)

    # A relay that answers between the timeouts is slow, not down: every message tried.
    assert (first.sent, first.retried, first.failed, first.deferred) == (7, 3, 0, 0)
    # The retry is about what the first batch left, not about timeouts: an ordinary
    # timeout keeps a loaded machine's slow-but-healthy reply from looking like a fault.
    w.smtp_timeout(60)
    second = process_batch(run_id, ids, w.settings, LATER)
    assert second.sent == 3
    reached, duplicated, lost = tally(w, run_id)
    assert (reached, duplicated, lost) == (10, set(silent), set())
