"""/t/o open pixel and /t/c click redirect over HTTP: events, attribution, open redirects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.engagement.tracking import (
    make_click_token,
    make_open_token,
    make_unsubscribe_token,
    url_hash,
)
from engine.models import (
    Business,
    Customer,
    Delivery,
    DeliveryProduct,
    EngagementEvent,
    Product,
    TrackedLink,
    utcnow,
)
from tests.factories import (
    make_business,
    make_campaign,
    make_customer,
    make_delivery,
    make_product,
    make_run,
)
from web.app import create_app

BROWSER = ("Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0 Mobile Safari/537.36")
PRODUCT_URL = "https://umkm.ttskab.go.id/produk/7?utm_source=dinas-tts&utm_medium=email"


@dataclass
class World:
    business: Business
    product: Product
    customer: Customer
    delivery: Delivery
    link: TrackedLink


def add_link(db: Session, run_id: int, url: str, product: Product | None = None) -> TrackedLink:
    link = TrackedLink(run_id=run_id, url=url, url_hash=url_hash(url),
                       product_id=product.id if product else None,
                       business_id=product.business_id if product else None)
    db.add(link)
    db.flush()
    return link


def make_world(db: Session, *, sent_ago: timedelta = timedelta(hours=1),
               phone: str | None = None) -> World:
    """A sent promotional mail with one product link, committed for the web app."""
    business = make_business(db)
    product = make_product(db, business, category="kerajinan_tangan")
    customer = make_customer(db, marketing=True, phone=phone)
    run = make_run(db, make_campaign(db))
    delivery = make_delivery(db, run, customer, at=utcnow() - sent_ago,
                             business_id=business.id)
    db.add(DeliveryProduct(delivery_id=delivery.id, product_id=product.id,
                           business_id=business.id, position=0))
    link = add_link(db, run.id, PRODUCT_URL, product)
    db.commit()
    return World(business, product, customer, delivery, link)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _events(db: Session, type_: str) -> list[EngagementEvent]:
    db.expire_all()
    return list(db.scalars(select(EngagementEvent).where(EngagementEvent.type == type_)
                           .order_by(EngagementEvent.id)))


def test_open_pixel_is_a_gif_and_stores_every_open_with_attribution(
        client: TestClient, db: Session) -> None:
    world = make_world(db)
    url = f"/t/o/{make_open_token(world.delivery.id)}"

    first = client.get(url, headers={"User-Agent": BROWSER})
    second = client.get(url, headers={"User-Agent": BROWSER})

    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
        assert response.content.startswith(b"GIF89a") and len(response.content) == 43
        assert "no-store" in response.headers["cache-control"]
    opens = _events(db, "open")
    assert len(opens) == 2  # every open is stored; unique opens are a report's business
    event = opens[0]
    assert (event.delivery_id, event.run_id, event.customer_id) == (
        world.delivery.id, world.delivery.run_id, world.customer.id)
    assert (event.business_id, event.product_id) == (world.business.id, world.product.id)
    assert event.suspected_bot is False


@pytest.mark.parametrize("token", ["", "AAAA", "not-a-token", "x" * 300])
def test_open_pixel_with_bad_token_is_404(client: TestClient, db: Session, token: str) -> None:
    make_world(db)
    response = client.get(f"/t/o/{token}")
    assert response.status_code == 404
    assert _events(db, "open") == []


def test_open_pixel_of_unknown_delivery_is_404(client: TestClient, db: Session) -> None:
    world = make_world(db)
    response = client.get(f"/t/o/{make_open_token(world.delivery.id + 1000)}")
    assert response.status_code == 404
    assert _events(db, "open") == []


def test_click_redirects_to_the_stored_link_and_records_product_and_business(
        client: TestClient, db: Session) -> None:
    world = make_world(db)
    token = make_click_token(world.delivery.id, world.link.id)

    response = client.get(f"/t/c/{token}", headers={"User-Agent": BROWSER},
                          follow_redirects=False)

    assert response.status_code == 302
    assert response.headers["location"] == PRODUCT_URL
    assert "no-store" in response.headers["cache-control"]
    [event] = _events(db, "click")
    assert (event.delivery_id, event.run_id, event.link_id) == (
        world.delivery.id, world.delivery.run_id, world.link.id)
    assert (event.product_id, event.business_id, event.customer_id) == (
        world.product.id, world.business.id, world.customer.id)
    assert event.suspected_bot is False


def test_click_right_after_sending_or_by_a_scanner_is_flagged_as_bot(
        client: TestClient, db: Session) -> None:
    fresh = make_world(db, sent_ago=timedelta(seconds=0))
    old = make_world(db)
    client.get(f"/t/c/{make_click_token(fresh.delivery.id, fresh.link.id)}",
               headers={"User-Agent": BROWSER}, follow_redirects=False)
    client.get(f"/t/c/{make_click_token(old.delivery.id, old.link.id)}",
               headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"},
               follow_redirects=False)
    client.get(f"/t/c/{make_click_token(old.delivery.id, old.link.id)}",
               headers={"User-Agent": BROWSER}, follow_redirects=False)

    flags = [(e.delivery_id, e.suspected_bot) for e in _events(db, "click")]
    assert flags == [(fresh.delivery.id, True), (old.delivery.id, True),
                     (old.delivery.id, False)]


def _tampered(token: str) -> str:
    index = len(token) // 2
    swapped = "A" if token[index] != "A" else "B"
    return token[:index] + swapped + token[index + 1:]


@pytest.mark.parametrize("path", [
    "//evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "https:%2F%2Fevil.example",
    "%252F%252Fevil.example",
    "https%3A%2F%2Fevil.example",
    "..%2F..%2Fu",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "aHR0cHM6Ly9ldmlsLmV4YW1wbGU",  # base64 of https://evil.example
])
def test_click_never_redirects_for_foreign_strings(client: TestClient, db: Session,
                                                   path: str) -> None:
    make_world(db)
    response = client.get(f"/t/c/{path}", follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert _events(db, "click") == []


def test_click_with_tampered_or_misused_tokens_is_404(client: TestClient, db: Session) -> None:
    world = make_world(db)
    other = make_world(db)  # another run with its own link
    good = make_click_token(world.delivery.id, world.link.id)
    attempts = [
        _tampered(good),
        good[:-2],
        good + "AA",
        make_open_token(world.delivery.id),              # right signature, wrong kind
        make_unsubscribe_token(world.delivery.id),
        make_click_token(world.delivery.id, other.link.id),  # link of another run
        make_click_token(world.delivery.id + 999, world.link.id),  # unknown delivery
        make_click_token(world.delivery.id, world.link.id + 999),  # unknown link
    ]
    for token in attempts:
        response = client.get(f"/t/c/{token}", follow_redirects=False)
        assert response.status_code == 404, token
        assert "location" not in response.headers
    assert _events(db, "click") == []


@pytest.mark.parametrize("stored", [
    "javascript:alert(document.cookie)",
    "//evil.example/path",
    "data:text/html,<script>alert(1)</script>",
    "https:///no-host",
    "https://ok.example/\r\nSet-Cookie: x=1",
])
def test_a_stored_link_that_is_not_http_is_never_followed(client: TestClient, db: Session,
                                                          stored: str) -> None:
    world = make_world(db)
    bad = add_link(db, world.delivery.run_id, stored)
    db.commit()
    response = client.get(f"/t/c/{make_click_token(world.delivery.id, bad.id)}",
                          follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
