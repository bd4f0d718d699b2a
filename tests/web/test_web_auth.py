"""Accounts, login, sessions, CSRF, rate limit and role checks of the web app."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import engine.cli  # noqa: F401 - registers every command group
from engine.cli.app import app as cli_app
from engine.config import Settings
from engine.models import AuditLog, LoginAttempt, Product, Role, User
from engine.umkm import users
from tests.web_helpers import (
    PASSWORD,
    World,
    csrf,
    login,
    world_fixture,  # noqa: F401 - the "world" fixture
)
from web.app import create_app

# --- engine.umkm.users --------------------------------------------------------------------------


def test_passwords_are_argon2_hashed_and_verified(db: Session) -> None:
    user = users.create_user(db, "Petugas.Satu", "kata-sandi-panjang", "dinas_staff")
    assert user.username == "petugas.satu"
    assert user.password_hash.startswith("$argon2id$")
    assert "kata-sandi-panjang" not in user.password_hash
    assert users.authenticate(db, "PETUGAS.SATU", "kata-sandi-panjang") is user
    assert users.authenticate(db, "petugas.satu", "salah-sandi-123") is None
    assert users.authenticate(db, "tidak-ada", "kata-sandi-panjang") is None
    user.active = False
    assert users.authenticate(db, "petugas.satu", "kata-sandi-panjang") is None


def test_create_user_refuses_bad_accounts(db: Session) -> None:
    users.create_user(db, "staf1", "kata-sandi-panjang", Role.dinas_staff)
    with pytest.raises(users.UserError, match="sudah dipakai"):
        users.create_user(db, "STAF1", "kata-sandi-lain-1", "dinas_staff")
    with pytest.raises(users.UserError, match="Peran 'bos' tidak dikenal"):
        users.create_user(db, "staf2", "kata-sandi-panjang", "bos")
    with pytest.raises(users.UserError, match="minimal 8"):
        users.create_user(db, "staf3", "pendek", "dinas_staff")
    with pytest.raises(users.UserError, match="tidak terikat"):
        users.create_user(db, "staf4", "kata-sandi-panjang", "dinas_staff", business_id=1)
    with pytest.raises(users.UserError, match="tidak ditemukan"):
        users.create_user(db, "pemilik9", "kata-sandi-panjang", "umkm_owner", business_id=999)


def test_change_password_needs_the_current_one(db: Session) -> None:
    user = users.create_user(db, "pemilik1", "kata-sandi-lama", "umkm_owner")
    with pytest.raises(users.UserError, match="lama salah"):
        users.change_password(db, user, "bukan-itu-123", "kata-sandi-baru")
    users.change_password(db, user, "kata-sandi-lama", "kata-sandi-baru")
    assert users.authenticate(db, "pemilik1", "kata-sandi-baru") is user
    assert users.authenticate(db, "pemilik1", "kata-sandi-lama") is None


def test_cli_user_add_and_list(settings: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["user", "add", "Admin.Dinas", "--role", "dinas_admin"],
                           input="kata-sandi-admin\nkata-sandi-admin\n")
    assert result.exit_code == 0, result.output
    assert "Akun admin.dinas (dinas_admin) dibuat" in result.output
    assert "kata-sandi-admin" not in result.output
    listed = runner.invoke(cli_app, ["user", "list"])
    assert "admin.dinas" in listed.output and "dinas_admin" in listed.output
    again = runner.invoke(cli_app, ["user", "add", "admin.dinas", "--role", "dinas_staff",
                                        "--password-stdin"], input="kata-sandi-lain\n")
    assert again.exit_code == 1
    assert "sudah dipakai" in again.output and "Traceback" not in again.output
    bad_role = runner.invoke(cli_app, ["user", "add", "x-user", "--role", "raja"])
    assert bad_role.exit_code == 1 and "tidak dikenal" in bad_role.output


# --- login and sessions ---------------------------------------------------------------------


def test_login_sets_a_hardened_session_cookie(world: World) -> None:
    client = world.client()
    response = login(client, "pemilik-a")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal"
    cookie = response.headers["set-cookie"]
    assert "umkm_sesi=" in cookie
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # BASE_URL is http in tests
    assert client.get("/portal").status_code == 200


def test_session_cookie_is_secure_when_base_url_is_https(world: World) -> None:
    https = dataclasses.replace(world.settings, base_url="https://umkm.ttskab.go.id")
    with TestClient(create_app(https), base_url="https://testserver") as client:
        response = login(client, "staf")
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]
        assert response.headers["location"] == "/dinas"


def test_wrong_password_is_refused_in_indonesian(world: World) -> None:
    client = world.client()
    response = login(client, "pemilik-a", "bukan-sandinya")
    assert response.status_code == 401
    assert "Nama pengguna atau kata sandi salah." in response.text
    assert client.get("/portal", follow_redirects=False).status_code == 303


def test_login_rate_limit_per_username_and_address(world: World) -> None:
    client = world.client()
    for _ in range(5):
        assert login(client, "pemilik-a", "tebakan-salah").status_code == 401
    blocked = login(client, "pemilik-a")  # even the right password is refused now
    assert blocked.status_code == 429
    assert "Terlalu banyak percobaan masuk" in blocked.text
    assert blocked.headers["retry-after"] == "900"
    # Another account from the same address is not locked out by somebody else's typos.
    assert login(world.client(), "pemilik-b").status_code == 303
    # The failures are in the audit log; the counters expire after the 15-minute window.
    with world.session() as session:
        failures = session.scalars(select(AuditLog).where(
            AuditLog.action == "auth.login_failed")).all()
        assert len(failures) == 5 and all(f.actor == "pemilik-a" for f in failures)
        session.execute(update(LoginAttempt)
                        .values(window_start=LoginAttempt.window_start - timedelta(minutes=16)))
        session.commit()
    assert login(client, "pemilik-a").status_code == 303


def test_next_parameter_only_goes_to_local_paths(world: World) -> None:
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example",
                   "javascript:alert(1)"):
        response = login(world.client(), "pemilik-a", next_path=target)
        assert response.headers["location"] == "/portal", target
    response = login(world.client(), "pemilik-a", next_path="/portal/keterlibatan")
    assert response.headers["location"] == "/portal/keterlibatan"


def test_logout_ends_the_session(world: World) -> None:
    client = world.client("pemilik-a")
    assert client.post("/logout", follow_redirects=False).status_code == 403  # no token
    token = csrf(client, "/portal")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/portal", follow_redirects=False).status_code == 303


def test_a_forged_or_foreign_cookie_is_not_a_session(world: World) -> None:
    owner = world.client("pemilik-a")
    cookie = owner.cookies.get("umkm_sesi")
    assert cookie
    forged = TestClient(world.app)
    forged.cookies.set("umkm_sesi", cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"))
    response = forged.get("/portal", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_password_change_ends_other_sessions(world: World) -> None:
    first = world.client("pemilik-a")
    second = world.client("pemilik-a")
    token = csrf(first, "/akun/sandi")
    response = first.post("/akun/sandi", data={
        "csrf_token": token, "old_password": PASSWORD, "new_password": "sandi-baru-456",
        "new_password2": "sandi-baru-456"})
    assert response.status_code == 200
    assert "Kata sandi diganti" in response.text
    assert first.get("/portal").status_code == 200
    assert second.get("/portal", follow_redirects=False).status_code == 303
    assert login(world.client(), "pemilik-a", "sandi-baru-456").status_code == 303


def test_disabled_account_loses_its_session(world: World) -> None:
    client = world.client("pemilik-a")
    with world.session() as session:
        session.execute(update(User).where(User.username == "pemilik-a").values(active=False))
        session.commit()
    assert client.get("/portal", follow_redirects=False).status_code == 303


# --- CSRF -----------------------------------------------------------------------------------


def test_forms_without_a_valid_csrf_token_are_rejected(world: World) -> None:
    client = world.client("pemilik-a")
    other = world.client("pemilik-b")
    foreign_token = csrf(other, "/portal")
    product = {"name": "Sambal Lu'at", "category": "makanan_olahan", "price": "20000",
               "description": "Pedas.", "image_url": "https://contoh.id/a.jpg"}
    for data in (product, {**product, "csrf_token": ""},
                 {**product, "csrf_token": "palsu"}, {**product, "csrf_token": foreign_token}):
        response = client.post("/portal/produk/baru", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "Formulir kedaluwarsa atau tidak sah" in response.text
    # The same form from another site's page (Origin of evil.example) is refused as well.
    token = csrf(client, "/portal/produk/baru")
    response = client.post("/portal/produk/baru", data={**product, "csrf_token": token},
                           headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert response.status_code == 403
    with world.session() as session:
        assert session.scalar(select(Product).where(Product.name == "Sambal Lu'at")) is None
    # The login form itself is protected too.
    anonymous = world.client()
    response = anonymous.post("/login", data={"username": "pemilik-a", "password": PASSWORD})
    assert response.status_code == 403


# --- roles ----------------------------------------------------------------------------------


def test_roles_guard_portal_and_dashboard(world: World) -> None:
    anonymous = world.client()
    response = anonymous.get("/portal", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/portal"
    assert anonymous.get("/dinas", follow_redirects=False).status_code == 303
    owner = world.client("pemilik-a")
    assert owner.get("/dinas").status_code == 403
    assert "tidak memiliki akses" in owner.get("/dinas").text
    staff = world.client("staf")
    assert staff.get("/dinas").status_code == 200
    assert staff.get("/portal").status_code == 403
    assert world.client("admin").get("/dinas").status_code == 200


def test_pages_are_indonesian_and_switch_to_english(world: World) -> None:
    client = world.client()
    assert "Nama pengguna" in client.get("/login").text
    english = client.get("/login?lang=en")
    assert "Username" in english.text and '<html lang="en">' in english.text
    assert "Username" in client.get("/login").text  # remembered in a cookie
    assert "Nama pengguna" in client.get("/login?lang=id").text
