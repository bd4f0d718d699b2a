"""The campaign catalog (opted-in products of eligible UMKM) and recommendations."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.campaign.catalog import CatalogProduct, eligible_products
from engine.campaign.personalize import Recommender
from engine.customers.consent import mute_categories
from engine.models import Product
from tests.factories import (
    NOW,
    PHOTO,
    make_business,
    make_customer,
    make_optin,
    make_order,
    make_product,
)

KEY = "promo-tenun-akhir-tahun-2026"
DAY = timedelta(days=1)


def catalog_ids(db: Session, **kwargs: object) -> list[int]:
    return [p.id for p in eligible_products(db, campaign_key=KEY, **kwargs)]  # type: ignore[arg-type]


def opted(db: Session, business: object, **kwargs: object) -> Product:
    product = make_product(db, business, **kwargs)  # type: ignore[arg-type]
    make_optin(db, product, KEY)
    return product


def test_catalog_keeps_only_complete_in_stock_opted_in_products_of_eligible_umkm(
    db: Session,
) -> None:
    good = make_business(db, name="Tenun Ina Lopo", kecamatan_code="53.02.05")
    ineligible = make_business(db, eligible=False)
    ok = opted(db, good, name="Selendang Amanuban", price=350_000)
    opted(db, ineligible)
    opted(db, good, description=None)
    opted(db, good, description="  ")
    opted(db, good, image_url=None)
    opted(db, good, price=0)
    opted(db, good, category="minuman")
    opted(db, good, in_stock=False)
    withdrawn = make_product(db, good)
    make_optin(db, withdrawn, KEY, withdrawn_at=NOW - DAY)
    other_campaign = make_product(db, good)
    make_optin(db, other_campaign, "newsletter-januari")
    never_opted = make_product(db, good)

    catalog = eligible_products(db, campaign_key=KEY)
    assert [p.id for p in catalog] == [ok.id]
    entry = catalog[0].as_context("https://umkm.ttskab.go.id/")
    assert entry == {
        "id": ok.id, "name": "Selendang Amanuban", "price": 350_000,
        "description": "Produk asli Timor Tengah Selatan.",
        "image_url": "https://umkm.ttskab.go.id" + PHOTO,
        "url": f"https://umkm.ttskab.go.id/produk/{ok.id}", "category": "kerajinan_tangan",
        "marketplaces": [],
        "business": {"id": good.id, "name": "Tenun Ina Lopo", "kecamatan": "Amanuban Tengah",
                     "whatsapp": "6281234567890"},
    }
    # opt-in optional: Pasal 10 and the listing checks still hold, and an owner's
    # withdrawal is still respected
    assert catalog_ids(db, opt_in="optional") == [ok.id, other_campaign.id, never_opted.id]


def test_tag_opt_in_and_filters(db: Session) -> None:
    soe = make_business(db, kecamatan_code="53.02.01")
    mollo = make_business(db, kecamatan_code="53.02.03")
    by_tag = make_product(db, soe, category="makanan_olahan", price=90_000, sku="MADU")
    make_optin(db, by_tag, "akhir-tahun", is_tag=True)
    tag_named_like_campaign = make_product(db, soe)
    make_optin(db, tag_named_like_campaign, KEY, is_tag=True)  # a tag, not this campaign id
    tenun = opted(db, mollo, category="kerajinan_tangan", price=400_000, sku="TENUN")

    assert catalog_ids(db) == [tenun.id]
    assert catalog_ids(db, campaign_tags=["akhir-tahun"]) == [by_tag.id, tenun.id]
    assert catalog_ids(db, campaign_tags=["lain"]) == [tenun.id]
    both = {"campaign_tags": ["akhir-tahun"]}
    assert catalog_ids(db, category="makanan_olahan", **both) == [by_tag.id]
    assert catalog_ids(db, kecamatan=["53.02.03"], **both) == [tenun.id]
    assert catalog_ids(db, max_price=100_000, **both) == [by_tag.id]
    assert catalog_ids(db, featured=["TENUN"], **both) == [tenun.id, by_tag.id]
    # optional opt-in: opted-in products first, then the rest by id
    assert catalog_ids(db, opt_in="optional") == [tenun.id, by_tag.id,
                                                  tag_named_like_campaign.id]
    assert catalog_ids(db, featured=[str(tenun.id)], category="makanan_olahan", **both) == [
        by_tag.id]


def _world(db: Session) -> dict[str, Product]:
    """Two UMKM, four crafts and three foods, all opted in."""
    tenun = make_business(db, name="Tenun Ina")
    dapur = make_business(db, name="Dapur Mollo", kecamatan_code="53.02.03")
    names = {
        "selendang": (tenun, "kerajinan_tangan"), "sarung": (tenun, "kerajinan_tangan"),
        "tas": (tenun, "kerajinan_tangan"), "topi": (tenun, "kerajinan_tangan"),
        "madu": (dapur, "makanan_olahan"), "sei": (dapur, "makanan_olahan"),
        "kopi": (dapur, "makanan_olahan"),
    }
    return {name: opted(db, shop, name=name, category=cat) for name, (shop, cat) in names.items()}


def _recommend(db: Session, customer_ids: list[int], k: int = 3) -> dict[int, list[str]]:
    catalog = eligible_products(db, campaign_key=KEY)
    recommender = Recommender.build(db, catalog, NOW)
    picks = recommender.for_customers(db, customer_ids, k)
    return {cid: [p.name for p in products] for cid, products in picks.items()}


def test_recommendations_exclude_bought_and_prefer_the_customers_category(db: Session) -> None:
    p = _world(db)
    crafter = make_customer(db)
    make_order(db, crafter, [p["selendang"], p["sarung"]], at=NOW - 30 * DAY)
    for _ in range(3):  # foods are the most popular products overall
        make_order(db, make_customer(db), [p["kopi"], p["madu"]], at=NOW - 10 * DAY)
    foodie = make_customer(db, preferences={"categories": ["makanan_olahan"]})
    newcomer = make_customer(db)

    picks = _recommend(db, [crafter.id, foodie.id, newcomer.id], k=3)
    # same category first (not yet bought), popular foods only after
    assert picks[crafter.id] == ["tas", "topi", "madu"]
    # stated preference, then popularity (madu and kopi tie: lower id first)
    assert picks[foodie.id] == ["madu", "kopi", "sei"]
    # no signal at all: the most popular products, then id order
    assert picks[newcomer.id] == ["madu", "kopi", "selendang"]


def test_a_category_muted_in_the_preference_centre_is_never_recommended(db: Session) -> None:
    p = _world(db)
    shoppers = [make_customer(db) for _ in range(2)]  # the same history
    for shopper in shoppers:
        make_order(db, shopper, [p["selendang"], p["sarung"]], at=NOW - 30 * DAY)
    for _ in range(3):  # foods are the most popular products overall
        make_order(db, make_customer(db), [p["kopi"], p["madu"]], at=NOW - 10 * DAY)
    assert mute_categories(db, shoppers[1], ["makanan_olahan"])
    db.flush()

    picks = _recommend(db, [s.id for s in shoppers], k=3)
    assert picks[shoppers[0].id] == ["tas", "topi", "madu"]  # nothing muted
    assert picks[shoppers[1].id] == ["tas", "topi"]  # only handicrafts left, never food


def test_co_purchase_orders_what_similar_buyers_took(db: Session) -> None:
    p = _world(db)
    me = make_customer(db)
    make_order(db, me, [p["selendang"]], at=NOW - 5 * DAY)
    for _ in range(3):
        make_order(db, make_customer(db), [p["selendang"], p["topi"]], at=NOW - 50 * DAY)
    make_order(db, make_customer(db), [p["selendang"], p["tas"]], at=NOW - 50 * DAY)
    for _ in range(5):  # sarung is more popular but never bought with selendang
        make_order(db, make_customer(db), [p["sarung"]], at=NOW - 20 * DAY)
    cancelled = make_customer(db)
    for _ in range(4):  # cancelled orders are not purchases: kopi gains nothing
        make_order(db, cancelled, [p["selendang"], p["kopi"]], status="cancelled")

    picks = _recommend(db, [me.id], k=4)
    assert picks[me.id] == ["topi", "tas", "sarung", "madu"]


def test_recommendations_never_leave_the_catalog(db: Session) -> None:
    p = _world(db)
    good = make_business(db)
    bad = make_business(db, eligible=False)
    not_opted = make_product(db, good, name="tidak-ikut")
    hidden = opted(db, bad, name="umkm-tidak-layak")
    withdrawn = make_product(db, good, name="ditarik")
    make_optin(db, withdrawn, KEY, withdrawn_at=NOW - DAY)
    me = make_customer(db)
    make_order(db, me, [p["selendang"]])
    for _ in range(4):  # the strongest co-purchase signals point outside the catalog
        make_order(db, make_customer(db), [p["selendang"], not_opted, withdrawn])
        make_order(db, make_customer(db), [p["selendang"], hidden])

    catalog = eligible_products(db, campaign_key=KEY)
    # a product that went out of stock after the catalog was read is dropped as well
    p["topi"].in_stock = False
    db.flush()
    recommender = Recommender.build(db, catalog, NOW)
    picks = recommender.for_customers(db, [me.id], k=10)[me.id]
    names = {x.name for x in picks}
    assert names == {"sarung", "tas", "madu", "sei", "kopi"}
    assert all(isinstance(x, CatalogProduct) and x.business_name for x in picks)


def test_batch_of_500_customers_costs_one_query(db: Session) -> None:
    """Speed comes from one history query per batch, never one per customer (the timing
    itself is printed by bench/render.py-style benchmarks, not asserted here)."""
    shops = [make_business(db) for _ in range(10)]
    products = [
        opted(db, shops[i % 10], category=("kerajinan_tangan", "makanan_olahan")[i % 2])
        for i in range(200)
    ]
    customers = [make_customer(db) for _ in range(500)]
    for i, customer in enumerate(customers[:400]):
        make_order(db, customer, [products[(i * 7) % 200], products[(i * 13 + 1) % 200]],
                   at=NOW - (i % 300) * DAY)
    db.commit()
    catalog = eligible_products(db, campaign_key=KEY)
    recommender = Recommender.build(db, catalog, NOW)
    ids = [c.id for c in customers]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        picks = recommender.for_customers(db, ids, 3)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(picks) == 500 and all(len(v) == 3 for v in picks.values())
    assert len(statements) <= 2, statements
