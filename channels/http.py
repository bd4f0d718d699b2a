"""The httpx client lifecycle shared by every adapter that speaks a JSON HTTP API.

TikTok and the WhatsApp Cloud API differ in what they send and how they answer, not in
how a connection is held: one ``httpx.Client`` per adapter, opened with the adapter,
closed with it (unless the caller lent its own, which the caller closes), every request
bounded by ``timeout`` seconds, and every transport failure turned into a channel error
by the adapter that knows whether the request may have reached the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from channels.base import ChannelAdapter, ChannelError, PayloadT, ResponseT

# What an adapter says when a request failed on the way: the error it raises instead.
TransportErrorMap = Callable[[httpx.HTTPError], ChannelError]


def nothing_sent(exc: httpx.HTTPError) -> bool:
    """True when the request surely never reached the provider (it may be repeated)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


class HttpChannel(ChannelAdapter[PayloadT, ResponseT]):
    """An adapter that owns one httpx client (or borrows ``http``, for tests and pools)."""

    def __init__(self, *, http: httpx.Client | None = None, timeout: float = 30.0) -> None:
        super().__init__()
        self._timeout = timeout
        self._http = http
        self._owns_http = http is None

    # -- lifecycle ------------------------------------------------------------------
    def open(self) -> None:
        self._client()
        super().open()

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None
        super().close()

    def _client(self) -> httpx.Client:
        """The client, created on first use so that ``send`` without ``open`` works too."""
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout)
            self._owns_http = True
        return self._http

    # -- requests -------------------------------------------------------------------
    def _post(self, url: str, on_transport_error: TransportErrorMap, **request: Any
              ) -> httpx.Response:
        """POST ``url``; a failure on the way raises what ``on_transport_error`` names."""
        try:
            return self._client().post(url, **request)
        except httpx.HTTPError as exc:
            raise on_transport_error(exc) from exc
