"""Security headers on every response (finding 10 of issue 13).

The pages load scripts and styles from ``/static`` only (no inline ``<script>``,
``style=`` or ``on...=`` attributes), so the policy allows ``'self'`` and nothing inline;
``frame-ancestors 'none'`` and ``X-Frame-Options`` stop the approve/pause forms from being
framed (clickjacking). HSTS is sent only on requests that arrived over HTTPS, so a plain
``http://127.0.0.1`` demo is never pinned to HTTPS.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Product photos may live on the Dinas media server or any HTTPS host the owner names.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def with_security_headers(headers: list[tuple[bytes, bytes]],
                          https: bool) -> list[tuple[bytes, bytes]]:
    """The response's headers plus ours; a header the route set itself is kept."""
    present = {name.lower() for name, _ in headers}
    extra = [h for h in (*HEADERS, *((HSTS,) if https else ())) if h[0] not in present]
    return [*headers, *extra]


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` (and HSTS over HTTPS) to each response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(list(message.get("headers", [])), https)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
