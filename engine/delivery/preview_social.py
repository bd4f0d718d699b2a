"""Post and share-kit previews: the caption each platform would get, with its limit.

Why here and not in :mod:`engine.social.publish`: a preview must not need a run, a
delivery row or tracked links; it renders the campaign's caption template with the same
context a post gets (campaign, offer, Dinas, the product or products) and the channel's
own text limit (``Capabilities.max_text_length``), so staff see a post that is too long
before launch. Nothing is written to the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from channels.registry import get_adapter_class
from engine.campaign.schema import CampaignSpec
from engine.config import get_settings
from engine.delivery.context import campaign_context, content_context
from engine.message.templating import DINAS, jinja_env, render_checked
from engine.social.plan import campaign_products, post_channel, post_platforms
from engine.social.sharekit import build_share_kit

MAX_POSTS_PER_PLATFORM = 3


@dataclass(frozen=True)
class PostPreview:
    platform: str
    text: str
    limit: int | None

    @property
    def too_long(self) -> bool:
        return self.limit is not None and len(self.text) > self.limit


def _limit(platform: str) -> int | None:
    """The platform's caption limit, as its adapter declares it (``None``: unknown)."""
    try:
        return get_adapter_class(platform).capabilities.max_text_length
    except Exception:  # an uninstalled plugin: show the text without a limit
        return None


def post_previews(session: Session, spec: CampaignSpec) -> list[PostPreview]:
    """The first posts of every post channel (one per product with ``per: product``)."""
    base_url = get_settings().base_url
    products = [p.as_context(base_url) for p in campaign_products(session, spec)]
    base: dict[str, Any] = {"campaign": campaign_context(spec), "dinas": DINAS,
                            "offer": content_context(spec)["offer"]}
    env = jinja_env(autoescape=False)
    result: list[PostPreview] = []
    for platform in post_platforms(spec):
        config = post_channel(spec, platform)
        name = config.template if config else "social/promo.j2"
        template = env.get_template(name)
        per_product = bool(config and config.per == "product")
        groups: list[tuple[Any, list[Any]]] = (
            [(p, [p]) for p in products[:MAX_POSTS_PER_PLATFORM]] if per_product
            else [(None, products)])
        for product, chosen in groups:
            text = render_checked(template, {**base, "product": product,
                                             "products": chosen}, name).strip()
            result.append(PostPreview(platform, text, _limit(platform)))
    return result


def share_kit_text(session: Session, spec: CampaignSpec) -> str | None:
    """The WhatsApp share-kit text staff would forward; ``None`` without that channel."""
    channels = spec.channels
    if channels.whatsapp is None or channels.whatsapp.mode != "share_kit":
        return None
    base_url = get_settings().base_url
    products = [p.as_context(base_url) for p in campaign_products(session, spec)]
    kit = build_share_kit(campaign_context(spec), products, content_context(spec)["offer"],
                          base_url)
    return kit.text
