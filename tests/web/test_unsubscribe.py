"""/u/<token>: RFC 8058 one-click, the preference centre, and the effect on dispatch."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.customers.consent import has_consent
from engine.delivery.context import reset_process_state
from engine.delivery.pipeline import process_batch
from engine.delivery.scheduler import upsert_campaign
from engine.engagement.tracking import make_click_token, make_unsubscribe_token
from engine.models import (
    CampaignRun,
    Consent,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    RunStatus,
    Suppression,
)
from tests.factories import make_consent, make_customer, make_delivery, make_suppression
from tests.smtp_server import ScriptedSMTPServer
from tests.web.test_tracking_web import make_world
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _consents(db: Session, customer_id: int) -> list[tuple[str, bool, str]]:
    db.expire_all()
    rows = db.scalars(select(Consent).where(Consent.customer_id == customer_id)
                      .order_by(Consent.id))
    return [(str(r.channel), r.granted, r.source) for r in rows]


def _suppressions(db: Session) -> list[tuple[str, str, str]]:
    db.expire_all()
    return [(s.channel, s.address, str(s.reason))
            for s in db.scalars(select(Suppression).order_by(Suppression.id))]


def _unsubscribe_events(db: Session) -> list[EngagementEvent]:
    return list(db.scalars(select(EngagementEvent).where(EngagementEvent.type == "unsubscribe")))


def _form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "the page has no form token"
    return found.group(1)


def test_get_shows_the_preference_centre_and_changes_nothing(client: TestClient,
                                                            db: Session) -> None:
    world = make_world(db, phone="6281234500001")
    token = make_unsubscribe_token(world.delivery.id)

    for _ in range(3):  # a mail gateway may fetch the link several times
        response = client.get(f"/u/{token}")
        assert response.status_code == 200

    page = response.text
    assert "Berhenti berlangganan" in page
    assert f'action="/u/{token}"' in page
    assert 'value="email"' in page and 'value="whatsapp"' in page
    assert 'value="makanan_olahan"' in page and 'value="kerajinan_tangan"' in page
    assert world.customer.email not in page  # the address is shown masked
    assert _consents(db, world.customer.id) == [("email", True, "formulir")]
    assert _suppressions(db) == []
    assert _unsubscribe_events(db) == []


def test_one_click_post_without_cookies_unsubscribes_at_once(client: TestClient,
                                                             db: Session) -> None:
    world = make_world(db)
    token = make_unsubscribe_token(world.delivery.id)
    client.cookies.clear()

    response = client.post(f"/u/{token}", data=ONE_CLICK, follow_redirects=False)

    assert response.status_code == 200
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert len(response.content) < 200
    assert response.text == "Anda telah berhenti berlangganan."
    assert _consents(db, world.customer.id) == [
        ("email", True, "formulir"), ("email", False, "one-click")]
    assert not has_consent(db, world.customer.id, "email")
    assert _suppressions(db) == [("email", world.customer.email, "unsubscribed")]
    [event] = _unsubscribe_events(db)
    assert (event.delivery_id, event.customer_id, event.business_id) == (
        world.delivery.id, world.customer.id, world.business.id)
    assert event.raw == {"source": "one-click"}


def test_repeated_one_click_is_harmless(client: TestClient, db: Session) -> None:
    world = make_world(db)
    token = make_unsubscribe_token(world.delivery.id)
    for _ in range(3):
        assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert len(_consents(db, world.customer.id)) == 2
    assert len(_suppressions(db)) == 1
    assert len(_unsubscribe_events(db)) == 1


def test_forged_unsubscribe_tokens_are_rejected(client: TestClient, db: Session) -> None:
    world = make_world(db)
    good = make_unsubscribe_token(world.delivery.id)
    index = len(good) // 2
    forged = [
        good[:index] + ("B" if good[index] != "B" else "C") + good[index + 1:],
        good[:-1],
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        make_click_token(world.delivery.id, world.link.id),     # another kind of token
        make_unsubscribe_token(world.delivery.id + 1000),       # no such delivery
        make_unsubscribe_token(customer_id=world.customer.id + 1000, channel="email"),
    ]
    for token in forged:
        assert client.get(f"/u/{token}").status_code == 404, token
        response = client.post(f"/u/{token}", data=ONE_CLICK, follow_redirects=False)
        assert response.status_code == 404, token
        assert "location" not in response.headers
    assert _suppressions(db) == []
    assert len(_consents(db, world.customer.id)) == 1


def test_preference_form_needs_its_token(client: TestClient, db: Session) -> None:
    world = make_world(db)
    other = make_world(db)
    token = make_unsubscribe_token(world.delivery.id)
    other_page = client.get(f"/u/{make_unsubscribe_token(other.delivery.id)}").text

    missing = client.post(f"/u/{token}", data={"action": "unsubscribe"})
    borrowed = client.post(f"/u/{token}", data={"action": "unsubscribe",
                                               "csrf_token": _form_token(other_page)})

    assert missing.status_code == 403
    assert borrowed.status_code == 403
    assert _suppressions(db) == []
    assert has_consent(db, world.customer.id, "email")


def test_confirm_button_unsubscribes_with_preference_centre_as_source(
        client: TestClient, db: Session) -> None:
    world = make_world(db)
    token = make_unsubscribe_token(world.delivery.id)
    page = client.get(f"/u/{token}").text

    response = client.post(f"/u/{token}", data={"action": "unsubscribe",
                                               "csrf_token": _form_token(page)})

    assert response.status_code == 200
    assert "Berhasil berhenti berlangganan" in response.text
    assert _consents(db, world.customer.id)[-1] == ("email", False, "preference-centre")
    assert _suppressions(db) == [("email", world.customer.email, "unsubscribed")]
    assert len(_unsubscribe_events(db)) == 1


def test_preferences_withdraw_one_channel_and_can_grant_it_again(
        client: TestClient, db: Session) -> None:
    world = make_world(db, phone="6281234500002")
    make_consent(db, world.customer, channel="whatsapp", granted=True)
    db.commit()
    token = make_unsubscribe_token(world.delivery.id)
    form_token = _form_token(client.get(f"/u/{token}").text)

    saved = client.post(f"/u/{token}", data={
        "csrf_token": form_token, "action": "save", "channel": ["email"],
        "category": ["makanan_olahan"]})

    assert saved.status_code == 200
    assert has_consent(db, world.customer.id, "email")
    assert not has_consent(db, world.customer.id, "whatsapp")
    assert _suppressions(db) == [("whatsapp", "6281234500002", "unsubscribed")]
    db.refresh(world.customer)
    assert world.customer.preferences["categories"] == ["makanan_olahan"]
    assert world.customer.preferences["muted_categories"] == ["kerajinan_tangan"]
    page = client.get(f"/u/{token}").text
    assert re.search(r'value="whatsapp"\s*>', page)  # shown unchecked now

    client.post(f"/u/{token}", data={"csrf_token": form_token, "action": "save",
                                     "channel": ["email", "whatsapp"]})

    assert has_consent(db, world.customer.id, "whatsapp")
    assert _suppressions(db) == []  # an 'unsubscribed' block is lifted by a new opt-in
    assert _consents(db, world.customer.id)[-1] == ("whatsapp", True, "preference-centre")


def test_unsubscribe_all_stops_every_channel(client: TestClient, db: Session) -> None:
    world = make_world(db, phone="6281234500003")
    make_consent(db, world.customer, channel="whatsapp", granted=True)
    db.commit()
    token = make_unsubscribe_token(world.delivery.id)
    form_token = _form_token(client.get(f"/u/{token}").text)

    client.post(f"/u/{token}", data={"csrf_token": form_token, "action": "all"})

    assert not has_consent(db, world.customer.id, "email")
    assert not has_consent(db, world.customer.id, "whatsapp")
    assert sorted(_suppressions(db)) == [
        ("email", world.customer.email, "unsubscribed"),
        ("whatsapp", "6281234500003", "unsubscribed")]


def test_whatsapp_customer_token_unsubscribes_that_channel(client: TestClient,
                                                           db: Session) -> None:
    customer = make_customer(db, phone="6281234500004", marketing=True)
    make_consent(db, customer, channel="whatsapp", granted=True)
    db.commit()
    token = make_unsubscribe_token(customer_id=customer.id, channel="whatsapp")

    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200

    assert not has_consent(db, customer.id, "whatsapp")
    assert has_consent(db, customer.id, "email")
    assert _suppressions(db) == [("whatsapp", "6281234500004", "unsubscribed")]
    [event] = _unsubscribe_events(db)
    assert (event.customer_id, event.channel, event.delivery_id) == (
        customer.id, "whatsapp", None)


def test_a_bounce_suppression_is_not_weakened_by_unsubscribing(client: TestClient,
                                                              db: Session) -> None:
    world = make_world(db)
    make_suppression(db, world.customer.email or "", reason="bounced")
    db.commit()
    client.post(f"/u/{make_unsubscribe_token(world.delivery.id)}", data=ONE_CLICK)
    assert _suppressions(db) == [("email", world.customer.email, "bounced")]


def _newsletter_run(db: Session) -> CampaignRun:
    spec = load_campaign(ROOT / "campaigns" / "newsletter-bulanan.yaml")
    spec.schedule.send_window = None  # the test may run at any hour
    campaign = upsert_campaign(db, spec, None)
    run = CampaignRun(campaign_id=campaign.id, trigger_key="uji", status=RunStatus.running)
    db.add(run)
    db.flush()
    return run


def test_next_dispatch_skips_an_address_unsubscribed_after_planning(
        client: TestClient, db: Session, settings: Settings,
        smtp_server: ScriptedSMTPServer) -> None:
    run = _newsletter_run(db)
    leaving = make_customer(db, marketing=True, name="Ani Leaving")
    staying = make_customer(db, marketing=True, name="Budi Staying")
    planned = [make_delivery(db, run, c, status="pending") for c in (leaving, staying)]
    db.commit()

    response = client.post(f"/u/{make_unsubscribe_token(planned[0].id)}", data=ONE_CLICK)
    assert response.status_code == 200

    smtp = dataclasses.replace(settings, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    try:
        result = process_batch(run.id, [d.id for d in planned], smtp)
    finally:
        reset_process_state()

    assert (result.sent, result.skipped) == (1, 1)
    assert smtp_server.recipients() == [staying.email]
    db.expire_all()
    skipped = db.get(Delivery, planned[0].id)
    assert skipped is not None and skipped.status == DeliveryStatus.skipped
    assert skipped.error == "suppressed:unsubscribed"
