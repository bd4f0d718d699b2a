"""The social rows of a campaign: which posts and WhatsApp messages a launch plans.

A campaign's post platforms (``channels.facebook|instagram|tiktok`` and any plugin
channel registered under the entry point ``umkm.channels``) become outbox rows like
email does: one delivery per opted-in product (``per: product``) or one round-up
(``per: campaign``), attributed to the business whose product it features.
``channels.whatsapp`` in ``share_kit`` mode makes one ready-to-forward kit for the
shared group (Pasal 7(2)a); ``cloud_api`` mode makes one row per customer with WhatsApp
consent (their phone is the recipient). A row whose account is not connected is planned
as skipped, so the report says why nothing went out. Publishing is
:mod:`engine.social.publish`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from channels import ChannelKind, channel_names
from engine.campaign.catalog import CatalogProduct, eligible_products
from engine.campaign.fields import CHANNEL_KEYS
from engine.campaign.schema import (
    CampaignSpec,
    Products,
    SocialChannel,
    TikTokChannel,
    WhatsAppChannel,
)
from engine.common.i18n import t
from engine.config import Settings
from engine.models import CampaignRun, Delivery, DeliveryStatus, utcnow
from engine.outbox.materialize import materialize_audience
from engine.social import accounts
from engine.social.media import Located, media_problems

WHATSAPP = "whatsapp"
SHARE_KIT_RECIPIENT = "whatsapp:share-kit"
MAX_POSTS_PER_CHANNEL = 50


def not_connected() -> str:
    """Why a row of an unconnected account is skipped; kept on the row in Indonesian, the
    staff language, so the reports read the same whichever ``--lang`` planned it."""
    return t("social.not_connected", lang="id")


def post_platforms(spec: CampaignSpec) -> list[str]:
    """Every channel of a spec that publishes posts: all but email and WhatsApp."""
    not_posts = channel_names(ChannelKind.EMAIL, ChannelKind.MESSAGE, plugins=False)
    return [name for name in spec.channel_names if name not in not_posts]


def post_channel(spec: CampaignSpec, name: str) -> SocialChannel | None:
    """The ``channels.<name>`` block of a post platform, built-in or plugin."""
    if name in CHANNEL_KEYS:
        config = getattr(spec.channels, name)
        return config if isinstance(config, SocialChannel) else None
    return spec.channels.plugins.get(name)


def tiktok_privacy_problems(spec: CampaignSpec, settings: Settings) -> list[str]:
    """What TikTok would refuse in ``channels.tiktok`` for the configured app.

    Audited (``TIKTOK_AUDITED``): the privacy level must be chosen (no default) and the
    consent given; unaudited: only ``SELF_ONLY`` may be asked for.
    """
    config = spec.channels.tiktok
    if not isinstance(config, TikTokChannel):
        return []
    if not settings.tiktok_audited:
        if config.privacy not in (None, "SELF_ONLY"):
            return [t("social.tiktok_unaudited", privacy=config.privacy)]
        return []
    problems = []
    if config.privacy is None:
        problems.append(t("social.tiktok_privacy_required"))
    if not config.consent:
        problems.append(t("social.tiktok_consent_required"))
    return problems


def campaign_products(session: Session, spec: CampaignSpec) -> list[CatalogProduct]:
    """The campaign's catalog: the same filters for planning, sending and previews."""
    products = spec.products or Products()
    return eligible_products(
        session, campaign_key=spec.id, campaign_tags=spec.tags,
        opt_in=products.opt_in, category=products.category,
        kecamatan=products.kecamatan, max_price=products.max_price,
        featured=products.featured or ())


def _account_key(session: Session, platform: str, owner: str, business_id: int | None,
                 settings: Settings) -> str | None:
    """The account that will post; in sandbox mode a missing account is fine."""
    row = accounts.find(session, platform, owner, business_id)
    if row is not None:
        return accounts.key_of(row)
    if settings.social_mode == "sandbox":
        return accounts.account_key(platform, owner, business_id)
    return None


