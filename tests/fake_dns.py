"""A real DNS server on loopback (dnslib), serving the zones a test writes.

Usage::

    def test_x(dns_zone):
        dns_zone.txt("umkm.test", "v=spf1 ip4:192.0.2.10 ~all")
        dns_zone.mx("bounce.umkm.test", "mx.umkm.test")
        ... settings with DNS_RESOLVER=dns_zone.address ...

Names not in the zone answer NXDOMAIN (like a real authoritative server); TXT values
longer than 255 bytes are split into several strings, as a zone file does, so the code
under test must join them. UDP and TCP listen on the same port (a truncated UDP answer
is retried over TCP by dnspython).
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import MX, QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSServer


class Zone(BaseResolver):  # type: ignore[misc]  # dnslib is untyped
    """Records by (lower-case name, type); answers only what was put in."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self.queries: list[tuple[str, str]] = []
        self.address = ""

    def txt(self, name: str, value: str) -> None:
        chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
        self.records[name.lower().rstrip("."), "TXT"].append(TXT(chunks))

    def mx(self, name: str, host: str, preference: int = 10) -> None:
        self.records[name.lower().rstrip("."), "MX"].append(MX(host, preference))

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        rtype = QTYPE[request.q.qtype]
        self.queries.append((name, rtype))
        found = self.records.get((name, rtype), [])
        for rdata in found:
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=60))
        if not found and not any(key[0] == name for key in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for the test DNS server")


@pytest.fixture
def dns_zone() -> Iterator[Zone]:
    zone = Zone()
    port = _free_port()
    servers = [DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp,
                         logger=_Quiet()) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    zone.address = f"127.0.0.1:{port}"
    yield zone
    for server in servers:
        server.stop()
        server.server.server_close()


class _Quiet:
    """dnslib's logger interface, printing nothing (pytest output stays readable)."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None
