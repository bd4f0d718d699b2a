"""Social channels of a campaign: plan the posts, publish them, read their metrics.

A campaign's ``channels.facebook|instagram|tiktok`` become outbox rows like email does:
one delivery per opted-in product (``per: product``) or one round-up (``per: campaign``),
attributed to the business whose product it features. ``channels.whatsapp`` in
``share_kit`` mode makes one ready-to-forward kit for the shared group (Pasal 7(2)a);
``cloud_api`` mode sends approved templates to customers with WhatsApp consent.

Sending goes through the channel registry: the sandbox adapter (embedded default, JSON
files under ``var/outbox/<channel>/``) or the real adapters with credentials from
:mod:`engine.accounts`. Provider state (Instagram container id, TikTok publish id) is
checkpointed in ``social_post`` before the next irreversible step, so a killed worker
never publishes twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.base import (
    AccountCredentials,
    ChannelAdapter,
    EngagementMetric,
    OutboundMessage,
    SendResult,
    SendStatus,
    get_adapter_class,
)
from engine import accounts
from engine.catalog import CatalogProduct, eligible_products
from engine.config import Settings
from engine.db import session_factory
from engine.models import (
    CampaignRun,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    SocialAccount,
    SocialPost,
    utcnow,
)
from engine.templating import TemplateProblem, jinja_env, render_checked

log = logging.getLogger(__name__)

POST_PLATFORMS = ("facebook", "instagram", "tiktok")
SOCIAL_CHANNELS = (*POST_PLATFORMS, "whatsapp")
MAX_POSTS_PER_CHANNEL = 50
METRICS_WINDOW = timedelta(days=30)


# ----------------------------------------------------------------------------- planning
def campaign_products(session: Session, spec: Mapping[str, Any]) -> list[CatalogProduct]:
    products = spec.get("products") or {}
    return eligible_products(
        session, campaign_key=spec["id"], campaign_tags=spec.get("tags") or [],
        opt_in=products.get("opt_in", "required"), category=products.get("category"),
        kecamatan=products.get("kecamatan"), max_price=products.get("max_price"),
        featured=products.get("featured") or ())


def _account_key(session: Session, platform: str, owner: str, business_id: int | None,
                 settings: Settings) -> str | None:
    """The account that will post; in sandbox mode a missing account is fine."""
    row = accounts.find(session, platform, owner, business_id)
    if row is not None:
        return accounts.key_of(row)
    if settings.social_mode == "sandbox":
        return accounts.account_key(platform, owner, business_id)
    return None


def materialize_posts(session: Session, run: CampaignRun, spec: Mapping[str, Any],
                      settings: Settings) -> int:
    """Outbox rows for every social channel of the campaign; returns how many."""
    channels = spec.get("channels") or {}
    wanted = [name for name in SOCIAL_CHANNELS if channels.get(name)]
    if not wanted:
        return 0
    products = campaign_products(session, spec)
    rows: list[Delivery] = []
    for platform in wanted:
        config = channels[platform]
        if platform == "whatsapp":
            if config.get("mode", "share_kit") == "share_kit":
                rows.append(_row(run, platform, "whatsapp:share-kit", None,
                                 {"product_ids": [p.id for p in products]}, None))
            continue
        rows += _post_rows(session, run, platform, config, products, settings)
    existing = set(session.scalars(select(Delivery.recipient).where(
        Delivery.run_id == run.id, Delivery.channel.in_(wanted))))
    fresh = [r for r in rows if r.recipient not in existing]
    session.add_all(fresh)
    session.flush()
    return len(fresh)


def _post_rows(session: Session, run: CampaignRun, platform: str, config: Mapping[str, Any],
               products: Sequence[CatalogProduct], settings: Settings) -> list[Delivery]:
    owner = config.get("account", "dinas")
    rows = []
    if config.get("per", "campaign") == "product":
        for product in products[:MAX_POSTS_PER_CHANNEL]:
            business = product.business_id if owner == "business" else None
            key = _account_key(session, platform, owner, business, settings)
            rows.append(_row(run, platform, f"{platform}:{key or owner}:p{product.id}",
                             product.business_id, {"product_id": product.id, "account": key},
                             None if key else "akun belum tersambung"))
        return rows
    key = _account_key(session, platform, "dinas", None, settings)
    business_id = products[0].business_id if len({p.business_id for p in products}) == 1 \
        and products else None
    rows.append(_row(run, platform, f"{platform}:{key or 'dinas'}:campaign", business_id,
                     {"product_ids": [p.id for p in products[:10]], "account": key},
                     None if key else "akun belum tersambung"))
    return rows


def _row(run: CampaignRun, channel: str, recipient: str, business_id: int | None,
         context: dict[str, Any], skip_reason: str | None) -> Delivery:
    return Delivery(run_id=run.id, channel=channel, recipient=recipient,
                    business_id=business_id, context=context,
                    status=DeliveryStatus.skipped if skip_reason else DeliveryStatus.pending,
                    error=skip_reason)


# ----------------------------------------------------------------------------- hooks
class DbSocialHooks:
    """:class:`channels.base.SocialHooks` backed by the database (own short transactions,
    so a checkpoint is durable before the adapter takes its next irreversible step)."""

    def __init__(self, sessions: sessionmaker[Session], platform: str, run_id: int) -> None:
        self.sessions = sessions
        self.platform = platform
        self.run_id = run_id

    def _post(self, session: Session, delivery_id: int) -> SocialPost:
        post = session.scalars(select(SocialPost).where(
            SocialPost.delivery_id == delivery_id)).one_or_none()
        if post is None:
            post = SocialPost(delivery_id=delivery_id, platform=self.platform, raw={})
            session.add(post)
        return post

    def checkpoint(self, delivery_id: int, state: Mapping[str, Any]) -> None:
        with self.sessions() as session:
            post = self._post(session, delivery_id)
            post.raw = {**(post.raw or {}), "state": {**(post.raw or {}).get("state", {}),
                                                      **dict(state)}}
            container = state.get("container_id") or state.get("publish_id")
            if container:
                post.container_id = str(container)
            session.commit()

    def load_state(self, delivery_id: int) -> Mapping[str, Any]:
        with self.sessions() as session:
            post = session.scalars(select(SocialPost).where(
                SocialPost.delivery_id == delivery_id)).one_or_none()
            return dict((post.raw or {}).get("state", {})) if post else {}

    def store_tokens(self, account_key: str, access_token: str, refresh_token: str | None,
                     expires_at: datetime | None) -> None:
        with self.sessions() as session:
            accounts.store_tokens(session, account_key, access_token, refresh_token, expires_at)

    def cool_down(self, account_key: str, seconds: float, reason: str) -> None:
        with self.sessions() as session:
            accounts.cool_down(session, account_key, utcnow() + timedelta(seconds=seconds),
                               reason)


# ----------------------------------------------------------------------------- adapters
def make_adapter(platform: str, credentials: AccountCredentials | None, hooks: DbSocialHooks,
                 settings: Settings) -> ChannelAdapter[Any, Any]:
    """The sandbox in embedded mode, otherwise the platform's adapter from the registry."""
    # Adapters take different constructor arguments; the registry types them as the base.
    cls: Any
    if settings.social_mode == "sandbox" or credentials is None:
        cls = get_adapter_class("sandbox")
        adapter: ChannelAdapter[Any, Any] = cls(Path(settings.var_dir) / "outbox",
                                                channel=platform)
        return adapter
    cls = get_adapter_class(platform)
    if platform in ("facebook", "instagram"):
        adapter = cls({credentials.key: credentials}, hooks, graph_url=settings.graph_url,
                      graph_version=settings.graph_version)
    elif platform == "tiktok":
        adapter = cls(credentials, hooks=hooks, base_url=settings.tiktok_url,
                      client_key=settings.tiktok_client_key,
                      client_secret=settings.tiktok_client_secret.get(),
                      audited=settings.tiktok_audited)
    else:
        adapter = cls(credentials, hooks=hooks, base_url=settings.graph_url,
                      api_version=settings.graph_version)
    return adapter


