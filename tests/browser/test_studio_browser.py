"""The campaign studio in Chromium at 1366 x 768 (issue 18): Dinas staff open a starter,
introduce an error and see it inline at its line, fix it, preview the email (phone
and desktop frames) and the Facebook post for a chosen recipient, test-send it to their
own address (a real SMTP server on loopback), save a revision and submit it; an admin
approves and launches it, and the run page names the revision. The launched run then
sends through the real pipeline in-process (``process_batch``, the workers' own step) a
few messages at a time: the campaign list's figures rise between reloads, and a pause
from the run page stops sending within one message (counted from the delivery rows).

The accessibility scan and the language check of these pages are in
``test_studio_a11y.py``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import func, select
from typer.testing import CliRunner

from engine.cli.app import app
from engine.delivery.pipeline import process_batch
from engine.delivery.trial_send import set_contact
from engine.models import Delivery, DeliveryStatus, Role
from tests.browser.axe import axe_blocking
from tests.browser.conftest import Contexts, LiveServer
from tests.browser.test_owner_to_click_flow import log_in
from tests.factories import make_customer
from tests.web_helpers import make_eligible_business, make_user
from web.studio_check import starter_text

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


def sendable(text: str) -> str:
    """The starter, mailed to everyone with consent at any hour of the day (the test
    must not depend on the time it runs)."""
    return (text.replace("{purchased_category: kerajinan_tangan, within_days: 365}",
                         "{all: true}")
            .replace('send_window: {from: "08:00", to: "20:00"}',
                     'send_window: {from: "00:00", to: "23:59"}'))


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
    # The audience of everyone with consent, so the chosen recipient is in it.
    text = sendable(open_starter(page, live))
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
    more_customers(live, 4)  # the audience is taken at launch: 5 recipients
    admin = approve_and_launch(contexts, live)
    run_id = int(admin.url.split("/dinas/run/")[1].split("?")[0])
    progress_rises_in_the_list(admin, live, run_id)
    pause_stops_within_one_message(admin, live, run_id)


def more_customers(live: LiveServer, n: int) -> None:
    with live.session() as session:
        for _ in range(n):
            make_customer(session, marketing=True)
        session.commit()


def email_rows(live: LiveServer, run_id: int, status: DeliveryStatus) -> list[int]:
    with live.session() as session:
        return list(session.scalars(select(Delivery.id).where(
            Delivery.run_id == run_id, Delivery.channel == "email",
            Delivery.status == status).order_by(Delivery.id)))


def sent_count(live: LiveServer, run_id: int) -> int:
    with live.session() as session:
        return int(session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.run_id == run_id, Delivery.status == DeliveryStatus.sent)) or 0)


def send_some(live: LiveServer, run_id: int, n: int) -> int:
    """The next ``n`` pending emails through the pipeline, as a worker sends them."""
    pending = email_rows(live, run_id, DeliveryStatus.pending)
    assert len(pending) >= n, pending
    result = process_batch(run_id, pending[:n], live.settings)
    assert result.sent == n, result
    live.smtp.wait_for(1 + sent_count(live, run_id))  # the test send, then the run's
    return sent_count(live, run_id)


def progress_rises_in_the_list(page: Any, live: LiveServer, run_id: int) -> None:
    """The list's "sent" figure follows the delivery rows between reloads."""
    row = page.locator("#studio-campaigns tr", has_text="contoh-promosi")
    page.goto(live.url + "/dinas/kampanye")
    expect(row.locator("td[data-status]")).to_have_attribute("data-status", "running")
    expect(row.locator("td[data-figure=sent]")).to_have_text("0")
    planned = int(row.locator("td[data-figure=planned]").inner_text())
    assert planned >= 5, planned
    for batch in (2, 1):
        sent = send_some(live, run_id, batch)
        page.reload()
        expect(row.locator("td[data-figure=sent]")).to_have_text(str(sent))


