"""Security acceptance of issue 6 over HTTP, on SQLite and PostgreSQL.

* No open redirect: the click redirect, the login ``next=`` and every GET route of the
  app given hostile redirect parameters never send a browser to another host.
* Forged unsubscribe tokens are rejected (GET page and one-click POST), and the RFC 8058
  one-click POST works without any cookie: 200, no redirect, no cookie set.
* Every state-changing form route, enumerated from ``app.routes`` (only ``/u/*``,
  ``/api/*`` and ``/webhooks/*`` are exempt: they authenticate otherwise), answers 403
  without this session's CSRF token and changes nothing in the database; with the token
  the same request goes through (so the 403 really is the CSRF check).
* Owner A cannot read or change owner B's business, products, opt-ins or reports, on
  every owner route (also enumerated): B's ids give 404/403 and never B's data.
* The session cookie is HttpOnly and SameSite; failed logins are rate limited (429).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.campaign import revisions
from engine.config import reset_settings
from engine.engagement.tracking import (
    make_click_token,
    make_open_token,
    make_unsubscribe_token,
    url_hash,
)
from engine.models import (
    Base,
    Business,
    Consent,
    DeliveryProduct,
    EngagementEvent,
    Product,
    ProductOptIn,
    Role,
    RunStatus,
    Suppression,
    TrackedLink,
    User,
    utcnow,
)
from engine.umkm import agreements, guidance, marketplaces, supervision, trainings, users
from tests.conftest import TEST_SECRET
from tests.factories import make_campaign, make_customer, make_delivery, make_run
from tests.web_helpers import (
    NIK_B,
    PASSWORD,
    World,
    csrf,
    csrf_from,
    login,
    make_user,
    world_fixture,  # noqa: F401 - the "world" fixture
)

HOST = "testserver"  # TestClient's host: the only host a redirect may name
CSRF_EXEMPT = ("/u/", "/api/", "/webhooks/")
CSRF_MESSAGE = "Formulir kedaluwarsa atau tidak sah"
HOSTILE_TARGETS = [
    "//evil.example",
    "//evil.example/portal",
    "///evil.example",
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "%2F%2Fevil.example",
    "%2f%2fevil.example%2fportal",
    "/%2F%2Fevil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example",
    "https:%2F%2Fevil.example",
    "http://testserver@evil.example",
    "data:text/html,<script>alert(1)</script>",
]
REDIRECT_PARAMS = ("next", "url", "redirect", "redirect_to", "return", "return_to",
                   "target", "to", "continue", "dest")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def off_site(location: str) -> bool:
    """Would a browser following ``Location: <location>`` leave this site?

    Browsers treat ``\\`` like ``/``, drop tabs and newlines and read any number of
    leading slashes as "another host follows", so those count as leaving; everything else
    is resolved like a browser would.
    """
    if any(ch in location for ch in "\\\t\r\n") or location.strip().startswith("//"):
        return True
    resolved = urlsplit(urljoin(f"http://{HOST}/portal/page", location.strip()))
    return resolved.scheme not in ("http", "https") or resolved.hostname != HOST \
        or bool(resolved.username)


def test_off_site_detector_itself() -> None:
    """The predicate every redirect assertion relies on must catch each hostile form."""
    assert all(off_site(target) for target in HOSTILE_TARGETS
               if not target.startswith(("%2", "/%2")))
    for local in ("/portal", "/login?next=/portal", "produk/3", "/%2F%2Fevil.example",
                  f"http://{HOST}/dinas"):
        assert not off_site(local), local


# --- data ---------------------------------------------------------------------------------


@dataclass
class Sec:
    """The ``world`` plus what the security checks need, all committed."""

    world: World
    ids: dict[str, int]
    stored_url: str
    b_markers: tuple[str, ...]  # text that only owner B's data contains

    @property
    def app(self) -> FastAPI:
        return self.world.app

    def client(self, username: str | None = None) -> TestClient:
        return self.world.client(username)


@pytest.fixture
def sec(world: World) -> Sec:
    """B's product went out in a campaign and was clicked; A has a lead; a running run."""
    with world.session() as session:
        business_b = session.get(Business, world.ids["business_b"])
        assert business_b is not None
        upcoming = make_campaign(session, key="promo-pekan", name="Promo Akhir Pekan",
                                 active=True)
        campaign = make_campaign(session, key="promo-madu", name="Kampanye Madu Mollo",
                                 active=True)
        run = make_run(session, campaign, status=RunStatus.running, started_at=utcnow())
        customer = make_customer(session, email="yosef@contoh.id", marketing=True)
        delivery = make_delivery(session, run, customer, at=utcnow() - timedelta(hours=1),
                                 business_id=business_b.id)
        session.add(DeliveryProduct(delivery_id=delivery.id, product_id=world.ids["product_b"],
                                    business_id=business_b.id, position=0))
        stored = f"http://{HOST}/produk/{world.ids['product_b']}?utm_source=dinas-tts"
        link = TrackedLink(run_id=run.id, url=stored, url_hash=url_hash(stored),
                           product_id=world.ids["product_b"], business_id=business_b.id)
        session.add(link)
        session.flush()
        for _ in range(3):
            session.add(EngagementEvent(type="click", run_id=run.id, delivery_id=delivery.id,
                                        link_id=link.id, business_id=business_b.id,
                                        product_id=world.ids["product_b"],
                                        occurred_at=utcnow()))
        session.add(EngagementEvent(type="lead", channel="web", occurred_at=utcnow(),
                                    business_id=world.ids["business_a"],
                                    product_id=world.ids["product_a"]))
        training, request = _programmes(session, business_b)
        session.commit()
        ids = {**world.ids, "run": run.id, "campaign": campaign.id, "upcoming": upcoming.id,
               "delivery": delivery.id, "link": link.id, "customer": customer.id,
               "training": training.id, "guidance_b": request.id,
               "pendamping": request.pendamping_id or 0}
        markers = ("Madu Hutan", business_b.nib, NIK_B, campaign.name)
    return Sec(world, ids, stored, markers)


