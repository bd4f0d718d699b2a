"""Report sources: one SQL query per kind of fact, one row per fact with 0/1 flags.

Why facts with flags: a year of a busy programme is millions of engagement events;
pulling them into Python to count would be slow and memory-hungry. Each source yields
one row per fact (a delivery, a social post, a lead, an attributed order) carrying 0/1
flags or amounts, so :mod:`engine.reporting.build` can group any source by any dimension
with one ``GROUP BY`` (the counting rules are in that module's docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Subquery,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    union,
)

from engine.engagement.events import HARD_BOUNCE, SOFT_BOUNCE
from engine.models import (
    Delivery,
    DeliveryProduct,
    EngagementEvent,
    Order,
    OrderStatus,
    SocialPost,
    TrackedLink,
)
from engine.reporting.periods import Period
from engine.reporting.sql import add_days, flag, human, in_period
from engine.social.plan import SHARE_KIT_RECIPIENT

# Event types of platform metric snapshots and the report metric each one feeds.
SOCIAL_TYPES = {"view": "social_views", "reach": "social_reach",
                "reaction": "social_reactions", "comment": "social_comments",
                "share": "social_shares", "click": "social_clicks", "save": "social_saves"}


@dataclass(frozen=True)
class Source:
    """Facts (fact_id, run_id, channel, at, metrics...) and how they map to UMKM.

    ``businesses`` lists unique (fact_id, business_id) pairs for facts that can carry
    several UMKM (messages, posts); when it is ``None`` each fact has one UMKM in its own
    ``business_id`` column (leads, orders) and no join is needed.
    """

    facts: FromClause
    metrics: tuple[str, ...]
    businesses: FromClause | None
    # (fact_id, product_id, business_id) for facts that can carry several products; when
    # ``None`` the facts carry their one product in a ``product_id`` column.
    products: FromClause | None = None


def _delivery_businesses(condition: ColumnElement[bool]) -> Subquery:
    """Which UMKM each delivery carried: its products' UMKM plus ``Delivery.business_id``.

    ``condition`` is the same condition on ``Delivery`` that selects the facts; repeating
    it (instead of reusing the facts as a CTE) keeps the planner's row estimates right,
    which decides between a hash join and 100,000 index probes on large months.
    """
    return union(
        select(DeliveryProduct.delivery_id.label("fact_id"),
               DeliveryProduct.business_id.label("business_id"))
        .join(Delivery, Delivery.id == DeliveryProduct.delivery_id).where(condition),
        select(Delivery.id, Delivery.business_id)
        .where(Delivery.business_id.is_not(None), condition),
    ).subquery()


def _delivery_products(condition: ColumnElement[bool]) -> Subquery:
    """Which products each delivery carried (for the per-product rows of a UMKM)."""
    return (select(DeliveryProduct.delivery_id.label("fact_id"), DeliveryProduct.product_id,
                   DeliveryProduct.business_id)
            .join(Delivery, Delivery.id == DeliveryProduct.delivery_id).where(condition)
            .subquery())


def outbox_source(period: Period) -> Source:
    """Outbox rows created in the period (planned, failed), for monthly trends."""
    facts = (
        select(Delivery.id.label("fact_id"), Delivery.run_id, Delivery.channel,
               Delivery.created_at.label("at"), literal(1).label("planned"),
               flag(Delivery.status == "failed").label("failed"))
        .where(in_period(Delivery.created_at, period))
        .subquery("outbox_facts")
    )
    created = in_period(Delivery.created_at, period)
    return Source(facts, ("planned", "failed"), _delivery_businesses(created),
                  _delivery_products(created))


def is_simulated_delivery() -> ColumnElement[bool]:
    """A social row the sandbox "sent" (provider id ``sandbox-...``): nothing reached a
    platform or a person, so it counts only in the report's marked simulated rows. The
    share kit is real (staff forward it by hand) and email is never sandboxed."""
    return and_(Delivery.provider_id.like("sandbox-%"), Delivery.channel != "email",
                Delivery.recipient != SHARE_KIT_RECIPIENT)


def _delivery_kind(simulated: bool) -> ColumnElement[bool]:
    if simulated:
        return is_simulated_delivery()
    return or_(Delivery.provider_id.is_(None), not_(is_simulated_delivery()))


def send_source(period: Period, with_outbox: bool = False,
                simulated: bool = False) -> Source:
    """Messages sent in the period with their funnel flags.

    ``with_outbox`` also takes the outbox rows created in the period (planned, failed)
    in the same pass, which saves a second (message, UMKM) mapping on big months; it is
    not used for monthly trends, where a message created on 30 November and sent on
    1 December belongs to two different months.
    """
    e = EngagementEvent
    is_bounce = e.type.in_((HARD_BOUNCE, SOFT_BOUNCE))
    per_delivery = (
        select(
            e.delivery_id,
            func.max(flag(e.type == HARD_BOUNCE)).label("hard"),
            func.max(flag(is_bounce)).label("bounce"),
            func.max(flag(and_(e.type == "open", human(e)))).label("opened"),
            func.max(flag(and_(e.type == "click", human(e), Delivery.channel == "email")))
            .label("clicked"),
            func.max(flag(e.type == "unsubscribe")).label("unsub"),
            func.max(flag(e.type == "complaint")).label("complaint"),
        )
        .join(Delivery, Delivery.id == e.delivery_id)
        .where(e.post_id.is_(None), in_period(Delivery.sent_at, period))
        .group_by(e.delivery_id)
        .subquery("per_delivery")
    )
    hard = func.coalesce(per_delivery.c.hard, 0)
    kind = _delivery_kind(simulated)
    sent_in = and_(in_period(Delivery.sent_at, period), kind)
    created_in = and_(in_period(Delivery.created_at, period), kind)
    outbox_columns = [
        flag(created_in).label("planned"),
        flag(and_(created_in, Delivery.status == "failed")).label("failed"),
    ] if with_outbox else []
    facts = (
        select(
            Delivery.id.label("fact_id"), Delivery.run_id, Delivery.channel,
            Delivery.sent_at.label("at"), *outbox_columns,
            (flag(sent_in) if with_outbox else literal(1)).label("sent"),
            hard.label("bounced_hard"),
            (func.coalesce(per_delivery.c.bounce, 0) - hard).label("bounced_soft"),
            func.coalesce(per_delivery.c.opened, 0).label("unique_opens"),
            func.coalesce(per_delivery.c.clicked, 0).label("unique_clicks"),
            func.coalesce(per_delivery.c.unsub, 0).label("unsubscribes"),
            func.coalesce(per_delivery.c.complaint, 0).label("complaints"),
            flag(and_(sent_in, Delivery.channel == "email",
                      func.coalesce(per_delivery.c.bounce, 0) == 0)).label("email_delivered"),
        )
        .outerjoin(per_delivery, per_delivery.c.delivery_id == Delivery.id)
        .where(or_(sent_in, created_in) if with_outbox else sent_in)
        .subquery("send_facts")
    )
    metrics: tuple[str, ...] = ("sent", "bounced_hard", "bounced_soft", "unique_opens",
                                "unique_clicks", "unsubscribes", "complaints", "email_delivered")
    if with_outbox:
        metrics = ("planned", "failed", *metrics)
        either = or_(sent_in, created_in)
        return Source(facts, metrics, _delivery_businesses(either), _delivery_products(either))
    return Source(facts, metrics, _delivery_businesses(sent_in), _delivery_products(sent_in))


def _is_published() -> ColumnElement[bool]:
    """A post row exists from the first attempt (retry marker, container id); only one
    the platform confirmed counts as a post."""
    return or_(SocialPost.published_at.is_not(None), SocialPost.provider_post_id.is_not(None))


def is_simulated_post() -> ColumnElement[bool]:
    """A post the social sandbox "published" (provider id ``sandbox-<channel>-<id>``): it
    and its metrics were invented, so no Pasal 15 figure may count them. The WhatsApp share
    kit is excluded: it is always written locally and staff really forward it."""
    return and_(SocialPost.provider_post_id.like("sandbox-%"), SocialPost.platform != "whatsapp")


def _real_post() -> ColumnElement[bool]:
    return or_(SocialPost.provider_post_id.is_(None), not_(is_simulated_post()))


def social_source(period: Period, simulated: bool = False) -> Source:
    """Posts published in the period with the latest value of each platform metric.

    ``simulated=True`` gives the sandbox's invented posts instead: reports show them
    apart, marked, and never in totals (issue 17).
    """
    e = EngagementEvent
    published = func.coalesce(SocialPost.published_at, Delivery.sent_at, Delivery.created_at)
    posts = (
        select(SocialPost.id, SocialPost.platform, SocialPost.business_id,
               SocialPost.product_id, SocialPost.delivery_id, Delivery.run_id,
               published.label("at"))
        .outerjoin(Delivery, Delivery.id == SocialPost.delivery_id)
        .where(in_period(published, period), _is_published(),
               is_simulated_post() if simulated else _real_post())
        .cte("posts")
    )
    ranked = (
        select(e.post_id, e.type, e.value,
               func.row_number().over(partition_by=(e.post_id, e.type),
                                      order_by=(e.occurred_at.desc(), e.id.desc())).label("rn"))
        .where(e.post_id.in_(select(posts.c.id)), e.type.in_(list(SOCIAL_TYPES)))
        .subquery("ranked")
    )
    latest = (
        select(ranked.c.post_id, *[
            func.sum(case((ranked.c.type == kind, ranked.c.value), else_=0)).label(metric)
            for kind, metric in SOCIAL_TYPES.items()
        ])
        .where(ranked.c.rn == 1)
        .group_by(ranked.c.post_id)
        .subquery("latest")
    )
    facts = (
        select(posts.c.id.label("fact_id"), posts.c.run_id, posts.c.platform.label("channel"),
               posts.c.at, literal(1).label("social_posts"),
               *[func.coalesce(latest.c[m], 0).label(m) for m in SOCIAL_TYPES.values()])
        .outerjoin(latest, latest.c.post_id == posts.c.id)
        .cte("social_facts")
    )
    businesses = union(
        select(posts.c.id.label("fact_id"), posts.c.business_id.label("business_id"))
        .where(posts.c.business_id.is_not(None)),
        select(posts.c.id, DeliveryProduct.business_id)
        .join(DeliveryProduct, DeliveryProduct.delivery_id == posts.c.delivery_id),
    ).subquery()
    products = union(
        select(posts.c.id.label("fact_id"), posts.c.product_id.label("product_id"),
               posts.c.business_id.label("business_id"))
        .where(posts.c.product_id.is_not(None)),
        select(posts.c.id, DeliveryProduct.product_id, DeliveryProduct.business_id)
        .join(DeliveryProduct, DeliveryProduct.delivery_id == posts.c.delivery_id),
    ).subquery()
    return Source(facts, ("social_posts", *SOCIAL_TYPES.values()), businesses, products)


def _event_source(period: Period, metric: str, condition: ColumnElement[bool]) -> Source:
    """One fact per human engagement event of the period (one UMKM and product each).

    The UMKM, product and run come from the event, else from its tracked link or message,
    so a share-kit click (no message) still lands on its UMKM and campaign.
    """
    e = EngagementEvent
    facts = (
        select(e.id.label("fact_id"),
               func.coalesce(e.run_id, Delivery.run_id, TrackedLink.run_id).label("run_id"),
               e.channel, e.occurred_at.label("at"), literal(1).label(metric),
               func.coalesce(e.business_id, TrackedLink.business_id).label("business_id"),
               func.coalesce(e.product_id, TrackedLink.product_id).label("product_id"))
        .outerjoin(Delivery, Delivery.id == e.delivery_id)
        .outerjoin(TrackedLink, TrackedLink.id == e.link_id)
        .where(condition, human(e), in_period(e.occurred_at, period))
        .subquery(f"{metric}_facts")
    )
    return Source(facts, (metric,), None)


def lead_source(period: Period) -> Source:
    """WhatsApp order-button presses in the period (one UMKM per lead, bots left out)."""
    return _event_source(period, "leads", EngagementEvent.type == "lead")


def whatsapp_click_source(period: Period) -> Source:
    """Human clicks on tracked links sent over WhatsApp (share kit, Cloud API) in the
    period: every click counts, platform snapshots (``post_id``) never do."""
    e = EngagementEvent
    return _event_source(period, "whatsapp_clicks", and_(
        e.type == "click", e.channel == "whatsapp", e.post_id.is_(None)))


def order_source(period: Period, days: int) -> Source:
    """Orders of the period attributed to the customer's latest human click on a link of
    the same UMKM at most ``days`` days before (both ends inclusive)."""
    e = EngagementEvent
    clicks = (
        select(e.id.label("click_id"), e.customer_id, e.channel,
               func.coalesce(e.business_id, TrackedLink.business_id).label("business_id"),
               func.coalesce(e.run_id, Delivery.run_id, TrackedLink.run_id).label("run_id"),
               func.coalesce(e.product_id, TrackedLink.product_id).label("product_id"),
               e.occurred_at.label("clicked_at"))
        .outerjoin(Delivery, Delivery.id == e.delivery_id)
        .outerjoin(TrackedLink, TrackedLink.id == e.link_id)
        .where(e.type == "click", e.post_id.is_(None), human(e), e.customer_id.is_not(None),
               e.occurred_at >= period.start - timedelta(days=days),
               e.occurred_at < period.end)
        .subquery("clicks")
    )
    matched = (
        select(Order.id.label("fact_id"), Order.business_id, Order.total,
               Order.ordered_at.label("at"), clicks.c.run_id, clicks.c.channel,
               clicks.c.product_id,
               func.row_number().over(
                   partition_by=Order.id,
                   order_by=(clicks.c.clicked_at.desc(), clicks.c.click_id.desc()),
               ).label("rn"))
        .join(clicks, and_(clicks.c.customer_id == Order.customer_id,
                           clicks.c.business_id == Order.business_id,
                           clicks.c.clicked_at <= Order.ordered_at,
                           Order.ordered_at <= add_days(clicks.c.clicked_at, days)))
        .where(in_period(Order.ordered_at, period), Order.status != OrderStatus.cancelled)
        .subquery("matched")
    )
    facts = (
        select(matched.c.fact_id, matched.c.run_id, matched.c.channel, matched.c.at,
               literal(1).label("orders"), matched.c.total.label("order_value"),
               matched.c.business_id, matched.c.product_id)
        .where(matched.c.rn == 1)
        .subquery("order_facts")
    )
    return Source(facts, ("orders", "order_value"), None)


def active_businesses(period: Period) -> Subquery:
    """UMKM promoted in a sent message/post or with an engagement event in the period."""
    e = EngagementEvent
    sent_ids = select(Delivery.id).where(in_period(Delivery.sent_at, period),
                                         _delivery_kind(False))
    posted = func.coalesce(SocialPost.published_at, Delivery.sent_at)
    return union(
        select(DeliveryProduct.business_id.label("business_id"))
        .where(DeliveryProduct.delivery_id.in_(sent_ids)),
        select(Delivery.business_id).where(Delivery.business_id.is_not(None),
                                           in_period(Delivery.sent_at, period),
                                           _delivery_kind(False)),
        select(SocialPost.business_id)
        .outerjoin(Delivery, Delivery.id == SocialPost.delivery_id)
        .where(SocialPost.business_id.is_not(None), in_period(posted, period),
               _is_published(), _real_post()),
        select(e.business_id).where(e.business_id.is_not(None),
                                    in_period(e.occurred_at, period),
                                    or_(e.post_id.is_(None), e.post_id.not_in(
                                        select(SocialPost.id).where(is_simulated_post())))),
        select(DeliveryProduct.business_id)
        .join(e, e.delivery_id == DeliveryProduct.delivery_id)
        .where(in_period(e.occurred_at, period), e.delivery_id.in_(
            select(Delivery.id).where(_delivery_kind(False)))),
    ).subquery("active")
