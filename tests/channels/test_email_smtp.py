"""SmtpChannel against a real SMTP server on loopback (aiosmtpd), including its faults.

Every test that talks to ``smtp_server`` runs twice: with PIPELINING announced (RFC 2920:
MAIL, RCPT and DATA in one write) and without (one command per round trip).
"""

from __future__ import annotations

import smtplib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import ConfigurationError, OutboundMessage, SendStatus, email_smtp, get_adapter_class
from channels.email_smtp import SmtpChannel, classify_smtp_exception, data_pieces, dot_stuffed
from channels.smtp_wire import _reverse_path
from tests.smtp_server import Rule, ScriptedSMTPServer

SENDER = "bounce@umkm.ttskab.go.id"


@pytest.fixture(params=["pipelining", "one-by-one"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[ScriptedSMTPServer]:
    """The loopback server, once announcing PIPELINING and once not."""
    server = ScriptedSMTPServer()
    server.pipelining = request.param == "pipelining"
    server.start()
    try:
        yield server
    finally:
        server.stop()


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


def test_421_closes_the_session_and_holds_the_rest_back_without_spending_attempts(
    smtp_server: ScriptedSMTPServer,
) -> None:
    """421 is the relay's own "service not available": not this message's fault, and the
    next ones would get the same (issue 14: 1,496 attempts spent in 5 s of 421s)."""
    smtp_server.script["busy@example.com"] = "421 4.7.0 too many messages, closing"
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1, "busy@example.com"), outbound(2), outbound(3)])
        assert [r.status for r in results] == [SendStatus.TRANSIENT] * 3
        assert all(r.held_back for r in results)
        assert results[0].raw["relay_wide"] and results[0].raw["code"] == 421
        assert channel.stats.connections == 1
        again = channel.send_batch([outbound(4), outbound(5)])  # the next batch reconnects
    assert [r.status for r in again] == [SendStatus.SENT] * 2
    assert channel.stats.connections == 2


def test_451_to_mail_from_holds_the_whole_batch_back(smtp_server: ScriptedSMTPServer) -> None:
    smtp_server.script[SENDER] = Rule("451 4.3.0 sender temporarily refused", stage="mail")
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(i) for i in range(1, 6)])
    assert all(r.held_back and r.status == SendStatus.TRANSIENT for r in results)
    assert results[0].raw["stage"] == "mail"


def test_one_deferred_recipient_spends_its_attempt_and_the_rest_goes_out(
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.script["grey@example.com"] = "451 4.7.1 greylisted, try later"
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1, "grey@example.com"), outbound(2), outbound(3)])
    assert [r.status for r in results] == [SendStatus.TRANSIENT, SendStatus.SENT, SendStatus.SENT]
    assert not results[0].held_back


def test_every_recipient_deferred_is_relay_wide_and_gives_back_the_first_ones(
    smtp_server: ScriptedSMTPServer,
) -> None:
    for i in range(1, 9):
        smtp_server.script[f"r{i}@example.com"] = "450 4.2.0 mailbox busy, try later"
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(i, f"r{i}@example.com") for i in range(1, 9)])
    assert all(r.held_back for r in results), [r.raw for r in results]
    assert len(smtp_server.attempts) == 3  # stopped at the third deferral


def test_two_deferrals_then_an_acceptance_spend_two_attempts_and_stop_nothing(
    smtp_server: ScriptedSMTPServer,
) -> None:
    for i in (1, 2, 4, 5):
        smtp_server.script[f"r{i}@example.com"] = "450 4.2.0 mailbox busy"
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(i, f"r{i}@example.com") for i in range(1, 7)])
    assert [r.held_back for r in results] == [False] * 6
    assert [r.status for r in results] == [SendStatus.TRANSIENT, SendStatus.TRANSIENT,
                                           SendStatus.SENT, SendStatus.TRANSIENT,
                                           SendStatus.TRANSIENT, SendStatus.SENT]


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

    assert elapsed < 5, f"the batch waited {elapsed:.1f} s: the slow reply itself"
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
    # Nothing left for any of them, the first included: no attempt spent (issue 14).
    assert [r.held_back for r in results] == [True] * 5
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


