"""Publishing a campaign's social rows through the channel adapters.

Sending goes through :mod:`engine.outbox.adapters`: the sandbox adapter (embedded default,
JSON files under ``var/outbox/<channel>/``) or the real adapters with credentials from
:mod:`engine.social.accounts`. Provider state (Instagram container id, TikTok publish id) is
checkpointed in ``social_post`` before the next irreversible step, so a killed worker
never publishes twice. An account that is cooling down or must be reconnected holds
only its own deliveries back, without spending their attempts. The share kit is written to
the outbox and kept on its ``SocialPost``; WhatsApp ``cloud_api`` sends approved templates
to customers who still consent, and a free-form text only inside the 24-hour window
(:mod:`engine.social.inbound`). Every post and message is attributed to the UMKM whose
products it carried.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from channels.base import (
    AccountCredentials,
    OutboundMessage,
    SendResult,
    SendStatus,
)
from channels.tokens import TokenExchange, TokenSet
from engine.campaign.audience import newest_consent_granted
from engine.campaign.catalog import CatalogProduct
from engine.campaign.schema import TikTokChannel, WhatsAppTemplate
from engine.common.i18n import t
from engine.config import Settings
from engine.db import session_factory
from engine.message.templating import TemplateProblem, jinja_env, render_checked
from engine.models import (
    ConsentPurpose,
    Customer,
    Delivery,
    DeliveryProduct,
    Product,
    SocialAccount,
    SocialPost,
    Suppression,
    aware,
    utcnow,
)
from engine.outbox import adapters
from engine.social import accounts
from engine.social.inbound import WA_WINDOW, last_inbound
from engine.social.media import MediaUnfit, campaign_video, post_media_url, video_path
from engine.social.plan import SHARE_KIT_RECIPIENT, WHATSAPP, campaign_products, post_channel
from engine.social.sharekit import Track, build_share_kit

# A paused account is looked at again this often (no attempt is spent meanwhile);
# reconnecting it makes its deliveries due at once (engine.social.accounts.wake_deliveries).
RECONNECT_RECHECK = timedelta(minutes=15)


class DbSocialHooks:
    """:class:`channels.base.SocialHooks` backed by the database (own short transactions,
    so a checkpoint is durable before the adapter takes its next irreversible step).

    ``now`` is the caller's clock: a cool-down is measured from the same instant the
    dispatcher uses to decide what is due, so "no calls while cooling" holds exactly.
    """

    def __init__(self, sessions: sessionmaker[Session], platform: str, run_id: int,
                 now: datetime | None = None) -> None:
        self.sessions = sessions
        self.platform = platform
        self.run_id = run_id
        self.now = now

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
            raw = dict(post.raw or {})
            post.raw = {**raw, "state": {**raw.get("state", {}), **dict(state)}}
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

    def refresh_tokens(self, account_key: str, stale_refresh_token: str,
                       exchange: TokenExchange) -> TokenSet:
        """A session of its own: the row lock it takes ends with this one refresh."""
        with self.sessions() as session:
            return accounts.refresh_tokens(session, account_key, stale_refresh_token, exchange)

    def cool_down(self, account_key: str, seconds: float, reason: str) -> None:
        start = self.now or utcnow()
        with self.sessions() as session:
            accounts.cool_down(session, account_key, start + timedelta(seconds=seconds), reason)


def _credentials(session: Session, key: str | None) -> AccountCredentials | None:
    """The account's tokens, or None when it is gone or unusable (it must be reconnected)."""
    if not key:
        return None
    try:
        return accounts.credentials(accounts.by_key(session, key))
    except accounts.AccountError:
        return None


def account_blocked(session: Session, key: str | None, now: datetime) -> datetime | None:
    """When an account may post again (cool-down or reconnect), or None if it may now."""
    if not key:
        return None
    try:
        row: SocialAccount = accounts.by_key(session, key)
    except accounts.AccountError:
        return now + RECONNECT_RECHECK  # removed since launch: wait for a new connect
    session.refresh(row)  # another worker may have paused it a moment ago
    if row.status == accounts.STATUS_NEEDS_RECONNECT:
        return now + RECONNECT_RECHECK
    until = aware(row.cooldown_until)
    return until if until and until > now else None


# ----------------------------------------------------------------------------- payloads
def _caption(template: str, context: dict[str, Any]) -> str:
    """A plain-text caption (no HTML escaping); a broken template raises TemplateProblem."""
    tpl = jinja_env(autoescape=False).get_template(template)
    return render_checked(tpl, context, template).strip()


def _base(ctx: Any) -> dict[str, Any]:
    """The part of the run's context a caption may use: never a recipient's data."""
    return {k: v for k, v in ctx.base_context.items() if k in ("campaign", "offer", "dinas")}


