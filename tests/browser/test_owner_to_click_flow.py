"""Acceptance of issue 6 in a real browser: from an owner's new product to a counted click.

An owner logs in through the login form, adds a product and tries to put it in an
upcoming campaign (refused: the Dinas has not approved the business as binaan yet);
staff approve the business in the verification queue; the owner opts the product in;
staff launch the campaign (``umkm campaign launch --now`` = ``engine.delivery.scheduler.launch``,
the dashboard has no launch button) and the embedded dispatcher mails it to the loopback
SMTP server. The received HTML is opened in Chromium, the product link is clicked, the
product page of the live server opens, and the click shows in the owner's engagement
page and in the dashboard (live, through its polling script) and the campaign page.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from engine.models import EngagementEvent, Product, Role, utcnow
from engine.umkm import businesses
from tests.browser.conftest import CAMPAIGN_NAME, CampaignFlow, Contexts, LiveServer
from tests.factories import make_customer
from tests.web_helpers import NIK_A, PASSWORD, make_user

OWNER = "pemilik-tenun"
STAFF = "staf-dinas"
BUSINESS = "Tenun Ikat Ina Oinlasi"
PRODUCT = "Selimut Tenun Buna Amanuban"
PHOTO = "https://umkm.ttskab.go.id/media/selimut-buna.jpg"
READER = "maria.fallo@contoh.id"


def seed(live: LiveServer) -> int:
    """A registered UMKM not yet approved as binaan, its owner, a staff member, a reader."""
    with live.session() as session:
        business = businesses.register_business(
            session, name=BUSINESS, nib="9120000012345", owner_name="Yuliana Tanesib",
            nik=NIK_A, kecamatan_code="53.02.01", whatsapp="081234567890", actor="test")
        make_user(session, OWNER, Role.umkm_owner, business.id)
        make_user(session, STAFF, Role.dinas_admin)  # approving is an admin decision (issue 13)
        make_customer(session, email=READER, name="Maria Fallo", marketing=True,
                      at=utcnow() - timedelta(days=30))
        session.commit()
        return business.id


def log_in(page: Any, live: LiveServer, username: str) -> None:
    page.goto(live.url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()


def test_owner_product_reaches_a_reader_and_the_click_is_counted(
        live_server: LiveServer, contexts: Contexts, campaign: CampaignFlow) -> None:
    live = live_server
    business_id = seed(live)
    campaign.schedule()

    # --- the owner logs in and adds a product -------------------------------------------
    owner = contexts.new_page()
    log_in(owner, live, OWNER)
    expect(owner).to_have_url(live.url + "/portal")
    expect(owner.locator("body")).to_contain_text(BUSINESS)
    owner.goto(live.url + "/portal/produk/baru")
    owner.fill("#name", PRODUCT)
    owner.select_option("#category", "kerajinan_tangan")
    owner.fill("#price", "Rp 350.000")
    owner.fill("#description", "Selimut tenun ikat motif Amanuban, pewarna alami.")
    owner.fill("#image_url", PHOTO)
    owner.uncheck("input[name=fetch_photo]")  # keep the URL as typed (no network here)
    owner.check("input[name=certifications][value=SNI]")
    owner.locator("form[action='/portal/produk/baru'] button[type=submit]").click()
    expect(owner).to_have_url(re.compile(r"/portal/produk/\d+\?saved=1$"))
    expect(owner.get_by_role("status")).to_have_text("Tersimpan.")
    product_id = int(re.findall(r"/portal/produk/(\d+)", owner.url)[0])
    with live.session() as session:
        product = session.get(Product, product_id)
        assert product is not None and product.business_id == business_id
        assert (product.price, product.category, product.image_url, product.certifications,
                product.in_stock) == (350_000, "kerajinan_tangan", PHOTO, ["SNI"], True)

    # --- joining the campaign is refused until the Dinas approves the business ----------
    choice = owner.locator("#kampanye li.row", has_text=CAMPAIGN_NAME)
    choice.get_by_role("button", name="Ikutkan").click()
    refusal = owner.get_by_role("alert")
    expect(refusal).to_contain_text("Produk belum dapat diikutkan")
    expect(refusal).to_contain_text("binaan")

    # --- staff approve it in the verification queue ---------------------------------------
    staff = contexts.new_page()
    staff.clock.install()  # the dashboard's 10-second polling runs on demand below
    log_in(staff, live, STAFF)
    expect(staff).to_have_url(live.url + "/dinas")
    staff.get_by_role("link", name=re.compile("Antrean verifikasi")).first.click()
    card = staff.locator(f"#usaha-{business_id}")
    expect(card).to_contain_text(BUSINESS)
    expect(card.locator("input[name=binaan]")).to_be_checked()
    card.get_by_role("button", name="Setujui").click()
    expect(staff.get_by_role("status")).to_have_text(f"UMKM {BUSINESS} disetujui.")

    # --- now the owner's product joins ----------------------------------------------------
    owner.goto(f"{live.url}/portal/produk/{product_id}")
    choice.get_by_role("button", name="Ikutkan").click()
    expect(owner.get_by_role("status")).to_have_text(f"Produk diikutkan ke {CAMPAIGN_NAME}.")
    expect(choice).to_contain_text("ikut")
    expect(choice.get_by_role("button")).to_have_text("Tarik")

    # --- staff launch; the dispatcher mails the reader -----------------------------------
    run_id = campaign.launch_now()
    (received,) = campaign.dispatch(run_id)
    assert received.rcpt_tos == [READER]
    staff.goto(live.url + "/dinas")
    run_row = staff.locator(f"tr[data-run='{run_id}']")
    expect(run_row).to_contain_text(CAMPAIGN_NAME)
    expect(run_row.locator("[data-field=progress]")).to_have_text("1 / 1")
    expect(run_row.locator("[data-event=unique_clicks]")).to_have_text("0")

    # --- the reader opens the mail and clicks the product --------------------------------
    reader = contexts.new_page()
    campaign.open_mail(reader, received)
    # The photo and the name both link to the product; the reader clicks the name.
    link = reader.get_by_role("link", name=PRODUCT, exact=True).filter(has_text=PRODUCT)
    expect(link).to_have_attribute("href", re.compile("^" + re.escape(live.url) + "/t/c/"))
    campaign.wait_past_bot_window(campaign.delivery(READER))
    link.click()
    reader.wait_for_url(re.compile(re.escape(f"{live.url}/produk/{product_id}") + r"(\?|$)"))
    expect(reader.locator("h1")).to_have_text(PRODUCT)
    expect(reader.locator(".price")).to_have_text("Rp 350.000")
    expect(reader.locator("article")).to_contain_text("SNI")
    with live.session() as session:
        click = session.scalars(select(EngagementEvent).where(
            EngagementEvent.type == "click")).one()
        assert (click.product_id, click.business_id, click.run_id, click.suspected_bot) == (
            product_id, business_id, run_id, False)

    # --- the owner sees the click ----------------------------------------------------------
    owner.goto(live.url + "/portal")
    owner.get_by_role("link", name="Keterlibatan").first.click()
    expect(owner).to_have_url(live.url + "/portal/keterlibatan")
    row = owner.locator("#engagement tbody tr", has_text=PRODUCT)
    expect(row.locator("td[data-metric=unique_clicks]")).to_have_text("1")
    by_campaign = owner.locator("#engagement-campaigns tbody tr", has_text=CAMPAIGN_NAME)
    expect(by_campaign.locator("td[data-metric=unique_clicks]")).to_have_text("1")

    # --- the dashboard shows it live, and so does the campaign page ------------------------
    staff.clock.run_for(11_000)  # one polling round of /dinas/progress.json
    expect(run_row.locator("[data-event=unique_clicks]")).to_have_text("1")
    run_row.get_by_role("link", name=CAMPAIGN_NAME).click()
    expect(staff.locator("h1")).to_have_text(CAMPAIGN_NAME)
    campaign_row = staff.locator(f"tr[data-run='{run_id}']")
    expect(campaign_row.locator("[data-event=unique_clicks]")).to_have_text("1")
    expect(campaign_row.locator("[data-field=status]")).to_have_text("selesai")
    assert set(contexts.blocked) == {PHOTO}  # nothing else tried to leave the machine
