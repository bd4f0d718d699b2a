"""The campaign studio in Chromium at 1366 x 768 (issue 18): Dinas staff open a starter,
introduce an error and see it inline at its line, fix it, preview the email (phone
and desktop frames) and the Facebook post for a chosen recipient, test-send it to their
own address (a real SMTP server on loopback), save a revision and submit it; an admin
approves and launches it, and the run page names the revision.

No axe-core is vendored in this repository, so no accessibility scan runs here."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from engine.delivery.trial_send import set_contact
from engine.models import Role
from tests.browser.conftest import Contexts, LiveServer
from tests.browser.test_owner_to_click_flow import log_in
from tests.factories import make_customer
from tests.web_helpers import make_eligible_business, make_user

STAFF = "staf-studio"
ADMIN = "admin-studio"
OWN_EMAIL = "staf.studio@ttskab.go.id"
PHOTO = "/media/" + "ab" * 32 + "/square.jpg"


def seed(live: LiveServer) -> None:
    with live.session() as session:
        _, product = make_eligible_business(session, "Tenun Ina Mollo",
                                            product_name="Selendang Buna", opt_in_to="tenun")
        product.image_url = PHOTO  # a photo of our own media store: the platforms take it
        make_customer(session, name="Yohana Nenobais", marketing=True)
        staff = make_user(session, STAFF, Role.dinas_staff)
        make_user(session, ADMIN, Role.dinas_admin)
        set_contact(session, staff, email=OWN_EMAIL, whatsapp=None, actor="test")
        session.commit()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def open_starter(page: Any, live: LiveServer) -> str:
    page.goto(live.url + "/dinas/kampanye")
    page.get_by_role("link", name="Kampanye baru").click()
    page.locator("a[data-starter=promotional]").click()
    expect(page.locator("#check-status")).to_have_text("Kampanye valid.")
    text: str = page.locator("#yaml").input_value()
    return text


def test_staff_fix_an_error_inline_and_preview(live_server: LiveServer,
                                               contexts: Contexts) -> None:
    live = live_server
    seed(live)
    page = contexts.new(1366, 768).new_page()
    log_in(page, live, STAFF)
    text = open_starter(page, live)
    # The audience of everyone with consent, so the chosen recipient is in it.
    text = text.replace("{purchased_category: kerajinan_tangan, within_days: 365}",
                        "{all: true}")
    broken = text.replace("    subject:", "    subjek:", 1)
    line = line_of(broken, "subjek:")
    page.locator("#yaml").fill(broken)
    problem = page.locator(f"#problems li[data-line='{line}']")
    expect(problem).to_contain_text("apakah maksud Anda 'subject'")
    expect(problem).to_have_attribute("data-column", "5")
    expect(page.locator("#gutter .bad")).to_have_text(str(line))
    expect(page.locator(f"#highlight .y-error[data-line='{line}']")).to_contain_text("subjek")
    # The coloured copy shows exactly the typed text (no markup leaking into it).
    shown = page.locator("#highlight").inner_text().rstrip("\n").splitlines()
    assert [row.rstrip() for row in shown] == [row.rstrip() for row in broken.splitlines()]
    page.locator("#yaml").fill(text)
    expect(page.locator("#check-status")).to_have_text("Kampanye valid.")
    expect(page.locator("#problems li")).to_have_count(0)
    expect(page.locator("#plan-audience")).to_have_text("1")
    expect(page.locator("#plan-products")).to_contain_text("Selendang Buna")
    page.get_by_role("button", name="Tampilkan pratinjau").click()
    expect(page.locator("#pv-subject")).to_contain_text("diskon 15%")
    picker = page.locator("#recipient")
    expect(picker.locator("option", has_text="Yohana Nenobais")).to_have_count(1)
    picker.select_option(label="Yohana Nenobais")
    page.get_by_role("button", name="Tampilkan pratinjau").click()
    expect(page.locator("#pv-subject")).to_contain_text("Yohana, diskon 15%")
    expect(page.locator("#pv-preheader")).to_contain_text("TENUN15")
    for frame in ("#pv-phone", "#pv-desktop"):
        expect(page.locator(frame)).to_have_attribute("sandbox", "")
        expect(page.locator(frame)).to_have_attribute("srcdoc", re.compile("Selendang Buna"))
    expect(page.locator("#pv-phone")).to_have_attribute("width", "390")
    expect(page.frame_locator("#pv-phone").locator("body")).to_contain_text("Halo Yohana")
    expect(page.locator("#pv-text")).to_contain_text("Yohana")
    facebook = page.locator("#pv-posts article[data-platform=facebook]")
    expect(facebook).to_contain_text("Selendang Buna")
    expect(facebook).to_contain_text(re.compile(r"\d+ dari \d+ karakter"))
    expect(page.locator("#pv-kit")).to_contain_text("Selendang Buna")
    assert not [u for u in contexts.blocked if "cdn" in u]
    page.locator("#trial-channel").select_option("email")
    page.get_by_role("button", name="Kirim uji").click()
    expect(page.locator("#trial-status")).to_contain_text(f"Uji kirim terkirim ke Email saya "
                                                           f"{OWN_EMAIL}")
    mail = live.smtp.wait_for(1)[0]
    assert mail.rcpt_tos == [OWN_EMAIL]
    assert str(mail.message["Subject"]).startswith("[UJI] Yohana, diskon 15%")
    page.get_by_role("button", name="Simpan sebagai revisi").click()
    expect(page.locator("#save-status")).to_have_text("Tersimpan sebagai revisi 1.")
    page.get_by_role("link", name="Lihat revisi dan perbedaannya").click()
    expect(page.locator("article[data-revision='1'] h2")).to_contain_text(STAFF)
    page.get_by_role("button", name="Ajukan untuk ditinjau").click()
    expect(page.locator("p.notice")).to_contain_text("Revisi 1 diajukan")
    approve_and_launch(contexts, live)


def approve_and_launch(contexts: Contexts, live: LiveServer) -> None:
    """The second pair of eyes: the admin opens the queue, reads, launches now."""
    page = contexts.new(1366, 768).new_page()
    log_in(page, live, ADMIN)
    page.goto(live.url + "/dinas/kampanye/tinjau")
    page.locator("#review-queue a", has_text="Tinjau").click()
    expect(page.locator("#review-diff")).to_contain_text("+id: contoh-promosi")
    page.get_by_label("Sekarang (tetap dalam jam kirim)").check()
    page.get_by_role("button", name="Setujui & luncurkan").click()
    expect(page.locator("#run-revision")).to_contain_text("revisi 1")
    expect(page.locator("#run-revision a")).to_have_attribute(
        "href", "/dinas/kampanye/revisi/contoh-promosi#revisi-1")
    expect(page.locator("p.notice")).to_contain_text("Revisi 1 disetujui dan diluncurkan")
