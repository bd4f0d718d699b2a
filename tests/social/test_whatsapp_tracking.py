"""Issue 17 (WhatsApp): share-kit and Cloud API links are ``/t/c/`` tracked, land with
``utm_medium=whatsapp``, and a click through the real web route is a WhatsApp click of
the UMKM whose product was clicked.

The worlds are those of :mod:`tests.social.test_social_e2e` (fake Meta/TikTok/WhatsApp
servers on loopback, real launch and outbox); clicks go through ``GET /t/c/<token>``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.delivery.context import utm
from engine.engagement.tracking import InMemoryLinkRegistry, RunTracker
from engine.models import Delivery, EngagementEvent, Product, utcnow
from engine.social.publish import kit_tracker
from engine.social.sharekit import build_share_kit
from tests.fake_meta import fake_meta_fixture as fake_meta_fixture
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.fake_whatsapp import fake_whatsapp_fixture as fake_whatsapp_fixture
from tests.social.test_social_e2e import (
    REPO,
    WhatsAppWorld,
    World,
    _wa_customer,
    seed_catalog,
)
from tests.social.test_social_e2e import wa as wa  # the fixture
from tests.social.test_social_e2e import world as world  # the fixture wa needs

BROWSER = "Mozilla/5.0 (Linux; Android 12; SM-A135F) AppleWebKit/537.36 Chrome/119 Mobile"
TRACKED = re.compile(r"https://umkm\.ttskab\.go\.id/t/c/[A-Za-z0-9_-]+")


def _click(client: TestClient, url: str) -> str:
    """Follow one tracked link like a phone's browser; the redirect target."""
    response = client.get(urlsplit(url).path, headers={"User-Agent": BROWSER},
                          follow_redirects=False)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def _utm(target: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items() if k.startswith("utm_")}


def _age(world: World, delivery_id: int) -> None:
    """The message left a while ago: a click seconds after sending counts as a scanner."""
    delivery = world.db.get(Delivery, delivery_id)
    assert delivery is not None and delivery.sent_at is not None
    delivery.sent_at = delivery.sent_at - timedelta(minutes=10)
    world.db.commit()


def test_campaign_utm_renders_the_channel_as_whatsapp() -> None:
    spec = load_campaign(REPO / "campaigns" / "promo-tenun-akhir-tahun-2026.yaml")
    assert utm(spec, "whatsapp")["utm_medium"] == "whatsapp"
    assert utm(spec)["utm_medium"] == "email"
    wa_spec = load_campaign(REPO / "campaigns" / "whatsapp-produk-pilihan.yaml")
    assert wa_spec.channels.whatsapp is not None
    assert wa_spec.channels.whatsapp.mode == "cloud_api"


def test_share_kit_builder_tracks_product_and_order_links_per_product(
        sqlite_settings: Settings) -> None:
    registry = InMemoryLinkRegistry()
    tracker = RunTracker(registry, "https://umkm.ttskab.go.id",
                         {"utm_medium": "email"},
                         channel_utm=lambda ch: {"utm_source": "dinas-tts", "utm_medium": ch,
                                                 "utm_campaign": "promo"})
    products = [{"id": 7, "name": "Selendang", "price": 350_000, "url": "/produk/7",
                 "business": {"id": 3, "name": "Tenun Mollo", "whatsapp": "081237001234"}}]
    kit = build_share_kit({"id": "promo", "name": "Promo"}, products, None,
                          "https://umkm.ttskab.go.id",
                          kit_tracker(tracker.for_channel("whatsapp").for_delivery(11)))
    assert "/produk/7" not in kit.text.split("Pesan lewat")[0]  # the view link is tracked
    assert len(TRACKED.findall(kit.text)) == 2  # view + order, both /t/c/
    [order] = kit.order_links()
    assert TRACKED.fullmatch(order.url)
    targets = {url: (pid, bid, label) for _, url, pid, bid, label in registry.links.values()}
    page = next(u for u in targets if "/produk/7" in u)
    assert _utm(page) == {"utm_source": "dinas-tts", "utm_medium": "whatsapp",
                          "utm_campaign": "promo", "utm_content": "produk-7"}
    assert targets[page][:2] == (7, 3)
    assert any(u.startswith("https://wa.me/6281237001234") for u in targets)


def test_share_kit_click_is_a_whatsapp_click_of_the_right_business(wa: WhatsAppWorld) -> None:
    world = wa.world
    catalog = seed_catalog(world.db)
    run_id = world.launch(world.spec("  whatsapp: {mode: share_kit}"))
    world.run(run_id)
    [delivery] = world.deliveries(run_id, "whatsapp")
    [post] = world.posts("whatsapp")
    text = post.raw["share_kit"]["text"]
    links = TRACKED.findall(text)
    assert len(links) >= 2 * len(catalog.names)  # a view and an order link per product
    _age(world, delivery.id)

    target = _click(wa.client, links[0])
    assert _utm(target)["utm_medium"] == "whatsapp"
    assert _utm(target)["utm_campaign"] == "promo-sosial-tenun"
    product_id = int(re.search(r"/produk/(\d+)", target).group(1))  # type: ignore[union-attr]
    world.db.expire_all()
    [event] = world.db.scalars(select(EngagementEvent).where(EngagementEvent.type == "click"))
    assert (event.channel, event.delivery_id, event.suspected_bot) == (
        "whatsapp", delivery.id, False)
    assert event.product_id == product_id
    assert event.business_id == catalog.business_of[product_id]


def test_cloud_api_link_is_tracked_with_utm_medium_whatsapp(wa: WhatsAppWorld) -> None:
    world = wa.world
    catalog = seed_catalog(world.db)
    now = utcnow()
    _wa_customer(world.db, "6281100000001", "Maria Bana", whatsapp=True,
                 at=now - timedelta(days=3))
    world.db.commit()
    spec = world.spec("  whatsapp: {mode: cloud_api, template: {name: promo_umkm}}")
    run_id = world.launch(spec, now)
    world.run(run_id, now)
    [message] = wa.fake.sent
    link = message["template"]["components"][0]["parameters"][1]["text"]
    assert TRACKED.fullmatch(link)
    [delivery] = world.deliveries(run_id, "whatsapp")
    _age(world, delivery.id)

    target = _click(wa.client, link)
    assert _utm(target)["utm_medium"] == "whatsapp"
    world.db.expire_all()
    [event] = world.db.scalars(select(EngagementEvent).where(EngagementEvent.type == "click"))
    assert event.channel == "whatsapp" and not event.suspected_bot
    product = world.db.get(Product, event.product_id)
    assert product is not None and event.business_id == catalog.business_of[product.id]
