"""The product catalog of a campaign: opted-in products of eligible UMKM (Pasal 10).

Why a dedicated query: a message may only carry products whose business passes
Pasal 10 (``Business.eligible``, the cached verdict of ``engine.umkm.eligibility``), whose
listing is complete enough to show (name, description, a Pasal 1 angka 6 category,
price, image), that are in stock, and that the owner offered to this campaign
(``ProductOptIn`` by campaign id, or by a tag the campaign carries; a withdrawal takes
effect at once). Everything is filtered in SQL; the result is a list of small frozen
:class:`CatalogProduct` values that renderers and the recommender share without
touching the ORM again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from engine.models import Business, Category, Product, ProductOptIn
from engine.umkm import marketplaces
from engine.umkm.wilayah import kecamatan_name

OPT_IN_MODES = ("required", "optional")
CATEGORIES = tuple(c.value for c in Category)


@dataclass(frozen=True)
class CatalogProduct:
    """What templates and attribution need of one product and its UMKM."""

    id: int
    name: str
    price: int
    description: str
    image_url: str
    category: str
    business_id: int
    business_name: str
    business_kecamatan: str  # kecamatan code, e.g. "53.02.05"
    business_whatsapp: str | None
    sku: str | None = None
    # (label, url) of the marketplaces where the UMKM also sells it (Pasal 7 ayat 4).
    marketplaces: tuple[tuple[str, str], ...] = ()

    @property
    def business_kecamatan_name(self) -> str:
        """``Kota Soe`` for ``53.02.01``; an unknown code is shown as it is, not hidden."""
        return kecamatan_name(self.business_kecamatan) or self.business_kecamatan

    def url(self, url_base: str) -> str:
        return f"{url_base.rstrip('/')}/produk/{self.id}"

    def as_context(self, url_base: str) -> dict[str, Any]:
        """The ``products`` entry of the render context (see engine.message.templating)."""
        return {
            "id": self.id,
            "name": self.name,
            "price": self.price,
            "description": self.description,
            # A stored photo is a site path; mail clients and social platforms need it whole.
            "image_url": (url_base.rstrip("/") + self.image_url
                          if self.image_url.startswith("/") else self.image_url),
            "url": self.url(url_base),
            "category": self.category,
            "marketplaces": [{"label": label, "url": url} for label, url in self.marketplaces],
            "business": {
                "id": self.business_id,
                "name": self.business_name,
                "kecamatan": self.business_kecamatan_name,
                "whatsapp": self.business_whatsapp,
            },
        }


def _filled(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
) -> ColumnElement[bool]:
    return and_(column.is_not(None), func.trim(column) != "")


def listing_complete() -> ColumnElement[bool]:
    """A product that can be shown: name, description, category, price and image."""
    return and_(
        Product.archived_at.is_(None),
        _filled(Product.name),
        _filled(Product.description),
        Product.category.in_(CATEGORIES),
        Product.price > 0,
        _filled(Product.image_url),
    )


def _opt_in_exists(
    campaign_key: str, campaign_tags: Sequence[str], *, withdrawn: bool
) -> ColumnElement[bool]:
    targets: list[ColumnElement[bool]] = [
        and_(ProductOptIn.is_tag.is_(False), ProductOptIn.campaign_key == campaign_key)
    ]
    if campaign_tags:
        targets.append(
            and_(ProductOptIn.is_tag.is_(True), ProductOptIn.campaign_key.in_(list(campaign_tags)))
        )
    column = ProductOptIn.withdrawn_at
    state = column.is_not(None) if withdrawn else column.is_(None)
    return exists(
        select(ProductOptIn.id).where(ProductOptIn.product_id == Product.id, state, or_(*targets))
    )


def active_opt_in(campaign_key: str, campaign_tags: Sequence[str]) -> ColumnElement[bool]:
    """EXISTS a non-withdrawn opt-in for this campaign id, or for one of its tags."""
    return _opt_in_exists(campaign_key, campaign_tags, withdrawn=False)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _featured_rank(featured: Sequence[str | int]) -> dict[str, int]:
    return {str(ref): i for i, ref in enumerate(featured)}


def eligible_products(
    session: Session,
    *,
    campaign_key: str,
    campaign_tags: Sequence[str] = (),
    opt_in: str = "required",
    category: str | Sequence[str] | None = None,
    kecamatan: Sequence[str] | None = None,
    max_price: int | None = None,
    featured: Sequence[str | int] = (),
) -> list[CatalogProduct]:
    """The campaign's catalog: featured products first (in the order given, by id or
    SKU), then by product id so every run of the same campaign sees the same order.

    ``opt_in="optional"`` widens the catalog to every complete product of an eligible
    UMKM, opted-in ones first, but still leaves out a product whose owner withdrew it
    from this campaign (a withdrawal is an explicit "no"). Any value other than
    ``required``/``optional`` is refused rather than read as "no opt-in": a typo must
    never put a product in a campaign its owner did not join.
    """
    if opt_in not in OPT_IN_MODES:
        raise ValueError(f"opt_in must be one of {OPT_IN_MODES}, not {opt_in!r}")
    query = (
        select(Product, Business)
        .join(Business, Business.id == Product.business_id)
        .where(Business.eligible.is_(True), Product.in_stock.is_(True), listing_complete())
        .order_by(Product.id)
    )
    active = active_opt_in(campaign_key, campaign_tags)
    if opt_in == "required":
        query = query.where(active)
    else:
        withdrawn = _opt_in_exists(campaign_key, campaign_tags, withdrawn=True)
        query = query.where(or_(active, ~withdrawn)).order_by(None).order_by(
            case((active, 0), else_=1), Product.id
        )
    categories = _as_list(category)
    if categories:
        query = query.where(Product.category.in_(categories))
    if kecamatan:
        query = query.where(Business.kecamatan_code.in_(list(kecamatan)))
    if max_price is not None:
        query = query.where(Product.price <= max_price)
    products = [
        CatalogProduct(
            id=p.id, name=p.name, price=p.price, description=p.description or "",
            image_url=p.image_url or "", category=p.category, business_id=b.id,
            business_name=b.name, business_kecamatan=b.kecamatan_code,
            business_whatsapp=b.whatsapp, sku=p.sku,
        )
        for p, b in session.execute(query).tuples()
    ]
    links = marketplaces.links_by_product(session, [p.id for p in products])
    products = [replace(p, marketplaces=links.get(p.id, ())) for p in products]
    rank = _featured_rank(featured)
    if not rank:
        return products

    def position(product: CatalogProduct) -> int:
        hits = [rank[key] for key in (str(product.id), product.sku) if key in rank]
        return min(hits) if hits else len(rank)

    return sorted(products, key=position)  # stable: the SQL order stays within each rank