def _programmes(session: Any, business_b: Business) -> tuple[Any, Any]:
    """A training to register for and B's guidance request, assigned to "pendamping"."""
    helper = make_user(session, "pendamping", Role.pendamping)
    training = trainings.create_training(session, topic="Foto produk", trainer="Dinas",
                                         starts_at=utcnow() + timedelta(days=3), capacity=5,
                                         place="Aula Dinas", actor="test")
    request = guidance.create_request(session, business_b, "pemasaran", "Toko daring",
                                      actor="pemilik-b")
    guidance.assign(session, request, helper, actor="admin")
    return training, request


def db_fingerprint(world: World) -> str:
    """A digest of every row of every table: "nothing changed" in one comparison."""
    digest = hashlib.sha256()
    with world.session() as session:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = session.execute(select(table).order_by(*order)).all()
            digest.update(f"{table.name}:{rows!r}".encode())
    return digest.hexdigest()


def b_rows(sec: Sec) -> str:
    """Everything of owner B that owner A must not be able to change."""
    with sec.world.session() as session:
        b = sec.ids["business_b"]
        rows: list[Any] = [session.execute(select(Business.__table__).where(
            Business.id == b)).all()]
        rows.append(session.execute(select(Product.__table__).where(
            Product.business_id == b).order_by(Product.id)).all())
        rows.append(session.execute(select(ProductOptIn.__table__).join(
            Product, Product.id == ProductOptIn.product_id).where(
            Product.business_id == b).order_by(ProductOptIn.id)).all())
        rows.append(session.execute(select(User.__table__).where(
            User.business_id == b)).all())
        return repr(rows)


def routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every HTTP route the app serves."""
    for route in iter_route_contexts(app.routes):
        for method in sorted(route.methods or ()):
            if route.path and method != "HEAD":
                yield method, route.path


def fill(path: str, ids: dict[str, str]) -> str:
    """Fill ``{param}`` placeholders; an unknown one means a new route to think about."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ids:
            pytest.fail(f"route {path}: add its parameter {{{name}}} to this test")
        return ids[name]
    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def location(response: Any) -> str | None:
    value = response.headers.get("location")
    return None if value is None else str(value)


# --- open redirects -------------------------------------------------------------------------


