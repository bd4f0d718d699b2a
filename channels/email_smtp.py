"""Email over SMTP: one reused connection for many messages, every reply classified.

Why hand-rolled transactions instead of ``smtplib.SMTP.sendmail``: ``sendmail`` drops the
server's final reply to DATA, which carries the queue id ("250 2.0.0 Ok: queued as
4Xk9") we keep as provider id, and it hides at which stage a reply came.  The steps here
are the same as ``sendmail``'s (MAIL, RCPT, DATA; RSET after a refused transaction;
421 closes the connection), on smtplib's own primitives, with two savings that matter
at a thousand messages a second:

- PIPELINING (RFC 2920), when the server announces it: MAIL, RCPT and DATA go out in
  one write and their three replies are read in order; each reply is still classified
  at its own stage.  Within a batch the envelope of the *next* message rides in the
  same write as the end of this one's data (RFC 2920 §3.1: message content may open a
  command group), so a message costs ONE round trip (issue 22; it was two, four
  without PIPELINING).  The next message is still asked of the send gate only after
  this one's final reply: when the gate stops it, its envelope is abandoned (the
  connection is closed if the server already said 354, so no empty message can go out);
- the message body is dot-stuffed only when it needs it (``engine.message.mime``
  writes none that do) and goes to the socket with its end and the next envelope in
  one ``sendmsg``, without being copied (``smtplib.SMTP.data`` runs a regex over it).

Reply classes (RFC 5321 §4.2.1):

- 2xx: sent;
- 4xx (421, 450, 451, 452, ...): transient, retry later; 421 also closes the connection;
- 530/534/535/538: the relay credentials are wrong: auth (pause the account);
- other 5xx (550, 553, 554, ...): permanent, for this recipient only;
- a dropped connection or a timeout: transient; the next message reconnects.

Relay-wide temporary refusals (issue 14) hold the untried rest of the batch back
*without spending attempts*: 421 at any stage (the relay closes),
:data:`DEFERRALS_BEFORE_STOP` deferrals in a row at MAIL or RCPT (it defers every
recipient), and a relay that cannot be reached at all.  A single deferred message still
spends one attempt.

Nothing blocks forever: every socket operation has ``timeout`` seconds.
"""

from __future__ import annotations

import itertools
import logging
import re
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from channels.base import (
    AccountCredentials,
    AuthChannelError,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    ChannelKind,
    ConfigurationError,
    OutboundMessage,
    PermanentChannelError,
    SendGate,
    SendResult,
    SendStatus,
    SocialHooks,
    TransientChannelError,
    pick,
)
from channels.smtp_replies import (
    AUTH_REPLY_CODES,
    _text,
    classify_smtp_exception,
    error_for_reply,
)
from channels.smtp_wire import (
    _crlf,
    _pipelined_commands,
    data_pieces,
    dot_stuffed,
    send_buffers,
)

__all__ = ["AUTH_REPLY_CODES", "SmtpChannel", "classify_smtp_exception", "data_pieces",
           "dot_stuffed", "error_for_reply", "send_buffers"]

log = logging.getLogger(__name__)

# Timeouts in a row (no reply in between) after which the relay counts as down for the
# rest of the batch: a hanging relay then costs two timeouts per batch, not one per
# message (250 x 30 s would hold a worker for two hours).
TIMEOUTS_BEFORE_STOP = 2
# MAIL/RCPT deferrals (4xx) in a row, none accepted in between, after which the relay
# counts as deferring everything: those recipients and the rest of the batch are held back
# without spending an attempt (a greylisting or overloaded relay is not their fault).
DEFERRALS_BEFORE_STOP = 3
_QUEUE_ID = re.compile(r"queued as\s+<?([\w.@-]+)>?", re.IGNORECASE)
# The replies a transaction needs at each stage to go on.
_EXPECTED: dict[str, tuple[int, ...]] = {"mail": (250,), "rcpt": (250, 251), "data": (354,)}


