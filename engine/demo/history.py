"""A year of past campaign runs for the demo ("riwayat demo"), so every report has a trend.

Why: a fresh demo has only today's sends, so every monthly chart and table of the
reports is one bar. This seeds one finished run per month for the 12 whole months
before the reference month: mails with opens, clicks, unsubscribes and bounces, three
social posts with their platform metrics, WhatsApp leads, and clicks in front of the
demo's own orders (so they are *attributed* by the report's last-click rule, and no
order is invented: retention audiences stay as they were).

Everything is marked: the campaign ``riwayat-demo``, each run's ``status_reason``
"riwayat demo", ``context``/``raw`` ``{"riwayat_demo": true}`` on rows and events.
Deterministic (``random.Random(seed)``) and bulk-inserted (a few hundred rows a month);
mails go out on the 1st of each month, so the last one is about 30 days old at the
reference and the example campaigns' frequency caps see it as little as possible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.campaign.schema import CampaignSpec
from engine.delivery.scheduler import upsert_campaign
from engine.models import (
    Business,
    Campaign,
    CampaignRun,
    Consent,
    ConsentChannel,
    Customer,
    Delivery,
    DeliveryProduct,
    DeliveryStatus,
    EngagementEvent,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    RunStatus,
    SocialPost,
    aware,
)

HISTORY_KEY = "riwayat-demo"
HISTORY_NOTE = "riwayat demo"
MARK = {"riwayat_demo": True}
MONTHS = 12
WITA = ZoneInfo("Asia/Makassar")
PLATFORMS = ("facebook", "instagram", "tiktok")
SOCIAL_METRICS = ("view", "reach", "reaction", "comment", "share", "click", "save")


@dataclass
class HistorySummary:
    months: int = 0
    sent: int = 0
    events: int = 0
    posts: int = 0


@dataclass
class _Month:
    """The rows of one month, collected before the bulk inserts."""

    run_id: int
    sent_at: datetime
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    products: list[tuple[int, int]] = field(default_factory=list)  # (product, business)
    clicks_before: dict[int, datetime] = field(default_factory=dict)  # row -> order time


def month_starts(reference: datetime) -> list[datetime]:
    """The first instants (WITA, as UTC) of the 12 whole months before ``reference``."""
    local = reference.astimezone(WITA)
    year, month = local.year, local.month
    starts = []
    for _ in range(MONTHS):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        starts.append(datetime(year, month, 1, tzinfo=WITA).astimezone(UTC))
    return starts[::-1]


def seed_history(session: Session, reference: datetime, seed: int = 17) -> HistorySummary:
    """Seed the year once (a second call finds the campaign and adds nothing)."""
    if session.scalar(select(Campaign.id).where(Campaign.key == HISTORY_KEY)) is not None:
        return HistorySummary()
    rng = random.Random(seed * 7 + 19)
    starts = month_starts(reference)
    campaign = upsert_campaign(session, _spec(starts[0]), None)
    recipients = _consenting(session)
    catalog = _eligible_catalog(session)
    summary = HistorySummary()
    if not recipients or not catalog:
        return summary
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else start + timedelta(days=31)
        month = _plan_month(session, rng, campaign.id, start, end, index, recipients, catalog)
        ids = _insert_deliveries(session, month)
        summary.events += _insert_mail_events(session, rng, month, ids, index)
        summary.posts += _insert_posts(session, rng, month, index)
        summary.sent += len(ids)
        summary.months += 1
    session.flush()
    return summary


def _spec(first: datetime) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "version": 1, "id": HISTORY_KEY, "name": "Kabar UMKM bulanan (riwayat demo)",
        "type": "newsletter", "tags": [HISTORY_KEY],
        "schedule": {"start": first.isoformat()},
        "audience": {"include": [{"consent": "marketing"}]},
        "channels": {"email": {"template": "email/newsletter.mjml",
                               "subject": "Kabar UMKM TTS bulan ini"}},
    })


def _eligible_catalog(session: Session) -> list[tuple[int, int]]:
    """(product, business) of businesses that meet Pasal 10: a Dinas newsletter features
    only those, so the demo's deliberately flawed businesses (outside TTS, not binaan,
    bad NIB) never show up in the history or as kecamatan ``53.71.01`` in the reports."""
    return list(session.execute(
        select(Product.id, Product.business_id)
        .join(Business, Business.id == Product.business_id)
        .where(Business.eligible.is_(True)).order_by(Product.id)).tuples())


def _consenting(session: Session) -> list[tuple[int, str]]:
    """(id, email) of customers who granted email marketing (the history's recipients)."""
    granted = select(Consent.customer_id).where(Consent.channel == ConsentChannel.email,
                                                Consent.granted.is_(True))
    rows = session.execute(
        select(Customer.id, Customer.email)
        .where(Customer.email.is_not(None), Customer.id.in_(granted))
        .order_by(Customer.id)).tuples()
    return [(cid, email) for cid, email in rows if email]


def _plan_month(session: Session, rng: random.Random, campaign_id: int, start: datetime,
                end: datetime, index: int, recipients: list[tuple[int, str]],
                catalog: list[tuple[int, int]]) -> _Month:
    """The run and its recipients: a growing share of the list, plus every customer
    whose order of the month is to be attributed (they get a mail of that UMKM)."""
    sent_at = start + timedelta(hours=1)  # 09:00 WITA on the 1st
    run = CampaignRun(campaign_id=campaign_id, trigger_key=f"{HISTORY_KEY}:{start:%Y-%m}",
                      status=RunStatus.finished, scheduled_at=sent_at, started_at=sent_at,
                      finished_at=sent_at + timedelta(hours=2), status_reason=HISTORY_NOTE,
                      created_at=sent_at)
    session.add(run)
    session.flush()
    month = _Month(run.id, sent_at)
    emails = dict(recipients)
    share = min(1.0, 0.35 + 0.04 * index + rng.uniform(-0.05, 0.05))
    chosen: dict[int, tuple[int, int]] = {
        cid: rng.choice(catalog) for cid, _ in rng.sample(recipients, int(len(recipients) * share))}
    featured = {business_id for _product, business_id in catalog}  # eligible ones only
    for customer_id, business_id, product_id, ordered_at in _orders_of(session, start, end):
        if business_id not in featured:
            continue
        if customer_id in emails and rng.random() < 0.6 and ordered_at > sent_at + timedelta(
                hours=3):
            chosen[customer_id] = (product_id, business_id)
            month.clicks_before[customer_id] = ordered_at
    for customer_id in sorted(chosen):
        product_id, business_id = chosen[customer_id]
        month.deliveries.append({
            "run_id": run.id, "channel": "email", "recipient": emails[customer_id],
            "customer_id": customer_id, "business_id": business_id,
            "status": DeliveryStatus.sent, "variant": "A", "context": dict(MARK),
            "attempts": 1, "sent_at": sent_at, "created_at": sent_at - timedelta(minutes=5)})
        month.products.append((product_id, business_id))
    run.planned = len(month.deliveries)
    return month


def _orders_of(session: Session, start: datetime, end: datetime) -> list[tuple[int, int, int,
                                                                              datetime]]:
    """(customer, business, a product, time) of the month's demo orders, not cancelled."""
    first_item = select(OrderItem.product_id).where(OrderItem.order_id == Order.id) \
        .order_by(OrderItem.id).limit(1).scalar_subquery()
    rows = session.execute(
        select(Order.customer_id, Order.business_id, first_item, Order.ordered_at)
        .where(Order.ordered_at >= start, Order.ordered_at < end,
               Order.status != OrderStatus.cancelled)
        .order_by(Order.id)).tuples()
    return [(c, b, p, aware(at) or at) for c, b, p, at in rows if p is not None]


def _insert_deliveries(session: Session, month: _Month) -> list[int]:
    if not month.deliveries:
        return []
    ids = list(session.scalars(
        insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True),
        month.deliveries))
    session.execute(insert(DeliveryProduct), [
        {"delivery_id": d, "product_id": p, "business_id": b, "position": 0}
        for d, (p, b) in zip(ids, month.products, strict=True)])
    return ids


