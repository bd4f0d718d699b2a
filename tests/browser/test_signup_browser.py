"""Acceptance of issue 16 on a phone-sized Chromium (390 x 844): an owner signs up alone.

The owner asks for a code by email (read from the loopback SMTP server), enters it,
chooses a password, registers the business, adds a product with a photo picked through
the file chooser and sends the business for verification; a ``dinas_admin`` approves
it in ``/dinas``; the owner sees the approval and the notice mail; the product is on
the public showcase with its photo served from ``/media`` as ``image/jpeg``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from engine.models import Role
from tests.browser.conftest import Contexts, LiveServer
from tests.browser.test_owner_to_click_flow import log_in
from tests.media.corpus import jpeg
from tests.web_helpers import PASSWORD, make_user

EMAIL = "maria.nenobais@contoh.id"
BUSINESS = "Tenun Ikat Maria Nenobais"
PRODUCT = "Selendang Tenun Mollo"
STAFF = "admin-dinas"
PHONE = {"width": 390, "height": 844}


def code_in_mail(live: LiveServer, count: int) -> str:
    message = live.smtp.wait_for(count)[-1].message
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = re.search(r"\b(\d{6})\b", part.get_content())
    assert found, "no code in the mail"
    return found.group(1)


def sign_up(owner: Any, live: LiveServer) -> None:
    owner.goto(live.url + "/login")
    owner.get_by_role("link", name=re.compile("Daftar sebagai pemilik UMKM")).click()
    expect(owner).to_have_url(live.url + "/daftar")
    owner.fill("#contact", EMAIL)
    owner.get_by_role("button", name="Kirim kode").click()
    expect(owner).to_have_url(live.url + "/daftar/kode")
    owner.fill("#code", code_in_mail(live, 1))
    owner.get_by_role("button", name="Periksa kode").click()
    expect(owner).to_have_url(live.url + "/daftar/akun")
    owner.fill("#username", "maria-tenun")
    owner.fill("#password", PASSWORD)
    owner.fill("#password2", PASSWORD)
    owner.get_by_role("button", name="Buat akun").click()
    expect(owner).to_have_url(live.url + "/portal/usaha")


def register_business(owner: Any) -> None:
    owner.fill("#name", BUSINESS)
    owner.fill("#nib", "9120000055551")
    owner.fill("#owner_name", "Maria Nenobais")
    owner.fill("#nik", "5302062303900004")
    owner.select_option("#kecamatan_code", label="Mollo Utara")
    owner.fill("#address", "Desa Fatumnasi")
    owner.fill("#whatsapp", "0812 3456 7222")
    owner.locator("form[action='/portal/usaha'] button[type=submit]").click()
    expect(owner.locator("body")).to_contain_text("5302**********04")
    expect(owner.locator("#verdict")).to_contain_text("Belum ditetapkan sebagai UMKM binaan")


def add_product(owner: Any, live: LiveServer, photo: Path) -> int:
    owner.goto(live.url + "/portal/produk/baru")
    owner.fill("#name", PRODUCT)
    owner.select_option("#category", "kerajinan_tangan")
    owner.fill("#price", "Rp 275.000")
    owner.fill("#description", "Selendang tenun ikat motif Mollo, pewarna alami.")
    with owner.expect_file_chooser() as chooser:
        owner.locator("#photo").click()
    chooser.value.set_files(str(photo))
    owner.check("input[name=certifications][value=SNI]")
    owner.locator("form[action='/portal/produk/baru'] button[type=submit]").click()
    expect(owner).to_have_url(re.compile(r"/portal/produk/\d+\?saved=1$"))
    return int(re.findall(r"/portal/produk/(\d+)", owner.url)[0])


def test_owner_signs_up_alone_and_reaches_the_showcase(
        live_server: LiveServer, contexts: Contexts, tmp_path: Path) -> None:
    live = live_server
    with live.session() as session:
        make_user(session, STAFF, Role.dinas_admin)
        session.commit()
    photo = tmp_path / "selendang.jpg"
    photo.write_bytes(jpeg((900, 700)))

    owner = contexts.new(**PHONE).new_page()
    sign_up(owner, live)
    register_business(owner)
    product_id = add_product(owner, live, photo)
    owner.goto(live.url + "/portal")
    owner.get_by_role("button", name="Kirim untuk verifikasi").click()
    expect(owner.locator("body")).to_contain_text("menunggu pemeriksaan")

    staff = contexts.new(**PHONE).new_page()
    log_in(staff, live, STAFF)
    staff.goto(live.url + "/dinas/verifikasi")
    card = staff.locator("form[action^='/dinas/usaha/']")
    card.locator("input[name=note]").fill("Data lengkap.")
    card.get_by_role("button", name=re.compile("Setujui")).click()
    expect(staff.locator("body")).to_contain_text(BUSINESS)

    owner.goto(live.url + "/portal")
    expect(owner.locator("#decision")).to_contain_text("sudah disetujui Dinas")
    notice = live.smtp.wait_for(2)[-1]
    assert notice.rcpt_tos == [EMAIL]
    body = notice.message.get_body(preferencelist=("plain",))
    assert body is not None and "sudah disetujui" in body.get_content()

    visitor = contexts.new(**PHONE).new_page()
    # The public product page (the catalogue list also needs an opt-in, issue 6).
    visitor.goto(f"{live.url}/produk/{product_id}")
    expect(visitor.locator("body")).to_contain_text(BUSINESS)
    image = visitor.locator(f"img[alt='{PRODUCT}']")
    expect(image).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]{64}/"))
    source = image.get_attribute("src")
    assert source is not None
    response = visitor.request.get(live.url + source)
    assert response.status == 200 and response.headers["content-type"] == "image/jpeg"
