"""What the DNS answers, compared with the records the engine needs (``umkm dns --check``).

Every lookup goes through one :class:`dns.resolver.Resolver` built from DNS_RESOLVER
(``host[:port]``; empty = the system's), so the tests ask a DNS server of their own on
loopback and an installation can ask a resolver it trusts. A lookup that cannot be made
(no network, timeout) is reported as such, never as "ok".

Each result says ``ok``, ``warn``, ``missing`` or ``wrong`` with an Indonesian sentence
that names the record and what to do (texts in the catalogs, keys ``dns.check.*``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import dns.exception
import dns.resolver

from engine.common.i18n import t
from engine.config import Settings
from engine.delivery.dns_records import (
    DKIM,
    DMARC,
    MX,
    SPF,
    dkim_domain,
    dmarc_rua,
    envelope_domain,
    expected_records,
    load_signer,
    spf_sources,
)

OK, WARN, MISSING, WRONG = "ok", "warn", "missing", "wrong"
ALIGN = "align"
# Second-level suffixes under which an organisation registers (go.id, co.id...): the
# organisational domain of DMARC relaxed alignment is one label below them. A short list
# instead of the whole Public Suffix List: the engine sends for Indonesian and a few
# common foreign domains; an unknown suffix falls back to the last two labels.
SECOND_LEVEL = frozenset({
    "go.id", "co.id", "ac.id", "or.id", "web.id", "my.id", "sch.id", "net.id", "mil.id",
    "desa.id", "ponpes.id", "biz.id", "co.uk", "org.uk", "ac.uk", "com.au", "co.jp",
})

TxtLookup = Callable[[str], list[str]]


class LookupFailed(Exception):
    """The DNS could not be asked (timeout, no resolver): neither present nor absent."""


@dataclass(frozen=True)
class RecordCheck:
    """One comparison: ``state`` is ok / warn / missing / wrong; ``message`` says why."""

    kind: str
    name: str
    state: str
    message: str

    @property
    def failed(self) -> bool:
        return self.state in (MISSING, WRONG)


def make_resolver(settings: Settings) -> dns.resolver.Resolver:
    """DNS_RESOLVER ``host[:port]`` (tests: a server on loopback), else the system's."""
    spec = settings.dns_resolver.strip()
    if spec:
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
        resolver.nameservers = [host]
        resolver.port = int(port) if port else 53
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    resolver.lifetime = resolver.timeout = settings.dns_timeout
    return resolver


class Lookups:
    """TXT and MX answers of one resolver; NXDOMAIN and no-answer are an empty list."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    def _answer(self, name: str, rtype: str) -> list[object]:
        try:
            return list(self.resolver.resolve(name, rtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.DNSException, OSError) as exc:
            raise LookupFailed(f"{type(exc).__name__}") from exc

    def txt(self, name: str) -> list[str]:
        """Each TXT record as one string (its 255-byte pieces joined, RFC 7208 §3.3)."""
        return [b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
                for rdata in self._answer(name, "TXT")]

    def mx(self, name: str) -> list[str]:
        return [str(rdata.exchange).rstrip(".").lower()  # type: ignore[attr-defined]
                for rdata in self._answer(name, "MX")]


def org_domain(domain: str) -> str:
    """The organisational domain (``umkm.ttskab.go.id`` -> ``ttskab.go.id``)."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def aligned(domain: str, from_domain: str, strict: bool) -> bool:
    """DMARC identifier alignment (RFC 7489 §3.1): equal (strict) or same org domain."""
    if strict:
        return domain.lower() == from_domain.lower()
    return org_domain(domain) == org_domain(from_domain)