def test_click_redirect_only_follows_links_the_system_created(sec: Sec) -> None:
    client = sec.client()
    good = make_click_token(sec.ids["delivery"], sec.ids["link"])
    tampered = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    hostile = [tampered, good[:-1], good + "A", make_open_token(sec.ids["delivery"]),
               make_click_token(sec.ids["delivery"], sec.ids["link"] + 1),
               *HOSTILE_TARGETS]
    for token in hostile:
        raw = [f"/t/c/{token}"] if token.isprintable() else []  # httpx refuses a raw tab
        for path in (f"/t/c/{quote(token, safe='')}", *raw):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 404, path
            assert location(response) is None, path
    # A genuine click goes exactly where the system's link points, whatever the query says.
    query = "&".join(f"{p}={quote('https://evil.example')}" for p in REDIRECT_PARAMS)
    response = client.get(f"/t/c/{good}?{query}", follow_redirects=False)
    assert response.status_code == 302 and location(response) == sec.stored_url


@pytest.mark.parametrize("stored", ["javascript:alert(1)", "//evil.example/x",
                                    "https:evil.example", "/\\evil.example",
                                    "data:text/html,x"])
def test_a_hostile_stored_target_is_never_followed(sec: Sec, stored: str) -> None:
    with sec.world.session() as session:
        link = TrackedLink(run_id=sec.ids["run"], url=stored, url_hash=url_hash(stored))
        session.add(link)
        session.commit()
        token = make_click_token(sec.ids["delivery"], link.id)
    response = sec.client().get(f"/t/c/{token}", follow_redirects=False)
    assert response.status_code == 404 and location(response) is None


def test_login_next_never_leaves_the_site(sec: Sec) -> None:
    # Every hostile next: the login form only ever carries an on-site value along.
    client = sec.client()
    for target in HOSTILE_TARGETS:
        form = client.get("/login", params={"next": target}).text
        carried = re.search(r'name="next" value="([^"]*)"', form)
        assert carried is not None and not off_site(html.unescape(carried.group(1))), target
    # A posted next (a hand-made form) after a successful login: one of each trick (each
    # login costs an Argon2 verification, so not all nineteen).
    for target in ("//evil.example", "///evil.example", "/\\evil.example", "/\t/evil.example",
                   "https:evil.example", "javascript:alert(1)", " //evil.example",
                   "http://testserver@evil.example"):
        response = login(sec.client(), "pemilik-a", next_path=target)
        assert response.status_code == 303, target
        assert location(response) == "/portal", (target, location(response))
    # A local next is honoured (the checks above do not pass by ignoring next).
    response = login(sec.client(), "pemilik-a", next_path="/portal/keterlibatan")
    assert location(response) == "/portal/keterlibatan"


@pytest.mark.parametrize("username", [None, "pemilik-a", "staf"])
def test_no_get_route_redirects_off_site(sec: Sec, username: str | None) -> None:
    """Every GET route, each hostile target in every usual redirect parameter."""
    client = sec.client(username)
    with sec.world.session() as db:
        product = db.get(Product, sec.ids["product_a"])
        assert product is not None
        shop = marketplaces.save_links(db, product, "https://shopee.co.id/ina-a")[0]
        db.commit()
        link_id = str(shop.id)
    ids = {"product_id": str(sec.ids["product_a"]), "campaign_id": str(sec.ids["campaign"]),
           "ref": "INV-1", "campaign_key": "promo-pekan", "digest": "0" * 64,
           "name": "square.jpg", "link_id": link_id, "training_id": str(sec.ids["training"]),
           "request_id": str(sec.ids["guidance_b"]), "agreement_id": "1",
           "revision_id": str(_revision(sec)), "run_id": str(sec.ids["run"]),
           "business_id": str(sec.ids["business_a"]), "code": "53.02.01"}
    tokens = {"/t/c/": make_click_token(sec.ids["delivery"], sec.ids["link"]),
              "/t/o/": make_open_token(sec.ids["delivery"]),
              "/u/": make_unsubscribe_token(sec.ids["delivery"])}
    checked = 0
    for method, template in routes(sec.app):
        if method != "GET" or template.startswith(("/docs", "/redoc", "/openapi")):
            continue
        genuine = [t for prefix, t in tokens.items() if template.startswith(prefix)]
        path = fill(template, {**ids, "token": genuine[0] if genuine else "x"})
        for rotation in (0, len(REDIRECT_PARAMS)):  # every hostile target once per route
            params = {name: HOSTILE_TARGETS[(rotation + i) % len(HOSTILE_TARGETS)]
                      for i, name in enumerate(REDIRECT_PARAMS)}
            response = client.get(path, params=params, follow_redirects=False)
            assert response.status_code < 500, (path, response.status_code)
            where = location(response)
            if where is None:
                continue
            if template == "/t/c/{token}":
                assert where == sec.stored_url
            elif template == "/m/{link_id}":
                assert where == "https://shopee.co.id/ina-a"  # the stored link, nothing else
            elif template == "/produk/{product_id}/wa":
                assert where.startswith("https://wa.me/6281234567890?")  # A's own number
            else:
                assert not off_site(where), (path, params, where)
        checked += 1
    assert checked >= 20


