"""Tracked links for the share kit the dashboard shows (issue 17).

Why the kit of the latest run: a click token names a delivery and a link of one run
(:mod:`engine.engagement.tracking`), so the kit staff copy from the dashboard must speak
for a share-kit row that was really planned; its clicks then count as ``whatsapp``
engagement of the UMKM whose product was clicked. A campaign never launched has no such
row: its kit is a preview with plain (UTM-tagged) links.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.engagement.tracking import DbLinkRegistry, PreviewTracker, RunTracker
from engine.models import CampaignRun, Delivery
from engine.social.plan import SHARE_KIT_RECIPIENT
from engine.social.publish import kit_tracker
from engine.social.sharekit import Track


def latest_kit_delivery(db: Session, campaign_id: int) -> Delivery | None:
    """The share-kit row of the campaign's newest run that planned one."""
    return db.scalars(
        select(Delivery).join(CampaignRun, CampaignRun.id == Delivery.run_id)
        .where(CampaignRun.campaign_id == campaign_id,
               Delivery.recipient == SHARE_KIT_RECIPIENT)
        .order_by(Delivery.id.desc()).limit(1)).first()


def dashboard_kit_track(db: Session, sessions: sessionmaker[Session], campaign_id: int,
                        base_url: str, utm: Mapping[str, str | None]) -> Track:
    """``/t/c/`` links of the newest kit row, else plain UTM-tagged links (a preview)."""
    delivery = latest_kit_delivery(db, campaign_id)
    if delivery is None or delivery.run_id is None:
        preview = PreviewTracker(utm)
        return kit_tracker(preview)
    run = RunTracker(DbLinkRegistry(sessions, delivery.run_id), base_url, utm)
    return kit_tracker(run.for_delivery(delivery.id))
