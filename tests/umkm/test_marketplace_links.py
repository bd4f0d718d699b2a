"""Marketplace links of a product (Pasal 7 ayat 4): validation, the portal form, the
showcase's tracked redirect and the links in campaign mail."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from engine.message.render import compile_email, render_email
from engine.message.templating import sample_context
from engine.models import EngagementEvent, Product, ProductLink
from engine.umkm import marketplaces
from engine.umkm.marketplaces import MarketplaceLinkError, check_url, parse_links
from tests.web_helpers import (
    World,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)

GOOD = {
    "https://shopee.co.id/tenun-ina-a.123.456": "shopee",
    "http://www.tokopedia.com/inaa/selendang": "tokopedia",
    "https://tokopedia.link/AbCd": "tokopedia",
    "https://shop.tiktok.com/view/product/1729": "tiktok",
    "https://www.tiktok.com/shop/pdp/selendang/1729": "tiktok",
    "https://www.bukalapak.com/p/fashion/selendang": "bukalapak",
    "https://www.blibli.com/p/selendang/ps--1": "blibli",
    "https://www.lazada.co.id/products/selendang-i1.html": "lazada",
    "https://tenun-ina.myshopify.com/products/selendang": "other",
}
BAD = {
    "javascript:alert(document.cookie)": "harus diawali https://",
    "ftp://shopee.co.id/x": "harus diawali https://",
    "https://user:rahasia@shopee.co.id/x": "nama pengguna atau kata sandi",
    "https://shopee.co.id@evil.example/x": "nama pengguna atau kata sandi",
    "https://127.0.0.1/toko": "jaringan pribadi",
    "https://192.168.1.10/toko": "jaringan pribadi",
    "https://[::1]/toko": "jaringan pribadi",
    "https://localhost/toko": "jaringan pribadi",
    "https://printer.local/toko": "jaringan pribadi",
    "http://toko-lain.example.com/x": "bukan lokapasar yang dikenal",
    "https://shopee.co.id:8443/x": "port 8443",
    "https://shopee.co.id/a b": "bukan alamat web yang sah",
    "https://shopee.co.id/" + "a" * 600: "lebih dari 500 karakter",
}


@pytest.mark.parametrize(("url", "marketplace"), GOOD.items())
def test_known_marketplaces_and_https_shops_are_accepted(url: str, marketplace: str) -> None:
    assert check_url(url).marketplace == marketplace


@pytest.mark.parametrize(("url", "reason"), BAD.items())
def test_unsafe_links_are_refused_in_indonesian(url: str, reason: str) -> None:
    with pytest.raises(MarketplaceLinkError) as caught:
        parse_links(f"https://shopee.co.id/ok\n{url}")
    text = str(caught.value)
    assert text.startswith("Tautan lokapasar baris 2:") and reason in text, text


def test_a_tiktok_video_is_no_shop_and_too_many_links_are_refused() -> None:
    assert check_url("https://www.tiktok.com/shop/pdp/1").label == "TikTok Shop"
    assert check_url("https://www.tiktok.com/@ina/video/1").marketplace == "other"
    six = "\n".join(f"https://shopee.co.id/p{i}" for i in range(6))
    with pytest.raises(MarketplaceLinkError, match="paling banyak 5 tautan"):
        parse_links(six)
    assert len(parse_links(six.replace("p5", "p4"))) == 5  # a duplicate counts once


def _links(world: World, product_id: int) -> list[str]:
    with world.session() as db:
        return [link.url for link in marketplaces.links_of(db, product_id)]


def _product_form(world: World, product_id: int, links: str) -> dict[str, object]:
    with world.session() as db:
        product = db.get(Product, product_id)
        assert product is not None
        return {"name": product.name, "category": product.category, "price": str(product.price),
                "description": product.description, "image_url": product.image_url,
                "in_stock": "1", "certifications": ["halal"], "links": links}


def test_owner_saves_links_and_a_bad_one_loses_nothing(world: World) -> None:
    client = world.client("pemilik-a")
    pid = world.ids["product_a"]
    good = "https://shopee.co.id/ina-a\nhttps://www.tokopedia.com/ina-a/selendang"
    assert post_form(client, f"/portal/produk/{pid}", _product_form(world, pid, good)
                     ).status_code == 303
    assert _links(world, pid) == good.split("\n")
    assert "https://www.tokopedia.com/ina-a/selendang" in client.get(f"/portal/produk/{pid}").text
    bad = {**_product_form(world, pid, good + "\nhttp://192.168.0.1/admin"),
           "name": "Selendang Baru"}
    response = post_form(client, f"/portal/produk/{pid}", bad)
    assert response.status_code == 400
    page = html.unescape(response.text)
    assert "Tautan lokapasar baris 3" in page and "jaringan pribadi" in page
    assert "http://192.168.0.1/admin" in page and 'value="Selendang Baru"' in page  # kept
    assert _links(world, pid) == good.split("\n")  # nothing stored from the bad form
    with world.session() as db:
        product = db.get(Product, pid)
        assert product is not None and product.name != "Selendang Baru"


def test_a_new_product_with_a_bad_link_is_not_created(world: World) -> None:
    client = world.client("pemilik-a")
    form = {**_product_form(world, world.ids["product_a"], "javascript:alert(1)"),
            "name": "Produk Baru Lokapasar"}
    response = post_form(client, "/portal/produk/baru", form)
    assert response.status_code == 400 and "harus diawali https://" in html.unescape(
        response.text)
    with world.session() as db:
        assert db.scalars(select(Product).where(Product.name == "Produk Baru Lokapasar")
                          ).first() is None


def _saved_link(world: World, product_key: str, url: str) -> int:
    with world.session() as db:
        product = db.get(Product, world.ids[product_key])
        assert product is not None
        link = marketplaces.save_links(db, product, url)[0]
        db.commit()
        return link.id


def test_showcase_click_is_recorded_and_goes_only_to_the_stored_url(world: World) -> None:
    link_id = _saved_link(world, "product_a", "https://shopee.co.id/ina-a")
    client = world.client()
    page = client.get(f"/produk/{world.ids['product_a']}").text
    assert f'href="/m/{link_id}"' in page and "Shopee" in page
    assert "https://shopee.co.id/ina-a" not in page  # only the tracked route is linked
    response = client.get(f"/m/{link_id}?next=https://evil.example", follow_redirects=False,
                          headers={"User-Agent": "Mozilla/5.0 (Android 14)"})
    assert response.status_code == 303
    assert response.headers["location"] == "https://shopee.co.id/ina-a"
    with world.session() as db:
        clicks = list(db.scalars(select(EngagementEvent).where(EngagementEvent.type == "click")))
    assert [(e.business_id, e.product_id, e.channel, e.suspected_bot) for e in clicks] == [
        (world.ids["business_a"], world.ids["product_a"], "showcase", False)]
    for tampered in (link_id + 1000, 0, -1):
        assert client.get(f"/m/{tampered}", follow_redirects=False).status_code == 404
    assert client.get("/m/abc", follow_redirects=False).status_code in (404, 422)


def test_a_tampered_stored_url_is_never_followed(world: World) -> None:
    link_id = _saved_link(world, "product_b", "https://www.lazada.co.id/products/madu")
    with world.session() as db:
        link = db.get(ProductLink, link_id)
        assert link is not None
        link.url = "javascript:alert(1)"  # e.g. written straight into the database
        db.commit()
    response = world.client().get(f"/m/{link_id}", follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers
    with world.session() as db:
        assert db.scalars(select(EngagementEvent)).first() is None


def test_campaign_mail_carries_tracked_marketplace_links() -> None:
    context = sample_context("promotional")
    tracked: list[tuple[str, str | None]] = []

    def track(url: str, product: object = None, label: str | None = None) -> str:
        tracked.append((url, label))
        return f"https://umkm.ttskab.go.id/t/c/tok{len(tracked)}"

    context["track"] = track
    email = render_email(compile_email("promotional", "Promo"), context)
    assert ("https://shopee.co.id/ina-lopo", "lokapasar") in tracked
    assert "https://shopee.co.id/ina-lopo" not in email.html + email.text
    assert "Juga di:" in email.text and ">Shopee</a>" in email.html