def build_payload(ctx: Any, delivery: Delivery, products: Mapping[int, CatalogProduct],
                  settings: Settings) -> dict[str, Any] | None:
    """Caption, media and tracked link of one post (``ctx`` is the dispatch RunContext).

    ``None`` when the featured product left the campaign after launch (its owner
    withdrew the opt-in, or the business lost eligibility): that post is not made.
    """
    config = post_channel(ctx.spec, delivery.channel)
    video = campaign_video(ctx.spec) if isinstance(config, TikTokChannel) else None
    payload = _payload_of(ctx, delivery, products, settings,
                          config.template if config else "social/promo.j2", video is None)
    if payload is not None and isinstance(config, TikTokChannel):
        payload |= {"privacy_level": config.privacy, "consent": config.consent}
    if payload is not None and video is not None:  # TikTok FILE_UPLOAD, no photo
        payload |= {"media_type": "video", "video_path": str(video_path(video, settings))}
    return payload


def _payload_of(ctx: Any, delivery: Delivery, products: Mapping[int, CatalogProduct],
                settings: Settings, template: str, photo: bool = True) -> dict[str, Any] | None:
    tracker = ctx.tracker.for_channel(delivery.channel).for_delivery(delivery.id)
    product_id = delivery.context.get("product_id")
    if product_id is not None:
        if int(product_id) not in products:
            return None
        product = products[int(product_id)].as_context(settings.base_url)
        link = str(tracker.track(product["url"], product=product))
        product = {**product, "url": link}
        caption = _caption(template, {**_base(ctx), "product": product, "products": [product]})
        media = post_media_url(product["image_url"], delivery.channel, settings) if photo \
            else None
        return {"caption": caption, "media_url": media, "media_type": "image",
                "link": link, "product_id": product["id"],
                "business_id": product["business"]["id"]}
    chosen = [products[int(i)].as_context(settings.base_url)
              for i in delivery.context.get("product_ids", []) if int(i) in products]
    if not chosen:
        return None
    chosen = [{**p, "url": str(tracker.track(p["url"], product=p))} for p in chosen]
    caption = _caption(template, {**_base(ctx), "product": None, "products": chosen})
    media = post_media_url(chosen[0]["image_url"], delivery.channel, settings) if photo \
        else None
    return {"caption": caption, "media_url": media, "media_type": "image",
            "link": chosen[0]["url"], "product_id": None, "business_id": delivery.business_id,
            "product_ids": [p["id"] for p in chosen]}


def share_kit_payload(ctx: Any, delivery: Delivery, products: Mapping[int, CatalogProduct],
                      settings: Settings) -> dict[str, Any]:
    """The shared group's kit (Pasal 7(2)a): one text and card list for every product."""
    chosen = [products[int(i)].as_context(settings.base_url)
              for i in delivery.context.get("product_ids", []) if int(i) in products]
    tracker = ctx.tracker.for_channel(WHATSAPP).for_delivery(delivery.id)
    kit = build_share_kit(ctx.base_context["campaign"], chosen, ctx.base_context.get("offer"),
                          settings.base_url, kit_tracker(tracker))
    return {"caption": kit.text, "share_kit": json.loads(kit.to_json()), "media_url": None,
            "media_type": None, "link": None, "product_id": None, "business_id": None,
            "product_ids": [p["id"] for p in chosen]}


def kit_tracker(tracker: Any) -> Track:
    """A share kit's ``track`` from a per-delivery tracker (``/t/c/...`` links)."""
    def track(url: str, product: Mapping[str, Any] | None, label: str | None) -> str:
        return str(tracker.track(url, product=product, label=label))
    return track


def _first_name(customer: Customer | None) -> str:
    """How a WhatsApp message greets the customer; "Kak" when no name is known."""
    name = (customer.name if customer else "").strip()
    return name.split()[0] if name else "Kak"


def _whatsapp_blocked(session: Session, rows: Sequence[Delivery]) -> dict[int, str]:
    """Consent withdrawn or number suppressed after planning: that customer gets nothing."""
    ids = [d.customer_id for d in rows if d.customer_id]
    consenting = set(session.scalars(select(Customer.id).where(
        Customer.id.in_(ids), newest_consent_granted(WHATSAPP, ConsentPurpose.marketing))))
    suppressed = set(session.scalars(select(Suppression.address).where(
        Suppression.channel == WHATSAPP, Suppression.address.in_([d.recipient for d in rows]))))
    blocked: dict[int, str] = {}
    for d in rows:
        if d.recipient in suppressed:
            blocked[d.id] = "suppressed:unsubscribed"
        elif d.customer_id not in consenting:
            blocked[d.id] = "consent_withdrawn"
    return blocked


