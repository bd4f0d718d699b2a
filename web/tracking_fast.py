"""A short way in for the open pixel and the click (issue 22, docs/performance.md).

Why: ``/t/o/<token>`` and ``/t/c/<token>`` are requested at the sending rate (mail clients
prefetch images), yet each one went through the whole stack: the security-header and
body-limit middlewares, FastAPI's exception and exit-stack layers, route matching among
~300 routes, a ``Request`` and a ``Response`` object, which together cost more CPU than
recording the event.

:class:`TrackingFastPath` is the outermost of the app's own middlewares, inside
Starlette's error middleware: an unexpected error is the same 500 as on every other URL.
It takes only a ``GET`` without a body whose path the tracking routes would match
(``/t/o/<token>``, ``/t/c/<token>``, the token without ``/``), and only the answer of
a *recorded* event:

* it records through the same :meth:`Ingest.track_open` / :meth:`Ingest.track_click`
  as the routes (token verified, delivery known, the click's target only the URL
  stored in ``tracked_link`` and checked with ``is_safe_target``);
* it sends the headers and body of the routes' own :func:`pixel_response` /
  :func:`click_response`, plus :func:`web.headers.with_security_headers`: byte for
  byte what the full stack sends;
* a token that records nothing (forged, foreign, unknown delivery or link) is handed to
  the full stack, which finds the same and answers its 404 page. So is ``HEAD`` (a 405),
  a request with a body, and every other path;
* an error goes to the app's own exception handlers, as it would from the route, and
  one they do not take to Starlette's 500 (see :meth:`TrackingFastPath._error_stack`).

The tests (``tests/web/test_tracking_fast.py``) compare both ways for each case.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.engagement.ingest import CACHE_SIZE, LruCache
from web.headers import SecurityHeaders, with_security_headers
from web.tracking_routes import PIXEL, click_response, ingest_of, pixel_response

OPEN_PREFIX = "/t/o/"
CLICK_PREFIX = "/t/c/"
_PREFIX_LEN = len(OPEN_PREFIX)

Headers = list[tuple[bytes, bytes]]
#: Where an error of the fast path waits for the exception handlers (see _error_stack).
ERROR_KEY = "umkm.tracking_error"
#: Handlers Starlette gives to its outer error middleware, not to ExceptionMiddleware.
_SERVER_ERROR_KEYS = (500, Exception)


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (such a request takes the full stack, whose
    body limits then apply as before)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def tracking_token(scope: Scope) -> tuple[str, str] | None:
    """``(prefix, token)`` of a request the fast path may answer, else ``None``.

    The same paths the routes ``/t/o/{token}`` and ``/t/c/{token}`` match (a token is
    one non-empty path segment); behind a ``root_path`` the full stack decides.
    """
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    prefix = path[:_PREFIX_LEN]
    if prefix != OPEN_PREFIX and prefix != CLICK_PREFIX:
        return None
    token = path[_PREFIX_LEN:]
    if not token or "/" in token or has_body(scope):
        return None
    return prefix, token


def user_agent(scope: Scope) -> str | None:
    """The ``User-Agent`` as Starlette's ``request.headers`` reads it (first one, latin-1)."""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            return bytes(value).decode("latin-1")
    return None


class TrackingFastPath:
    """ASGI middleware: recorded opens and clicks answered without the rest of the stack
    (see the module docstring for what they keep)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._pixel_headers: dict[bool, Headers] = {
            https: with_security_headers(list(pixel_response().raw_headers), https)
            for https in (False, True)}
        self._errors: ASGIApp | None = None
        self._click_answers: LruCache[tuple[str, bool], tuple[int, Headers, bytes]] = \
            LruCache(CACHE_SIZE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = tracking_token(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            answered = await self._answer(scope, sending, *found)
        except Exception as exc:
            if started:
                raise
            await self._error_stack(scope["app"])({**scope, ERROR_KEY: exc}, receive, send)
            return
        if not answered:
            await self.app(scope, receive, send)

    def _error_stack(self, app: Any) -> ASGIApp:
        """An error of the fast path meets what it would have met in the full stack:
        the app's exception handlers (Starlette's :class:`ExceptionMiddleware`, e.g.
        the 400 page of a number beyond 64 bits) under :class:`SecurityHeaders`; an
        error no handler takes goes on up to Starlette's 500, as from any route."""
        if self._errors is None:
            handlers = {key: value for key, value in app.exception_handlers.items()
                        if key not in _SERVER_ERROR_KEYS}
            self._errors = SecurityHeaders(ExceptionMiddleware(
                _raise_stored, handlers=handlers, debug=app.debug))
        return self._errors

    async def _answer(self, scope: Scope, send: Send, prefix: str, token: str) -> bool:
        """Record and answer; ``False`` when nothing was recorded (the full stack then
        answers, with the page it has for such a token)."""
        ingest = ingest_of(scope["app"])
        https = scope.get("scheme") == "https"
        if prefix == OPEN_PREFIX:
            if not await ingest.track_open(token, user_agent(scope)):
                return False
            await _send(send, 200, list(self._pixel_headers[https]), PIXEL)
            return True
        url = await ingest.track_click(token, user_agent(scope))
        if url is None:
            return False
        status, headers, body = self._click_answer(url, https)
        await _send(send, status, list(headers), body)
        return True

    def _click_answer(self, url: str, https: bool) -> tuple[int, Headers, bytes]:
        """The redirect to a stored URL, built once per URL (~7 us each time)."""
        found = self._click_answers.get((url, https))
        if found is None:
            response = click_response(url)
            found = (response.status_code,
                     with_security_headers(list(response.raw_headers), https),
                     bytes(response.body))
            self._click_answers.put((url, https), found)
        return found


async def _raise_stored(scope: Scope, receive: Receive, send: Send) -> None:
    raise scope[ERROR_KEY]


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    start: dict[str, Any] = {"type": "http.response.start", "status": status,
                             "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