def _credentials(session: Session, key: str | None) -> AccountCredentials | None:
    if not key:
        return None
    try:
        return accounts.credentials(accounts.by_key(session, key))
    except accounts.AccountError:
        return None


def _account_blocked(session: Session, key: str | None, now: datetime) -> datetime | None:
    """When an account may post again (cool-down or reconnect), or None if it may now."""
    if not key:
        return None
    try:
        row: SocialAccount = accounts.by_key(session, key)
    except accounts.AccountError:
        return None
    if row.status == accounts.STATUS_NEEDS_RECONNECT:
        return now + timedelta(hours=1)
    until = row.cooldown_until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until if until and until > now else None


# ----------------------------------------------------------------------------- sending
def _caption(template: str, context: dict[str, Any]) -> str:
    tpl = jinja_env(autoescape=False).get_template(template)
    return render_checked(tpl, context, template).strip()


def build_payload(ctx: Any, delivery: Delivery, products: Mapping[int, CatalogProduct],
                  settings: Settings) -> dict[str, Any]:
    """Caption, media and tracked link of one post (``ctx`` is the dispatch RunContext)."""
    config = (ctx.spec.get("channels") or {}).get(delivery.channel) or {}
    tracker = ctx.tracker.for_delivery(delivery.id)
    base = {k: v for k, v in ctx.base_context.items() if k in ("campaign", "offer", "dinas")}
    product_id = delivery.context.get("product_id")
    if product_id is not None and int(product_id) in products:
        product = products[int(product_id)].as_context(settings.base_url)
        link = str(tracker.track(product["url"], product=product))
        product = {**product, "url": link}
        caption = _caption(config.get("template", "social/promo.j2"),
                           {**base, "product": product, "products": [product]})
        return {"caption": caption, "media_url": product["image_url"], "media_type": "image",
                "link": link, "product_id": product["id"],
                "business_id": product["business"]["id"]}
    chosen = [products[int(i)].as_context(settings.base_url)
              for i in delivery.context.get("product_ids", []) if int(i) in products]
    chosen = [{**p, "url": str(tracker.track(p["url"], product=p))} for p in chosen]
    caption = _caption(config.get("template", "social/promo.j2"),
                       {**base, "product": None, "products": chosen})
    return {"caption": caption, "media_url": chosen[0]["image_url"] if chosen else None,
            "media_type": "image" if chosen else None,
            "link": chosen[0]["url"] if chosen else None, "product_id": None,
            "business_id": delivery.business_id}


