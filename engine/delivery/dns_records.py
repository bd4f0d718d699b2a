"""The DNS records a sending domain must publish, computed from the settings.

Why here and not in a person's head: SPF, DKIM and DMARC must name exactly what the
engine sends with (the relay, the DKIM key and selector, the From and VERP bounce
domains); one slip and the big mailbox providers file the Dinas's mail as spam. ``umkm
dns`` prints these records, :mod:`engine.delivery.dns_check` compares them with what the
DNS answers and :mod:`engine.delivery.doctor` turns the comparison into the checklist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings
from engine.delivery.context import bounce_domain
from engine.message.dkim import DkimSigner

SPF, DKIM, DMARC, MX = "spf", "dkim", "dmarc", "mx"
# One TXT string holds at most 255 bytes (RFC 1035 §3.3.14); longer values are split.
TXT_CHUNK = 255


@dataclass(frozen=True)
class DnsRecord:
    """One record to publish: ``kind`` (spf/dkim/dmarc/mx), owner name, type and value.

    ``value`` is ``""`` when the settings do not say enough to write it (no relay for
    SPF, no DKIM key): ``hint_key`` then names the catalog text that says what is missing.
    """

    kind: str
    name: str
    rtype: str
    value: str
    hint_key: str = ""

    def zone_line(self) -> str:
        """The record as a zone-file line, TXT values split in 255-byte strings."""
        if self.rtype != "TXT":
            return f"{self.name}. IN {self.rtype} {self.value}"
        chunks = [self.value[i:i + TXT_CHUNK] for i in range(0, len(self.value), TXT_CHUNK)]
        quoted = " ".join(f'"{chunk}"' for chunk in chunks or [""])
        return f"{self.name}. IN TXT {quoted}"


def dkim_domain(settings: Settings) -> str:
    """The ``d=`` of our signatures: DKIM_DOMAIN, else the From domain (as the sender does)."""
    return (settings.dkim_domain or settings.from_domain).lower()


def envelope_domain(settings: Settings) -> str:
    """The domain SPF is checked on: the VERP bounce domain, else the From domain."""
    return bounce_domain(settings, settings.from_address) or settings.from_domain


def load_signer(settings: Settings) -> DkimSigner | None:
    """The configured DKIM key as a signer; ``None`` when no key is set or readable."""
    if not (settings.dkim_key_path and settings.dkim_selector):
        return None
    path = Path(settings.dkim_key_path)
    if not path.is_file():
        return None
    return DkimSigner.from_file(dkim_domain(settings), settings.dkim_selector, path)


def spf_value(settings: Settings) -> str:
    """``v=spf1 <relay mechanisms> ~all``; ``""`` when the relay is not known.

    ``~all`` (soft fail) to start: DMARC decides on alignment anyway, and a forgotten
    sender is then reported, not lost; tighten to ``-all`` once the reports are clean.
    """
    sources = spf_sources(settings)
    return f"v=spf1 {' '.join(sources)} ~all" if sources else ""


def spf_sources(settings: Settings) -> list[str]:
    """SPF_SOURCES, else ``a:<SMTP_HOST>`` (the relay itself sends), else nothing."""
    if settings.spf_sources.strip():
        return settings.spf_sources.split()
    if settings.smtp_host and settings.smtp_host not in ("localhost", "127.0.0.1", "::1"):
        return [f"a:{settings.smtp_host}"]
    return []


def dmarc_rua(settings: Settings) -> str:
    """The mailbox aggregate reports go to: DMARC_RUA, else ``dmarc@<From domain>``."""
    return settings.dmarc_rua.strip() or f"dmarc@{settings.from_domain}"


def dmarc_value(settings: Settings) -> str:
    """``p=none`` to start: reports come in, nothing is rejected while they are read."""
    return f"v=DMARC1; p=none; rua=mailto:{dmarc_rua(settings)}; adkim=r; aspf=r"


def expected_records(settings: Settings) -> list[DnsRecord]:
    """Every record to publish for the From domain and the bounce domain."""
    records: list[DnsRecord] = []
    domains = [settings.from_domain]
    if envelope_domain(settings) not in domains:
        domains.append(envelope_domain(settings))
    spf = spf_value(settings)
    for domain in domains:
        records.append(DnsRecord(SPF, domain, "TXT", spf, "" if spf else "dns.hint.spf"))
    signer = load_signer(settings)
    if signer is not None:
        records.append(DnsRecord(DKIM, f"{signer.selector}._domainkey.{signer.domain}", "TXT",
                                 signer.dns_txt_record()))
    else:
        records.append(DnsRecord(DKIM, f"<selector>._domainkey.{dkim_domain(settings)}",
                                 "TXT", "", "dns.hint.dkim"))
    records.append(DnsRecord(DMARC, f"_dmarc.{settings.from_domain}", "TXT",
                             dmarc_value(settings)))
    bounce = bounce_domain(settings, settings.from_address)
    if bounce:
        mx = settings.bounce_mx.strip()
        records.append(DnsRecord(MX, bounce, "MX", f"10 {mx}." if mx else "",
                                 "" if mx else "dns.hint.mx"))
    return records