def pause_stops_within_one_message(page: Any, live: LiveServer, run_id: int) -> None:
    """Jeda on the run page; a batch processed after it sends at most one more."""
    page.goto(f"{live.url}/dinas/run/{run_id}")
    before = sent_count(live, run_id)
    expect(page.locator("[data-field=sent]")).to_have_text(str(before))
    expect(page.locator("#run-revision")).to_contain_text("revisi 1")
    page.get_by_role("button", name="Jeda").click()
    expect(page.locator("p.notice")).to_contain_text(f"Putaran {run_id} dijeda.")
    expect(page.locator("[data-field=status_label]")).to_have_text("dijeda")
    pending = email_rows(live, run_id, DeliveryStatus.pending)
    assert len(pending) >= 2, pending  # something was still to send when paused
    process_batch(run_id, pending, live.settings)
    after = sent_count(live, run_id)
    assert before <= after <= before + 1, (before, after)
    assert len(email_rows(live, run_id, DeliveryStatus.pending)) >= len(pending) - 1
    page.reload()
    expect(page.locator("[data-field=sent]")).to_have_text(str(after))
    expect(page.get_by_role("button", name="Lanjutkan")).to_be_visible()
    assert axe_blocking(page) == []  # the paused run page, its notice and buttons


def approve_and_launch(contexts: Contexts, live: LiveServer) -> Any:
    """The second pair of eyes: the admin opens the queue, reads, launches now."""
    page = contexts.new(1366, 768, bypass_csp=True).new_page()  # CSP: for axe's script
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
    return page


def test_a_sync_conflict_shows_on_the_revision_page(live_server: LiveServer,
                                                    contexts: Contexts,
                                                    tmp_path: Path) -> None:
    """``umkm campaign sync`` imports a file; the browser saves a newer revision; the
    file changes in git too: the sync refuses, and the revision page says so."""
    live = live_server
    seed(live)
    runner = CliRunner(env={"COLUMNS": "200"})
    folder = tmp_path / "campaigns"
    folder.mkdir()
    file = folder / "buletin.yaml"
    text = starter_text("newsletter")
    file.write_text(text, encoding="utf-8")
    first = runner.invoke(app, ["campaign", "sync", str(folder)])
    assert first.exit_code == 0 and "diimpor sebagai revisi 1" in first.output, first.output
    page = contexts.new(1366, 768, bypass_csp=True).new_page()
    log_in(page, live, STAFF)
    page.goto(live.url + "/dinas/kampanye/revisi/contoh-buletin")
    expect(page.locator("article[data-revision='1'] h2")).to_contain_text("git:buletin.yaml")
    expect(page.locator("#sync-conflict")).to_have_count(0)
    page.get_by_role("link", name="Buka di editor").click()
    expect(page.locator("#check-status")).to_have_text("Kampanye valid.")
    page.locator("#yaml").fill(text.replace("Kabar UMKM TTS Bulanan", "Kabar dari peramban"))
    expect(page.locator("#check-status")).to_have_text("Kampanye valid.")
    page.get_by_role("button", name="Simpan sebagai revisi").click()
    expect(page.locator("#save-status")).to_have_text("Tersimpan sebagai revisi 2.")
    file.write_text(text.replace("Kabar UMKM TTS Bulanan", "Kabar dari git"), encoding="utf-8")
    refused = runner.invoke(app, ["campaign", "sync", str(folder)])
    assert refused.exit_code == 1 and "Konflik" in refused.output, refused.output
    page.goto(live.url + "/dinas/kampanye/revisi/contoh-buletin")
    conflict = page.locator("#sync-conflict")
    expect(conflict).to_contain_text("Konflik pada kampanye contoh-buletin: berkas buletin.yaml")
    expect(conflict).to_contain_text("studio punya revisi 2 yang lebih baru")
    expect(conflict).to_have_attribute("role", "alert")
    assert page.locator("article[data-revision]").count() == 2  # nothing was imported
    assert axe_blocking(page) == []