# --- unsubscribe -----------------------------------------------------------------------------


def test_forged_unsubscribe_tokens_are_rejected(sec: Sec,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_unsubscribe_token(sec.ids["delivery"])
    monkeypatch.setenv("SECRET_KEY", "another-installation-secret-0123456789abcdef")
    reset_settings()
    foreign_key = make_unsubscribe_token(sec.ids["delivery"])  # right shape, wrong key
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    reset_settings()
    assert foreign_key != good
    forged = [
        foreign_key,
        good[:12] + ("A" if good[12] != "A" else "B") + good[13:],
        good[:-2],
        good + "AA",
        make_click_token(sec.ids["delivery"], sec.ids["link"]),
        make_open_token(sec.ids["delivery"]),
        make_unsubscribe_token(sec.ids["delivery"] + 500),
        make_unsubscribe_token(customer_id=sec.ids["customer"] + 500, channel="email"),
        make_unsubscribe_token(customer_id=sec.ids["customer"], channel="merpati-pos"),
        "A" * 40,
    ]
    before = db_fingerprint(sec.world)
    client = sec.client()
    for token in forged:
        page = client.get(f"/u/{token}", follow_redirects=False)
        assert page.status_code == 404, token
        assert "Tautan tidak berlaku" in page.text
        one_click = client.post(f"/u/{token}", data=ONE_CLICK, follow_redirects=False)
        assert one_click.status_code == 404 and location(one_click) is None, token
        form = client.post(f"/u/{token}", data={"action": "all", "csrf_token": "x"})
        assert form.status_code == 404, token
    assert db_fingerprint(sec.world) == before
    # The genuine token's page opens, and its form still needs the page's own token.
    page = client.get(f"/u/{good}")
    assert page.status_code == 200 and csrf_from(page.text)
    refused = client.post(f"/u/{good}", data={"action": "unsubscribe", "csrf_token": "palsu"})
    assert refused.status_code == 403
    assert db_fingerprint(sec.world) == before


def test_one_click_post_works_without_cookies(sec: Sec) -> None:
    token = make_unsubscribe_token(sec.ids["delivery"])
    with TestClient(sec.app) as bare:  # a mail provider's request: no cookie, no session
        assert not bare.cookies
        response = bare.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             follow_redirects=False)
    assert response.status_code == 200
    assert location(response) is None and "set-cookie" not in response.headers
    assert "Anda telah berhenti berlangganan." in response.text
    with sec.world.session() as session:
        assert session.scalars(select(Suppression.address)).all() == ["yosef@contoh.id"]
        withdrawal = session.scalars(select(Consent).where(
            Consent.customer_id == sec.ids["customer"], Consent.granted.is_(False))).one()
        assert withdrawal.source == "one-click"


# --- CSRF ----------------------------------------------------------------------------------


