"""Issue 16: UMKM owners sign up on their own, send the business for verification, and
hear the Dinas's outcome.

Real components throughout: the loopback SMTP server receives the codes and notices,
the WhatsApp sandbox writes its files, the database counts the limits.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from engine.config import Settings
from engine.delivery.context import reset_process_state
from engine.models import Business, Role, SignupCode, User, Verification, utcnow
from engine.umkm import signup
from tests.smtp_server import ScriptedSMTPServer
from tests.web_helpers import PASSWORD, World, make_eligible_business, make_user, post_form
from web.app import create_app

CODE_RE = re.compile(r"\b(\d{6})\b")
EMAIL = "yohana.tse@contoh.id"
BUSINESS = {
    "name": "Kopi Mollo Yohana", "nib": "9120000077771", "owner_name": "Yohana Tse",
    "nik": "5302062303900004", "kecamatan_code": "53.02.03", "desa": "", "address": "Jl. Kapan",
    "whatsapp": "0812 3456 7111", "phone": "", "email": "", "annual_sales": "",
}


@pytest.fixture
def world(settings: Settings, smtp_server: ScriptedSMTPServer) -> Iterator[World]:
    mailing = dataclasses.replace(settings, smtp_host=smtp_server.host,
                                  smtp_port=smtp_server.port)
    from engine.db import session_factory
    with session_factory(mailing)() as session:
        other, product = make_eligible_business(session, "Tenun Ina Lain")
        make_user(session, "pemilik-lain", Role.umkm_owner, other.id)
        make_user(session, "admin", Role.dinas_admin)
        session.commit()
        ids = {"other": other.id, "other_product": product.id}
    built = World(mailing, create_app(mailing), ids)
    yield built
    built.close()
    reset_process_state()


def start(client: TestClient, contact: str) -> tuple[int, str]:
    response = post_form(client, "/daftar", {"contact": contact})
    return response.status_code, response.text


def last_code(server: ScriptedSMTPServer, count: int) -> str:
    message = server.wait_for(count)[-1].message
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = CODE_RE.search(part.get_content())
    assert found, "no code in the mail"
    return found.group(1)


def enter(client: TestClient, code: str) -> tuple[int, str]:
    response = post_form(client, "/daftar/kode", {"code": code})
    return response.status_code, response.text


def sign_up(world: World, server: ScriptedSMTPServer, contact: str = EMAIL,
            username: str = "yohana") -> TestClient:
    """The whole sign-up as an owner does it; returns the logged-in client."""
    client = world.client()
    before = len(server.messages)
    assert start(client, contact)[0] == 303
    assert enter(client, last_code(server, before + 1))[0] == 303
    response = post_form(client, "/daftar/akun", {"username": username, "password": PASSWORD,
                                                  "password2": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/portal/usaha"
    return client


def test_login_page_links_to_sign_up(world: World) -> None:
    assert 'href="/daftar"' in world.client().get("/login").text


def test_signed_up_owner_registers_sends_and_sees_only_their_business(
        world: World, smtp_server: ScriptedSMTPServer) -> None:
    client = sign_up(world, smtp_server)
    assert post_form(client, "/portal/usaha", BUSINESS).status_code == 303
    home = client.get("/portal").text
    assert "Kopi Mollo Yohana" in home and "<dd>Mollo Utara</dd>" in home
    assert "5302**********04" in home and BUSINESS["nik"] not in home
    assert "Belum ditetapkan sebagai UMKM binaan Dinas" in home  # what is still missing
    assert "Kirim untuk verifikasi" in home
    with world.session() as session:
        user = session.scalars(select(User).where(User.username == "yohana")).one()
        assert user.role == Role.umkm_owner
        business = session.get(Business, user.business_id)
        assert business is not None and business.verification == Verification.draft
    assert post_form(client, "/portal/kirim-verifikasi", {}, form_page="/portal"
                     ).status_code == 303
    with world.session() as session:
        business = session.get(Business, user.business_id)
        assert business is not None and business.verification == Verification.pending
    assert "Kopi Mollo Yohana" in world.client("admin").get("/dinas/verifikasi").text
    # Tenant isolation: the other owner's product is a 404, their name never shows.
    assert client.get(f"/portal/produk/{world.ids['other_product']}").status_code == 404
    assert "Tenun Ina Lain" not in client.get("/portal").text


def test_five_wrong_codes_kill_the_code(world: World, smtp_server: ScriptedSMTPServer) -> None:
    client = world.client()
    assert start(client, EMAIL)[0] == 303
    right = last_code(smtp_server, 1)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        status, text = enter(client, wrong)
        assert status == 400 and f"Sisa {left} percobaan" in text
    status, text = enter(client, wrong)
    assert status == 400 and "tidak berlaku lagi" in text
    status, text = enter(client, right)  # even the right code is dead now
    assert status == 400 and "tidak berlaku lagi" in text
    assert client.get("/daftar/akun", follow_redirects=False).headers["location"] == "/daftar"


def test_expired_code_is_refused(world: World, smtp_server: ScriptedSMTPServer) -> None:
    client = world.client()
    assert start(client, EMAIL)[0] == 303
    code = last_code(smtp_server, 1)
    with world.session() as session:
        session.execute(update(SignupCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    status, text = enter(client, code)
    assert status == 400 and "kedaluwarsa" in text


def test_code_cannot_be_reused(world: World, smtp_server: ScriptedSMTPServer) -> None:
    client = world.client()
    assert start(client, EMAIL)[0] == 303
    code = last_code(smtp_server, 1)
    assert enter(client, code)[0] == 303
    status, text = enter(client, code)
    assert status == 400 and "sudah dipakai" in text
    # A code read by someone else is useless in their browser (bound to the session).
    status, text = enter(world.client(), code)
    assert status == 400 and "Belum ada kode" in text


def test_codes_are_stored_as_hmac_only(world: World, smtp_server: ScriptedSMTPServer) -> None:
    client = world.client()
    assert start(client, EMAIL)[0] == 303
    code = last_code(smtp_server, 1)
    with world.session() as session:
        row = session.scalars(select(SignupCode)).one()
        assert code not in row.code_hash and row.code_hash == signup.hash_code(code)


def test_per_contact_limit_is_a_clear_429(world: World,
                                          smtp_server: ScriptedSMTPServer) -> None:
    for _ in range(signup.PER_CONTACT):
        assert start(world.client(), EMAIL)[0] == 303
    status, text = start(world.client(), EMAIL.upper())  # same contact, other spelling
    assert status == 429 and "paling banyak 3 kode per jam" in text
    assert len(smtp_server.messages) == signup.PER_CONTACT


def test_per_address_limit_is_a_clear_429(world: World,
                                          smtp_server: ScriptedSMTPServer) -> None:
    client = world.client()
    for n in range(signup.PER_ADDRESS):
        assert start(client, f"orang{n}@contoh.id")[0] == 303
    status, text = start(world.client(), "orang-baru@contoh.id")  # same address, new browser
    assert status == 429 and "Terlalu banyak pendaftaran dari jaringan Anda" in text
    assert len(smtp_server.messages) == signup.PER_ADDRESS


def test_bad_contact_is_a_400_saying_why(world: World) -> None:
    status, text = start(world.client(), "bukan-alamat")
    assert status == 400 and "tidak valid" in text


def test_duplicate_email_phone_and_username(world: World,
                                            smtp_server: ScriptedSMTPServer) -> None:
    sign_up(world, smtp_server, EMAIL, "yohana")
    status, text = start(world.client(), EMAIL)
    assert status == 409 and "sudah dipakai untuk akun lain" in text
    # WhatsApp: the sandbox writes the code into var/outbox/whatsapp/.
    client = world.client()
    assert start(client, "0812 3456 7999")[0] == 303
    written = sorted((Path(world.settings.var_dir) / "outbox" / "whatsapp").glob("*.json"))
    document = json.loads(written[-1].read_text())
    assert document["recipient"] == "6281234567999"
    found = CODE_RE.search(document["payload"]["text"])
    assert found
    assert enter(client, found.group(1))[0] == 303
    response = post_form(client, "/daftar/akun", {"username": "Yohana", "password": PASSWORD,
                                                  "password2": PASSWORD})
    assert response.status_code == 400 and "sudah dipakai" in response.text
    response = post_form(client, "/daftar/akun", {"username": "yohana-wa", "password": PASSWORD,
                                                  "password2": PASSWORD})
    assert response.status_code == 303
    status, text = start(world.client(), "+62 812-3456-7999")
    assert status == 409 and "sudah dipakai untuk akun lain" in text


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("nib", "12345", "NIB"),
    ("nik", "12", "NIK"),
    ("kecamatan_code", "Kecamatan Atlantis", "Kecamatan"),
])
def test_bad_business_fields_are_400_naming_the_field(
        world: World, smtp_server: ScriptedSMTPServer, field: str, value: str,
        expected: str) -> None:
    client = sign_up(world, smtp_server)
    response = post_form(client, "/portal/usaha", {**BUSINESS, field: value})
    assert response.status_code == 400
    errors = re.findall(r'role="alert">([^<]+)<', response.text)
    assert errors and expected.casefold() in errors[0].casefold(), errors


def test_owner_gets_the_rejection_reason_in_portal_and_mail(
        world: World, smtp_server: ScriptedSMTPServer) -> None:
    client = sign_up(world, smtp_server)
    assert post_form(client, "/portal/usaha", BUSINESS).status_code == 303
    assert post_form(client, "/portal/kirim-verifikasi", {}, form_page="/portal"
                     ).status_code == 303
    with world.session() as session:
        business_id = session.scalars(select(User.business_id)
                                      .where(User.username == "yohana")).one()
    admin = world.client("admin")
    reason = "Foto KTP tidak terbaca"
    response = post_form(admin, f"/dinas/usaha/{business_id}/verifikasi",
                         {"action": "reject", "note": reason}, form_page="/dinas/verifikasi")
    assert response.status_code == 303
    home = client.get("/portal").text
    assert "belum disetujui Dinas" in home and reason in home
    assert "Kirim untuk verifikasi" in home  # corrected data may be sent again
    notice = smtp_server.wait_for(2)[-1]
    assert notice.rcpt_tos == [EMAIL]
    text = notice.message.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert reason in body and "Mollo Utara" in body and "53.02.03" not in body