def whatsapp_payloads(session: Session, ctx: Any, rows: Sequence[Delivery],
                      settings: Settings, now: datetime
                      ) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """Cloud API messages of the batch, and the rows skipped (with the reason).

    An approved template (``template: {name, language}``) goes to every customer who
    still consents; its body parameters are the first name and a tracked link to the
    product picked for that customer. A ``social/*.j2`` text is free-form: WhatsApp
    allows it only within 24 hours of the customer's last message, so everyone else is
    skipped here, before any call.
    """
    config = ctx.spec.channels.whatsapp
    template = config.template if config else None
    skipped = _whatsapp_blocked(session, rows)
    live = [d for d in rows if d.id not in skipped]
    customers = {c.id: c for c in session.scalars(select(Customer).where(
        Customer.id.in_([d.customer_id for d in live if d.customer_id])))}
    picks: dict[int, list[CatalogProduct]] = {}
    if ctx.recommender is not None and customers:
        picks = ctx.recommender.for_customers(session, list(customers), 1)
    payloads: dict[int, dict[str, Any]] = {}
    for d in live:
        customer = customers.get(d.customer_id or -1)
        chosen = (picks.get(d.customer_id or -1) or ctx.catalog[:1] or [None])[0]
        product = chosen.as_context(settings.base_url) if chosen else None
        tracker = ctx.tracker.for_channel(WHATSAPP).for_delivery(d.id)
        target = product["url"] if product else settings.base_url.rstrip("/") + "/produk"
        link = str(tracker.track(target, product=product))
        base = {"to": d.recipient, "product_id": product["id"] if product else None,
                "business_id": product["business"]["id"] if product else None}
        if isinstance(template, WhatsAppTemplate):
            payloads[d.id] = {**base, "template": {
                "name": template.name, "language": template.language,
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": _first_name(customer)},
                    {"type": "text", "text": link}]}]}}
            continue
        last = last_inbound(customer)
        if last is None or now - last > WA_WINDOW:
            skipped[d.id] = "outside_24h_window"
            continue
        text = _caption(str(template), {
            **_base(ctx), "customer": {"first_name": _first_name(customer)},
            "product": {**product, "url": link} if product else None,
            "products": [{**product, "url": link}] if product else []})
        payloads[d.id] = {**base, "text": text, "last_inbound_at": last.isoformat()}
    return payloads, skipped


# ----------------------------------------------------------------------------- sending
@dataclass
class SocialBatch:
    """What became of the social rows of one batch.

    ``results``: attempted deliveries; ``deferred``: rows of a paused account, due again
    at the given time without spending an attempt; ``skipped``: rows that must not go
    out at all (consent withdrawn, product gone, outside the WhatsApp window).
    """

    results: list[SendResult] = field(default_factory=list)
    deferred: dict[int, datetime] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    business_of: dict[int, int] = field(default_factory=dict)


def _kind(d: Delivery) -> str:
    """How a row is sent: a share kit (sandbox only), a WhatsApp message or a post."""
    if d.recipient == SHARE_KIT_RECIPIENT:
        return "share_kit"
    return "message" if d.channel == WHATSAPP else "post"


def send_social(session: Session, ctx: Any, rows: Sequence[Delivery], settings: Settings,
                now: datetime) -> SocialBatch:
    """Publish the claimed social rows, one adapter per (channel, account)."""
    catalog = {p.id: p for p in (ctx.catalog or campaign_products(session, ctx.spec))}
    sessions = session_factory(settings)
    batch = SocialBatch()
    groups: dict[tuple[str, str | None, str], list[Delivery]] = {}
    for d in rows:
        groups.setdefault((d.channel, d.context.get("account"), _kind(d)), []).append(d)
    session.commit()  # no open write of ours may block the hooks' own transactions
    for (platform, key, kind), group in groups.items():
        live = settings.social_mode != "sandbox" and kind != "share_kit"
        blocked = account_blocked(session, key, now) if live else None
        if blocked is None and live and _credentials(session, key) is None:
            blocked = now + RECONNECT_RECHECK
        if blocked is not None:
            batch.deferred.update({d.id: blocked for d in group})
            continue
        payloads = _payloads(session, ctx, kind, group, catalog, settings, now, batch)
        messages = [OutboundMessage(delivery_id=d.id, recipient=d.recipient,
                                    payload=payloads[d.id], account=key or platform)
                    for d in group if d.id in payloads]
        if not messages:
            continue
        hooks = DbSocialHooks(sessions, platform, ctx.run_id, now)
        adapter = adapters.sandbox_adapter(settings, platform) if kind == "share_kit" else \
            adapters.social_adapter(platform, _credentials(session, key) if live else None,
                                    hooks, settings)
        with adapter:
            sent = adapter.send_batch(messages)
        _settle(session, sessions, batch, platform, key, kind, messages, sent, now)
    return batch


