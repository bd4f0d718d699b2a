"""The owner's archive and delete buttons for a product (``/portal/produk/{id}/...``).

Same rules as the rest of the portal (:mod:`web.portal`): the product is looked up with
the owner's business, so another owner's product is a 404; the forms carry the session's
CSRF token. Deleting is refused for a product with history (it must be archived).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.models import User
from engine.umkm import businesses
from web.auth import SessionRoute, csrf_protect, get_db, require_owner
from web.portal import ProductForm, _product_page, own_product

router = APIRouter(prefix="/portal", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect)])


@router.post("/produk/{product_id}/arsip")
def product_archive(product_id: int, archived: str = Form("1"),
                    user: User = Depends(require_owner),
                    db: Session = Depends(get_db)) -> Response:
    product = own_product(db, user, product_id)
    businesses.set_archived(db, product, archived == "1", user.username)
    db.commit()
    return RedirectResponse("/portal?saved=1", status_code=303)


@router.post("/produk/{product_id}/hapus")
def product_delete(request: Request, product_id: int, user: User = Depends(require_owner),
                   db: Session = Depends(get_db)) -> Response:
    product = own_product(db, user, product_id)
    try:
        businesses.delete_product(db, product, user.username)
    except businesses.DuplicateError as exc:
        db.rollback()
        product = own_product(db, user, product_id)
        return _product_page(request, product, ProductForm.of(product), str(exc), db=db,
                             status_code=409)
    db.commit()
    return RedirectResponse("/portal?saved=1", status_code=303)
