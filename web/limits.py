"""Request bodies bounded before any route reads them: size while streaming, JSON depth.

One ASGI middleware (:class:`BodyLimits`) reads the body chunk by chunk and answers 413
as soon as the count passes the route's limit, so an unauthenticated sender can make the
server hold at most that many bytes (a declared ``Content-Length`` above the limit is
refused before a byte is read). A body that looks like JSON is then checked for nesting
depth, so ``json.loads`` and pydantic never recurse into ``RecursionError``. The body
is handed to the app unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.common.i18n import t

# A JSON string (escapes included), a lone unterminated quote, or a bracket.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")
_MACHINE_PREFIXES = ("/api/", "/webhooks/")


class _TooLarge(Exception):
    """The body passed its limit while streaming."""


def too_deep(body: bytes, max_depth: int) -> bool:
    """Whether brackets outside strings nest deeper than ``max_depth``.

    Counting brackets first keeps ordinary bodies at C speed; only a body with many
    brackets is walked token by token (strings are skipped whole by the regex).
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token[0] in _OPENERS:
            depth += 1
            if depth > max_depth:
                return True
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)
        elif token == b'"':  # unterminated string: nothing after it nests
            break
    return False


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length").strip()
    return int(raw) if raw.isdigit() else None


def _looks_like_json(scope: Scope, body: bytes) -> bool:
    """JSON by its media type, or by its first character (the WhatsApp webhook parses
    any body)."""
    media = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") \
        or body.lstrip()[:1] in (b"{", b"[")


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, Message | None]:
    """The whole body, or :class:`_TooLarge` once more than ``limit`` bytes arrived; also
    a disconnect message when the client left mid-body."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, early: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body once, then defers to the server (which
    reports the disconnect when it comes)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if early is not None:
            return early
        return await receive()

    return replayed


async def _refuse(scope: Scope, send: Send, status: int, detail: object) -> None:
    """A JSON answer for machines (API, webhooks), plain text for people's pages."""
    if scope["path"].startswith(_MACHINE_PREFIXES) or status == 422:
        body, media = json.dumps({"detail": detail}).encode(), b"application/json"
    else:
        body, media = str(detail).encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media), (b"connection", b"close"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: at most ``max_bytes`` per body (``overrides`` by path prefix)
    and at most ``max_depth`` nesting in a JSON body."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int,
                 overrides: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.overrides = dict(overrides or {})

    def limit_for(self, path: str) -> int:
        """The route's own limit when it takes bigger bodies (raw bounce mails)."""
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        too_large = t("limits.too_large", kb=max(limit // 1024, 1))
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, 413, too_large)
            return
        try:
            body, early = await _read_body(receive, limit)
        except _TooLarge:
            await _refuse(scope, send, 413, too_large)
            return
        if body and _looks_like_json(scope, body) and too_deep(body, self.max_depth):
            await _refuse(scope, send, 422, [{
                "type": "json_too_deep", "loc": ["body"],
                "msg": t("limits.too_deep", depth=self.max_depth), "input": None}])
            return
        await self.app(scope, _replay(body, early, receive), send)