# ----------------------------------------------------------------------------- PIPELINING
class _WriteLog:
    """Every write SmtpChannel makes (smtplib's ``send`` and the channel's own
    ``send_buffers``), in order: one entry per system call that writes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[bytes] = []
        original = smtplib.SMTP.send
        original_buffers = email_smtp.send_buffers

        def send(conn: smtplib.SMTP, data: str | bytes) -> None:
            self.writes.append(data if isinstance(data, bytes) else data.encode())
            original(conn, data)

        def send_buffers(conn: smtplib.SMTP, buffers: list[bytes]) -> None:
            self.writes.append(b"".join(buffers))
            original_buffers(conn, buffers)

        monkeypatch.setattr(smtplib.SMTP, "send", send)
        monkeypatch.setattr(email_smtp, "send_buffers", send_buffers)

    def after_ehlo(self) -> list[bytes]:
        return [w for w in self.writes if not w.lower().startswith((b"ehlo", b"quit"))]


def test_pipelining_sends_one_write_a_message_with_the_next_envelope(
    smtp_server: ScriptedSMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _WriteLog(monkeypatch)
    first, second = outbound(1), outbound(2)
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([first, second])
    assert all(r.ok for r in results)

    def envelope(message: OutboundMessage) -> bytes:
        return (b"MAIL FROM:<bounce@umkm.ttskab.go.id> SIZE=%d\r\nRCPT TO:<%s>\r\n"
                % (len(message.payload), message.recipient.encode()))

    writes = log.after_ehlo()
    if smtp_server.pipelining:
        # One round trip a message: the first envelope, then each body with the
        # envelope of the next one (RFC 2920 §3.1), the last body alone.
        assert len(writes) == 3
        assert writes[0] == envelope(first) + b"DATA\r\n"
        assert writes[1].endswith(b"\r\n.\r\n" + envelope(second) + b"DATA\r\n")
        body = writes[1].removesuffix(envelope(second) + b"DATA\r\n")
    else:  # 4 round trips: MAIL, RCPT, DATA, then the body
        assert len(writes) == 8
        assert b"".join(writes[:3]).upper() == envelope(first).upper() + b"DATA\r\n"
        body = writes[3]
    assert body.endswith(b"\r\n.\r\n") and b"\r\n..baris diawali titik" in body
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ["pelanggan1@example.com"], ["pelanggan2@example.com"]]


def test_451_at_mail_is_transient_and_the_session_goes_on(
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.script[SENDER] = Rule("451 4.3.0 sender check unavailable", stage="mail",
                                      times=1)
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1), outbound(2)])
    assert results[0].status == SendStatus.TRANSIENT
    assert (results[0].raw["stage"], results[0].raw["code"]) == ("mail", 451)
    assert not results[0].affects_account
    assert results[1].ok
    assert smtp_server.connections == 1  # RSET, not a reconnect
    assert smtp_server.recipients() == ["pelanggan2@example.com"]


def test_421_at_mail_closes_the_session_and_holds_the_batch(
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.script[SENDER] = Rule("421 4.3.2 shutting down", stage="mail", times=1)
    with channel_for(smtp_server) as channel:
        results = channel.send_batch([outbound(1), outbound(2)])
        assert channel.stats.connections == 1
        assert channel.send_batch([outbound(3)])[0].ok  # the next batch reconnects
        assert channel.stats.connections == 2
    assert (results[0].status, results[0].raw["stage"]) == (SendStatus.TRANSIENT, "mail")
    assert results[0].held_back and results[1].held_back


def test_pipelining_is_not_used_unless_announced(smtp_server: ScriptedSMTPServer) -> None:
    with channel_for(smtp_server) as channel:
        assert channel.send(outbound(1)).ok
        conn = channel._conn
        assert conn is not None
        assert conn.has_extn("pipelining") is smtp_server.pipelining


class _ScriptedLines(socketserver.StreamRequestHandler):
    """A bare SMTP server that answers each command from ``replies`` (prefix -> reply).

    aiosmtpd refuses DATA after a refused RCPT by itself; this one can misbehave the
    way RFC 2920 §3.1 warns about, accepting DATA (354) with no valid recipient.
    """

    replies: ClassVar[dict[bytes, bytes]] = {}
    received: ClassVar[list[bytes]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 lines.test ESMTP\r\n")
        in_data = False
        for line in self.rfile:
            self.received.append(line)
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    self.wfile.write(self.replies[b"."])
                continue
            command = line[:4].upper()
            self.wfile.write(self.replies.get(command, b"250 ok\r\n"))
            in_data = command == b"DATA" and self.replies[b"DATA"].startswith(b"354")
            if command == b"QUIT":
                return


@pytest.fixture
def lines_server() -> Iterator[tuple[str, int, type[_ScriptedLines]]]:
    handler = type("Handler", (_ScriptedLines,), {"replies": {
        b"EHLO": b"250-lines.test\r\n250 PIPELINING\r\n",
        b"RCPT": b"550 5.1.1 no such user\r\n",
        b"DATA": b"354 go ahead anyway\r\n",
        b".": b"554 5.5.0 no valid recipients\r\n",
    }, "received": []})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_data_accepted_after_a_refused_rcpt_gets_an_empty_message_then_rset(
    lines_server: tuple[str, int, Any],
) -> None:
    host, port, handler = lines_server
    with SmtpChannel(host, port, timeout=5, local_hostname="worker.test") as channel:
        result = channel.send(outbound(1))
        assert channel.stats.connections == 1
    assert result.status == SendStatus.PERMANENT
    assert (result.raw["stage"], result.raw["code"]) == ("rcpt", 550)
    commands = [line.split(b" ")[0].split(b":")[0].strip().upper() for line in handler.received]
    assert commands == [b"EHLO", b"MAIL", b"RCPT", b"DATA", b".", b"RSET", b"QUIT"]


# ----------------------------------------------------------------------------- dot-stuffing
def test_lines_starting_with_a_dot_arrive_intact_even_the_first(
    smtp_server: ScriptedSMTPServer,
) -> None:
    payload = (b".From: first line starts with a dot\r\n"
               b"To: x@example.com\r\n\r\n.\r\n..two\r\n.three\r\nlast.\r\n.")
    message = OutboundMessage(1, "x@example.com", payload, envelope_from=SENDER,
                              crlf_only=True)
    with channel_for(smtp_server) as channel:
        assert channel.send(message).ok
    assert smtp_server.messages[0].data == payload + b"\r\n"


_CRLF_DATA = st.lists(st.sampled_from([b".", b"..", b"a", b" ", b"\r\n", b"\r\n.", b"x.y"]),
                      max_size=30).map(b"".join)


@given(_CRLF_DATA)
def test_dot_stuffing_matches_smtplib(data: bytes) -> None:
    """The same bytes on the wire as ``smtplib.SMTP.data`` for every CRLF-only message."""
    expected = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    if expected[-2:] != b"\r\n":
        expected += b"\r\n"
    assert dot_stuffed(data) == expected + b".\r\n"


def test_crlf_only_payload_is_passed_through_untouched() -> None:
    channel = SmtpChannel("127.0.0.1", 25)
    payload = email_bytes(1, "x@example.com")
    trusted = OutboundMessage(1, "x@example.com", payload, envelope_from=SENDER,
                              crlf_only=True)
    assert channel.build_payload(trusted) is payload
    bare = OutboundMessage(1, "x@example.com", b"a\nb\r\nc\n", envelope_from=SENDER)
    assert channel.build_payload(bare) == b"a\r\nb\r\nc\r\n"


_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"


@given(st.from_regex(rf"\A[{_ATEXT}]{{1,8}}(\.[{_ATEXT}]{{1,5}})?@[a-z0-9-]{{1,8}}"
                     rf"(\.[a-z]{{2,4}})?\Z"))
def test_envelope_paths_match_smtplib_quoteaddr(address: str) -> None:
    assert _reverse_path(address) == smtplib.quoteaddr(address)


@pytest.mark.parametrize("address", [
    "Name <a@example.com>", "<a@example.com>", "a b@example.com", '"q x"@example.com', "",
    "a..b@example.com", ".a@example.com", "pelanggan@bench.example.id",
])
def test_unusual_envelope_paths_fall_back_to_quoteaddr(address: str) -> None:
    assert _reverse_path(address) == smtplib.quoteaddr(address)


@given(_CRLF_DATA.filter(lambda data: b"\r\n." not in data))
def test_a_payload_without_leading_dots_goes_out_as_it_is(data: bytes) -> None:
    """Issue 22: ``no_leading_dots`` skips the search, not the result: for data that
    indeed has none, the wire bytes are those of the searching path."""
    pieces = data_pieces(data, no_leading_dots=True)
    assert b"".join(pieces) == dot_stuffed(data)
    assert any(piece is data for piece in pieces)  # not copied


def test_a_built_campaign_mail_is_sent_intact_without_the_dot_search(
    smtp_server: Any,
) -> None:
    from engine.message.mime import MessageSkeleton

    skeleton = MessageSkeleton("pemasaran@example.com", ".Dinas", "example.com")
    payload = skeleton.build("x@example.com", ".Maria", ".Halo", ".satu\n.dua\n",
                             "<p>\n.tiga</p>\n", "<m.1@example.com>")
    assert b"\r\n." not in payload
    message = OutboundMessage(1, "x@example.com", payload, envelope_from=SENDER,
                              crlf_only=True, no_leading_dots=True)
    with channel_for(smtp_server) as channel:
        assert channel.send(message).ok
    assert smtp_server.messages[0].data == payload