def _tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tags of a DKIM or DMARC record, keys lower-cased."""
    pairs = (part.split("=", 1) for part in record.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


# ----------------------------------------------------------------------------- checks
def check_spf(lookups: Lookups, domain: str, settings: Settings) -> RecordCheck:
    found = [r for r in lookups.txt(domain) if r.lower().startswith("v=spf1")]
    if not found:
        return RecordCheck(SPF, domain, MISSING, t("dns.check.spf_missing", name=domain))
    if len(found) > 1:
        return RecordCheck(SPF, domain, WRONG, t("dns.check.spf_many", name=domain))
    terms = {term.lower() for term in found[0].split()[1:]}
    absent = [s for s in spf_sources(settings) if s.lower() not in terms]
    if absent:
        return RecordCheck(SPF, domain, WRONG, t("dns.check.spf_relay", name=domain,
                                                  missing=" ".join(absent)))
    if not spf_sources(settings):
        return RecordCheck(SPF, domain, WARN, t("dns.check.spf_unknown_relay", name=domain))
    return RecordCheck(SPF, domain, OK, t("dns.check.ok", name=domain))


def check_dkim(lookups: Lookups, settings: Settings) -> RecordCheck:
    signer = load_signer(settings)
    if signer is None:
        name = f"<selector>._domainkey.{dkim_domain(settings)}"
        return RecordCheck(DKIM, name, MISSING, t("dns.check.dkim_no_key"))
    name = f"{signer.selector}._domainkey.{signer.domain}"
    found = [r for r in lookups.txt(name) if "p=" in r]
    if not found:
        return RecordCheck(DKIM, name, MISSING, t("dns.check.dkim_missing", name=name))
    ours = _tags(signer.dns_txt_record())["p"]
    if not any(_tags(r).get("p", "").replace(" ", "") == ours for r in found):
        return RecordCheck(DKIM, name, WRONG, t("dns.check.dkim_wrong", name=name))
    return RecordCheck(DKIM, name, OK, t("dns.check.ok", name=name))


def dmarc_record(lookups: Lookups, domain: str) -> str | None:
    """The DMARC record of ``domain`` (or of its org domain, RFC 7489 §6.6.3), if any."""
    for name in dict.fromkeys((f"_dmarc.{domain}", f"_dmarc.{org_domain(domain)}")):
        found = [r for r in lookups.txt(name) if r.startswith("v=DMARC1")]
        if found:
            return found[0]
    return None


def check_dmarc(lookups: Lookups, settings: Settings) -> RecordCheck:
    domain = settings.from_domain
    name = f"_dmarc.{domain}"
    record = dmarc_record(lookups, domain)
    if record is None:
        for wrong in (domain, f"dmarc.{domain}", f"_dmarc.{envelope_domain(settings)}"):
            if wrong != name and any("v=dmarc1" in r.lower() for r in lookups.txt(wrong)):
                return RecordCheck(DMARC, name, WRONG,
                                   t("dns.check.dmarc_wrong_name", found=wrong, name=name))
        return RecordCheck(DMARC, name, MISSING, t("dns.check.dmarc_missing", name=name))
    tags = _tags(record)
    if tags.get("p", "").lower() not in ("none", "quarantine", "reject"):
        return RecordCheck(DMARC, name, WRONG, t("dns.check.dmarc_no_policy", name=name))
    if f"mailto:{dmarc_rua(settings)}".lower() not in tags.get("rua", "").lower():
        return RecordCheck(DMARC, name, WARN, t("dns.check.dmarc_rua", name=name,
                                                 rua=dmarc_rua(settings)))
    return RecordCheck(DMARC, name, OK, t("dns.check.ok", name=name))


def check_mx(lookups: Lookups, domain: str, settings: Settings) -> RecordCheck:
    hosts = lookups.mx(domain)
    if not hosts:
        return RecordCheck(MX, domain, MISSING, t("dns.check.mx_missing", name=domain))
    want = settings.bounce_mx.strip().rstrip(".").lower()
    if want and want not in hosts:
        return RecordCheck(MX, domain, WRONG, t("dns.check.mx_wrong", name=domain, host=want,
                                                 found=", ".join(hosts)))
    return RecordCheck(MX, domain, OK, t("dns.check.ok", name=domain))


def check_alignment(lookups: Lookups, settings: Settings) -> RecordCheck:
    """DKIM ``d=`` and the envelope (SPF) domain against the From domain, as DMARC does."""
    from_domain = settings.from_domain
    try:
        tags = _tags(dmarc_record(lookups, from_domain) or "")
    except LookupFailed:  # no policy known: relaxed alignment, the DMARC default
        tags = {}
    strict_dkim, strict_spf = tags.get("adkim") == "s", tags.get("aspf") == "s"
    off = [d for d, strict in ((dkim_domain(settings), strict_dkim),
                               (envelope_domain(settings), strict_spf))
           if not aligned(d, from_domain, strict)]
    name = f"From: {settings.from_address}"
    if off:
        return RecordCheck(ALIGN, name, WRONG, t("dns.check.misaligned", domain=from_domain,
                                                  other=", ".join(dict.fromkeys(off))))
    return RecordCheck(ALIGN, name, OK, t("dns.check.aligned", domain=from_domain))


def _guarded(kind: str, name: str, check: Callable[[], RecordCheck]) -> RecordCheck:
    try:
        return check()
    except LookupFailed as exc:
        return RecordCheck(kind, name, MISSING, t("dns.check.unreachable", name=name,
                                                   error=str(exc)))


def check_records(settings: Settings, lookups: Lookups | None = None) -> list[RecordCheck]:
    """Every record of :func:`expected_records` checked, then the From alignment."""
    ask = lookups or Lookups(make_resolver(settings))
    checks: dict[str, Callable[[str], RecordCheck]] = {
        SPF: lambda domain: check_spf(ask, domain, settings),
        DKIM: lambda _name: check_dkim(ask, settings),
        DMARC: lambda _name: check_dmarc(ask, settings),
        MX: lambda domain: check_mx(ask, domain, settings),
    }
    results = [_guarded(record.kind, record.name, partial(checks[record.kind], record.name))
               for record in expected_records(settings)]
    results.append(_guarded(ALIGN, settings.from_domain,
                            lambda: check_alignment(ask, settings)))
    return results
