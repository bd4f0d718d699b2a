"""Fixtures and helpers for the web tests (TestClient now, browser tests later).

Import the fixtures you use into a test module::

    from tests.web_helpers import World, login
    from tests.web_helpers import world_fixture  # noqa: F401 - the "world" fixture

``world`` builds, on the ``settings`` database (SQLite and PostgreSQL), two eligible UMKM
(A and B) with one complete, opted-in product each, an owner account per business, an
owner without a business, a Dinas staff and a Dinas admin account. Every account's
password is :data:`PASSWORD`. Users are inserted with one Argon2 hash computed once per
test session: hashing costs ~0.2 s on a busy machine, and ``engine.umkm.users`` itself is
exercised by ``test_web_auth``.

Browser tests: the portal and dashboard count only human engagement. ``engine.engagement.events``
flags as bots a user agent containing "HeadlessChrome" and a click less than 2 s after the
mail was sent, so give the Playwright context a normal ``user_agent`` and let a moment
pass before clicking, or the click will not show up in the engagement tables.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.db import session_factory
from engine.models import Business, Product, Role, User
from engine.umkm import businesses
from engine.umkm.users import hasher
from web.app import create_app

PASSWORD = "rahasia-uji-123"
NIK_A = "5302014107920001"
NIK_B = "5302055508850002"
_nib = itertools.count(9130000000001)
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hasher().hash(PASSWORD)


def make_user(session: Session, username: str, role: Role | str,
              business_id: int | None = None) -> User:
    user = User(username=username, password_hash=password_hash(), role=Role(role),
                business_id=business_id, active=True)
    session.add(user)
    session.flush()
    return user


def make_eligible_business(session: Session, name: str, nik: str = NIK_A,
                           kecamatan: str = "53.02.01", whatsapp: str | None = "081234567890",
                           product_name: str | None = None, category: str = "kerajinan_tangan",
                           opt_in_to: str | None = "semua-produk") -> tuple[Business, Product]:
    """A UMKM that meets Pasal 10 through the real service layer, with one product."""
    business = businesses.register_business(
        session, name=name, nib=str(next(_nib)), owner_name=f"Pemilik {name}", nik=nik,
        kecamatan_code=kecamatan, whatsapp=whatsapp, actor="test")
    product = businesses.add_product(
        session, business, name=product_name or f"Tenun {name}", category=category,
        price=250_000, description="Kain tenun ikat asli TTS.",
        image_url="https://umkm.ttskab.go.id/media/tenun.jpg", certifications=["halal"])
    businesses.set_binaan(session, business, True, "test")
    if opt_in_to:
        businesses.opt_in(session, product, opt_in_to, actor="test", is_tag=True)
    return business, product


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "page has no CSRF token field"
    return match.group(1)


def csrf(client: TestClient, path: str = "/login") -> str:
    """The session's CSRF token, read from a form page as a browser would see it."""
    response = client.get(path)
    assert response.status_code == 200, response.text[:300]
    return csrf_from(response.text)


def login(client: TestClient, username: str, password: str = PASSWORD,
          next_path: str = "") -> Any:
    token = csrf(client, "/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "next": next_path, "csrf_token": token},
                       follow_redirects=False)


def post_form(client: TestClient, path: str, data: dict[str, Any] | None = None,
              form_page: str | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token (taken from ``form_page`` or ``path``)."""
    token = csrf(client, form_page or path)
    return client.post(path, data={**(data or {}), "csrf_token": token},
                       follow_redirects=False, **kwargs)


@dataclass
class World:
    settings: Settings
    app: FastAPI
    ids: dict[str, int] = field(default_factory=dict)
    _clients: list[TestClient] = field(default_factory=list)

    def session(self) -> Session:
        return session_factory(self.settings)()

    def client(self, username: str | None = None) -> TestClient:
        """A fresh browser-like client, logged in as ``username`` when given."""
        client = TestClient(self.app)
        client.__enter__()
        self._clients.append(client)
        if username:
            response = login(client, username)
            assert response.status_code == 303, response.text[:300]
        return client

    def close(self) -> None:
        for client in self._clients:
            client.__exit__(None, None, None)


@pytest.fixture(name="world")
def world_fixture(settings: Settings) -> Iterator[World]:
    with session_factory(settings)() as session:
        business_a, product_a = make_eligible_business(session, "Tenun Ina A", NIK_A)
        business_b, product_b = make_eligible_business(session, "Madu Hutan B", NIK_B,
                                                       kecamatan="53.02.03",
                                                       category="makanan_olahan",
                                                       product_name="Madu Hutan Mollo")
        make_user(session, "pemilik-a", Role.umkm_owner, business_a.id)
        make_user(session, "pemilik-b", Role.umkm_owner, business_b.id)
        make_user(session, "pemilik-baru", Role.umkm_owner)
        make_user(session, "staf", Role.dinas_staff)
        make_user(session, "admin", Role.dinas_admin)
        session.commit()
        ids = {"business_a": business_a.id, "business_b": business_b.id,
               "product_a": product_a.id, "product_b": product_b.id}
    built = World(settings, create_app(settings), ids)
    yield built
    built.close()