def _csrf_cases(sec: Sec) -> dict[str, tuple[str | None, dict[str, Any], int]]:
    """For each form route: who posts, a body valid but for the token, the status with it."""
    product = {"name": "Sambal Lu'at Ina", "category": "makanan_olahan", "price": "25.000",
               "description": "Sambal khas Timor.", "in_stock": "1",
               "image_url": "https://umkm.ttskab.go.id/media/sambal.jpg"}
    with sec.world.session() as session:  # contact data only: a new identity would hold the
        own = session.get(Business, sec.ids["business_a"])  # business and refuse the opt-in
        assert own is not None
        business = {"name": own.name, "nib": own.nib, "owner_name": own.owner_name,
                    "nik": "", "kecamatan_code": own.kecamatan_code, "whatsapp": "081234567890"}
    return {
        "/login": (None, {"username": "pemilik-a", "password": PASSWORD, "next": ""}, 303),
        "/logout": ("pemilik-a", {}, 303),
        "/akun/sandi": ("pemilik-a", {"old_password": PASSWORD, "new_password": "baru-1234567",
                                      "new_password2": "lain-1234567"}, 400),
        "/portal/usaha": ("pemilik-a", business, 303),
        "/portal/produk/baru": ("pemilik-a", product, 303),
        "/portal/produk/{product_id}": ("pemilik-a", {**product, "name": "Tenun Baru"}, 303),
        "/portal/produk/{product_id}/ikut": ("pemilik-a", {"target": "c:promo-pekan"}, 200),
        "/portal/produk/{product_id}/tarik": ("pemilik-a", {"target": "t:semua-produk"}, 200),
        "/portal/produk/{product_id}/arsip": ("pemilik-a", {"archived": "0"}, 303),
        "/portal/produk/{product_id}/hapus": ("pemilik-a", {}, 409),  # has history: archive
        "/dinas/run/{run_id}/jeda": ("staf", {}, 303),
        "/dinas/run/{run_id}/lanjut": ("staf", {}, 303),
        "/dinas/usaha/{business_id}/verifikasi": ("admin", {"action": "reject", "note": "x"},
                                                  303),
        "/dinas/pengguna": ("admin", {"username": "staf-baru", "role": "dinas_staff",
                                      "password": "Kuat-sekali-2026", "business_id": ""}, 200),
        "/dinas/pengguna/{user_id}/sandi": ("admin", {"password": "Sandi-baru-2026"}, 200),
        "/dinas/pengguna/{user_id}/umkm": ("admin", {"business_id": ""}, 400),
        "/dinas/pengguna/{user_id}/status": ("admin", {"active": "0"}, 200),
        "/dinas/keterkiriman/abaikan": ("admin", {"note": "uji CSRF"}, 303),
        "/daftar": (None, {"contact": "calon.pemilik@contoh.id"}, 303),
        "/daftar/kode": (None, {"code": "000000"}, 400),  # this browser asked for no code
        "/daftar/akun": (None, {"username": "calon", "password": PASSWORD,
                                "password2": PASSWORD}, 303),  # no verified code: back
        "/portal/kirim-verifikasi": ("pemilik-a", {}, 409),  # already in the queue
        # No app id is configured here: the start says so (400) instead of redirecting.
        "/dinas/akun-sosial/hubungkan/facebook": ("admin", {}, 400),
        "/dinas/akun-sosial/hubungkan/tiktok": ("admin", {}, 400),
        "/dinas/akun-sosial/hubungkan/facebook/pilih": ("admin", {"page_id": "1"}, 400),
        "/dinas/akun-sosial/hubungkan/whatsapp": ("admin", {"phone_number_id": "",
                                                            "access_token": ""}, 400),
        "/dinas/kampanye/periksa": ("staf", {"yaml": "version: 1\n"}, 200),
        "/dinas/kampanye/pratinjau": ("staf", {"yaml": "version: 1\n"}, 200),
        "/dinas/kampanye/simpan": ("staf", {"yaml": "version: 1\n"}, 200),  # refused: invalid
        "/portal/pelatihan/daftar": ("pemilik-a", {"training_id": str(sec.ids["training"])},
                                     303),
        "/portal/pendampingan": ("pemilik-a", {"topic": "legalitas", "description": "NIB"},
                                 303),
        "/pendamping/permintaan/{request_id}/sesi": ("pendamping", {
            "held_on": "2026-12-01", "duration_minutes": "30", "notes": "Akun toko dibuat"},
            303),
        "/pendamping/permintaan/{request_id}/selesai": ("pendamping", {}, 303),
        "/dinas/pelatihan": ("staf", {"topic": "Keuangan", "trainer": "Bank NTT",
                                      "starts_at": "2030-02-01 09:00", "capacity": "10",
                                      "place": "Aula", "online_url": ""}, 303),
        "/dinas/pelatihan/{training_id}/peserta": ("staf", {
            "business_id": str(sec.ids["business_b"])}, 303),
        "/dinas/pelatihan/{training_id}/hadir": ("staf", {
            "business_id": str(sec.ids["business_b"]), "attended": "1"}, 303),
        "/dinas/pelatihan/{training_id}/status": ("staf", {"value": "selesai"}, 303),
        # The request was closed by the pendamping's case above: refused by state, not CSRF.
        "/dinas/pendampingan/{request_id}/tugaskan": ("admin", {
            "pendamping_id": str(sec.ids["pendamping"])}, 409),
        "/dinas/rencana/{year}": ("admin", {"kampanye_1": "2"}, 303),
        "/dinas/rencana/{year}/yaml": ("admin", {"plan_yaml": "targets:\n  minat: [1, 1, 1, 1]\n"},
                                       303),
        "/dinas/kesepakatan": ("admin", {"provider_name": "Kurir Uji", "kind": "kurir",
                                         "start_date": "2026-01-01",
                                         "end_date": "2026-12-31"}, 303),
        "/dinas/kesepakatan/{agreement_id}/dokumen": ("admin", {}, 422),  # no PDF sent
        "/dinas/pengawasan": ("admin", {"text": "Kemasan rusak",
                                        "business_id": str(sec.ids["business_a"])}, 303),
        "/dinas/pengawasan/{complaint_id}/tindak-lanjut": ("admin", {"note": "Ditelepon",
                                                                     "status": "selesai"}, 303),
        "/dinas/kampanye/uji-kirim": ("staf", {"yaml": "version: 1\n"}, 200),  # invalid
        "/dinas/kampanye/ajukan/{revision_id}": ("staf", {}, 303),
        "/dinas/kampanye/tinjau/{revision_id}/setujui": ("admin", {"waktu": "besok"}, 400),
        "/dinas/kampanye/tinjau/{revision_id}/kembalikan": ("admin", {"catatan": ""}, 400),
        "/dinas/run/{run_id}/batal": ("staf", {}, 303),
    }


