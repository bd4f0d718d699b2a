"""Drafts and archives: an incomplete product is a draft shown only to its owner, never
the reason the business or its other products disappear; owners archive and delete only
their own products."""

from __future__ import annotations

from sqlalchemy import select

from engine.campaign.catalog import eligible_products
from engine.models import Business, Product
from engine.umkm import businesses
from tests.web_helpers import (
    World,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)


def _add_draft(world: World) -> int:
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        draft = businesses.add_product(session, business, name="Selendang Draf",
                                       category="kerajinan_tangan", price=90_000)
        session.commit()
        return draft.id


def test_a_draft_leaves_the_business_and_its_other_products_visible(world: World) -> None:
    draft_id = _add_draft(world)
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None and business.eligible
        draft = session.get(Product, draft_id)
        assert draft is not None
        assert businesses.opt_in_problems(session, draft)  # a draft cannot join yet...
        catalog = eligible_products(session, campaign_key="x", campaign_tags=["semua-produk"],
                                    opt_in="optional")  # ...nor slip in without an opt-in
        names = {p.name for p in catalog}
        assert "Tenun Tenun Ina A" in names and "Selendang Draf" not in names
    showcase = world.client().get("/produk").text
    assert "Tenun Tenun Ina A" in showcase and "Selendang Draf" not in showcase
    assert world.client().get(f"/produk/{draft_id}").status_code == 404
    home = world.client("pemilik-a").get("/portal").text
    assert "Selendang Draf" in home and "Draf: belum tampil" in home and "deskripsi" in home


def test_owner_archives_and_deletes_only_their_own_products(world: World) -> None:
    draft_id = _add_draft(world)
    other = world.client("pemilik-b")
    page = f"/portal/produk/{world.ids['product_b']}"
    for action in ("arsip", "hapus"):
        response = post_form(other, f"/portal/produk/{draft_id}/{action}", form_page=page)
        assert response.status_code == 404
    assert world.client("pemilik-a").post(f"/portal/produk/{draft_id}/hapus").status_code in (
        400, 403)  # no CSRF token
    owner = world.client("pemilik-a")
    product_a = world.ids["product_a"]
    response = post_form(owner, f"/portal/produk/{product_a}/arsip", {"archived": "1"},
                         form_page=f"/portal/produk/{product_a}")
    assert response.status_code == 303
    assert "Tenun Tenun Ina A" not in world.client().get("/produk").text
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None and not business.eligible  # only a draft is left
    post_form(owner, f"/portal/produk/{product_a}/arsip", {"archived": "0"},
              form_page=f"/portal/produk/{product_a}")
    assert "Tenun Tenun Ina A" in world.client().get("/produk").text
    response = post_form(owner, f"/portal/produk/{draft_id}/hapus",
                         form_page=f"/portal/produk/{draft_id}")
    assert response.status_code == 303
    with world.session() as session:
        assert session.get(Product, draft_id) is None
        assert session.scalars(select(Product).where(
            Product.business_id == world.ids["business_a"])).all()
