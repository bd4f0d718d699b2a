"""SmtpChannel against a real SMTP server on loopback (aiosmtpd), including its faults."""

# The fixture is imported by name (until conftest registers tests.smtp_server as a plugin),
# so each test parameter "redefines" it: that is how pytest fixtures work, not a bug.
# ruff: noqa: F811

from __future__ import annotations

import socket
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest

from channels import ConfigurationError, OutboundMessage, SendStatus, get_adapter_class
from channels.email_smtp import SmtpChannel, classify_smtp_exception
from tests.smtp_server import Rule, ScriptedSMTPServer, smtp_server  # noqa: F401

SENDER = "bounce@umkm.ttskab.go.id"


def email_bytes(delivery_id: int, to: str, *, linesep: str = "\r\n") -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY.clone(linesep=linesep))
    msg["From"] = "Dinas Koperasi UMKM TTS <pemasaran@umkm.ttskab.go.id>"
    msg["To"] = to
    msg["Subject"] = f"Promo tenun ikat #{delivery_id}"
    msg["Message-ID"] = f"<d{delivery_id}@umkm.ttskab.go.id>"
    msg.set_content("Diskon 15% tenun ikat TTS.\n.baris diawali titik tetap utuh\n")
    return msg.as_bytes()


def outbound(delivery_id: int, to: str | None = None) -> OutboundMessage:
    to = to or f"pelanggan{delivery_id}@example.com"
    return OutboundMessage(
        delivery_id=delivery_id,
        recipient=to,
        payload=email_bytes(delivery_id, to),
        message_id=f"<d{delivery_id}@umkm.ttskab.go.id>",
        envelope_from=SENDER,
    )


def channel_for(server: ScriptedSMTPServer, **kwargs: object) -> SmtpChannel:
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("local_hostname", "worker.test")
    return SmtpChannel(server.host, server.port, **kwargs)  # type: ignore[arg-type]


def test_registry_resolves_smtp_channel() -> None:
    assert get_adapter_class("email_smtp") is SmtpChannel


def test_hundred_messages_share_one_connection(smtp_server: ScriptedSMTPServer) -> None:
    messages = [outbound(i) for i in range(1, 101)]
    with channel_for(smtp_server) as channel:
        results = channel.send_batch(messages)

    assert [r.status for r in results] == [SendStatus.SENT] * 100
    assert channel.stats.connections == 1
    assert channel.stats.sent == 100
    assert smtp_server.connections == 1
    received = smtp_server.messages
    assert [m.rcpt_tos for m in received] == [[m.recipient] for m in messages]
    assert received[0].mail_from == SENDER
    assert received[41].message_id == "<d42@umkm.ttskab.go.id>"
    # the queue id from the server's DATA reply is the provider id
    assert results[0].provider_id == "Q000001"
    assert results[0].raw["code"] == 250
    # dot-stuffing round trip: the body arrives intact
    assert ".baris diawali titik" in received[0].message.get_content()


def test_reconnects_after_configured_number_of_messages(smtp_server: ScriptedSMTPServer) -> None:
    with channel_for(smtp_server, reconnect_after=40) as channel:
        results = channel.send_batch([outbound(i) for i in range(1, 101)])
    assert all(r.ok for r in results)
    assert channel.stats.connections == 3
    assert smtp_server.connections == 3
    assert {m.connection for m in smtp_server.messages} == {1, 2, 3}


def test_451_is_transient_and_a_retry_succeeds(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.script["later@example.com"] = Rule("451 4.7.1 try later", times=1)
    channel = channel_for(smtp_server)
    first = channel.send_batch([outbound(1, "later@example.com"), outbound(2)])
    assert first[0].status == SendStatus.TRANSIENT
    assert first[0].raw["code"] == 451
    assert first[0].raw["reply"] == "4.7.1 try later"
    assert first[0].raw["enhanced_code"] == "4.7.1"
    assert not first[0].affects_account
    assert first[1].ok

    retry = channel.send(outbound(1, "later@example.com"))
    channel.close()
    assert retry.ok
    assert smtp_server.recipients() == ["pelanggan2@example.com", "later@example.com"]


def test_550_fails_only_that_recipient(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.script["bad@example.com"] = "550 5.1.1 no such user"
    batch = [outbound(i) for i in range(1, 11)]
    batch[4] = outbound(5, "bad@example.com")
    with channel_for(smtp_server) as channel:
        results = channel.send_batch(batch)

    statuses = [r.status for r in results]
    assert statuses[4] == SendStatus.PERMANENT
    assert statuses[:4] + statuses[5:] == [SendStatus.SENT] * 9
    assert results[4].error == "550 5.1.1 no such user"
    assert results[4].raw["stage"] == "rcpt"
    assert len(smtp_server.messages) == 9
    # RSET kept the session usable: no reconnect was needed
    assert smtp_server.connections == 1
    assert "bad@example.com" not in smtp_server.recipients()


def test_reply_after_data_is_classified_too(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.script["spam@example.com"] = Rule("554 5.7.1 message rejected", stage="data")
    smtp_server.script["full@example.com"] = Rule("452 4.3.1 insufficient storage", stage="data")
    with channel_for(smtp_server) as channel:
        results = channel.send_batch(
            [outbound(1, "spam@example.com"), outbound(2, "full@example.com"), outbound(3)]
        )
    expected = [SendStatus.PERMANENT, SendStatus.TRANSIENT, SendStatus.SENT]
    assert [r.status for r in results] == expected
    assert results[0].raw["stage"] == "data"
    assert smtp_server.connections == 1


def test_421_closes_the_session_and_the_next_message_reconnects(
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.script["busy@example.com"] = "421 4.7.0 too many messages, closing"
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1, "busy@example.com"), outbound(2), outbound(3)])
    assert [r.status for r in results] == [SendStatus.TRANSIENT, SendStatus.SENT, SendStatus.SENT]
    assert channel.stats.connections == 2


def test_dropped_connection_is_transient_and_the_rest_goes_out(
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.drop_after(5)
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(i) for i in range(1, 11)])

    assert [r.status for r in results[:5]] == [SendStatus.SENT] * 5
    assert results[5].status == SendStatus.TRANSIENT
    assert results[5].raw["stage"] == "mail"
    assert not results[5].affects_account
    assert [r.status for r in results[6:]] == [SendStatus.SENT] * 4
    assert channel.stats.connections == 2
    assert smtp_server.connections == 2
    assert len(smtp_server.messages) == 9