def _revision(sec: Sec) -> int:
    """A saved studio revision by ``staf`` for the four-eyes routes."""
    with sec.world.session() as session:
        row, _new = revisions.save(session, "csrf-uji", "version: 1\n", "staf")
        session.commit()
        return int(row.id)


def _target_user(sec: Sec) -> int:
    """An account only the user-management cases touch (disabling it ends nobody's test)."""
    with sec.world.session() as session:
        user = users.create_user(session, "sasaran-csrf", PASSWORD, "dinas_staff")
        session.commit()
        return int(user.id)


def _supervision_ids(sec: Sec) -> dict[str, str]:
    """An agreement and a complaint for the Pasal 13-14 form routes."""
    with sec.world.session() as session:
        agreement = agreements.create_agreement(
            session, provider_name="Lokapasar CSRF", kind="lokapasar", parties="",
            rights_obligations="", start_date=date(2026, 1, 1), end_date=date(2027, 1, 1),
            actor="admin")
        complaint = supervision.create_complaint(session, text="Uji", actor="admin",
                                                 agreement_id=agreement.id)
        session.commit()
        return {"agreement_id": str(agreement.id), "complaint_id": str(complaint.id)}


def test_every_form_route_rejects_a_missing_or_foreign_csrf_token(sec: Sec) -> None:
    cases = _csrf_cases(sec)
    ids = {"product_id": str(sec.ids["product_a"]), "run_id": str(sec.ids["run"]),
           "business_id": str(sec.ids["business_b"]), "user_id": str(_target_user(sec)),
           "training_id": str(sec.ids["training"]), "request_id": str(sec.ids["guidance_b"]),
           "year": "2026", "revision_id": str(_revision(sec)), **_supervision_ids(sec)}
    protected = [(m, p) for m, p in routes(sec.app)
                 if m not in ("GET", "HEAD", "OPTIONS") and not p.startswith(CSRF_EXEMPT)]
    assert {p for _, p in protected} == set(cases), "a form route without a CSRF case"
    foreign = csrf(sec.client("pemilik-b"), "/portal")
    for method, template in protected:
        username, body, ok_status = cases[template]
        path = fill(template, ids)
        client = sec.client(username)
        client.get("/login")  # every client has a session (and so a token) of its own
        before = db_fingerprint(sec.world)
        for data, kwargs in ((body, {}), ({**body, "csrf_token": ""}, {}),
                             ({**body, "csrf_token": foreign}, {}),
                             (None, {"json": {**body, "csrf_token": csrf(client)}})):
            response = client.request(method, path, data=data, follow_redirects=False,
                                      **kwargs)
            assert response.status_code == 403, (path, data, kwargs)
            assert CSRF_MESSAGE in response.text
        assert db_fingerprint(sec.world) == before, f"{path} changed data without a token"
        # The same request with the session's own token goes through.
        token = csrf(client, "/akun/sandi" if username else "/login")
        response = client.request(method, path, data={**body, "csrf_token": token},
                                  follow_redirects=False)
        assert response.status_code == ok_status, (path, response.status_code,
                                                   response.text[:300])


# --- owner isolation ---------------------------------------------------------------------------


