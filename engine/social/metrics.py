"""Reading the insights of published posts: views, reactions, comments and shares.

The beat polls the posts of the last 30 days; every metric read is stored as one snapshot
:class:`~engine.models.EngagementEvent`, always with the UMKM and the product of its post,
so the reports of Pasal 15 can take the latest snapshot per post and metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels import EngagementMetric
from engine.config import Settings
from engine.db import session_factory
from engine.models import Delivery, EngagementEvent, SocialAccount, SocialPost, aware, utcnow
from engine.outbox import adapters
from engine.social import accounts
from engine.social.plan import WHATSAPP
from engine.social.publish import DbSocialHooks, account_blocked

log = logging.getLogger(__name__)

METRICS_WINDOW = timedelta(days=30)


def poll_metrics(settings: Settings, now: datetime | None = None, *,
                 min_interval: timedelta | None = None) -> int:
    """Read insights of recent posts; one snapshot event per metric (reports take the
    latest snapshot per post and metric, never the sum).

    ``min_interval``: posts read less than this long ago are left alone (the beat calls
    this every tick; each post is read at most once per interval). Accounts that are
    cooling down or must be reconnected are not called at all.
    """
    now = now or utcnow()
    sessions = session_factory(settings)
    stored = 0
    with sessions() as session:
        posts = [p for p in session.scalars(select(SocialPost).where(
            SocialPost.provider_post_id.is_not(None), SocialPost.published_at >= now -
            METRICS_WINDOW, SocialPost.platform != WHATSAPP)) if _poll_due(p, now, min_interval)]
        groups: dict[tuple[str, int | None], list[SocialPost]] = {}
        for post in posts:
            groups.setdefault((post.platform, post.account_id), []).append(post)
        for (platform, account_id), group in groups.items():
            stored += _poll_group(session, sessions, settings, platform, account_id, group, now)
        session.commit()
    return stored


def _poll_due(post: SocialPost, now: datetime, min_interval: timedelta | None) -> bool:
    """Never read, read ``min_interval`` ago, or read "in the future" (clock reset)."""
    if min_interval is None or _in_moderation(post):
        return True  # a post TikTok still moderates is asked again at every beat
    try:
        last = aware(datetime.fromisoformat(str((post.raw or {}).get("metrics_polled_at"))))
    except ValueError:
        return True
    return last is None or last > now or now - last >= min_interval


def _poll_group(session: Session, sessions: sessionmaker[Session], settings: Settings,
                platform: str, account_id: int | None, group: Sequence[SocialPost],
                now: datetime) -> int:
    """Metrics of one account's posts; a failing provider costs only this group's reading."""
    account = session.get(SocialAccount, account_id) if account_id else None
    live = settings.social_mode != "sandbox"
    if live and (account is None or account_blocked(session, accounts.key_of(account), now)):
        return 0
    credentials = accounts.credentials(account) if account and live else None
    hooks = DbSocialHooks(sessions, platform, 0, now)
    stored = 0
    try:
        with adapters.social_adapter(platform, credentials, hooks, settings) as adapter:
            resolve = getattr(adapter, "public_post_ids", None)
            if callable(resolve):
                _resolve_public_ids(group, resolve)
            if adapter.capabilities.metrics:
                metrics = adapter.fetch_metrics([p.provider_post_id or "" for p in group])
                stored = _store_metrics(session, group, metrics, now)
    except Exception:
        log.warning("metrics of %s account %s failed", platform, account_id, exc_info=True)
    for post in group:
        post.raw = {**(post.raw or {}), "metrics_polled_at": now.isoformat()}
    return stored


def _in_moderation(post: SocialPost) -> bool:
    """A public TikTok post still known only by its publish id (no public id yet)."""
    result = (post.raw or {}).get("result") or {}
    return (post.platform == "tiktok" and not str(post.provider_post_id or "").isdigit()
            and bool(result.get("privacy_level")) and result.get("privacy_level") != "SELF_ONLY")


def _resolve_public_ids(group: Sequence[SocialPost],
                        resolve: Callable[[str], Sequence[str]]) -> None:
    """Ask again for the public id of posts TikTok was still moderating; once it comes,
    the post is known by it and its metrics can be read (issue 17)."""
    for post in group:
        if not _in_moderation(post):
            continue
        publish_id = str(post.provider_post_id)
        ids = resolve(publish_id)
        raw = dict(post.raw or {})
        raw["status_polls"] = int(raw.get("status_polls") or 0) + 1
        if ids:
            raw["publish_id"] = publish_id
            post.provider_post_id = str(ids[0])
        post.raw = raw


def _store_metrics(session: Session, posts: Sequence[SocialPost],
                   metrics: Sequence[EngagementMetric], now: datetime) -> int:
    """One snapshot event per metric, attributed to the post's run, UMKM and product."""
    by_provider = {p.provider_post_id: p for p in posts}
    run_of = dict(session.execute(select(Delivery.id, Delivery.run_id).where(
        Delivery.id.in_([p.delivery_id for p in posts if p.delivery_id]))).tuples().all())
    count = 0
    for metric in metrics:
        post = by_provider.get(metric.provider_post_id)
        if post is None:
            continue
        observed = metric.observed_at.isoformat() if metric.observed_at else None
        session.add(EngagementEvent(
            type=str(metric.type), channel=post.platform, post_id=post.id,
            delivery_id=post.delivery_id, run_id=run_of.get(post.delivery_id or -1),
            business_id=post.business_id, product_id=post.product_id, value=float(metric.count),
            occurred_at=now, raw={**dict(metric.raw), "observed_at": observed}))
        count += 1
    return count
