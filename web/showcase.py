"""The public product showcase, the official site of Pasal 7 ayat (1): no login needed.

``/`` and ``/produk`` list the opted-in products of UMKM that meet Pasal 10 (the cached
verdict ``Business.eligible``), with complete listings and in stock, filterable by
category and kecamatan. ``/produk/{id}`` is the landing page of every campaign link
(UTM parameters are accepted and ignored here: the click was already counted by the
tracking redirect). A product of an ineligible business is a 404, whatever the link.

"Pesan via WhatsApp" goes through ``/produk/{id}/wa``, which records a ``lead`` for the
business and redirects ONLY to ``https://wa.me/<the business's own number>``: nothing
in the request can choose the target, so the route is no open redirect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from engine.campaign.catalog import CATEGORIES, CatalogProduct, listing_complete
from engine.campaign.feeds import FeedItem, product_json_ld
from engine.common.errors import NotFound
from engine.common.i18n import t
from engine.customers.cells import normalize_phone
from engine.engagement import events
from engine.models import Business, Product, ProductOptIn
from engine.umkm import marketplaces, wilayah
from web.auth import PublicRoute, csrf_protect, get_db, page, settings_of

PAGE_SIZE = 24
MAX_PAGE = 1000
MAX_QUERY = 80



@dataclass(frozen=True)
class ShowcaseItem:
    """A catalogue entry plus what only the product page needs."""

    product: CatalogProduct
    in_stock: bool
    certifications: tuple[str, ...]

    @property
    def whatsapp(self) -> str | None:
        return wa_number(self.product.business_whatsapp)


def wa_number(raw: str | None) -> str | None:
    """The business's number as wa.me wants it (``628...``), or None if not a valid one."""
    return normalize_phone(raw) if raw and raw.strip() else None


def _opted_in() -> Any:
    return exists(select(ProductOptIn.id).where(ProductOptIn.product_id == Product.id,
                                                ProductOptIn.withdrawn_at.is_(None)))


def _item(product: Product, business: Business) -> ShowcaseItem:
    return ShowcaseItem(
        CatalogProduct(
            id=product.id, name=product.name, price=product.price,
            description=product.description or "", image_url=product.image_url or "",
            category=product.category, business_id=business.id, business_name=business.name,
            business_kecamatan=business.kecamatan_code, business_whatsapp=business.whatsapp,
            sku=product.sku,
        ),
        product.in_stock, tuple(str(c) for c in product.certifications or []),
    )


def _search(query: str) -> Any:
    """Product name, business name or kecamatan name containing ``query`` (any case).

    Kecamatan names are not in the database (codes are), so the matching codes are
    looked up in the wilayah table first. LIKE wildcards typed by the visitor are literal.
    """
    needle = query.casefold()
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    codes = [code for code, name in wilayah.kecamatan_list() if needle in name.casefold()]
    return or_(func.lower(Product.name).like(pattern, escape="\\"),
               func.lower(Business.name).like(pattern, escape="\\"),
               Business.kecamatan_code.in_(codes))


def catalogue(db: Session, *, category: str | None, kecamatan: str | None, page_no: int,
              page_size: int = PAGE_SIZE, query: str = "") -> tuple[list[ShowcaseItem], int]:
    """One page of the public catalogue and the total count (newest products first)."""
    conditions = [Business.eligible.is_(True), Product.in_stock.is_(True), listing_complete(),
                  _opted_in()]
    if query:
        conditions.append(_search(query))
    if category:
        conditions.append(Product.category == category)
    if kecamatan:
        conditions.append(Business.kecamatan_code == kecamatan)
    base = select(Product, Business).join(Business, Business.id == Product.business_id).where(
        *conditions)
    total = int(db.scalar(select(func.count()).select_from(base.subquery())) or 0)
    rows = db.execute(base.order_by(Product.id.desc()).limit(page_size)
                      .offset((page_no - 1) * page_size)).tuples()
    return [_item(p, b) for p, b in rows], total


def public_product(db: Session, product_id: int) -> ShowcaseItem:
    """A product whose business meets Pasal 10 and whose listing is complete, else 404."""
    row = db.execute(
        select(Product, Business).join(Business, Business.id == Product.business_id)
        .where(Product.id == product_id, Business.eligible.is_(True), listing_complete())
    ).tuples().first()
    if row is None:
        raise NotFound("auth.not_found")
    return _item(*row)


def wa_link(item: ShowcaseItem, base_url: str) -> str | None:
    """``https://wa.me/<digits>?text=...``; the number comes only from the database."""
    number = item.whatsapp
    if number is None or not number.isdigit():
        return None
    text = t("show.wa_text", business=item.product.business_name, product=item.product.name,
             url=item.product.url(base_url))
    return f"https://wa.me/{number}?{urlencode({'text': text}, quote_via=quote)}"


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(route_class=PublicRoute, dependencies=[Depends(csrf_protect)])


def _clean_filters(category: str, kecamatan: str) -> tuple[str | None, str | None]:
    chosen_category = category if category in CATEGORIES else None
    chosen_kecamatan = wilayah.normalize_kecamatan(kecamatan) if kecamatan else None
    if chosen_kecamatan is not None and not wilayah.is_tts_kecamatan(chosen_kecamatan):
        chosen_kecamatan = None
    return chosen_category, chosen_kecamatan


@router.get("/", response_class=HTMLResponse)
@router.get("/produk", response_class=HTMLResponse)
def product_list(request: Request, kategori: str = "", kecamatan: str = "", hal: int = 1,
                 q: str = "", db: Session = Depends(get_db)) -> HTMLResponse:
    category, kec = _clean_filters(kategori, kecamatan)
    query = " ".join(q.split())[:MAX_QUERY]
    page_no = min(max(hal, 1), MAX_PAGE)
    items, total = catalogue(db, category=category, kecamatan=kec, page_no=page_no,
                             query=query)
    pages = max(1, -(-total // PAGE_SIZE))
    filters = {k: v for k, v in (("q", query), ("kategori", category), ("kecamatan", kec))
               if v}

    def page_url(n: int) -> str:
        return "/produk?" + urlencode({**filters, "hal": n})

    return page(request, "showcase_list.html", {
        "items": items, "total": total, "page_no": page_no, "pages": pages,
        "category": category, "kecamatan": kec, "categories": CATEGORIES, "query": query,
        "kecamatan_options": wilayah.kecamatan_list(), "page_url": page_url,
    })


@router.get("/produk/{product_id}", response_class=HTMLResponse)
def product_page(request: Request, product_id: int,
                 db: Session = Depends(get_db)) -> HTMLResponse:
    # utm_* and any other query parameters are deliberately ignored.
    item = public_product(db, product_id)
    base_url = settings_of(request).base_url
    return page(request, "showcase_product.html", {
        "item": item, "has_wa": wa_link(item, base_url) is not None,
        "kecamatan_name": item.product.business_kecamatan_name,
        "marketplace_links": marketplaces.shown_links(db, item.product.id),
        "json_ld": product_json_ld(FeedItem(item.product, item.in_stock), base_url),
    })


@router.get("/produk/{product_id}/wa")
def order_via_whatsapp(request: Request, product_id: int,
                       db: Session = Depends(get_db)) -> Response:
    item = public_product(db, product_id)
    target = wa_link(item, settings_of(request).base_url)
    if target is None:
        raise NotFound("show.no_wa")
    events.record_lead(db, business_id=item.product.business_id, product_id=item.product.id,
                       channel="web", user_agent=request.headers.get("user-agent"),
                       raw={"source": "showcase"})
    db.commit()
    return RedirectResponse(target, status_code=303,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