def _owner_post_body(template: str) -> dict[str, Any]:
    return {
        "/portal/usaha": {"name": "Tenun Ina A", "nib": "9130000000888", "owner_name": "Ina A",
                          "nik": "", "kecamatan_code": "53.02.01",
                          "whatsapp": "081234567890"},
        "/portal/produk/baru": {"name": "Produk Titipan", "category": "makanan_olahan",
                                "price": "10.000", "description": "x", "in_stock": "1",
                                "image_url": "https://umkm.ttskab.go.id/media/x.jpg"},
        "/portal/produk/{product_id}": {"name": "Dibajak", "category": "makanan_olahan",
                                        "price": "1", "description": "x", "in_stock": "1",
                                        "image_url": "https://umkm.ttskab.go.id/media/x.jpg"},
        "/portal/produk/{product_id}/ikut": {"target": "c:promo-pekan"},
        "/portal/produk/{product_id}/tarik": {"target": "t:semua-produk"},
        "/portal/produk/{product_id}/arsip": {"archived": "1"},
    }.get(template, {})


def test_owner_a_cannot_read_or_change_owner_b_on_any_owner_route(sec: Sec) -> None:
    client = sec.client("pemilik-a")
    b_ids = {"product_id": str(sec.ids["product_b"]),
             "request_id": str(sec.ids["guidance_b"])}
    b_query = {"business_id": sec.ids["business_b"], "bisnis": sec.ids["business_b"],
               "usaha": sec.ids["business_b"], "product_id": sec.ids["product_b"],
               "id": sec.ids["business_b"]}
    owner_routes = [(m, p) for m, p in routes(sec.app) if p.startswith("/portal")]
    assert len(owner_routes) >= 10
    before = b_rows(sec)
    for method, template in owner_routes:
        path = fill(template, b_ids)
        if method == "GET":
            variants: list[Any] = [client.get(path, params=b_query, follow_redirects=False)]
            if template == "/portal/laporan":
                variants += [client.get(path, params={**b_query, "format": fmt})
                             for fmt in ("csv", "html")]
        else:
            token = csrf(client, "/portal")
            body = {**_owner_post_body(template), "csrf_token": token,
                    "business_id": str(sec.ids["business_b"]),
                    "id": str(sec.ids["business_b"])}
            variants = [client.post(path, data=body, follow_redirects=False)]
        for response in variants:
            assert response.status_code < 500, (method, path)
            if "{" in template:
                assert response.status_code in (403, 404), (method, path)
            for marker in sec.b_markers:
                assert marker not in response.text, (method, path, marker)
        assert b_rows(sec) == before, f"{method} {path} changed owner B's data"
    # Control: B's own report does show B's campaign and clicks, so their absence in A's
    # report above means something.
    own = sec.client("pemilik-b").get("/portal/laporan", params={"format": "csv"})
    assert own.status_code == 200 and "Kampanye Madu Mollo" in own.text
    a_report = client.get("/portal/laporan", params={"format": "csv"}).text
    assert "Kampanye Madu Mollo" not in a_report


# --- cookies and login rate limit ------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite(sec: Sec) -> None:
    client = sec.client()
    anonymous = client.get("/login")
    response = login(client, "pemilik-a")
    assert response.status_code == 303
    for set_cookie in (anonymous.headers["set-cookie"], response.headers["set-cookie"]):
        jar: SimpleCookie = SimpleCookie()
        jar.load(set_cookie)
        session = jar["umkm_sesi"]
        assert session["httponly"] is True
        assert session["samesite"].lower() in ("lax", "strict")
        assert session["path"] == "/"
    english = client.get("/portal", params={"lang": "en"})
    jar = SimpleCookie()
    jar.load(english.headers["set-cookie"])
    assert jar["umkm_lang"]["httponly"] is True and jar["umkm_lang"]["samesite"].lower() == "lax"


def test_login_is_rate_limited_after_repeated_failures(sec: Sec) -> None:
    client = sec.client()
    for attempt in range(5):
        response = login(client, "staf", f"tebakan-{attempt}")
        assert response.status_code == 401, attempt
    blocked = login(client, "staf")  # even the right password waits now
    assert blocked.status_code == 429
    assert "Terlalu banyak percobaan masuk yang gagal" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert client.get("/dinas", follow_redirects=False).status_code == 303  # not logged in
    # Somebody else's typos do not lock another account out.
    assert login(client, "pemilik-b").status_code == 303
