"""A real, scriptable SMTP server on loopback (aiosmtpd) for the whole test suite.

Register it once in ``tests/conftest.py`` with ``pytest_plugins = ["tests.smtp_server"]``
(or import the fixture: ``from tests.smtp_server import smtp_server  # noqa: F401``).

Usage::

    def test_x(smtp_server):
        smtp_server.script["bad@example.com"] = "550 5.1.1 no such user"
        smtp_server.script["slow@example.com"] = Rule("451 4.7.1 try later", times=2)
        smtp_server.script["hang@example.com"] = Rule(delay=5)        # slow server
        smtp_server.script["gone@example.com"] = Rule(drop=True)      # cut the line
        smtp_server.drop_after(10)      # abort the connection at the 11th MAIL FROM
        smtp_server.delay = 0.2         # every MAIL/RCPT/DATA reply waits 0.2 s
        smtp_server.pipelining = False  # EHLO stops announcing PIPELINING (RFC 2920)
        ... send to smtp_server.host, smtp_server.port ...
        assert [m.rcpt_tos for m in smtp_server.messages] == [...]
        assert smtp_server.connections == 1

Rules apply at RCPT time by default (``stage="data"`` answers after the message body).
EHLO announces PIPELINING, as Postfix does (aiosmtpd reads pipelined commands in order
but does not announce the extension by itself).
Every received message is kept with its envelope, raw bytes and parsed
``EmailMessage``; the lists are safe to read from the test thread.
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    connection: int  # 1-based number of the connection that carried it
    mail_options: list[str] = field(default_factory=list)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")


@dataclass
class Rule:
    """What the server does for one recipient.

    ``reply``: the SMTP reply to give instead of accepting (None = accept);
    ``times``: apply only to the first N attempts, then behave normally;
    ``delay``: seconds to wait before answering (a slow server);
    ``drop``: abort the TCP connection instead of answering;
    ``stage``: ``"rcpt"`` (at RCPT TO) or ``"data"`` (after the message body); ``"mail"``
    (at MAIL FROM) keys the rule by the sender's address instead.
    """

    reply: str | None = None
    times: int | None = None
    delay: float = 0.0
    drop: bool = False
    stage: Literal["mail", "rcpt", "data"] = "rcpt"
    attempts: int = 0

    def active(self) -> bool:
        return self.times is None or self.attempts < self.times


class _Dropped(asyncio.CancelledError):
    """Raised inside a hook after aborting the transport: ends the session silently."""


class ScriptedSMTPServer:
    """The object the ``smtp_server`` fixture yields; see the module docstring."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self.port = 0
        self.script: dict[str, str | Rule] = {}
        self.delay = 0.0
        self.pipelining = True
        self.credentials: tuple[str, str] | None = None  # required login, when set
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._attempts: list[tuple[str, str]] = []  # (recipient, outcome) in order
        self._connections = 0
        self._drop_after: int | None = None
        self._drops_left = 0
        self._drop_every = 0
        self._controller: _Controller | None = None

    # -- what tests read ------------------------------------------------------------
    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def attempts(self) -> list[tuple[str, str]]:
        """Every RCPT seen, with ``"accepted"`` or the scripted reply/action."""
        with self._lock:
            return list(self._attempts)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def recipients(self) -> list[str]:
        return [rcpt for m in self.messages for rcpt in m.rcpt_tos]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived (for asynchronous senders)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.messages
            if len(received) >= count:
                return received
            time.sleep(0.01)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    # -- scripting ------------------------------------------------------------------
    def drop_after(self, count: int, times: int = 1) -> None:
        """Abort the connection at the next MAIL FROM once ``count`` messages arrived.

        ``times`` drops happen, each ``count`` messages after the previous one.
        """
        with self._lock:
            self._drop_after = len(self._messages) + count
            self._drops_left = times
            self._drop_every = count

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._attempts.clear()
            self._connections = 0
            self._drop_after = None
        self.script.clear()
        self.delay = 0.0
        self.pipelining = True

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._controller = _Controller(self)
        self._controller.start()
        self.port = self._controller.port
        with self._lock:
            self._connections = 0  # the controller's own readiness probe is not a client

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # -- hooks called from the server thread -------------------------------------------
    def _new_connection(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def _rule_for(self, rcpt: str, stage: str) -> Rule | None:
        entry = self.script.get(rcpt)
        if entry is None:
            return None
        rule = Rule(reply=entry) if isinstance(entry, str) else entry
        if rule.stage != stage or not rule.active():
            return None
        with self._lock:
            if isinstance(entry, Rule):
                entry.attempts += 1
        return rule

    def _should_drop(self) -> bool:
        with self._lock:
            if self._drop_after is None or self._drops_left <= 0:
                return False
            if len(self._messages) < self._drop_after:
                return False
            self._drops_left -= 1
            self._drop_after = len(self._messages) + self._drop_every
            return True

    def _record_attempt(self, rcpt: str, outcome: str) -> None:
        with self._lock:
            self._attempts.append((rcpt, outcome))

    def _record(self, envelope: Envelope, connection: int) -> int:
        data = envelope.original_content or b""
        parsed = email.message_from_bytes(data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            message=parsed,
            connection=connection,
            mail_options=list(envelope.mail_options),
        )
        with self._lock:
            self._messages.append(received)
            return len(self._messages)


def _abort(server: SMTP) -> None:
    assert server.transport is not None
    server.transport.abort()  # type: ignore[attr-defined]
    raise _Dropped()


class _Handler:
    """aiosmtpd hooks that consult the script of the owning :class:`ScriptedSMTPServer`."""

    def __init__(self, owner: ScriptedSMTPServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the hook's duty in aiosmtpd's 5-argument form
        if self.owner.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._global_delay()
        if self.owner.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.owner._should_drop():
            _abort(server)
        reply = await self._apply(server, self.owner._rule_for(address, "mail"), address)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._global_delay()
        rule = self.owner._rule_for(address, "rcpt")
        reply = await self._apply(server, rule, address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        self.owner._record_attempt(address, "accepted")
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._global_delay()
        for rcpt in envelope.rcpt_tos:
            reply = await self._apply(server, self.owner._rule_for(rcpt, "data"), rcpt)
            if reply is not None:
                return reply
        number = self.owner._record(envelope, getattr(server, "connection_number", 0))
        return f"250 2.0.0 Ok: queued as Q{number:06d}"

    async def _apply(self, server: SMTP, rule: Rule | None, rcpt: str) -> str | None:
        if rule is None:
            return None
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.drop:
            self.owner._record_attempt(rcpt, "dropped")
            _abort(server)
        if rule.reply is not None:
            self.owner._record_attempt(rcpt, rule.reply)
        return rule.reply

    async def _global_delay(self) -> None:
        if self.owner.delay:
            await asyncio.sleep(self.owner.delay)


class _Controller(Controller):
    """Binds port 0 (a free port, no race) and numbers the connections."""

    def __init__(self, owner: ScriptedSMTPServer) -> None:
        self.owner = owner
        super().__init__(
            _Handler(owner),
            hostname=owner.host,
            port=0,
            server_hostname="smtp.test",  # no getfqdn() lookup on every connection
            ready_timeout=10,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )

    def factory(self) -> SMTP:
        smtp = SMTP(self.handler, **self.SMTP_kwargs)
        smtp.connection_number = self.owner._new_connection()  # type: ignore[attr-defined]
        return smtp

    def _create_server(self) -> Any:
        creating = super()._create_server()

        async def bind() -> asyncio.AbstractServer:
            server = await creating
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        expected = self.owner.credentials
        if expected is None or not isinstance(data, LoginPassword):
            return AuthResult(success=expected is None, handled=False)
        given = (data.login.decode(), data.password.decode())
        return AuthResult(success=given == expected, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[ScriptedSMTPServer]:
    """A fresh scripted SMTP server on 127.0.0.1 (free port) for one test."""
    server = ScriptedSMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