def _insert_mail_events(session: Session, rng: random.Random, month: _Month, ids: list[int],
                        index: int) -> int:
    """Bounces, opens, clicks (those before an order ~1 day ahead of it), unsubscribes
    and WhatsApp leads of one month's mails; rates drift upwards over the year."""
    events: list[dict[str, Any]] = []
    for delivery_id, row, (product_id, business_id) in zip(
            ids, month.deliveries, month.products, strict=True):
        customer_id = row["customer_id"]
        base = {"channel": "email", "delivery_id": delivery_id, "run_id": month.run_id,
                "business_id": business_id, "product_id": product_id,
                "customer_id": customer_id, "raw": dict(MARK)}
        order_at = month.clicks_before.get(customer_id)
        draw = rng.random()
        if order_at is None and draw < 0.02:
            events.append({**base, "type": "hard_bounce", "occurred_at": month.sent_at
                           + timedelta(minutes=2)})
            continue
        if order_at is None and draw < 0.035:
            events.append({**base, "type": "soft_bounce", "occurred_at": month.sent_at
                           + timedelta(minutes=30)})
            continue
        opened = order_at is not None or rng.random() < 0.28 + 0.012 * index
        if not opened:
            continue
        seen = month.sent_at + timedelta(minutes=rng.randint(5, 2880))
        click_at = None
        if order_at is not None:
            click_at = max(order_at - timedelta(minutes=rng.randint(60, 1440)),
                           month.sent_at + timedelta(minutes=30))
            seen = min(seen, click_at - timedelta(minutes=1))
        elif rng.random() < 0.3 + 0.01 * index:
            click_at = seen + timedelta(minutes=rng.randint(1, 20))
        events.append({**base, "type": "open", "occurred_at": seen})
        if click_at is not None:
            events.append({**base, "type": "click", "occurred_at": click_at})
            if rng.random() < 0.15:
                events.append({**base, "type": "lead", "channel": "whatsapp",
                               "occurred_at": click_at + timedelta(minutes=3)})
        if rng.random() < 0.012:
            events.append({**base, "type": "unsubscribe",
                           "occurred_at": seen + timedelta(minutes=2)})
    if events:
        session.execute(insert(EngagementEvent), events)
    return len(events)


