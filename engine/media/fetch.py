"""A photo given by URL, fetched once and normalised like an upload.

The server makes the request, so the URL must not reach the installation's own network
(server-side request forgery): http(s) only, every address the host resolves to must be
public (no private, loopback, link-local, multicast or reserved ranges: 169.254.169.254
is a cloud's metadata service), and redirects are followed by hand, at most
:data:`MAX_REDIRECTS`, each target checked the same way. The body is read as a stream and
abandoned past the size limit; the whole exchange has a time limit. Tests may allow
loopback (``MEDIA_FETCH_ALLOW_LOOPBACK``); nothing allows the other ranges.

A name could resolve differently between the check and the connection (DNS rebinding);
the check narrows the window, a network-level egress rule closes it (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlparse

import httpx

from engine.config import Settings
from engine.media.errors import MediaError
from engine.media.images import Limits

MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)


def _address_allowed(address: str, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow_loopback: bool = False) -> None:
    """Refuse a URL the server must not fetch (scheme, host, or where the host resolves)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MediaError("media.fetch_refused")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise MediaError("media.fetch_failed") from None
    if not infos or not all(_address_allowed(str(info[4][0]), allow_loopback)
                            for info in infos):
        raise MediaError("media.fetch_refused")


def _read_limited(response: httpx.Response, limits: Limits) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise MediaError("media.too_big", mb=limits.max_bytes // (1024 * 1024))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise MediaError("media.too_big", mb=limits.max_bytes // (1024 * 1024))
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_photo(url: str, settings: Settings, limits: Limits) -> bytes:
    """The bytes at ``url`` (not yet judged as an image), or :class:`MediaError`."""
    allow = settings.media_fetch_allow_loopback
    target = url.strip()
    try:
        with httpx.Client(timeout=settings.media_fetch_timeout, follow_redirects=False,
                          headers={"User-Agent": "umkm-tts-media/1"}) as client:
            for _ in range(MAX_REDIRECTS + 1):
                check_url(target, allow)
                with client.stream("GET", target) as response:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        target = urljoin(target, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise MediaError("media.fetch_failed")
                    return _read_limited(response, limits)
    except httpx.HTTPError:
        raise MediaError("media.fetch_failed") from None
    raise MediaError("media.fetch_refused")


__all__ = ["check_url", "fetch_photo"]