def _payloads(session: Session, ctx: Any, kind: str, group: Sequence[Delivery],
              catalog: Mapping[int, CatalogProduct], settings: Settings, now: datetime,
              batch: SocialBatch) -> dict[int, dict[str, Any]]:
    """The payload of each row of one group; rows that cannot be built go to ``batch``."""
    if kind == "message":
        payloads, skipped = whatsapp_payloads(session, ctx, group, settings, now)
        batch.skipped.update(skipped)
        return payloads
    payloads = {}
    for d in group:
        try:
            payload = share_kit_payload(ctx, d, catalog, settings) if kind == "share_kit" \
                else build_payload(ctx, d, catalog, settings)
        except TemplateProblem as exc:
            batch.results.append(SendResult(d.id, SendStatus.PERMANENT, error=exc.message))
            continue
        except MediaUnfit as exc:
            batch.results.append(SendResult(d.id, SendStatus.PERMANENT, error=exc.message("id")))
            continue
        if payload is None:
            batch.skipped[d.id] = t("social.product_withdrawn", lang="id")
            continue
        payloads[d.id] = payload
    return payloads


def _settle(session: Session, sessions: sessionmaker[Session], batch: SocialBatch,
            platform: str, key: str | None, kind: str, messages: Sequence[OutboundMessage],
            sent: Sequence[SendResult], now: datetime) -> None:
    """Sort the adapter's answers: attempted results, and rows the account held back."""
    if any(r.status is SendStatus.AUTH for r in sent) and key:
        reason = next(r.error for r in sent if r.status is SendStatus.AUTH)
        accounts.mark_needs_reconnect(session, key, reason or "auth")
    paused_until = account_blocked(session, key, now) if key else None
    payloads = {m.delivery_id: m.payload for m in messages}
    attributed: list[tuple[int, Mapping[str, Any]]] = []
    for result in sent:
        if result.held_back:  # the account is paused: not this message's attempt
            wait = timedelta(seconds=result.retry_after or 60.0)
            batch.deferred[result.delivery_id] = paused_until or now + wait
            continue
        batch.results.append(result)
        payload = payloads[result.delivery_id]
        if isinstance(payload, Mapping) and payload.get("business_id"):
            batch.business_of[result.delivery_id] = int(payload["business_id"])
        if kind != "message":
            _record_post(sessions, platform, session, key, result, payload, now)
        if result.ok and isinstance(payload, Mapping):
            attributed.append((result.delivery_id, payload))
    _attribute(sessions, attributed)


def _record_post(sessions: sessionmaker[Session], platform: str, session: Session,
                 key: str | None, result: SendResult, message_payload: Any,
                 now: datetime) -> None:
    """Keep the post (provider id, caption, share kit); failures only update a post an
    earlier attempt started, so reports never count a post that was not made."""
    payload = dict(message_payload) if isinstance(message_payload, Mapping) else {}
    account_id = None
    if key:
        try:
            account_id = accounts.by_key(session, key).id
        except accounts.AccountError:
            account_id = None
    with sessions() as s:
        post = s.scalars(select(SocialPost).where(
            SocialPost.delivery_id == result.delivery_id)).one_or_none()
        if post is None and not result.ok:
            return
        if post is None:
            post = SocialPost(delivery_id=result.delivery_id, platform=platform, raw={})
            s.add(post)
        post.account_id = account_id
        post.business_id = payload.get("business_id")
        post.product_id = payload.get("product_id")
        post.status = "published" if result.ok else str(result.status)
        if result.ok:
            post.provider_post_id = result.provider_id
            post.published_at = now
        raw = dict(post.raw or {})
        raw["result"] = result.raw
        raw["caption"] = payload.get("caption")
        if "share_kit" in payload:
            raw["share_kit"] = payload["share_kit"]
        post.raw = raw
        s.commit()


def _attribute(sessions: sessionmaker[Session],
               sent: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
    """Per-UMKM attribution of posts and messages: the products each one carried."""
    wanted: list[tuple[int, int]] = []
    for delivery_id, payload in sent:
        ids = payload.get("product_ids") or ([payload["product_id"]]
                                             if payload.get("product_id") else [])
        wanted += [(delivery_id, int(i)) for i in ids]
    if not wanted:
        return
    with sessions() as s:
        owner = dict(s.execute(select(Product.id, Product.business_id).where(
            Product.id.in_({p for _, p in wanted}))).tuples().all())
        done = set(s.scalars(select(DeliveryProduct.delivery_id).where(
            DeliveryProduct.delivery_id.in_({d for d, _ in wanted}))))
        rows = [{"delivery_id": d, "product_id": p, "business_id": owner[p], "position": n}
                for n, (d, p) in enumerate(wanted) if d not in done and p in owner]
        if rows:
            s.execute(insert(DeliveryProduct), rows)
            s.commit()
