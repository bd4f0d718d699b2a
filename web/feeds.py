"""Product feeds at stable URLs and the showcase's tracked marketplace links (Pasal 7(4)).

``/feed/google.xml`` (Google Merchant Center) and ``/feed/meta.csv`` (Meta catalogue) list
exactly what the public showcase lists (:func:`web.showcase.catalogue`): opted-in,
complete, in-stock products of UMKM that meet Pasal 10. No login: catalogue crawlers
fetch them like any visitor sees the showcase.

``/m/{link_id}`` is the marketplace button of a product page: it records a ``click``
(channel ``showcase``) for the link's business and product, then redirects ONLY to the
URL stored for that link id, and only while the product is publicly shown and the URL
still passes :mod:`engine.umkm.marketplaces`. Nothing in the request chooses the target;
an unknown or tampered id is a 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.campaign.feeds import FeedItem, google_rss, meta_csv
from engine.common.errors import NotFound
from engine.common.i18n import t
from engine.engagement import events
from engine.umkm import marketplaces
from web.auth import get_db, settings_of
from web.showcase import ShowcaseItem, catalogue, public_product

FEED_LIMIT = 5000
FEED_CACHE = "public, max-age=3600"

router = APIRouter()


def feed_items(db: Session) -> list[FeedItem]:
    """The showcase's selection, newest first, as feed entries."""
    items, _ = catalogue(db, category=None, kecamatan=None, page_no=1, page_size=FEED_LIMIT)
    return [as_feed_item(item) for item in items]


def as_feed_item(item: ShowcaseItem) -> FeedItem:
    return FeedItem(item.product, item.in_stock)


@router.get("/feed/google.xml", include_in_schema=False)
def google_feed(request: Request, db: Session = Depends(get_db)) -> Response:
    body = google_rss(feed_items(db), settings_of(request).base_url, t("feed.title"),
                      t("feed.description"))
    return Response(body, media_type="application/xml; charset=utf-8",
                    headers={"Cache-Control": FEED_CACHE})


@router.get("/feed/meta.csv", include_in_schema=False)
def meta_feed(request: Request, db: Session = Depends(get_db)) -> Response:
    body = meta_csv(feed_items(db), settings_of(request).base_url)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Cache-Control": FEED_CACHE})


@router.get("/m/{link_id}", include_in_schema=False)
def marketplace_click(request: Request, link_id: int, db: Session = Depends(get_db)) -> Response:
    link = marketplaces.safe_link(db, link_id) if 0 < link_id < 2**63 else None
    if link is None:
        raise NotFound("auth.not_found")
    item = public_product(db, link.product_id)  # 404 once the product is not public
    events.record_showcase_click(db, business_id=item.product.business_id,
                                 product_id=item.product.id,
                                 user_agent=request.headers.get("user-agent"),
                                 raw={"marketplace_link": link.id,
                                      "marketplace": link.marketplace})
    db.commit()
    return RedirectResponse(link.url, status_code=303,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