def materialize_posts(session: Session, run: CampaignRun, spec: CampaignSpec,
                      settings: Settings, now: datetime | None = None) -> int:
    """Outbox rows for every social channel of the campaign; returns how many."""
    platforms = post_platforms(spec)
    whatsapp = spec.channels.whatsapp
    if not platforms and not whatsapp:
        return 0
    products = campaign_products(session, spec)
    rows: list[Delivery] = []
    for platform in platforms:
        config = post_channel(spec, platform)
        assert config is not None  # post_platforms lists configured channels only
        rows += _post_rows(session, run, platform, config, products, settings)
    added = 0
    if whatsapp and whatsapp.mode == "share_kit":
        rows.append(_row(run, WHATSAPP, SHARE_KIT_RECIPIENT, None,
                         {"product_ids": [p.id for p in products]}, None))
    elif whatsapp:
        added = _whatsapp_audience(session, run, spec, whatsapp, settings, now or utcnow())
    wanted = [*platforms, WHATSAPP]
    existing = set(session.scalars(select(Delivery.recipient).where(
        Delivery.run_id == run.id, Delivery.channel.in_(wanted))))
    fresh = [r for r in rows if r.recipient not in existing]
    session.add_all(fresh)
    session.flush()
    return len(fresh) + added


def _post_rows(session: Session, run: CampaignRun, platform: str, config: SocialChannel,
               products: Sequence[CatalogProduct], settings: Settings) -> list[Delivery]:
    """The post rows of one platform: per product (at most 50) or one round-up."""
    owner = config.account
    rows = []
    if config.per == "product":
        for product in products[:MAX_POSTS_PER_CHANNEL]:
            business = product.business_id if owner == "business" else None
            key = _account_key(session, platform, owner, business, settings)
            rows.append(_row(run, platform, f"{platform}:{key or owner}:p{product.id}",
                             product.business_id, {"product_id": product.id, "account": key},
                             None if key else not_connected()))
        return rows
    if not products:
        return rows  # a round-up of nothing is not posted
    key = _account_key(session, platform, "dinas", None, settings)
    businesses = {p.business_id for p in products}
    business_id = products[0].business_id if len(businesses) == 1 else None
    rows.append(_row(run, platform, f"{platform}:{key or 'dinas'}:campaign", business_id,
                     {"product_ids": [p.id for p in products[:10]], "account": key},
                     None if key else not_connected()))
    return rows


def _whatsapp_audience(session: Session, run: CampaignRun, spec: CampaignSpec,
                       config: WhatsAppChannel, settings: Settings, now: datetime) -> int:
    """``cloud_api``: one row per audience member with WhatsApp consent (by phone)."""
    before = _count(session, run.id, WHATSAPP)
    materialize_audience(session, run, spec, now, channel=WHATSAPP)
    key = _account_key(session, WHATSAPP, config.account, None, settings)
    values: dict[str, Any] = {"context": {"account": key}}
    if key is None:
        values.update(status=DeliveryStatus.skipped, error=not_connected())
    session.execute(update(Delivery).where(
        Delivery.run_id == run.id, Delivery.channel == WHATSAPP,
        Delivery.status == DeliveryStatus.pending).values(**values)
        .execution_options(synchronize_session=False))
    session.flush()
    return _count(session, run.id, WHATSAPP) - before


def _count(session: Session, run_id: int, channel: str) -> int:
    """Rows of the run on ``channel``: the audience insert does not say how many it added."""
    return int(session.execute(select(func.count()).select_from(Delivery).where(
        Delivery.run_id == run_id, Delivery.channel == channel)).scalar_one())


def _row(run: CampaignRun, channel: str, recipient: str, business_id: int | None,
         context: dict[str, Any], skip_reason: str | None) -> Delivery:
    """One outbox row; with a reason it is planned as skipped, never sent."""
    return Delivery(run_id=run.id, channel=channel, recipient=recipient,
                    business_id=business_id, context=context,
                    status=DeliveryStatus.skipped if skip_reason else DeliveryStatus.pending,
                    error=skip_reason)


def post_problems(session: Session, spec: CampaignSpec, settings: Settings) -> list[Located]:
    """Why the platforms would refuse this campaign's posts, each with where in the YAML:
    the TikTok privacy choice, then every channel's unfit photos or video. One function
    for ``umkm campaign validate`` and the browser studio, so both say the same."""
    problems: list[Located] = [(("channels", "tiktok"), p)
                               for p in tiktok_privacy_problems(spec, settings)]
    return problems + media_problems(spec, campaign_products(session, spec),
                                     post_platforms(spec), settings)
