"""JSON API /api/v1: API keys, ownership, idempotent order events, consent, 422 paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.campaign.loader import load_campaign
from engine.cli.app import app as cli_app
from engine.config import Settings
from engine.customers.consent import has_consent
from engine.delivery import scheduler
from engine.models import Business, Consent, Delivery, Order, OrderEvent, Product, Suppression
from engine.umkm.apikeys import business_for_api_key, issue_api_key
from tests.factories import make_business, make_customer, make_product, make_suppression
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Shop:
    business: Business
    key: str
    tenun: Product
    kopi: Product

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_shop(db: Session) -> Shop:
    business = make_business(db)
    tenun = make_product(db, business, sku="TENUN-01", price=350_000)
    kopi = make_product(db, business, sku="KOPI-250", price=45_000, category="makanan_olahan")
    key = issue_api_key(db, business.id)
    db.commit()
    return Shop(business, key, tenun, kopi)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def order_body(ref: str = "INV-001", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ref": ref,
        "customer": {"email": "Maria.Tefa@Contoh.id", "phone": "0812-3456-7001",
                     "name": "Maria Tefa"},
        "lines": [{"sku": "TENUN-01", "quantity": 1}, {"sku": "KOPI-250", "quantity": 2}],
        "ordered_at": "2026-11-30T10:00:00",
    }
    body.update(overrides)
    return body


# ----------------------------------------------------------------------------- auth
@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer umkm_salah"}, {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "umkm_tanpa_skema"},
])
def test_requests_without_a_valid_key_are_401(client: TestClient, db: Session,
                                              headers: dict[str, str]) -> None:
    make_shop(db)
    response = client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "Kunci API tidak ada atau tidak sah."
    assert response.headers["www-authenticate"] == "Bearer"
    assert db.scalars(select(Order)).all() == []


def test_only_the_digest_of_a_key_is_stored_and_a_new_key_replaces_the_old(db: Session) -> None:
    shop = make_shop(db)
    assert shop.business.api_key_digest and shop.key not in shop.business.api_key_digest
    assert business_for_api_key(db, shop.key) is shop.business
    new_key = issue_api_key(db, shop.business.id)
    assert business_for_api_key(db, shop.key) is None
    assert business_for_api_key(db, new_key) is shop.business


def test_cli_issues_a_key_that_works(client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    result = CliRunner().invoke(cli_app, ["business", "apikey", str(shop.business.id)])
    assert result.exit_code == 0, result.output
    key = next(w for w in result.output.split() if w.startswith("umkm_"))
    response = client.get("/api/v1/orders/TIDAK-ADA", headers={
        "Authorization": f"Bearer {key}"})
    assert response.status_code == 404  # authenticated; the order simply does not exist
    old = client.get("/api/v1/orders/TIDAK-ADA", headers=shop.auth)
    assert old.status_code == 401
    missing = CliRunner().invoke(cli_app, ["business", "apikey", "999999"])
    assert missing.exit_code == 1 and "tidak ditemukan" in missing.output


# ----------------------------------------------------------------------------- orders
def test_create_then_update_an_order(client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    created = client.post("/api/v1/orders", json=order_body(), headers=shop.auth)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["total"] == 350_000 + 2 * 45_000
    assert data["customer"] == {"email": "maria.tefa@contoh.id", "phone": "6281234567001"}
    assert [(line["sku"], line["quantity"]) for line in data["lines"]] == [
        ("TENUN-01", 1), ("KOPI-250", 2)]
    assert data["ordered_at"].startswith("2026-11-30T02:00:00")  # 10.00 WITA in UTC

    updated = client.post("/api/v1/orders", headers=shop.auth, json=order_body(
        lines=[{"sku": "KOPI-250", "quantity": 3, "unit_price": 40_000}]))
    assert updated.status_code == 200
    assert updated.json()["total"] == 120_000
    fetched = client.get("/api/v1/orders/INV-001", headers=shop.auth).json()
    assert [line["sku"] for line in fetched["lines"]] == ["KOPI-250"]
    assert len(db.scalars(select(Order)).all()) == 1


def test_a_business_cannot_read_or_change_another_business_order(
        client: TestClient, db: Session) -> None:
    shop_a, shop_b = make_shop(db), make_shop(db)
    client.post("/api/v1/orders", json=order_body(), headers=shop_a.auth)

    assert client.get("/api/v1/orders/INV-001", headers=shop_b.auth).status_code == 404
    event = client.post("/api/v1/orders/INV-001/events", json={"kind": "shipped"},
                        headers=shop_b.auth)
    assert event.status_code == 404
    # B's order with the same number is B's own; A's order stays untouched.
    own = client.post("/api/v1/orders", headers=shop_b.auth, json=order_body(
        lines=[{"sku": "TENUN-01", "quantity": 5}]))
    assert own.status_code == 201
    a_order = client.get("/api/v1/orders/INV-001", headers=shop_a.auth).json()
    assert a_order["total"] == 440_000 and a_order["events"] == []
    assert db.scalars(select(OrderEvent)).all() == []


def test_products_of_another_business_cannot_be_ordered(client: TestClient,
                                                        db: Session) -> None:
    shop_a, shop_b = make_shop(db), make_shop(db)
    b_only = make_product(db, shop_b.business, sku="HANYA-B")
    db.commit()
    response = client.post("/api/v1/orders", headers=shop_a.auth, json=order_body(
        lines=[{"sku": b_only.sku, "quantity": 1}]))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "lines", 0, "sku"]
    assert error["msg"] == "Produk dengan SKU 'HANYA-B' tidak ada pada UMKM ini."


def test_validation_errors_name_their_fields(client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    response = client.post("/api/v1/orders", headers=shop.auth, json={
        "ref": "bad ref with spaces",
        "customer": {"name": "Tanpa Kontak"},
        "lines": [{"sku": "TENUN-01", "quantity": 0}],
        "ordered_at": "1990-01-01T00:00:00",
        "unexpected": True,
    })
    assert response.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert set(errors) == {("body", "ref"), ("body", "customer"),
                           ("body", "lines", 0, "quantity"), ("body", "ordered_at"),
                           ("body", "unexpected")}
    assert errors[("body", "customer")] == "Isi email atau nomor telepon pelanggan."
    assert errors[("body", "ordered_at")] == "Tanggal pesanan harus antara tahun 2000 dan 2099."
    phone = client.post("/api/v1/orders", headers=shop.auth, json=order_body(
        customer={"phone": "12345"}))
    assert phone.status_code == 422
    assert [e["loc"] for e in phone.json()["detail"]] == [["body", "customer", "phone"]]


# ----------------------------------------------------------------------------- events
def test_order_events_are_idempotent_and_become_transactional_mail(
        client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    spec = load_campaign(ROOT / "campaigns" / "transactional-order-shipped.yaml")
    scheduler.launch(db, spec, None)
    client.post("/api/v1/orders", json=order_body(), headers=shop.auth)
    body = {"kind": "shipped", "courier": "JNE", "tracking_number": "JNE123456789"}

    first = client.post("/api/v1/orders/INV-001/events", json=body, headers=shop.auth)
    again = client.post("/api/v1/orders/INV-001/events", json=body, headers=shop.auth)

    assert (first.status_code, again.status_code) == (201, 200)
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert first.json()["occurred_at"] == again.json()["occurred_at"]
    order = client.get("/api/v1/orders/INV-001", headers=shop.auth).json()
    assert (order["status"], order["courier"], order["tracking_number"]) == (
        "shipped", "JNE", "JNE123456789")
    assert len(db.scalars(select(OrderEvent)).all()) == 1

    runs = scheduler.trigger_order_events(db)
    assert len(runs) == 1
    [delivery] = db.scalars(select(Delivery).where(Delivery.run_id == runs[0])).all()
    assert (delivery.recipient, delivery.business_id) == (
        "maria.tefa@contoh.id", shop.business.id)
    assert scheduler.trigger_order_events(db) == []  # processed once


def test_event_kind_is_validated(client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    client.post("/api/v1/orders", json=order_body(), headers=shop.auth)
    response = client.post("/api/v1/orders/INV-001/events", json={"kind": "cancelled"},
                           headers=shop.auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "kind"]


# ----------------------------------------------------------------------------- consent
def _suppressions(db: Session) -> list[tuple[str, str]]:
    db.expire_all()
    return [(s.address, str(s.reason)) for s in db.scalars(select(Suppression))]


def test_consent_withdraw_and_regrant(client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    client.post("/api/v1/orders", json=order_body(), headers=shop.auth)
    url = "/api/v1/customers/maria.tefa@contoh.id/consent"

    withdrawn = client.post(url, headers=shop.auth, json={
        "channel": "email", "purpose": "marketing", "granted": False, "source": "kasir"})
    assert withdrawn.status_code == 201
    assert withdrawn.json()["source"] == f"api:{shop.business.id}:kasir"
    assert _suppressions(db) == [("maria.tefa@contoh.id", "unsubscribed")]

    granted = client.post(url, headers=shop.auth, json={
        "channel": "email", "purpose": "marketing", "granted": True, "source": "checkout"})
    assert granted.status_code == 201 and granted.json()["suppression_lifted"] is True
    assert _suppressions(db) == []
    customer_id = db.scalars(select(Consent.customer_id)).first()
    assert customer_id is not None and has_consent(db, customer_id, "email")
    sources = [c.source for c in db.scalars(select(Consent).order_by(Consent.id))]
    assert sources == [f"api:{shop.business.id}:kasir", f"api:{shop.business.id}:checkout"]


def test_regrant_never_lifts_a_bounce(client: TestClient, db: Session) -> None:
    shop = make_shop(db)
    client.post("/api/v1/orders", json=order_body(), headers=shop.auth)
    make_suppression(db, "maria.tefa@contoh.id", reason="bounced")
    db.commit()
    response = client.post("/api/v1/customers/maria.tefa@contoh.id/consent",
                           headers=shop.auth, json={"channel": "email", "granted": True,
                                                    "source": "checkout"})
    assert response.status_code == 201 and response.json()["suppression_lifted"] is False
    assert _suppressions(db) == [("maria.tefa@contoh.id", "bounced")]


def test_consent_only_for_the_business_own_customers(client: TestClient, db: Session) -> None:
    shop_a, shop_b = make_shop(db), make_shop(db)
    stranger = make_customer(db, email="orang.lain@contoh.id")
    db.commit()
    client.post("/api/v1/orders", json=order_body(), headers=shop_a.auth)
    body = {"channel": "email", "granted": False, "source": "x"}
    for email, shop in (("maria.tefa@contoh.id", shop_b), (stranger.email, shop_a)):
        response = client.post(f"/api/v1/customers/{email}/consent", headers=shop.auth,
                               json=body)
        assert response.status_code == 404
    assert db.scalars(select(Consent)).all() == []
    bad = client.post("/api/v1/customers/bukan-email/consent", headers=shop_a.auth, json=body)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "email"]
