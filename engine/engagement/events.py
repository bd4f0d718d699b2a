"""Engagement events: opens, clicks, unsubscribes, bounces, complaints and leads.

Every event is one :class:`~engine.models.EngagementEvent` row carrying its delivery,
run, product, business and customer, so per-UMKM reports (Pasal 15) are plain
``GROUP BY business_id`` queries without joins back through the outbox.

Opens and clicks are stored every time (unique counts are computed in reports: a
person may open a mail five times, and that is information too).  Unsubscribes,
bounces and complaints are stored once per delivery: a mail client retrying the
one-click POST, or the same DSN read twice, must not count twice.

Bot filtering happens at write time only as a flag (``suspected_bot``): link scanners
of mail gateways click every link seconds after delivery; the row is kept (it is
evidence) but reports and the ``engaged`` audience rule ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import (
    Customer,
    Delivery,
    DeliveryProduct,
    EngagementEvent,
    TrackedLink,
    utcnow,
)

OPEN = "open"
CLICK = "click"
UNSUBSCRIBE = "unsubscribe"
HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
COMPLAINT = "complaint"
LEAD = "lead"

#: A click this soon after the mail left is almost always a gateway's link scanner.
BOT_CLICK_SECONDS = 2.0

# Substrings (lower case) of user agents of link scanners and HTTP libraries: security
# gateways (Safe Links, Mimecast, Proofpoint, Barracuda...) and scripts, not people.
SCANNER_AGENTS = (
    "barracuda", "mimecast", "proofpoint", "urldefense", "safelinks", "bingpreview",
    "symantec", "messagelabs", "trendmicro", "trend micro", "forcepoint", "zscaler",
    "fireeye", "cisco ironport", "sophos", "checkpoint", "fortiguard", "spamtitan",
    "headlesschrome", "phantomjs", "python-requests", "python-urllib", "python-httpx",
    "aiohttp", "curl/", "wget/", "go-http-client", "okhttp", "java/", "libwww-perl",
    "scrapy", "slackbot", "facebookexternalhit", "twitterbot", "linkedinbot",
    "whatsapp/",  # WhatsApp's link-preview fetcher; a person's tap opens their browser
    "bot/", "crawler", "spider",
)

_MAX_AGENT = 300


def is_scanner_agent(user_agent: str | None) -> bool:
    """True for user agents of link scanners, crawlers and HTTP libraries.

    An empty user agent counts too: every real browser and mail client sends one.
    """
    if not user_agent or not user_agent.strip():
        return True
    if len(user_agent) <= _CACHED_AGENT:
        return _is_scanner(user_agent)
    return _has_scanner_marker(user_agent)


#: Agents up to this long are remembered (1,024 of them: at most ~0.5 MB).
_CACHED_AGENT = 512


@lru_cache(maxsize=1024)
def _is_scanner(user_agent: str) -> bool:
    # Remembered: every open and click asks, and a campaign's opens come from a few
    # hundred distinct agents (40 substring tests each, ~3 us, issue 22).
    return _has_scanner_marker(user_agent)


def _has_scanner_marker(user_agent: str) -> bool:
    agent = user_agent.lower()
    return any(marker in agent for marker in SCANNER_AGENTS)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _request_raw(user_agent: str | None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # No IP address: it is personal data (UU 27/2022) that no report needs.
    raw: dict[str, Any] = {}
    if user_agent:
        raw["user_agent"] = user_agent[:_MAX_AGENT]
    if extra:
        raw.update(extra)
    return raw


def _first_product(session: Session, delivery: Delivery) -> tuple[int | None, int | None]:
    """(product, business) a mail carried first: the attribution of an open."""
    row = session.execute(
        select(DeliveryProduct.product_id, DeliveryProduct.business_id)
        .where(DeliveryProduct.delivery_id == delivery.id)
        .order_by(DeliveryProduct.position, DeliveryProduct.product_id).limit(1)
    ).first()
    if row is None:
        return None, delivery.business_id
    return row[0], row[1]


def _event(session: Session, type_: str, delivery: Delivery | None, *,
           product_id: int | None = None, business_id: int | None = None,
           customer_id: int | None = None, link_id: int | None = None,
           suspected_bot: bool = False, at: datetime | None = None,
           raw: dict[str, Any] | None = None, channel: str | None = None) -> EngagementEvent:
    event = EngagementEvent(
        type=type_,
        channel=channel or (delivery.channel if delivery is not None else "email"),
        delivery_id=delivery.id if delivery is not None else None,
        run_id=delivery.run_id if delivery is not None else None,
        customer_id=customer_id if customer_id is not None else (
            delivery.customer_id if delivery is not None else None),
        business_id=business_id, product_id=product_id, link_id=link_id,
        suspected_bot=suspected_bot, occurred_at=at or utcnow(), raw=raw or {},
    )
    session.add(event)
    session.flush()
    return event


def _existing(session: Session, type_: str, delivery_id: int) -> EngagementEvent | None:
    return session.scalars(
        select(EngagementEvent).where(EngagementEvent.delivery_id == delivery_id,
                                      EngagementEvent.type == type_)
        .order_by(EngagementEvent.id).limit(1)
    ).first()


# ----------------------------------------------------------------------------- opens/clicks
def record_open(session: Session, delivery: Delivery, *, user_agent: str | None = None,
                at: datetime | None = None) -> EngagementEvent:
    """Store one open (every open; reports count unique ones)."""
    product_id, business_id = _first_product(session, delivery)
    return _event(session, OPEN, delivery, product_id=product_id, business_id=business_id,
                  suspected_bot=is_scanner_agent(user_agent), at=at,
                  raw=_request_raw(user_agent))


def is_safe_target(url: str) -> bool:
    """Only absolute http(s) URLs with a host are ever redirected to."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and \
        not any(ch in url for ch in "\r\n\t\\")


