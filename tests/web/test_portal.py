"""The UMKM owner portal: business, Pasal 10 verdict, products, opt-ins, engagement, and
the rule that an owner reaches ONLY their own business."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.models import (
    Business,
    CampaignRun,
    DeliveryProduct,
    Product,
    ProductOptIn,
    RunStatus,
    User,
    Verification,
    utcnow,
)
from tests.factories import make_campaign, make_customer, make_delivery, make_event, make_run
from tests.web_helpers import (
    NIK_A,
    World,
    csrf,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)

NEW_NIK = "5302062303900004"

BUSINESS_FORM = {
    "name": "Kopi Mollo Baru", "nib": "9120000099991", "owner_name": "Yohanes Tse",
    "nik": NEW_NIK, "kecamatan_code": "53.02.03", "desa": "", "address": "Jl. Kapan",
    "whatsapp": "0812 3456 7000", "phone": "", "email": "kopi@contoh.id",
    "annual_sales": "Rp 120.000.000",
}
PRODUCT_FORM = {
    "name": "Kopi Bubuk Mollo", "category": "makanan_olahan", "price": "Rp 35.000",
    "description": "Kopi arabika dari Mollo Utara.",
    "image_url": "https://umkm.ttskab.go.id/media/kopi.jpg", "in_stock": "1",
    "certifications": ["PIRT", "halal"],
}


def _product(world: World, product_id: int) -> Product:
    with world.session() as session:
        product = session.get(Product, product_id)
        assert product is not None
        session.expunge(product)
        return product


# --- business ------------------------------------------------------------------------------


def test_owner_registers_business_and_sees_every_pasal_10_reason(world: World) -> None:
    client = world.client("pemilik-baru")
    assert client.get("/portal", follow_redirects=False).headers["location"] == "/portal/usaha"
    response = post_form(client, "/portal/usaha", BUSINESS_FORM)
    assert response.status_code == 303
    page = client.get("/portal").text
    assert "Kopi Mollo Baru" in page
    assert "5302**********04" in page and NEW_NIK not in page
    # Not yet binaan and no products: both reasons are listed, with what is fine.
    assert "Belum ditetapkan sebagai UMKM binaan Dinas" in page
    assert "Belum ada produk" in page
    assert "Berdomisili di Kecamatan Mollo Utara, Kabupaten TTS" in page
    assert "Mollo Utara (53.02" not in page
    assert "belum dikirim untuk verifikasi" in page  # a draft until the owner sends it (issue 16)
    form_page = client.get("/portal/usaha").text
    assert NEW_NIK not in form_page and "5302**********04" in form_page
    with world.session() as session:
        user = session.scalars(select(User).where(User.username == "pemilik-baru")).one()
        business = session.get(Business, user.business_id)
        assert business is not None
        assert business.whatsapp == "6281234567000" and business.annual_sales == 120_000_000
        assert NEW_NIK not in business.owner_nik_enc


def test_business_form_errors_are_shown_and_nothing_is_saved(world: World) -> None:
    client = world.client("pemilik-baru")
    response = post_form(client, "/portal/usaha", {**BUSINESS_FORM, "nik": "5302011234"})
    assert response.status_code == 400
    assert "NIK harus tepat 16 digit" in response.text
    assert "5302011234" not in response.text  # a typed NIK is never echoed back
    with world.session() as session:
        nib_a = session.get(Business, world.ids["business_a"]).nib  # type: ignore[union-attr]
    response = post_form(client, "/portal/usaha", {**BUSINESS_FORM, "nib": nib_a})
    assert response.status_code == 400
    assert "NIB ini sudah terdaftar" in response.text
    assert "Tenun Ina A" not in response.text  # does not reveal whose NIB it is
    response = post_form(client, "/portal/usaha", {**BUSINESS_FORM, "whatsapp": "12"})
    assert response.status_code == 400 and "WhatsApp tidak valid" in response.text
    with world.session() as session:
        assert session.scalars(select(Business).where(
            Business.name == "Kopi Mollo Baru")).first() is None


def test_owner_updates_business_and_identity_changes_need_review_again(world: World) -> None:
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        business.verification = Verification.verified
        session.commit()
        form = {"name": business.name, "nib": business.nib, "owner_name": business.owner_name,
                "nik": "", "kecamatan_code": business.kecamatan_code, "desa": "",
                "address": "Jl. Baru 2", "whatsapp": "081299998888", "phone": "", "email": "",
                "annual_sales": ""}
    client = world.client("pemilik-a")
    assert post_form(client, "/portal/usaha", form).status_code == 303
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        assert business.whatsapp == "6281299998888" and business.address == "Jl. Baru 2"
        assert business.verification == Verification.verified  # contact data only
        assert business.owner_nik_masked == "5302**********01"  # empty NIK field keeps it
    post_form(client, "/portal/usaha", {**form, "name": "Tenun Ina A Jaya"})
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        assert business.name == "Tenun Ina A Jaya"
        assert business.verification == Verification.changed  # held until re-verified


# --- products ------------------------------------------------------------------------------


def test_owner_adds_and_edits_a_product(world: World) -> None:
    client = world.client("pemilik-a")
    response = post_form(client, "/portal/produk/baru", PRODUCT_FORM)
    assert response.status_code == 303
    product_id = int(response.headers["location"].split("/")[-1].split("?")[0])
    product = _product(world, product_id)
    assert (product.name, product.price, product.category) == (
        "Kopi Bubuk Mollo", 35_000, "makanan_olahan")
    assert product.certifications == ["PIRT", "halal"]
    assert product.business_id == world.ids["business_a"]
    edit = {**PRODUCT_FORM, "price": "40.000", "certifications": ["BPOM"], "in_stock": ""}
    assert post_form(client, f"/portal/produk/{product_id}", edit).status_code == 303
    product = _product(world, product_id)
    assert (product.price, product.certifications, product.in_stock) == (40_000, ["BPOM"], False)
    assert "Rp 40.000" in client.get("/portal").text


def test_product_errors_are_explained(world: World) -> None:
    client = world.client("pemilik-a")
    response = post_form(client, "/portal/produk/baru", {**PRODUCT_FORM, "price": "murah"})
    assert response.status_code == 400 and "tulis angka Rupiah" in response.text
    response = post_form(client, "/portal/produk/baru", {**PRODUCT_FORM, "category": "mebel"})
    assert response.status_code == 400
    assert "Kategori 'mebel' tidak dikenal" in html.unescape(response.text)
    # An incomplete product is accepted as a draft, and the owner sees what is missing.
    response = post_form(client, "/portal/produk/baru", {**PRODUCT_FORM, "image_url": ""})
    assert response.status_code == 303
    page = client.get("/portal").text
    assert "Draf: belum tampil" in page and "URL foto" in page


# --- opt-in ---------------------------------------------------------------------------------


def _status_text(html: str) -> str:
    """The notice line of a portal page (``role="status"``)."""
    found = re.search(r'role="status"[^>]*>(.*?)<', html, re.S)
    assert found, html[:500]
    return found.group(1).strip()


def test_opt_in_and_out_of_upcoming_campaigns_by_id_and_tag(world: World) -> None:
    with world.session() as session:
        upcoming = make_campaign(session, key="promo-desember", tags=["tenun"])
        make_run(session, upcoming, status=RunStatus.scheduled,
                 scheduled_at=utcnow() + timedelta(days=3))
        past = make_campaign(session, key="promo-lalu")
        make_run(session, past, status=RunStatus.finished,
                 scheduled_at=utcnow() - timedelta(days=30))
        session.commit()
        upcoming_name = upcoming.name
    client = world.client("pemilik-a")
    pid = world.ids["product_a"]
    page = client.get(f"/portal/produk/{pid}").text
    assert upcoming_name in page and "Semua kampanye bertanda tenun" in page
    assert "promo-lalu" not in page
    form_page = f"/portal/produk/{pid}"
    response = post_form(client, f"/portal/produk/{pid}/ikut", {"target": "c:promo-desember"},
                         form_page=form_page)
    # The owner is told the campaign by the name they clicked, never by its key.
    assert response.status_code == 200
    assert f"Produk diikutkan ke {upcoming_name}." in response.text
    assert "promo-desember" not in _status_text(response.text)
    post_form(client, f"/portal/produk/{pid}/ikut", {"target": "t:tenun"}, form_page=form_page)
    response = post_form(client, f"/portal/produk/{pid}/ikut", {"target": "c:promo-lalu"},
                         form_page=form_page)
    assert response.status_code == 400
    with world.session() as session:
        active = {(o.campaign_key, o.is_tag) for o in session.scalars(select(ProductOptIn).where(
            ProductOptIn.product_id == pid, ProductOptIn.withdrawn_at.is_(None)))}
    assert {("promo-desember", False), ("tenun", True)} <= active
    assert ("promo-lalu", False) not in active
    response = post_form(client, f"/portal/produk/{pid}/tarik", {"target": "c:promo-desember"},
                         form_page=form_page)
    assert response.status_code == 200
    assert f"ditarik dari {upcoming_name}." in _status_text(response.text)
    with world.session() as session:
        row = session.scalars(select(ProductOptIn).where(
            ProductOptIn.product_id == pid, ProductOptIn.campaign_key == "promo-desember")).one()
        assert row.withdrawn_at is not None


def test_a_joined_campaign_that_is_no_longer_upcoming_is_withdrawn_by_its_name(
        world: World) -> None:
    with world.session() as session:
        campaign = make_campaign(session, key="promo-natal-lama", tags=[])
        run = make_run(session, campaign, status=RunStatus.scheduled,
                       scheduled_at=utcnow() + timedelta(days=3))
        session.commit()
        name, run_id = campaign.name, run.id
    client = world.client("pemilik-a")
    pid = world.ids["product_a"]
    form_page = f"/portal/produk/{pid}"
    post_form(client, f"/portal/produk/{pid}/ikut", {"target": "c:promo-natal-lama"},
              form_page=form_page)
    with world.session() as session:
        session.get_one(CampaignRun, run_id).status = RunStatus.finished
        session.commit()
    page = client.get(form_page).text
    assert name in page
    response = post_form(client, f"/portal/produk/{pid}/tarik", {"target": "c:promo-natal-lama"},
                         form_page=form_page)
    assert _status_text(response.text) == f"Produk ditarik dari {name}."


def test_opt_in_refused_with_reasons_for_an_ineligible_business(world: World) -> None:
    with world.session() as session:
        make_campaign(session, key="promo-aktif", active=True)
        session.commit()
    client = world.client("pemilik-baru")
    post_form(client, "/portal/usaha", BUSINESS_FORM)
    response = post_form(client, "/portal/produk/baru", PRODUCT_FORM)
    pid = int(response.headers["location"].split("/")[-1].split("?")[0])
    response = post_form(client, f"/portal/produk/{pid}/ikut", {"target": "c:promo-aktif"},
                         form_page=f"/portal/produk/{pid}")
    assert response.status_code == 409
    assert "Produk belum dapat diikutkan" in response.text
    assert "Belum ditetapkan sebagai UMKM binaan Dinas" in response.text
    with world.session() as session:
        assert session.scalars(select(ProductOptIn).where(
            ProductOptIn.product_id == pid)).first() is None


# --- engagement -----------------------------------------------------------------------------


def test_owner_sees_only_their_own_engagement(world: World) -> None:
    """The portal shows the report builder's figures for the owner's business only."""
    with world.session() as session:
        campaign = make_campaign(session, key="promo-klik")
        run = make_run(session, campaign)
        for business, product, opens, clicks in (("business_a", "product_a", 3, 2),
                                                  ("business_b", "product_b", 0, 7)):
            for n in range(max(opens, clicks)):
                customer = make_customer(session)
                delivery = make_delivery(session, run, customer,
                                         business_id=world.ids[business])
                session.add(DeliveryProduct(delivery_id=delivery.id,
                                            product_id=world.ids[product],
                                            business_id=world.ids[business]))
                if n < opens:
                    make_event(session, customer, type="open", delivery_id=delivery.id,
                               run_id=run.id)
                if n < clicks:
                    make_event(session, customer, type="click", delivery_id=delivery.id,
                               run_id=run.id, business_id=world.ids[business],
                               product_id=world.ids[product])
        customer = make_customer(session)
        make_event(session, customer, type="lead", run_id=run.id, channel="web",
                   business_id=world.ids["business_a"], product_id=world.ids["product_a"])
        make_event(session, customer, type="click", run_id=run.id, suspected_bot=True,
                   channel="whatsapp", business_id=world.ids["business_a"],
                   product_id=world.ids["product_a"])
        make_event(session, customer, type="click", run_id=run.id, channel="whatsapp",
                   business_id=world.ids["business_a"], product_id=world.ids["product_a"])
        session.commit()
        campaign_name = campaign.name
    page = world.client("pemilik-a").get("/portal/keterlibatan").text
    assert "Tenun Tenun Ina A" in page and campaign_name in page
    row = re.search(r"<td>Tenun Tenun Ina A</td>(.*?)</tr>", page, re.S)
    assert row is not None
    cells = dict(re.findall(r'<td data-metric="(\w+)">([^<]*)</td>', row.group(1)))
    assert cells["sent"] == "3" and cells["unique_opens"] == "3"
    assert cells["unique_clicks"] == "2"  # email clicks
    assert cells["whatsapp_clicks"] == "1"  # the bot click is left out
    assert cells["leads"] == "1"
    assert "Madu Hutan Mollo" not in page and ">7<" not in page


# --- owner A against owner B's ids: every owner route ---------------------------------------

OWNER_PRODUCT_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "/portal/produk/{id}", {}),
    ("post", "/portal/produk/{id}", {**PRODUCT_FORM, "name": "Dibajak"}),
    ("post", "/portal/produk/{id}/ikut", {"target": "t:semua-produk"}),
    ("post", "/portal/produk/{id}/tarik", {"target": "t:semua-produk"}),
]


@pytest.mark.parametrize(("method", "path", "data"), OWNER_PRODUCT_ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in OWNER_PRODUCT_ROUTES])
def test_owner_cannot_touch_another_owners_product(world: World, method: str, path: str,
                                                   data: dict[str, Any]) -> None:
    client = world.client("pemilik-a")
    url = path.format(id=world.ids["product_b"])
    if method == "get":
        response = client.get(url)
    else:
        response = client.post(url, data={**data, "csrf_token": csrf(client, "/portal")})
    assert response.status_code == 404
    assert "Madu Hutan Mollo" not in response.text and "Madu Hutan B" not in response.text
    product = _product(world, world.ids["product_b"])
    assert product.name == "Madu Hutan Mollo"
    with world.session() as session:
        optin = session.scalars(select(ProductOptIn).where(
            ProductOptIn.product_id == world.ids["product_b"])).one()
        assert optin.withdrawn_at is None


def test_business_form_ignores_another_business_id(world: World) -> None:
    client = world.client("pemilik-a")
    form = {**BUSINESS_FORM, "nib": "9120000099992", "nik": "",
            "business_id": str(world.ids["business_b"]), "id": str(world.ids["business_b"])}
    assert post_form(client, "/portal/usaha", form).status_code == 303
    with world.session() as session:
        a = session.get(Business, world.ids["business_a"])
        b = session.get(Business, world.ids["business_b"])
        assert a is not None and b is not None
        assert a.name == "Kopi Mollo Baru" and b.name == "Madu Hutan B"
    pages = [client.get(p).text for p in ("/portal", "/portal/usaha", "/portal/keterlibatan")]
    assert all("Madu Hutan" not in p for p in pages)


def test_owner_without_business_reaches_no_product(world: World) -> None:
    client = world.client("pemilik-baru")
    for pid in (world.ids["product_a"], world.ids["product_b"]):
        assert client.get(f"/portal/produk/{pid}").status_code == 404
        response = client.post(f"/portal/produk/{pid}/ikut",
                               data={"target": "t:x", "csrf_token": csrf(client, "/portal/usaha")})
        assert response.status_code == 404
    for path in ("/portal/keterlibatan", "/portal/produk/baru"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/portal/usaha"


def test_full_nik_never_appears_on_owner_pages(world: World) -> None:
    client = world.client("pemilik-a")
    for path in ("/portal", "/portal/usaha", f"/portal/produk/{world.ids['product_a']}",
                 "/portal/keterlibatan"):
        assert NIK_A not in client.get(path).text, path
