"""A tiny real HTTP server on loopback, the base of the fake provider APIs of the tests.

Why a real server and not a mocked transport: the adapters are tested with their real
httpx client, real JSON encoding, real headers and real status codes, so the tests
break where production would (DESIGN §10: fake at the transport boundary).

Subclasses implement :meth:`FakeHTTPServer.handle`. Every request is logged in
``requests``; one-shot replies can be queued per path with :meth:`enqueue` and are
served before the normal behaviour (scripting: "the next init answers 429").
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Reply:
    """What the server answers; ``body`` dicts are sent as JSON."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


Scripted = Reply | Callable[[Recorded], Reply]


class FakeHTTPServer:
    """Threaded HTTP server on a free loopback port; start/stop around each test."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queued: dict[str, deque[Scripted]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

            def do_PUT(self) -> None:
                fake._serve(self, "PUT")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://{HOST}:{self._server.server_address[1]}"

    # -- scripting and inspection ---------------------------------------------------------
    def enqueue(self, path: str, *replies: Scripted) -> None:
        """Serve these replies (in order, once each) to the next requests on ``path``."""
        with self._lock:
            self._queued.setdefault(path, deque()).extend(replies)

    def calls(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def count(self, path: str) -> int:
        return len(self.calls(path))

    def handle(self, request: Recorded) -> Reply:
        """The normal behaviour of the fake API; subclasses override it."""
        return Reply(404, {"error": "not found"})

    # -- plumbing ---------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = Recorded(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
            queue = self._queued.get(request.path)
            scripted = queue.popleft() if queue else None
        if scripted is None:
            reply = self.handle(request)
        elif isinstance(scripted, Reply):
            reply = scripted
        else:
            reply = scripted(request)
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