def link_for_click(session: Session, delivery_id: int, link_id: int,
                   ) -> tuple[Delivery, TrackedLink] | None:
    """The delivery and link a verified click token names, or ``None``.

    The link must belong to the delivery's own run (a token of delivery A with the link
    id of another run is refused) and its stored target must be a safe http(s) URL.
    """
    delivery = session.get(Delivery, delivery_id)
    link = session.get(TrackedLink, link_id)
    if delivery is None or link is None or link.run_id != delivery.run_id:
        return None
    if not is_safe_target(link.url):
        return None
    return delivery, link


def is_suspected_bot_click(delivery: Delivery, user_agent: str | None, at: datetime,
                           bot_seconds: float = BOT_CLICK_SECONDS) -> bool:
    """A scanner's user agent, or a click within ``bot_seconds`` of sending."""
    return is_bot_click_after(delivery.sent_at, user_agent, at, bot_seconds)


def is_bot_click_after(sent_at: datetime | None, user_agent: str | None, at: datetime,
                       bot_seconds: float = BOT_CLICK_SECONDS) -> bool:
    """The rule of :func:`is_suspected_bot_click` from the send time alone (the buffered
    tracking path keeps delivery facts in a cache, not ORM rows)."""
    if is_scanner_agent(user_agent):
        return True
    sent = _aware(sent_at)
    return sent is not None and (at - sent) < timedelta(seconds=bot_seconds)


def request_raw(user_agent: str | None) -> dict[str, Any]:
    """The ``raw`` of an open or click: the (cut) user agent, never an IP address."""
    return _request_raw(user_agent)


def record_click(session: Session, delivery: Delivery, link: TrackedLink, *,
                 user_agent: str | None = None, at: datetime | None = None,
                 bot_seconds: float = BOT_CLICK_SECONDS) -> EngagementEvent:
    """Store one click with the product and business of the link that was followed."""
    at = at or utcnow()
    return _event(session, CLICK, delivery, product_id=link.product_id,
                  business_id=link.business_id, link_id=link.id, at=at,
                  suspected_bot=is_suspected_bot_click(delivery, user_agent, at, bot_seconds),
                  raw=_request_raw(user_agent))