def share_kit_payload(ctx: Any, delivery: Delivery, products: Mapping[int, CatalogProduct],
                      settings: Settings) -> dict[str, Any]:
    from engine.sharekit import build_share_kit

    chosen = [products[int(i)].as_context(settings.base_url)
              for i in delivery.context.get("product_ids", []) if int(i) in products]
    kit = build_share_kit(ctx.base_context["campaign"], chosen, ctx.base_context.get("offer"),
                          settings.base_url)
    return {"caption": kit.text, "share_kit": kit.to_json(), "media_url": None,
            "media_type": None, "link": None, "product_id": None, "business_id": None}


def send_social(session: Session, ctx: Any, rows: Sequence[Delivery], settings: Settings,
                now: datetime) -> tuple[list[SendResult], dict[int, datetime]]:
    """Publish the claimed social rows; returns results and rows deferred per account."""
    catalog = {p.id: p for p in (ctx.catalog or campaign_products(session, ctx.spec))}
    sessions = session_factory(settings)
    results: list[SendResult] = []
    deferred: dict[int, datetime] = {}
    by_channel: dict[tuple[str, str | None], list[Delivery]] = {}
    for d in rows:
        by_channel.setdefault((d.channel, d.context.get("account")), []).append(d)
    for (platform, key), group in by_channel.items():
        blocked = _account_blocked(session, key, now) if settings.social_mode != "sandbox" \
            else None
        if blocked is not None:
            deferred.update({d.id: blocked for d in group})
            continue
        hooks = DbSocialHooks(sessions, platform, ctx.run_id)
        messages = []
        for d in group:
            try:
                payload = share_kit_payload(ctx, d, catalog, settings) \
                    if d.recipient == "whatsapp:share-kit" else build_payload(ctx, d, catalog,
                                                                             settings)
            except TemplateProblem as exc:
                results.append(SendResult(d.id, SendStatus.PERMANENT, error=exc.message))
                continue
            messages.append(OutboundMessage(delivery_id=d.id, recipient=d.recipient,
                                            payload=payload, account=key or platform))
        if not messages:
            continue
        credentials = _credentials(session, key)
        with make_adapter(platform, credentials, hooks, settings) as adapter:
            sent = adapter.send_batch(messages)
        for message, result in zip(messages, sent, strict=True):
            _record_post(sessions, platform, session, key, message, result, now)
            if result.status is SendStatus.AUTH and key:
                accounts.mark_needs_reconnect(session, key, result.error or "auth")
        results += sent
    return results, deferred


