"""Catalogue feeds (Google Merchant Center RSS, Meta CSV) and schema.org JSON-LD, checked
against the required fields and formats of the published specs (Pasal 7 ayat 4)."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET

from engine.campaign.catalog import eligible_products
from engine.models import Business, Product
from engine.umkm import businesses, marketplaces
from tests.factories import make_product
from tests.web_helpers import (
    World,
    world_fixture,  # noqa: F401 - the "world" fixture
)

G = "{http://base.google.com/ns/1.0}"
PRICE = re.compile(r"^\d+ IDR$")
GOOGLE_REQUIRED = ("id", "title", "description", "link", "image_link", "price",
                   "availability", "brand", "condition")
META_COLUMNS = ["id", "title", "description", "availability", "condition", "price", "link",
                "image_link", "brand"]
JSON_LD = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)


def _hidden_and_tricky(world: World) -> tuple[int, int]:
    """A product not opted in (must not appear) and one with a stored photo and odd text."""
    with world.session() as db:
        business = db.get(Business, world.ids["business_a"])
        assert business is not None
        hidden = make_product(db, business, name="Belum Ikut")
        tricky = make_product(db, business, name='Tenun "Ina" <b>&</b>',
                              description="Motif\x0b Amanuban</script>",
                              image_url="/media/" + "a" * 64 + "/square.jpg")
        businesses.opt_in(db, tricky, "semua-produk", actor="t", is_tag=True)
        db.commit()
        return hidden.id, tricky.id


def test_google_feed_has_every_required_field(world: World) -> None:
    hidden, tricky = _hidden_and_tricky(world)
    response = world.client().get("/feed/google.xml")
    assert response.status_code == 200 and "xml" in response.headers["content-type"]
    root = ET.fromstring(response.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.findall("./channel/item")
    ids = {item.findtext(f"{G}id") for item in items}
    assert ids == {str(world.ids["product_a"]), str(world.ids["product_b"]), str(tricky)}
    assert str(hidden) not in ids
    for item in items:
        values = {name: item.findtext(f"{G}{name}") or "" for name in GOOGLE_REQUIRED}
        assert all(values.values()), values
        assert PRICE.match(values["price"]), values["price"]
        assert values["availability"] in ("in_stock", "out_of_stock", "preorder", "backorder")
        assert values["condition"] == "new"
        assert values["link"] == f"{world.settings.base_url}/produk/{values['id']}"
        assert values["image_link"].startswith(("http://", "https://"))
    by_id = {item.findtext(f"{G}id"): item for item in items}
    odd = by_id[str(tricky)]
    assert odd.findtext(f"{G}title") == 'Tenun "Ina" <b>&</b>'
    assert odd.findtext(f"{G}brand") == "Tenun Ina A"
    assert odd.findtext(f"{G}image_link") == (
        world.settings.base_url + "/media/" + "a" * 64 + "/square.jpg")
    assert by_id[str(world.ids["product_a"])].findtext(f"{G}price") == "250000 IDR"


def test_meta_feed_is_a_csv_with_the_catalogue_columns(world: World) -> None:
    _, tricky = _hidden_and_tricky(world)
    response = world.client().get("/feed/meta.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == META_COLUMNS
    rows = list(reader)
    assert {row["id"] for row in rows} == {str(world.ids["product_a"]),
                                           str(world.ids["product_b"]), str(tricky)}
    for row in rows:
        assert all(row[column] for column in META_COLUMNS), row
        assert row["availability"] in ("in stock", "out of stock")
        assert row["condition"] == "new" and PRICE.match(row["price"])
    assert {row["brand"] for row in rows} == {"Tenun Ina A", "Madu Hutan B"}


def test_product_page_carries_schema_org_product_json_ld(world: World) -> None:
    _, tricky = _hidden_and_tricky(world)
    page = world.client().get(f"/produk/{tricky}").text
    scripts = JSON_LD.findall(page)
    assert len(scripts) == 1
    assert "</script" not in scripts[0] and "<b>" not in scripts[0]  # cannot break out
    data = json.loads(scripts[0])
    assert data["@context"] == "https://schema.org" and data["@type"] == "Product"
    assert data["name"] == 'Tenun "Ina" <b>&</b>'
    assert data["image"].endswith("/square.jpg") and data["description"]
    offer = data["offers"]
    assert offer["@type"] == "Offer" and offer["priceCurrency"] == "IDR"
    assert offer["price"] == "150000"
    assert offer["availability"] == "https://schema.org/InStock"
    assert offer["url"] == f"{world.settings.base_url}/produk/{tricky}"
    assert offer["seller"] == {"@type": "Organization", "name": "Tenun Ina A"}


def test_campaign_catalogue_carries_the_marketplace_links(world: World) -> None:
    with world.session() as db:
        product = db.get(Product, world.ids["product_a"])
        assert product is not None
        marketplaces.save_links(db, product, "https://shopee.co.id/ina-a")
        db.commit()
        catalog = {p.id: p for p in eligible_products(db, campaign_key="x",
                                                       campaign_tags=["semua-produk"])}
    context = catalog[world.ids["product_a"]].as_context("https://umkm.ttskab.go.id")
    assert context["marketplaces"] == [{"label": "Shopee", "url": "https://shopee.co.id/ina-a"}]
    assert catalog[world.ids["product_b"]].as_context("https://x.id")["marketplaces"] == []
