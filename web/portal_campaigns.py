"""Which campaigns each of the owner's products is in, by name and dates (issue 16).

An owner thinks in "Promo Natal, 1-31 Desember", never in campaign keys: the key is an
operator's handle and is never shown. A tag opt-in stands for every campaign carrying
that tag, so it is expanded to those campaigns here. Dates come from the campaign's
``schedule`` and are shown in WITA with :func:`engine.common.formatting.tanggal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.formatting import tanggal
from engine.common.i18n import get_lang
from engine.models import Campaign, CampaignType, Product, ProductOptIn


def _when(raw: Any, lang: str) -> str:
    if not raw:
        return ""
    try:
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        return ""
    return tanggal(moment if moment.tzinfo else moment.date(), lang)


def describe(campaign: Campaign, lang: str) -> str:
    """``Promo Natal · Selasa, 1 Desember 2026 – Kamis, 31 Desember 2026``."""
    schedule = (campaign.spec or {}).get("schedule") or {}
    dates = [d for d in (_when(schedule.get("start"), lang), _when(schedule.get("end"), lang))
             if d]
    return " · ".join([campaign.name, " – ".join(dates)]) if dates else campaign.name


def campaigns_of(db: Session, products: Sequence[Product]) -> dict[int, list[str]]:
    """Product id -> the described campaigns its active opt-ins name, sorted by name."""
    ids = [p.id for p in products]
    if not ids:
        return {}
    optins = list(db.scalars(select(ProductOptIn).where(
        ProductOptIn.product_id.in_(ids), ProductOptIn.withdrawn_at.is_(None))))
    if not optins:
        return {}
    campaigns = list(db.scalars(select(Campaign).where(
        Campaign.type != CampaignType.transactional).order_by(Campaign.name)))
    lang = get_lang()
    found: dict[int, list[str]] = {}
    for campaign in campaigns:
        tags = {str(tag) for tag in campaign.tags or []}
        for optin in optins:
            hit = (optin.campaign_key in tags) if optin.is_tag else (
                optin.campaign_key == campaign.key)
            text = describe(campaign, lang)
            if hit and text not in found.setdefault(optin.product_id, []):
                found[optin.product_id].append(text)
    return found


__all__ = ["campaigns_of", "describe"]