def _record_post(sessions: sessionmaker[Session], platform: str, session: Session,
                 key: str | None, message: OutboundMessage, result: SendResult,
                 now: datetime) -> None:
    payload = dict(message.payload) if isinstance(message.payload, Mapping) else {}
    account_id = None
    if key:
        try:
            account_id = accounts.by_key(session, key).id
        except accounts.AccountError:
            account_id = None
    with sessions() as s:
        post = s.scalars(select(SocialPost).where(
            SocialPost.delivery_id == message.delivery_id)).one_or_none()
        if post is None:
            post = SocialPost(delivery_id=message.delivery_id, platform=platform, raw={})
            s.add(post)
        post.account_id = account_id
        post.business_id = payload.get("business_id")
        post.product_id = payload.get("product_id")
        post.status = str(result.status)
        if result.ok:
            post.provider_post_id = result.provider_id
            post.published_at = now
        raw = dict(post.raw or {})
        raw["result"] = result.raw
        if "share_kit" in payload:
            raw["share_kit"] = payload["share_kit"]
        raw["caption"] = payload.get("caption")
        post.raw = raw
        s.commit()


# ----------------------------------------------------------------------------- metrics
def poll_metrics(settings: Settings, now: datetime | None = None) -> int:
    """Read insights of recent posts; one snapshot event per metric (reports take the
    latest snapshot per post and metric, never the sum)."""
    now = now or utcnow()
    sessions = session_factory(settings)
    stored = 0
    with sessions() as session:
        posts = list(session.scalars(select(SocialPost).where(
            SocialPost.provider_post_id.is_not(None), SocialPost.published_at >= now -
            METRICS_WINDOW, SocialPost.platform.in_(POST_PLATFORMS))))
        groups: dict[tuple[str, int | None], list[SocialPost]] = {}
        for post in posts:
            groups.setdefault((post.platform, post.account_id), []).append(post)
        for (platform, account_id), group in groups.items():
            account = session.get(SocialAccount, account_id) if account_id else None
            credentials = accounts.credentials(account) if account else None
            hooks = DbSocialHooks(sessions, platform, 0)
            try:
                with make_adapter(platform, credentials, hooks, settings) as adapter:
                    metrics = adapter.fetch_metrics([p.provider_post_id or "" for p in group])
            except Exception:
                log.warning("metrics of %s account %s failed", platform, account_id,
                            exc_info=True)
                continue
            stored += _store_metrics(session, group, metrics, now)
        session.commit()
    return stored


def _store_metrics(session: Session, posts: Sequence[SocialPost],
                   metrics: Sequence[EngagementMetric], now: datetime) -> int:
    by_provider = {p.provider_post_id: p for p in posts}
    run_of = dict(session.execute(select(Delivery.id, Delivery.run_id).where(
        Delivery.id.in_([p.delivery_id for p in posts if p.delivery_id]))).tuples().all())
    count = 0
    for metric in metrics:
        post = by_provider.get(metric.provider_post_id)
        if post is None:
            continue
        session.add(EngagementEvent(
            type=str(metric.type), channel=post.platform, post_id=post.id,
            delivery_id=post.delivery_id, run_id=run_of.get(post.delivery_id or -1),
            business_id=post.business_id, product_id=post.product_id, value=float(metric.count),
            occurred_at=metric.observed_at or now, raw=dict(metric.raw)))
        count += 1
    return count
