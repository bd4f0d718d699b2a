"""Issue 13: a business key cannot undo a person's unsubscribe nor harvest addresses.

Customers and consent are shared by every business; these tests play the attacker of
the report (a business with its own valid API key) and the person (one-click
unsubscribe, WhatsApp BERHENTI, the confirmed opt-in link).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.whatsapp import InboundEvent
from engine.config import Settings
from engine.customers import optin
from engine.customers.consent import has_consent
from engine.engagement.tracking import make_unsubscribe_token
from engine.models import Consent, Customer, Suppression
from engine.social.inbound import record_whatsapp_inbound
from tests.factories import make_customer
from tests.web.test_api import make_shop
from web.app import create_app

VICTIM_EMAIL = "korban@contoh.id"
VICTIM_PHONE = "6281234567999"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _victim(db: Session) -> Customer:
    customer = make_customer(db, email=VICTIM_EMAIL, phone=VICTIM_PHONE, name="Korban")
    db.commit()
    return customer


def _one_click(client: TestClient, customer: Customer, channel: str = "email") -> None:
    token = make_unsubscribe_token(customer_id=customer.id, channel=channel)
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200


def _fake_order(client: TestClient, auth: dict[str, str], **contact: str) -> dict[str, object]:
    response = client.post("/api/v1/orders", headers=auth, json={
        "ref": "PALSU-1", "customer": contact,
        "lines": [{"sku": "KOPI-250", "quantity": 1, "unit_price": 0}]})
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def _suppressions(db: Session) -> list[tuple[str, str, str]]:
    db.expire_all()
    return sorted((s.channel, s.address, str(s.reason)) for s in db.scalars(select(Suppression)))


def _grant(client: TestClient, auth: dict[str, str], channel: str) -> dict[str, object]:
    response = client.post(f"/api/v1/customers/{VICTIM_EMAIL}/consent", headers=auth,
                           json={"channel": channel, "granted": True, "source": "checkout"})
    return {"status": response.status_code, **response.json()}


# ----------------------------------------------------------------------------- finding 1
def test_a_business_cannot_undo_a_one_click_email_unsubscribe(client: TestClient,
                                                               db: Session) -> None:
    victim = _victim(db)
    _one_click(client, victim)
    before = _suppressions(db)
    attacker = make_shop(db)
    _fake_order(client, attacker.auth, email=VICTIM_EMAIL)
    answer = _grant(client, attacker.auth, "email")
    assert answer["status"] == 409
    assert "menarik persetujuan" in str(answer["detail"])
    assert "suppression_lifted" not in answer
    assert _suppressions(db) == before == [("email", VICTIM_EMAIL, "unsubscribed")]
    assert not has_consent(db, victim.id, "email")
    assert [c.source for c in db.scalars(select(Consent))] == ["one-click"]


def test_a_business_cannot_undo_a_whatsapp_berhenti(client: TestClient, db: Session) -> None:
    victim = _victim(db)
    record_whatsapp_inbound(db, [InboundEvent(
        kind="message", wa_id=VICTIM_PHONE, timestamp=datetime.now(UTC),
        message_id="wamid.1", text="BERHENTI")])
    before = _suppressions(db)
    assert before == [("whatsapp", VICTIM_PHONE, "unsubscribed")]
    attacker = make_shop(db)
    _fake_order(client, attacker.auth, email=VICTIM_EMAIL)
    answer = _grant(client, attacker.auth, "whatsapp")
    assert answer["status"] == 409
    assert _suppressions(db) == before
    assert not has_consent(db, victim.id, "whatsapp")


# ----------------------------------------------------------------------------- finding 2
def test_an_order_by_phone_never_returns_the_stored_email(client: TestClient,
                                                          db: Session) -> None:
    _victim(db)
    attacker = make_shop(db)
    created = _fake_order(client, attacker.auth, phone="0812-3456-7999")
    assert created["customer"] == {"email": None, "phone": VICTIM_PHONE}
    read = client.get("/api/v1/orders/PALSU-1", headers=attacker.auth)
    assert read.status_code == 200
    assert VICTIM_EMAIL not in read.text
    assert read.json()["customer"] == {"email": None, "phone": None}


def test_a_phone_is_not_used_to_link_a_person_with_another_email(client: TestClient,
                                                                 db: Session) -> None:
    victim = _victim(db)
    attacker = make_shop(db)
    created = _fake_order(client, attacker.auth, email="baru@contoh.id",
                          phone="0812-3456-7999")
    assert created["customer"] == {"email": "baru@contoh.id", "phone": VICTIM_PHONE}
    db.expire_all()
    new = db.scalars(select(Customer).where(Customer.email == "baru@contoh.id")).one()
    assert new.id != victim.id and new.phone is None


# ----------------------------------------------------------------------------- confirmed opt-in
def _confirm(client: TestClient, token: str) -> tuple[int, str]:
    page = client.get(f"/u/konfirmasi/{token}")
    if page.status_code != 200:
        return page.status_code, page.text
    field = optin_form_token(token)
    done = client.post(f"/u/konfirmasi/{token}", data={"csrf_token": field})
    return done.status_code, done.text


def optin_form_token(token: str) -> str:
    from web.tracking_routes import confirm_form_token
    return confirm_form_token(token)


def test_the_person_lifts_their_own_unsubscribe_by_the_confirmed_opt_in(
        client: TestClient, db: Session) -> None:
    victim = _victim(db)
    other = make_customer(db, email="tetangga@contoh.id", name="Tetangga")
    db.commit()
    _one_click(client, victim)
    _one_click(client, other)
    token = optin.make_token(victim, "email")
    page = client.get(f"/u/konfirmasi/{token}")
    assert page.status_code == 200 and "ko***@contoh.id" in page.text
    assert len(_suppressions(db)) == 2  # GET changes nothing
    status, text = _confirm(client, token)
    assert status == 200 and "akan dikirim lagi" in text
    assert _suppressions(db) == [("email", "tetangga@contoh.id", "unsubscribed")]
    assert has_consent(db, victim.id, "email") and not has_consent(db, other.id, "email")
    db.expire_all()
    sources = [c.source for c in db.scalars(select(Consent).where(
        Consent.customer_id == victim.id).order_by(Consent.id))]
    assert sources == ["one-click", "confirmed_opt_in"]


def test_the_confirmation_post_needs_the_page_form_token(client: TestClient,
                                                         db: Session) -> None:
    victim = _victim(db)
    _one_click(client, victim)
    token = optin.make_token(victim, "email")
    response = client.post(f"/u/konfirmasi/{token}", data={"csrf_token": "salah"})
    assert response.status_code == 403
    assert _suppressions(db) == [("email", VICTIM_EMAIL, "unsubscribed")]


def test_tampered_and_expired_confirmation_links_are_clear_4xx_pages(
        client: TestClient, db: Session) -> None:
    victim = _victim(db)
    _one_click(client, victim)
    token = optin.make_token(victim, "email")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    old = optin.make_token(victim, "email",
                           issued_at=datetime.now(UTC) - optin.MAX_AGE - timedelta(hours=1))
    for bad, status in ((tampered, 404), ("bukan-token", 404), (old, 410)):
        page = client.get(f"/u/konfirmasi/{bad}")
        posted = client.post(f"/u/konfirmasi/{bad}", data={"csrf_token": optin_form_token(bad)})
        assert (page.status_code, posted.status_code) == (status, status)
        assert "location" not in posted.headers
    assert "kedaluwarsa" in client.get(f"/u/konfirmasi/{old}").text
    assert _suppressions(db) == [("email", VICTIM_EMAIL, "unsubscribed")]
