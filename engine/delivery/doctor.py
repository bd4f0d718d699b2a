"""``umkm doctor``: the bulk-sender requirements of the big mailbox providers as one checklist.

Why a checklist and not a wiki page: Gmail, Yahoo and Microsoft reject or spam-folder bulk
mail from a domain that lacks SPF, DKIM or DMARC aligned with From, one-click unsubscribe
over https, TLS, or whose complaint rate passes 0.3%. Each item says pass / warn / fail
and, in Bahasa Indonesia, what to do. The CLI, the admin page (``web.doctor_page``) and
the launch guard (:mod:`engine.delivery.launch_guard`) all read :func:`run_doctor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.formatting import persen
from engine.common.i18n import get_lang, t
from engine.common.production import missing_production_secrets
from engine.config import Settings
from engine.delivery import dmarc_sources, dns_check
from engine.engagement.events import COMPLAINT, HARD_BOUNCE
from engine.message.templating import TEMPLATES_DIR
from engine.models import Delivery, DeliveryStatus, EngagementEvent, utcnow

PASS, WARN, FAIL = "pass", "warn", "fail"
WINDOW = timedelta(days=30)
# Complaint rate: Gmail and Yahoo require < 0.3% and advise < 0.1%.
COMPLAINT_FAIL, COMPLAINT_WARN = 0.003, 0.001
# Hard bounces: above 2% a list is stale; above 5% providers throttle the domain.
BOUNCE_FAIL, BOUNCE_WARN = 0.05, 0.02
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = frozenset({"changeme", "change-me", "secret", "rahasia", "test", "default"})
LOOPBACK = ("localhost", "127.0.0.1", "::1")
_UNSUBSCRIBE_LINK = re.compile(r"href=\"\{\{\s*unsubscribe_url\s*\}\}\"")
_EXTENDS = re.compile(r"extends\s+\"([^\"]+)\"")


@dataclass(frozen=True)
class Item:
    """One line of the checklist: ``key`` names it (``doctor.item.<key>`` is its title)."""

    key: str
    level: str
    message: str

    @property
    def title(self) -> str:
        return t(f"doctor.item.{self.key}")


@dataclass
class Report:
    items: list[Item] = field(default_factory=list)

    @property
    def failures(self) -> list[Item]:
        return [item for item in self.items if item.level == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures


# ----------------------------------------------------------------------------- DNS
_LEVEL = {dns_check.OK: PASS, dns_check.WARN: WARN,
          dns_check.MISSING: FAIL, dns_check.WRONG: FAIL}
_ORDER = (PASS, WARN, FAIL)


def dns_items(results: list[dns_check.RecordCheck]) -> list[Item]:
    """One item per kind (SPF of two domains is one item): its worst result wins."""
    items: dict[str, Item] = {}
    for result in results:
        level = _LEVEL[result.state]
        current = items.get(result.kind)
        if current is None or _ORDER.index(level) > _ORDER.index(current.level):
            items[result.kind] = Item(result.kind, level, result.message)
    return list(items.values())


# ----------------------------------------------------------------------------- settings
def check_base_url(settings: Settings) -> Item:
    if settings.base_url.lower().startswith("https://"):
        return Item("https", PASS, t("doctor.https.ok", url=settings.base_url))
    return Item("https", FAIL, t("doctor.https.fail", url=settings.base_url))


def check_tls(settings: Settings) -> Item:
    """STARTTLS to the relay; a relay on loopback (a local MTA) forwards with its own TLS."""
    if not settings.smtp_host:
        return Item("tls", WARN, t("doctor.tls.no_relay"))
    if settings.smtp_starttls:
        return Item("tls", PASS, t("doctor.tls.ok", host=settings.smtp_host))
    if settings.smtp_host in LOOPBACK:
        return Item("tls", WARN, t("doctor.tls.local", host=settings.smtp_host))
    return Item("tls", FAIL, t("doctor.tls.fail", host=settings.smtp_host))


def _template_text(name: str, depth: int = 0) -> str:
    """A template and the layouts it extends (a few levels), as one text."""
    path = TEMPLATES_DIR / name
    if depth > 4 or not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    return text + "".join(_template_text(parent, depth + 1)
                          for parent in _EXTENDS.findall(text))


def check_unsubscribe_link() -> Item:
    """Every email template (or its layout) shows a link to ``unsubscribe_url``."""
    names = sorted(p.name for p in (TEMPLATES_DIR / "email").glob("*.mjml"))
    lacking = [n for n in names if not _UNSUBSCRIBE_LINK.search(_template_text(f"email/{n}"))]
    if lacking:
        return Item("unsubscribe", FAIL, t("doctor.unsubscribe.fail", names=", ".join(lacking)))
    return Item("unsubscribe", PASS, t("doctor.unsubscribe.ok", n=len(names)))


def check_secrets(settings: Settings) -> Item:
    problems: list[str] = []
    key = settings.secret_key.get()
    if not key:
        problems.append(t("doctor.secrets.no_key"))
    elif len(key) < MIN_SECRET_LENGTH or key.lower() in WEAK_SECRETS:
        problems.append(t("doctor.secrets.weak_key", n=MIN_SECRET_LENGTH))
    if settings.smtp_user and not settings.smtp_password:
        problems.append(t("doctor.secrets.smtp_password"))
    problems += [t("doctor.secrets.production", name=name)
                 for name in missing_production_secrets(settings)]
    if problems:
        return Item("secrets", FAIL, " ".join(problems))
    return Item("secrets", PASS, t("doctor.secrets.ok"))


# ----------------------------------------------------------------------------- rates
def email_sent_since(session: Session, since: datetime) -> int:
    return int(session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.channel == "email", Delivery.status == DeliveryStatus.sent,
        Delivery.sent_at >= since)) or 0)


def events_since(session: Session, kind: str, since: datetime) -> int:
    return int(session.scalar(select(func.count()).select_from(EngagementEvent).where(
        EngagementEvent.type == kind, EngagementEvent.channel == "email",
        EngagementEvent.occurred_at >= since)) or 0)


def _rate_item(key: str, count: int, sent: int, limits: tuple[float, float]) -> Item:
    if not sent:
        return Item(key, PASS, t("doctor.rate.nothing_sent"))
    rate = count / sent
    fail_at, warn_at = limits
    level = FAIL if rate >= fail_at else WARN if rate >= warn_at else PASS
    lang = get_lang()
    return Item(key, level, t(f"doctor.{key}.{level}", n=count, sent=sent,
                              rate=persen(rate, lang), limit=persen(fail_at, lang, 1)))


def check_rates(session: Session, now: datetime | None = None) -> list[Item]:
    """Complaints (ARF reports, stored by the bounce reader) and hard bounces, 30 days."""
    since = (now or utcnow()) - WINDOW
    sent = email_sent_since(session, since)
    return [
        _rate_item("complaints", events_since(session, COMPLAINT, since), sent,
                   (COMPLAINT_FAIL, COMPLAINT_WARN)),
        _rate_item("hard_bounces", events_since(session, HARD_BOUNCE, since), sent,
                   (BOUNCE_FAIL, BOUNCE_WARN)),
    ]


def check_dmarc_sources(session: Session, settings: Settings,
                        now: datetime | None = None) -> Item:
    """DMARC reports of 30 days: an IP that is not the relay's sent as the domain (warn:
    a forgotten sender to add to SPF_SOURCES, or someone spoofing the domain)."""
    since = (now or utcnow()) - WINDOW
    unknown = dmarc_sources.unknown_sources(session, settings, since)
    if unknown:
        shown = ", ".join(f"{ip} ({n})" for ip, n in list(unknown.items())[:5])
        return Item("dmarc_sources", WARN, t("doctor.dmarc_sources.warn", n=len(unknown),
                                             sources=shown))
    if not dmarc_sources.volume_by_source(session, since):
        return Item("dmarc_sources", PASS, t("doctor.dmarc_sources.none"))
    return Item("dmarc_sources", PASS, t("doctor.dmarc_sources.ok"))


def run_doctor(session: Session, settings: Settings, *,
               lookups: dns_check.Lookups | None = None,
               now: datetime | None = None) -> Report:
    """The whole checklist, DNS first (it is what a new domain misses most)."""
    items = dns_items(dns_check.check_records(settings, lookups))
    items += [check_base_url(settings), check_tls(settings), check_unsubscribe_link(),
              *check_rates(session, now), check_dmarc_sources(session, settings, now),
              check_secrets(settings)]
    return Report(items)