@dataclass
class SmtpStats:
    """Counters of one adapter instance (connection reuse is what makes SMTP fast)."""

    connections: int = 0
    messages: int = 0
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """The server's final answer to DATA for an accepted message."""

    code: int
    text: str


def _give_back_deferrals(results: list[SendResult], stop: int) -> None:
    """Turn the RCPT deferrals right before ``results[stop]`` into not-attempted ones."""
    i = stop - 1
    while i >= 0 and results[i].raw.get("deferral"):
        old = results[i]
        results[i] = SendResult(old.delivery_id, old.status, error=old.error,
                                raw={**old.raw, "not_attempted": True, "relay_wide": True},
                                retry_after=old.retry_after, affects_account=True)
        i -= 1


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


@dataclass
class _Step:
    """Where a transaction stands: a dropped connection or a timeout is reported there."""

    stage: str = "mail"


@dataclass(frozen=True, slots=True)
class _Ahead:
    """The envelope of the next message, written with the end of the previous one's
    data: its three replies are still to be read on ``conn``."""

    delivery_id: int
    conn: smtplib.SMTP


class SmtpChannel(ChannelAdapter[bytes, SmtpReply]):
    """Send complete RFC 5322 messages through one SMTP relay, reusing the connection.

    The connection opens at the first message, is reused for ``reconnect_after``
    messages (relays limit messages per session), and is reopened after any drop.
    """

    name = "email_smtp"
    capabilities = Capabilities(media_types=frozenset({"email"}), max_batch=500,
                                kind=ChannelKind.EMAIL, label="Email")

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30,
        reconnect_after: int = 500,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        if not host:
            raise ConfigurationError("channel.bad_option", name=self.name, detail="host kosong")
        if not timeout or timeout <= 0:
            raise ConfigurationError(
                "channel.bad_option", name=self.name, detail="timeout harus lebih dari 0 detik"
            )
        if reconnect_after < 1:
            raise ConfigurationError(
                "channel.bad_option", name=self.name, detail="reconnect_after minimal 1"
            )
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = float(timeout)
        self.reconnect_after = reconnect_after
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self.stats = SmtpStats()
        self._conn: smtplib.SMTP | None = None
        self._on_connection = 0
        self._timeouts_in_a_row = 0
        self._deferrals_in_a_row = 0
        self._following: dict[int, OutboundMessage] = {}  # delivery id -> next in batch
        self._ahead: _Ahead | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     credentials: AccountCredentials | None = None,
                     hooks: SocialHooks | None = None) -> Self:
        """The relay and its login come from settings; an empty login means none."""
        return cls(
            options["host"],
            username=options.get("username") or None,
            password=options.get("password") or None,
            **pick(options, "port", "starttls", "timeout", "reconnect_after", "local_hostname"),
        )

    def __repr__(self) -> str:  # the password never shows
        user = f" user={self.username!r}" if self.username else ""
        return f"<SmtpChannel {self.host}:{self.port}{user} starttls={self.starttls}>"

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        self._quit()
        super().close()

    # -- pipeline steps ------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> bytes:
        if not isinstance(message.payload, bytes):
            raise PermanentChannelError("payload email harus berupa bytes RFC 5322")
        addresses = (("penerima", message.recipient), ("pengirim", message.envelope_from))
        for label, address in addresses:
            if not address or "\r" in address or "\n" in address:
                raise PermanentChannelError(f"alamat {label} amplop tidak valid: {address!r}")
        return message.payload if message.crlf_only else _crlf(message.payload)

    def transmit(self, message: OutboundMessage, payload: bytes) -> SmtpReply:
        if self._ahead is not None and self._ahead.delivery_id != message.delivery_id:
            self._settle_ahead()  # the message it was written for was not sent
        conn = self._connection()
        self.stats.messages += 1
        self._on_connection += 1
        try:
            reply = self._transaction(conn, message, payload)
        except ChannelError as exc:
            self.stats.failed += 1
            if not exc.raw.get("timeout"):
                self._timeouts_in_a_row = 0  # the relay answered (even if it refused)
            wide = self._relay_wide(exc)
            if wide is not None:
                raise wide from exc
            raise
        except BaseException:
            self._discard()  # the session is in an unknown state: never reuse it
            raise
        finally:
            self._after_message(conn)
        self.stats.sent += 1
        self._timeouts_in_a_row = 0
        self._deferrals_in_a_row = 0
        return reply

    def _relay_wide(self, exc: ChannelError) -> TransientChannelError | None:
        """The refusal as a relay-wide deferral (no attempt spent, the batch held back),
        or None when it concerns this recipient only."""
        code, stage = exc.raw.get("code"), exc.raw.get("stage")
        if not isinstance(exc, TransientChannelError) or not isinstance(code, int):
            self._deferrals_in_a_row = 0
            return None
        if code != 421:
            if stage not in ("mail", "rcpt"):
                return None
            self._deferrals_in_a_row += 1
            exc.raw["deferral"] = True
            if self._deferrals_in_a_row < DEFERRALS_BEFORE_STOP:
                return None
        self._deferrals_in_a_row = 0
        return TransientChannelError(exc.message, raw={**exc.raw, "relay_wide": True,
                                                       "not_attempted": True},
                                     retry_after=exc.retry_after, affects_account=True)

    def send_batch(self, messages: Iterable[OutboundMessage],
                   gate: SendGate | None = None) -> list[SendResult]:
        """As the base class; a relay found deferring every recipient also gives back
        the recipients it deferred just before it was recognised (no attempt spent)."""
        batch = list(messages)
        self._following = {m.delivery_id: n for m, n in itertools.pairwise(batch)
                           if m.account == n.account}
        try:
            results = super().send_batch(batch, gate)
        finally:
            self._following = {}
            self._settle_ahead()  # a next envelope the gate did not let through
        for i, result in enumerate(results):
            if result.raw.get("relay_wide") and result.raw.get("deferral"):
                _give_back_deferrals(results, i)
                break
        return results

    def parse(self, message: OutboundMessage, response: SmtpReply) -> SendResult:
        queued = _QUEUE_ID.search(response.text)
        return SendResult(
            message.delivery_id,
            SendStatus.SENT,
            provider_id=queued.group(1) if queued else None,
            raw={"code": response.code, "reply": response.text},
        )

    # -- one SMTP transaction ----------------------------------------------------------
    def _transaction(self, conn: smtplib.SMTP, message: OutboundMessage,
                     data: bytes) -> SmtpReply:
        sender, rcpt = message.envelope_from, message.recipient
        step = _Step()
        ahead, self._ahead = self._ahead, None
        try:
            if ahead == _Ahead(message.delivery_id, conn):
                self._read_envelope(conn, step)  # its commands went out with the last data
            elif conn.has_extn("pipelining"):
                options = self._mail_options(conn, sender, rcpt, data)
                conn.send(_pipelined_commands(sender, rcpt, options))
                self._read_envelope(conn, step)
            else:
                self._envelope(conn, step, sender, rcpt,
                               self._mail_options(conn, sender, rcpt, data))
            step.stage = "data"
            pieces = data_pieces(data, no_leading_dots=message.no_leading_dots)
            following = self._next_envelope(conn, message)
            if following is not None:
                pieces.append(following[1])
            send_buffers(conn, pieces)
            if following is not None:
                self._ahead = _Ahead(following[0], conn)
            code, reply = conn.getreply()
            if code != 250:
                self._refused_data(conn, code)
                raise error_for_reply(step.stage, code, reply)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._ahead = None
            self._discard()
            raise self._connection_lost(step.stage, exc) from exc
        return SmtpReply(code, _text(reply))

    def _refused_data(self, conn: smtplib.SMTP, code: int) -> None:
        """After a refused end of data the transaction is over: 421 closes; RSET only
        when no next envelope is on the wire (it would be read as that message's data)."""
        if code == 421:
            self._ahead = None
            conn.close()
        elif self._ahead is None:
            self._abort_transaction(conn, code)

    def _next_envelope(self, conn: smtplib.SMTP,
                       message: OutboundMessage) -> tuple[int, bytes] | None:
        """MAIL, RCPT and DATA of the batch's next message, to write with this one's
        end of data; None when there is none, the server does not pipeline, the session
        ends after this message, or the next message would not go out as it is."""
        following = self._following.get(message.delivery_id)
        if (following is None or not conn.has_extn("pipelining")
                or self._on_connection >= self.reconnect_after):
            return None
        try:
            data = self.build_payload(following)
            options = self._mail_options(conn, following.envelope_from, following.recipient,
                                         data)
            commands = _pipelined_commands(following.envelope_from, following.recipient,
                                           options)
        except (ChannelError, ValueError, UnicodeError):
            return None  # its own send reports the problem
        return following.delivery_id, commands

    def _settle_ahead(self) -> None:
        """A next envelope whose message was not sent after all (the gate stopped it,
        its lease was lost): read its replies, then RSET, or close the connection when
        the server waits for data (anything written now would become a message)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead.conn is not self._conn or ahead.conn.sock is None:
            return
        conn = ahead.conn
        try:
            codes = []
            for _stage in _EXPECTED:
                code, _reply = conn.getreply()
                codes.append(code)
                if code == 421:
                    break
        except (smtplib.SMTPException, OSError):
            self._discard()
            return
        if codes[-1] in (354, 421):
            self._discard()
            return
        self._abort_transaction(conn, codes[-1])
        if conn.sock is None:
            self._discard()

    def _envelope(
        self, conn: smtplib.SMTP, step: _Step, sender: str, rcpt: str, options: list[str]
    ) -> None:
        """MAIL, RCPT and DATA one at a time, each waiting for its reply (no PIPELINING)."""
        code, reply = conn.mail(sender, options)
        self._expect(conn, step.stage, code, reply, _EXPECTED["mail"])
        step.stage = "rcpt"
        code, reply = conn.rcpt(rcpt)
        self._expect(conn, step.stage, code, reply, _EXPECTED["rcpt"])
        step.stage = "data"
        conn.putcmd("data")
        code, reply = conn.getreply()
        self._expect(conn, step.stage, code, reply, _EXPECTED["data"])

    def _read_envelope(self, conn: smtplib.SMTP, step: _Step) -> None:
        """The three replies to a pipelined MAIL, RCPT and DATA (RFC 2920).

        Every reply is read and classified at its own stage: the first refusal decides
        the error, as it would one command at a time.  A 421 ends the reading (the
        server is closing).  RFC 2920 §3.1: a DATA accepted (354) after a refused MAIL
        or RCPT gets an empty message (a lone ``.``) before the RSET.
        """
        replies: list[tuple[str, int, bytes]] = []
        try:
            for stage in _EXPECTED:
                step.stage = stage
                code, reply = conn.getreply()
                replies.append((stage, code, reply))
                if code == 421:
                    break
        except (smtplib.SMTPServerDisconnected, OSError):
            if all(code in _EXPECTED[stage] for stage, code, _ in replies):
                raise  # nothing refused yet: the connection was lost at this stage
            conn.close()  # the transaction had failed already: report that refusal
        refused = [(stage, code, reply) for stage, code, reply in replies
                   if code not in _EXPECTED[stage]]
        if not refused:
            return
        stage, code, reply = refused[0]
        data_accepted = replies[-1][0] == "data" and replies[-1][1] == 354
        closing = any(refusal[1] == 421 for refusal in refused)
        self._abandon_pipelined(conn, data_accepted, 421 if closing else code)
        raise error_for_reply(stage, code, reply)

    def _abandon_pipelined(self, conn: smtplib.SMTP, data_accepted: bool, code: int) -> None:
        """Leave a refused pipelined transaction so the session can carry the next message.

        Only clean-up: a transport error here closes the session instead of hiding the
        refusal that is being reported.
        """
        if conn.sock is None:
            return
        if data_accepted:
            try:
                conn.send(b".\r\n")
                conn.getreply()
            except (smtplib.SMTPException, OSError):
                conn.close()
                return
        self._abort_transaction(conn, code)

    @staticmethod
    def _mail_options(conn: smtplib.SMTP, sender: str, rcpt: str, data: bytes) -> list[str]:
        options: list[str] = []
        if conn.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii() and conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (sender.isascii() and rcpt.isascii()):
            if not conn.has_extn("smtputf8"):
                raise PermanentChannelError(
                    f"server SMTP tidak mendukung SMTPUTF8 untuk alamat {rcpt!r}",
                    raw={"stage": "mail"},
                )
            options.append("SMTPUTF8")
        return options

    def _expect(
        self, conn: smtplib.SMTP, stage: str, code: int, reply: bytes, ok: tuple[int, ...]
    ) -> None:
        if code not in ok:
            self._abort_transaction(conn, code)
            raise error_for_reply(stage, code, reply)

    def _abort_transaction(self, conn: smtplib.SMTP, code: int) -> None:
        """RSET so the next message starts clean; after 421 the server is closing anyway."""
        if code == 421:
            conn.close()
            return
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _connection_lost(self, stage: str, exc: BaseException) -> TransientChannelError:
        timeout = _is_timeout(exc)
        what = f"waktu habis ({self.timeout:g} dtk)" if timeout else "koneksi terputus"
        raw: dict[str, Any] = {"stage": stage, "exception": type(exc).__name__, "detail": str(exc)}
        if timeout:
            raw["timeout"] = True
            self._timeouts_in_a_row += 1
        if stage == "data":
            raw["outcome_unknown"] = True  # the server may have accepted the message
        hanging = timeout and self._timeouts_in_a_row >= TIMEOUTS_BEFORE_STOP
        if hanging:
            self._timeouts_in_a_row = 0  # the next batch tries the relay again
        return TransientChannelError(f"SMTP {what} saat {stage.upper()}: {exc}", raw=raw,
                                     affects_account=hanging)

    # -- the connection ------------------------------------------------------------
    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            self._conn = self._connect()
            self._on_connection = 0
            self.stats.connections += 1
        return self._conn

    def _connect(self) -> smtplib.SMTP:
        where = f"{self.host}:{self.port}"
        try:
            conn = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        except smtplib.SMTPException as exc:
            raise self._account_down(where, classify_smtp_exception(exc).message) from exc
        except OSError as exc:
            raise self._account_down(where, str(exc) or type(exc).__name__) from exc
        try:
            conn.ehlo_or_helo_if_needed()
            if self.starttls:
                conn.starttls(context=self._ssl_context or ssl.create_default_context())
                conn.ehlo()
            if self.username:
                conn.login(self.username, self._password or "")
        except (ssl.SSLCertVerificationError, smtplib.SMTPNotSupportedError) as exc:
            conn.close()
            raise AuthChannelError(
                f"sesi SMTP {where} tidak dapat diamankan/diautentikasi: {exc}",
                raw={"stage": "connect", "exception": type(exc).__name__},
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            raise classify_smtp_exception(exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            conn.close()
            raise self._account_down(where, str(exc)) from exc
        return conn

    @staticmethod
    def _account_down(where: str, detail: str) -> TransientChannelError:
        """The relay is unreachable: the rest of the batch would fail the same way, and
        nothing of this message left either (no attempt spent)."""
        return TransientChannelError(
            f"tidak dapat terhubung ke server SMTP {where}: {detail}",
            raw={"stage": "connect", "detail": detail, "not_attempted": True},
            affects_account=True,
        )

    def _after_message(self, conn: smtplib.SMTP) -> None:
        if conn.sock is None:  # smtplib closed it (421, disconnect): reconnect next time
            self._discard()
        elif self._on_connection >= self.reconnect_after:
            self._quit()

    def _quit(self) -> None:
        if self._ahead is not None:  # QUIT would be read as message data: just close
            self._discard()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _discard(self) -> None:
        self._ahead = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
