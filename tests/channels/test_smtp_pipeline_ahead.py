"""Issue 22: the next message's envelope rides with the end of this one's data.

With PIPELINING the channel writes ``<body k>.\\r\\nMAIL/RCPT/DATA of k+1`` in one go,
one round trip a message.  Whatever the server answers in the middle of that (a
per-recipient refusal, 421, a dropped connection) and whatever the send gate says
before message k+1's body (stop, lease lost), every message arrives at most once,
none is lost, and no empty message is ever delivered for an envelope that was
written but not followed by its body.
"""

from __future__ import annotations

import pytest

from channels import OutboundMessage, SendStatus
from channels.base import LEASE_LOST
from tests.channels.test_email_smtp import channel_for, outbound
from tests.smtp_server import Rule, ScriptedSMTPServer


@pytest.fixture
def server(smtp_server: ScriptedSMTPServer) -> ScriptedSMTPServer:
    """The suite's loopback server (tests/smtp_server.py), which announces PIPELINING:
    the path under test."""
    return smtp_server


def batch(n: int) -> list[OutboundMessage]:
    return [outbound(i) for i in range(1, n + 1)]


def received(server: ScriptedSMTPServer) -> list[str]:
    """The recipients of every message the server accepted, in order."""
    return [rcpt for m in server.messages for rcpt in m.rcpt_tos]


def no_empty_message(server: ScriptedSMTPServer) -> bool:
    return all(m.data.strip() for m in server.messages)


def test_a_refusal_in_the_middle_fails_that_recipient_only_on_one_connection(
    server: ScriptedSMTPServer,
) -> None:
    server.script["pelanggan3@example.com"] = "550 5.1.1 no such user"
    server.script["pelanggan5@example.com"] = Rule("554 5.7.1 content refused", stage="data")
    with channel_for(server) as channel:
        results = channel.send_batch(batch(7))

    assert [r.status for r in results] == [
        SendStatus.SENT, SendStatus.SENT, SendStatus.PERMANENT, SendStatus.SENT,
        SendStatus.PERMANENT, SendStatus.SENT, SendStatus.SENT]
    assert (results[2].raw["stage"], results[4].raw["stage"]) == ("rcpt", "data")
    assert received(server) == [f"pelanggan{i}@example.com" for i in (1, 2, 4, 6, 7)]
    assert server.connections == 1
    assert no_empty_message(server)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_421_mid_pipeline_holds_the_rest_back_without_an_attempt(
    server: ScriptedSMTPServer, stage: str,
) -> None:
    server.script["pelanggan3@example.com"] = Rule("421 4.3.2 shutting down", stage=stage)  # type: ignore[arg-type]
    with channel_for(server) as channel:
        results = channel.send_batch(batch(6))

    assert [r.status for r in results[:2]] == [SendStatus.SENT, SendStatus.SENT]
    assert all(r.status == SendStatus.TRANSIENT for r in results[2:])
    assert all(r.raw.get("not_attempted") for r in results[2:]), [r.raw for r in results]
    assert received(server) == ["pelanggan1@example.com", "pelanggan2@example.com"]
    assert no_empty_message(server)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_connection_dropped_mid_pipeline_loses_nothing_and_sends_nothing_twice(
    server: ScriptedSMTPServer, stage: str,
) -> None:
    server.script["pelanggan3@example.com"] = Rule(drop=True, times=1, stage=stage)  # type: ignore[arg-type]
    with channel_for(server) as channel:
        results = channel.send_batch(batch(6))
        retried = channel.send_batch([m for m, r in zip(batch(6), results, strict=True)
                                      if not r.ok])

    assert results[2].status == SendStatus.TRANSIENT
    assert results[2].raw["stage"] == stage
    assert bool(results[2].raw.get("outcome_unknown")) == (stage == "data")
    assert all(r.ok for i, r in enumerate(results) if i != 2)
    assert all(r.ok for r in retried)
    assert sorted(received(server)) == sorted(f"pelanggan{i}@example.com" for i in range(1, 7))
    assert server.connections == 2  # the dropped one, then one for the rest and the retry
    assert no_empty_message(server)


def test_a_gate_stop_after_the_next_envelope_went_out_sends_no_message_for_it(
    server: ScriptedSMTPServer,
) -> None:
    asked: list[int] = []

    def gate(message: OutboundMessage) -> str | None:
        asked.append(message.delivery_id)
        return "paused" if message.delivery_id == 3 else None

    with channel_for(server) as channel:
        results = channel.send_batch(batch(5), gate)
        after = channel.send_batch([outbound(9)])  # the session is usable again

    assert [r.ok for r in results] == [True, True, False, False, False]
    assert all(r.raw.get("stopped") == "paused" for r in results[2:])
    assert after[0].ok
    assert received(server) == ["pelanggan1@example.com", "pelanggan2@example.com",
                                "pelanggan9@example.com"]
    assert asked == [1, 2, 3]
    assert no_empty_message(server)


def test_a_lost_lease_skips_only_that_message_although_its_envelope_was_written(
    server: ScriptedSMTPServer,
) -> None:
    with channel_for(server) as channel:
        results = channel.send_batch(
            batch(5), lambda m: LEASE_LOST if m.delivery_id == 3 else None)

    assert [r.ok for r in results] == [True, True, False, True, True]
    assert results[2].raw.get("stopped") == LEASE_LOST
    assert received(server) == [f"pelanggan{i}@example.com" for i in (1, 2, 4, 5)]
    assert no_empty_message(server)


def test_the_next_envelope_never_crosses_the_reconnect_limit(
    server: ScriptedSMTPServer,
) -> None:
    with channel_for(server, reconnect_after=2) as channel:
        results = channel.send_batch(batch(5))

    assert all(r.ok for r in results)
    assert received(server) == [f"pelanggan{i}@example.com" for i in range(1, 6)]
    assert server.connections == 3
