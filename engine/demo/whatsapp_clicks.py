"""Demo only: a few taps on the tracked links of the WhatsApp share kit.

Why: the demo has no people in the shared group, so without this the WhatsApp row of
``umkm report --by channel`` would stay at 0 clicks and nobody could see that share-kit
links are tracked per UMKM. The taps go through exactly what ``GET /t/c/<token>`` does
(:func:`engine.engagement.tracking.parse_token`, :func:`engine.engagement.events.
link_for_click`, :func:`engine.engagement.events.record_click`), at fixed minutes after
the kit was written, and each event carries ``raw["demo"] = True`` so nobody mistakes
them for real engagement. Running the demo again adds none.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.engagement import events
from engine.engagement.tracking import InvalidToken, parse_token
from engine.models import Delivery, DeliveryStatus, EngagementEvent, SocialPost, aware, utcnow
from engine.social.plan import SHARE_KIT_RECIPIENT

DEMO_AGENT = "Mozilla/5.0 (Linux; Android 12) Demo-UMKM-TTS"
DEMO_TAPS = 3  # the first three product links of each kit
_TOKEN = re.compile(r"/t/c/([A-Za-z0-9_-]+)")


def simulate_share_kit_clicks(session: Session) -> int:
    """Tap the first product links of every sent share kit once; returns new clicks."""
    kits = session.execute(
        select(Delivery, SocialPost).join(SocialPost, SocialPost.delivery_id == Delivery.id)
        .where(Delivery.recipient == SHARE_KIT_RECIPIENT,
               Delivery.status == DeliveryStatus.sent)).all()
    added = 0
    for delivery, post in kits:
        if _already_tapped(session, delivery.id):
            continue
        added += _tap(session, delivery, str((post.raw or {}).get("caption") or ""))
    session.flush()
    return added


def _already_tapped(session: Session, delivery_id: int) -> bool:
    return session.scalar(select(EngagementEvent.id).where(
        EngagementEvent.delivery_id == delivery_id, EngagementEvent.type == events.CLICK)
        .limit(1)) is not None


def _tap(session: Session, delivery: Delivery, text: str) -> int:
    sent = aware(delivery.sent_at) or utcnow()
    taps = 0
    for token in dict.fromkeys(_TOKEN.findall(text)):
        if taps == DEMO_TAPS:
            break
        try:
            data = parse_token(token, "click")
        except InvalidToken:
            continue
        assert data.delivery_id is not None and data.link_id is not None
        found = events.link_for_click(session, data.delivery_id, data.link_id)
        if found is None or found[0].id != delivery.id or found[1].label is not None:
            continue  # only product-page links, not order or catalogue links
        event = events.record_click(session, found[0], found[1], user_agent=DEMO_AGENT,
                                    at=sent + timedelta(minutes=7 * (taps + 1)))
        event.raw = {**(event.raw or {}), "demo": True}
        taps += 1
    return taps