# ----------------------------------------------------------------------------- unsubscribe
def record_unsubscribe(session: Session, delivery: Delivery | None, *, source: str,
                       customer_id: int | None = None, channel: str | None = None,
                       at: datetime | None = None) -> EngagementEvent | None:
    """Store the unsubscribe once per delivery; ``None`` when it was already stored.

    Without a delivery (a per-customer WhatsApp token) the caller stores it only when
    consent actually changed, so it is once per withdrawal as well.
    """
    if delivery is not None and _existing(session, UNSUBSCRIBE, delivery.id) is not None:
        return None
    business_id = delivery.business_id if delivery is not None else None
    return _event(session, UNSUBSCRIBE, delivery, business_id=business_id,
                  customer_id=customer_id, at=at, raw={"source": source}, channel=channel)


# ----------------------------------------------------------------------------- bounces
@dataclass(frozen=True)
class BounceFacts:
    """What a bounce or complaint says, kept in the event's ``raw``."""

    address: str
    status: str | None = None
    diagnostic: str | None = None
    source: str = "dsn"
    feedback_type: str | None = None

    def as_raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"address": self.address, "source": self.source}
        for key in ("status", "diagnostic", "feedback_type"):
            value = getattr(self, key)
            if value:
                raw[key] = value[:1000]
        return raw


def _customer_id_for(session: Session, address: str) -> int | None:
    return session.scalar(
        select(Customer.id).where(func.lower(Customer.email) == address.lower()).limit(1))


def _delivery_event(session: Session, type_: str, delivery: Delivery | None,
                    facts: BounceFacts, at: datetime | None) -> EngagementEvent | None:
    if delivery is not None and _existing(session, type_, delivery.id) is not None:
        return None
    customer_id = delivery.customer_id if delivery is not None else \
        _customer_id_for(session, facts.address)
    business_id = delivery.business_id if delivery is not None else None
    return _event(session, type_, delivery, business_id=business_id, customer_id=customer_id,
                  at=at, raw=facts.as_raw(), channel="email")


def record_bounce(session: Session, delivery: Delivery | None, facts: BounceFacts, *,
                  hard: bool, at: datetime | None = None) -> EngagementEvent | None:
    """Store a hard or soft bounce, once per delivery (``None`` when already stored).

    A bounce without a known delivery (webhook with only an address) is stored every
    time: there is nothing to tell two of them apart.
    """
    return _delivery_event(session, HARD_BOUNCE if hard else SOFT_BOUNCE, delivery, facts, at)


def record_complaint(session: Session, delivery: Delivery | None, facts: BounceFacts, *,
                     at: datetime | None = None) -> EngagementEvent | None:
    """Store a spam complaint (ARF), once per delivery."""
    return _delivery_event(session, COMPLAINT, delivery, facts, at)


def soft_bounces_since(session: Session, address: str, since: datetime) -> int:
    """Soft bounces of ``address`` (by its deliveries or its customer) since ``since``."""
    address = address.lower()
    deliveries = select(Delivery.id).where(func.lower(Delivery.recipient) == address)
    customers = select(Customer.id).where(func.lower(Customer.email) == address)
    return int(session.scalar(
        select(func.count()).select_from(EngagementEvent).where(
            EngagementEvent.type == SOFT_BOUNCE, EngagementEvent.occurred_at >= since,
            (EngagementEvent.delivery_id.in_(deliveries))
            | (EngagementEvent.customer_id.in_(customers)))
    ) or 0)


# ----------------------------------------------------------------------------- leads
def record_lead(session: Session, *, business_id: int, product_id: int | None = None,
                delivery: Delivery | None = None, channel: str = "web",
                user_agent: str | None = None, at: datetime | None = None,
                raw: Mapping[str, Any] | None = None) -> EngagementEvent:
    """An "order via WhatsApp" (or similar) intent, attributed to the business."""
    return _event(session, LEAD, delivery, product_id=product_id, business_id=business_id,
                  suspected_bot=is_scanner_agent(user_agent), at=at, channel=channel,
                  raw=_request_raw(user_agent, raw))


def record_showcase_click(session: Session, *, business_id: int, product_id: int,
                          user_agent: str | None = None,
                          raw: Mapping[str, Any] | None = None) -> EngagementEvent:
    """A click on a marketplace link of the public showcase (no mail, no delivery):
    channel ``showcase``, attributed to the business and product the link belongs to."""
    return _event(session, CLICK, None, product_id=product_id, business_id=business_id,
                  suspected_bot=is_scanner_agent(user_agent), channel="showcase",
                  raw=_request_raw(user_agent, raw))