def _insert_posts(session: Session, rng: random.Random, month: _Month, index: int) -> int:
    """One Dinas post per platform, published with the mail, with its latest metrics."""
    product_id, business_id = month.products[0] if month.products else (None, None)
    rows = [{"run_id": month.run_id, "channel": platform, "recipient": "dinas",
             "business_id": business_id, "status": DeliveryStatus.sent,
             "context": dict(MARK), "attempts": 1, "sent_at": month.sent_at,
             "provider_id": f"{HISTORY_KEY}-{platform}-{month.run_id}",
             "created_at": month.sent_at} for platform in PLATFORMS]
    ids = list(session.scalars(
        insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), rows))
    post_ids = list(session.scalars(
        insert(SocialPost).returning(SocialPost.id, sort_by_parameter_order=True),
        [{"delivery_id": d, "platform": platform, "business_id": business_id,
          "product_id": product_id, "provider_post_id": f"{HISTORY_KEY}-{platform}-{d}",
          "status": "published", "published_at": month.sent_at, "raw": dict(MARK)}
         for d, platform in zip(ids, PLATFORMS, strict=True)]))
    read_at = month.sent_at + timedelta(days=3)
    metrics = []
    for post_id, delivery_id, platform in zip(post_ids, ids, PLATFORMS, strict=True):
        views = int(rng.randint(300, 600) * (1 + 0.12 * index))
        values = {"view": views, "reach": int(views * 0.7), "reaction": views // 12,
                  "comment": views // 60, "share": views // 80, "click": views // 25,
                  "save": views // 100}
        metrics += [{"type": kind, "channel": platform, "post_id": post_id,
                     "delivery_id": delivery_id, "run_id": month.run_id,
                     "business_id": business_id, "product_id": product_id,
                     "value": float(values[kind]), "occurred_at": read_at, "raw": dict(MARK)}
                    for kind in SOCIAL_METRICS]
    session.execute(insert(EngagementEvent), metrics)
    return len(post_ids)