def test_drop_after_the_body_marks_the_outcome_unknown(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.script["cut@example.com"] = Rule(drop=True, stage="data")
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1, "cut@example.com"), outbound(2)])
    assert results[0].status == SendStatus.TRANSIENT
    assert results[0].raw["outcome_unknown"] is True
    assert results[1].ok


def test_slow_server_hits_the_timeout_instead_of_blocking(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.script["slow@example.com"] = Rule(delay=5)
    channel = channel_for(smtp_server, timeout=0.5)
    started = time.monotonic()
    results = channel.send_batch([outbound(1, "slow@example.com"), outbound(2)])
    elapsed = time.monotonic() - started
    channel.close()

    assert elapsed < 3
    assert results[0].status == SendStatus.TRANSIENT
    assert results[0].raw["timeout"] is True
    assert results[0].raw["stage"] == "rcpt"
    assert results[1].ok  # a fresh connection carried the next message
    assert channel.stats.connections == 2


def test_unreachable_server_fails_the_batch_fast_and_transient() -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = SmtpChannel("127.0.0.1", port, timeout=2, local_hostname="worker.test")
    results = channel.send_batch([outbound(i) for i in range(1, 6)])
    assert [r.status for r in results] == [SendStatus.TRANSIENT] * 5
    assert all(r.affects_account for r in results)
    assert [r.raw.get("not_attempted", False) for r in results] == [False] + [True] * 4
    assert channel.stats.connections == 0


def test_wrong_password_pauses_the_account(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.credentials = ("dinas", "rahasia")
    bad = channel_for(smtp_server, username="dinas", password="salah")
    results = bad.send_batch([outbound(1), outbound(2)])
    assert [r.status for r in results] == [SendStatus.AUTH, SendStatus.AUTH]
    assert results[0].raw["code"] == 535
    assert results[1].raw["not_attempted"] is True
    assert "salah" not in repr(bad)

    with channel_for(smtp_server) as anonymous:  # relay demands a login we do not give
        refused = anonymous.send(outbound(4))
    assert refused.status == SendStatus.AUTH and refused.raw["code"] == 530

    with channel_for(smtp_server, username="dinas", password="rahasia") as good:
        assert good.send(outbound(3)).ok
    assert smtp_server.recipients() == ["pelanggan3@example.com"]


def test_bare_lf_messages_are_sent_with_crlf(smtp_server: ScriptedSMTPServer) -> None:
    message = outbound(1)
    lf_only = OutboundMessage(
        delivery_id=1,
        recipient=message.recipient,
        payload=email_bytes(1, message.recipient, linesep="\n"),
        envelope_from=SENDER,
    )
    with channel_for(smtp_server) as channel:
        assert channel.send(lf_only).ok
    received = smtp_server.messages[0]
    assert received.message["Subject"] == "Promo tenun ikat #1"
    assert b"\r\n" in received.data and b"\n\n" not in received.data.replace(b"\r\n", b"")


def test_invalid_envelope_fails_that_message_only(smtp_server: ScriptedSMTPServer) -> None:
    smuggled = "x@example.com\r\nRCPT TO:<y@example.com>"
    injected = OutboundMessage(2, smuggled, b"x", envelope_from=SENDER)
    not_bytes = OutboundMessage(3, "z@example.com", {"text": "hi"}, envelope_from=SENDER)
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1), injected, not_bytes, outbound(4)])
    assert [r.status for r in results] == [
        SendStatus.SENT, SendStatus.PERMANENT, SendStatus.PERMANENT, SendStatus.SENT,
    ]
    assert smtp_server.recipients() == ["pelanggan1@example.com", "pelanggan4@example.com"]


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"reconnect_after": 0}, {"host": ""}]
)
def test_bad_settings_are_configuration_errors(kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {"host": "127.0.0.1", "port": 25, **kwargs}
    with pytest.raises(ConfigurationError):
        SmtpChannel(**options)  # type: ignore[arg-type]


def test_smtplib_exceptions_map_by_code() -> None:
    import smtplib

    refused = smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"5.1.1 unknown")})
    assert classify_smtp_exception(refused).status == SendStatus.PERMANENT
    assert classify_smtp_exception(smtplib.SMTPSenderRefused(451, b"later", SENDER)).status == (
        SendStatus.TRANSIENT
    )
    assert classify_smtp_exception(smtplib.SMTPDataError(552, b"too big")).status == (
        SendStatus.PERMANENT
    )
    assert classify_smtp_exception(smtplib.SMTPDataError(530, b"auth required")).status == (
        SendStatus.AUTH
    )
