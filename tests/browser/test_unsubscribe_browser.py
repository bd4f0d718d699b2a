"""The unsubscribe link of a received campaign mail, followed in Chromium (RFC 8058, UU 27/2022).

Opening the link shows a confirmation page and changes nothing (mail gateways fetch
every link, and a person may only be looking); pressing the confirmation button
withdraws marketing consent with its time and source, suppresses the address, and the
page confirms it in Indonesian.
"""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from engine.models import Consent, EngagementEvent, Suppression, SuppressionReason, utcnow
from tests.browser.conftest import CampaignFlow, Contexts, LiveServer
from tests.factories import make_customer
from tests.web_helpers import make_eligible_business

READER = "maria.fallo@contoh.id"
MASKED = "ma***@contoh.id"


def consent_rows(live: LiveServer, customer_id: int) -> list[tuple[bool, str]]:
    with live.session() as session:
        rows = session.scalars(select(Consent).where(Consent.customer_id == customer_id)
                               .order_by(Consent.id))
        return [(row.granted, row.source) for row in rows]


def suppressions(live: LiveServer) -> list[tuple[str, str, SuppressionReason]]:
    with live.session() as session:
        return [(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))]


def unsubscribe_events(live: LiveServer) -> int:
    with live.session() as session:
        return len(list(session.scalars(select(EngagementEvent).where(
            EngagementEvent.type == "unsubscribe"))))


def test_unsubscribe_link_asks_first_and_confirming_withdraws_consent(
        live_server: LiveServer, contexts: Contexts, campaign: CampaignFlow) -> None:
    live = live_server
    with live.session() as session:
        make_eligible_business(session, "Tenun Ina Oinlasi", opt_in_to="uji-peramban")
        customer = make_customer(session, email=READER, name="Maria Fallo", marketing=True,
                                 at=utcnow() - timedelta(days=30))
        session.commit()
        customer_id = customer.id
    (received,) = campaign.dispatch(campaign.launch_now())
    before = consent_rows(live, customer_id)
    assert before == [(True, "formulir")]

    reader = contexts.new_page()
    campaign.open_mail(reader, received)
    link = reader.get_by_role("link", name="Berhenti berlangganan")
    # The footer link is the same URL as the List-Unsubscribe header.
    header = str(received.message["List-Unsubscribe"])
    expect(link).to_have_attribute("href", header.strip("<>"))
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # --- GET: a confirmation page; nothing changes, even when it is loaded twice ---------
    link.click()
    expect(reader).to_have_url(re.compile(re.escape(live.url) + r"/u/[A-Za-z0-9_-]+$"))
    expect(reader.locator("h1")).to_have_text("Berhenti berlangganan")
    expect(reader.locator("body")).to_contain_text(MASKED)
    expect(reader.locator("body")).to_contain_text("Mengunjungi halaman ini belum mengubah")
    assert READER not in reader.content()  # the address is shown masked only
    reader.reload()
    assert consent_rows(live, customer_id) == before
    assert suppressions(live) == []
    assert unsubscribe_events(live) == 0

    # --- confirming unsubscribes at once, with time and source ---------------------------
    pressed_at = utcnow()
    reader.get_by_role("button", name="Ya, berhenti menerima email promosi").click()
    expect(reader.locator("h1")).to_have_text("Berhasil berhenti berlangganan")
    result = reader.locator("#result")
    expect(result).to_contain_text(
        f"Anda tidak akan lagi menerima pesan promosi di {MASKED}. Penarikan persetujuan "
        "ini tercatat pada")
    assert consent_rows(live, customer_id) == [*before, (False, "preference-centre")]
    with live.session() as session:
        withdrawal = session.scalars(select(Consent).where(
            Consent.customer_id == customer_id, Consent.granted.is_(False))).one()
        recorded = withdrawal.recorded_at.replace(tzinfo=pressed_at.tzinfo)
        assert pressed_at - timedelta(seconds=1) <= recorded <= utcnow()
        assert (withdrawal.channel.value, withdrawal.purpose.value) == ("email", "marketing")
    assert suppressions(live) == [("email", READER, SuppressionReason.unsubscribed)]
    assert unsubscribe_events(live) == 1
