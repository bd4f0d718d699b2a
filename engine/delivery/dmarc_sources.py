"""Which sending IPs in the DMARC reports are ours: the relay addresses of SPF_SOURCES.

Why here (delivery) and not with the parser: "ours" is the relay configuration that
``umkm dns`` publishes as SPF (:func:`engine.delivery.dns_records.spf_sources`), and both
the doctor (this floor) and the summary (reporting) ask it. A source IP outside every
``ip4:``/``ip6:`` mechanism (and not SMTP_HOST written as an address) is an *unknown
source*: a forgotten sender of the domain, or someone sending as it.
"""

from __future__ import annotations

import contextlib
import ipaddress
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.delivery.dns_records import spf_sources
from engine.models import DmarcRecord, DmarcReport

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def known_networks(settings: Settings) -> list[Network]:
    """The ``ip4:``/``ip6:`` mechanisms of SPF_SOURCES, plus SMTP_HOST if it is an address.

    ``a:``/``include:`` mechanisms are names, not addresses: an installation that relays
    through a provider's include lists the provider's ranges as ``ip4:`` to be recognised.
    """
    networks: list[Network] = []
    for mechanism in spf_sources(settings):
        kind, _, value = mechanism.lstrip("+").partition(":")
        if kind.lower() in ("ip4", "ip6") and value:
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                continue
    with contextlib.suppress(ValueError):  # a host name, not an address
        networks.append(ipaddress.ip_network(settings.smtp_host.strip("[]")))
    return networks


def is_known(ip: str, networks: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)


def volume_by_source(session: Session, since: datetime, domain: str = "") -> dict[str, int]:
    """Messages per source IP in reports that began at or after ``since`` (one domain)."""
    query = (select(DmarcRecord.source_ip, func.sum(DmarcRecord.count))
             .join(DmarcReport, DmarcReport.id == DmarcRecord.report_id)
             .where(DmarcReport.date_begin >= since)
             .group_by(DmarcRecord.source_ip))
    if domain:
        query = query.where(DmarcReport.policy_domain == domain.lower())
    return {ip: int(n or 0) for ip, n in session.execute(query).tuples()}


def unknown_sources(session: Session, settings: Settings, since: datetime) -> dict[str, int]:
    """Source IPs not among the relay's, with their message counts, since ``since``."""
    networks = known_networks(settings)
    return {ip: n for ip, n in sorted(volume_by_source(session, since).items())
            if not is_known(ip, networks)}
