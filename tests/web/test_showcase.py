"""The public showcase: catalogue, filters, pagination, product landing pages and the
WhatsApp order button (a tracked lead that only ever redirects to the UMKM's wa.me)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from engine.models import Business, EngagementEvent, Product, ProductOptIn
from engine.umkm import businesses
from tests.factories import make_product
from tests.web_helpers import (
    NIK_B,
    World,
    make_eligible_business,
    world_fixture,  # noqa: F401 - the "world" fixture
)

_PRODUCT_LINK = re.compile(r'href="/produk/(\d+)"')


def listed_ids(html: str) -> list[int]:
    return [int(i) for i in _PRODUCT_LINK.findall(html)]


def _leads(world: World) -> list[EngagementEvent]:
    with world.session() as session:
        return list(session.scalars(select(EngagementEvent).where(EngagementEvent.type == "lead")))


def test_catalogue_lists_only_opted_in_products_of_eligible_umkm(world: World) -> None:
    with world.session() as session:
        business_a = session.get(Business, world.ids["business_a"])
        assert business_a is not None
        not_opted = make_product(session, business_a, name="Belum Ikut")
        withdrawn = make_product(session, business_a, name="Sudah Ditarik")
        businesses.opt_in(session, withdrawn, "promo", actor="t")
        businesses.withdraw_opt_in(session, withdrawn, "promo", "t")
        sold_out = make_product(session, business_a, name="Stok Habis", in_stock=False)
        businesses.opt_in(session, sold_out, "promo", actor="t")
        ineligible, bad_product = make_eligible_business(session, "Tidak Layak", NIK_B)
        businesses.set_binaan(session, ineligible, False, "t")
        session.commit()
        hidden = {not_opted.id, withdrawn.id, sold_out.id, bad_product.id}
    response = world.client().get("/")
    assert response.status_code == 200
    shown = set(listed_ids(response.text))
    assert shown == {world.ids["product_a"], world.ids["product_b"]}
    assert not shown & hidden
    assert "Rp 250.000" in response.text and "Kota Soe" in response.text
    assert listed_ids(world.client().get("/produk").text) == listed_ids(response.text)


def test_catalogue_filters_by_category_and_kecamatan(world: World) -> None:
    client = world.client()
    food = client.get("/produk?kategori=makanan_olahan").text
    assert listed_ids(food) == [world.ids["product_b"]]  # Madu Hutan, Mollo Utara
    crafts_soe = client.get("/produk?kategori=kerajinan_tangan&kecamatan=53.02.01").text
    assert listed_ids(crafts_soe) == [world.ids["product_a"]]
    assert listed_ids(client.get("/produk?kecamatan=53.02.03").text) == [world.ids["product_b"]]
    empty = client.get("/produk?kecamatan=53.02.20").text
    assert listed_ids(empty) == [] and "Belum ada produk untuk pilihan ini." in empty
    # Unknown filter values are ignored rather than failing the page.
    assert len(listed_ids(client.get("/produk?kategori=mebel&kecamatan=99").text)) == 2


def test_catalogue_is_paginated(world: World) -> None:
    with world.session() as session:
        business_a = session.get(Business, world.ids["business_a"])
        assert business_a is not None
        for n in range(30):
            product = make_product(session, business_a, name=f"Selendang {n:02d}")
            session.add(ProductOptIn(product_id=product.id, campaign_key="x", opted_by="t"))
        session.commit()
    client = world.client()
    first = client.get("/produk").text
    assert len(listed_ids(first)) == 24 and "Halaman 1 dari 2" in first
    assert 'href="/produk?hal=2"' in first
    second = client.get("/produk?hal=2").text
    assert len(listed_ids(second)) == 8
    assert not set(listed_ids(first)) & set(listed_ids(second))
    assert listed_ids(client.get("/produk?hal=999").text) == []


def test_product_page_is_the_campaign_landing_page(world: World) -> None:
    client = world.client()
    pid = world.ids["product_a"]
    response = client.get(f"/produk/{pid}?utm_source=email&utm_medium=email"
                          "&utm_campaign=promo-desember&utm_content=p1")
    assert response.status_code == 200
    assert "Tenun Tenun Ina A" in response.text and "Rp 250.000" in response.text
    assert "Kain tenun ikat asli TTS." in response.text and "halal" in response.text
    assert f'href="/produk/{pid}/wa"' in response.text and "Pesan via WhatsApp" in response.text
    assert "umkm_sesi" not in response.headers.get("set-cookie", "")  # no cookie for visitors
    assert client.get("/produk/999999").status_code == 404


def test_products_of_ineligible_businesses_are_404(world: World) -> None:
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        businesses.set_binaan(session, business, False, "t")
        session.commit()
    client = world.client()
    response = client.get(f"/produk/{world.ids['product_a']}")
    assert response.status_code == 404 and "Tenun Tenun Ina A" not in response.text
    assert client.get(f"/produk/{world.ids['product_a']}/wa",
                      follow_redirects=False).status_code == 404
    assert _leads(world) == []


def test_order_via_whatsapp_records_a_lead_and_goes_only_to_wa_me(world: World) -> None:
    client = world.client()
    pid = world.ids["product_a"]
    response = client.get(f"/produk/{pid}/wa", follow_redirects=False)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "wa.me", "/6281234567890")
    text = parse_qs(target.query)["text"][0]
    assert "Tenun Tenun Ina A" in text and f"/produk/{pid}" in text
    (lead,) = _leads(world)
    assert (lead.business_id, lead.product_id, lead.channel) == (
        world.ids["business_a"], pid, "web")
    assert lead.occurred_at is not None and lead.raw.get("source") == "showcase"


@pytest.mark.parametrize("query", [
    "?to=https://evil.example", "?next=//evil.example", "?url=javascript:alert(1)",
    "?redirect=%2F%2Fevil.example", "?wa=https%3A%2F%2Fevil.example%2F",
])
def test_whatsapp_button_ignores_any_target_in_the_request(world: World, query: str) -> None:
    response = world.client().get(f"/produk/{world.ids['product_b']}/wa{query}",
                                  follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("https://wa.me/6281234567890?text=")
    assert "evil" not in response.headers["location"]


def test_business_without_a_valid_whatsapp_gets_no_button_and_no_lead(world: World) -> None:
    with world.session() as session:
        for value in (None, "12"):
            business = session.get(Business, world.ids["business_a"])
            assert business is not None
            business.whatsapp = value
            session.commit()
            client = world.client()
            page = client.get(f"/produk/{world.ids['product_a']}").text
            assert "/wa\"" not in page and "belum mencantumkan nomor WhatsApp" in page
            response = client.get(f"/produk/{world.ids['product_a']}/wa", follow_redirects=False)
            assert response.status_code == 404
    assert _leads(world) == []


def test_showcase_switches_to_english(world: World) -> None:
    client = world.client()
    page = client.get(f"/produk/{world.ids['product_a']}?lang=en").text
    assert "Order via WhatsApp" in page
    assert "Processed food" in client.get("/produk").text  # the choice is remembered


def test_incomplete_listing_is_not_a_landing_page(world: World) -> None:
    with world.session() as session:
        product = session.get(Product, world.ids["product_b"])
        assert product is not None
        product.image_url = None
        session.commit()
    # The cached verdict still says "eligible"; the listing itself is checked on every view.
    assert world.client().get(f"/produk/{world.ids['product_b']}").status_code == 404


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ("madu hutan", "Madu Hutan Mollo", "Tenun Tenun Ina A"),      # product name, any case
    ("TENUN INA", "Tenun Tenun Ina A", "Madu Hutan Mollo"),       # business name
    ("mollo utara", "Madu Hutan Mollo", "Tenun Tenun Ina A"),     # kecamatan by its name
    ("kota soe", "Tenun Tenun Ina A", "Madu Hutan Mollo"),
])
def test_search_matches_product_business_and_kecamatan_names(world: World, query: str,
                                                             shown: str, hidden: str) -> None:
    page = world.client().get("/produk", params={"q": query}).text
    assert shown in page and hidden not in page
    assert f'value="{query}"' in page


def test_search_wildcards_are_literal_and_names_not_codes_are_shown(world: World) -> None:
    page = world.client().get("/produk", params={"q": "%"}).text
    assert "Tenun Tenun Ina A" not in page and "Madu Hutan Mollo" not in page
    listing = world.client().get("/produk").text
    assert "Kota Soe" in listing and "53.02.01 " not in listing
    options = re.findall(r'<option value="53\.02\.\d\d"[^>]*>([^<]+)</option>', listing)
    assert options == sorted(options, key=str.casefold) and "Ki&#39;e" in options
    assert 'rel="icon" href="/favicon.ico"' in listing
