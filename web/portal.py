"""The UMKM owner portal (``/portal``): the business, its products, opt-ins, engagement.

An owner sees and changes ONLY the business linked to their account: no route takes a
business id, and every product id is looked up together with the owner's business, so
somebody else's product is a plain 404 (the same answer as a product that does not
exist, so ids cannot be probed). Rules live in :mod:`engine.umkm.businesses`; this module
only turns forms into calls and errors into messages. The NIK is written once and
shown masked afterwards; it is never put back into a form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from engine.common import crypto
from engine.common.errors import BadRequest, NotFound
from engine.common.i18n import get_lang, t
from engine.customers.cells import normalize_phone
from engine.media.errors import MediaError
from engine.media.intake import photo_from_form, read_upload
from engine.models import (
    AuditLog,
    Business,
    Campaign,
    CampaignRun,
    CampaignType,
    Category,
    Product,
    ProductOptIn,
    RunStatus,
    User,
    Verification,
    utcnow,
)
from engine.reporting.pages import owner_figures
from engine.umkm import businesses, marketplaces, users, verification, wilayah
from engine.umkm.eligibility import Verdict, nib_problem, nik_problem, product_problems
from web.auth import SessionRoute, csrf_protect, get_db, page, require_owner, settings_of
from web.downloads import current_month, report_file
from web.pages import verdict_of
from web.portal_campaigns import campaigns_of

CERTIFICATION_CHOICES = ("PIRT", "halal", "BPOM", "SNI")



# --- input parsing ---------------------------------------------------------------------------


class FormError(ValueError):
    """A form value that must be corrected; the message is already translated."""


def parse_rupiah(value: str, field_key: str, *, required: bool = True) -> int | None:
    """``150000``, ``150.000``, ``Rp 150.000`` or ``Rp150.000,00`` -> ``150000``."""
    text = re.sub(r"(?i)^\s*rp\.?\s*", "", value or "").strip()
    if not text:
        if required:
            raise FormError(t("portal.bad_money", field=t(field_key)))
        return None
    text = re.sub(r",0*$", "", text).replace(".", "").replace(" ", "")
    if not text.isdigit() or len(text) > 15:
        raise FormError(t("portal.bad_money", field=t(field_key)))
    return int(text)


def _phone(value: str, field_key: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    normalized = normalize_phone(text)
    if normalized is None:
        raise FormError(t("portal.bad_phone", field=t(field_key)))
    return normalized


def _email(value: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise FormError(t("portal.bad_email"))
    return text.casefold()


def _text(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _compact(value: str | None) -> str:
    return re.sub(r"[\s.\-]", "", value or "")


@dataclass
class BusinessForm:
    """The business form as typed (the NIK is never kept here to be shown again)."""

    name: str = ""
    nib: str = ""
    owner_name: str = ""
    kecamatan_code: str = ""
    desa: str = ""
    address: str = ""
    phone: str = ""
    whatsapp: str = ""
    email: str = ""
    annual_sales: str = ""

    @classmethod
    def of(cls, business: Business) -> BusinessForm:
        return cls(name=business.name, nib=business.nib, owner_name=business.owner_name,
                   kecamatan_code=business.kecamatan_code, desa=business.desa or "",
                   address=business.address or "", phone=business.phone or "",
                   whatsapp=business.whatsapp or "", email=business.email or "",
                   annual_sales=str(business.annual_sales or ""))


@dataclass
class ProductForm:
    name: str = ""
    category: str = ""
    price: str = ""
    description: str = ""
    image_url: str = ""
    in_stock: bool = True
    certifications: list[str] = field(default_factory=list)
    links: str | None = None  # marketplace URLs, one a line; None = as stored

    @classmethod
    def of(cls, product: Product) -> ProductForm:
        return cls(name=product.name, category=product.category, price=str(product.price),
                   description=product.description or "", image_url=product.image_url or "",
                   in_stock=product.in_stock, certifications=list(product.certifications or []))


# --- lookups scoped to the owner -------------------------------------------------------------


def own_business(db: Session, user: User) -> Business | None:
    return db.get(Business, user.business_id) if user.business_id else None


def own_business_or_redirect(db: Session, user: User) -> Business:
    business = own_business(db, user)
    if business is None:
        raise HTTPException(status_code=303, headers={"Location": "/portal/usaha"})
    return business


def own_product(db: Session, user: User, product_id: int) -> Product:
    """The product if it belongs to the owner's business; otherwise 404, never data."""
    if not user.business_id:
        raise NotFound("auth.not_found")
    product = db.scalars(select(Product).where(
        Product.id == product_id, Product.business_id == user.business_id)).first()
    if product is None:
        raise NotFound("auth.not_found")
    return product


def upcoming_campaigns(db: Session, now: datetime | None = None) -> list[Campaign]:
    """Campaigns an owner can still join: active, or with a run scheduled in the future.

    Transactional mail carries the customer's own order, never an offered product.
    """
    now = now or utcnow()
    future_run = exists(select(CampaignRun.id).where(
        CampaignRun.campaign_id == Campaign.id, CampaignRun.status == RunStatus.scheduled,
        CampaignRun.scheduled_at > now))
    return list(db.scalars(
        select(Campaign)
        .where(or_(Campaign.active.is_(True), future_run),
               Campaign.type != CampaignType.transactional)
        .order_by(Campaign.name)
    ))


@dataclass(frozen=True)
class OptInChoice:
    value: str  # "c:<campaign key>" or "t:<tag>"
    label: str
    joined: bool


def opt_in_choices(db: Session, product: Product) -> list[OptInChoice]:
    """Upcoming campaigns and their tags, each marked when the product already joined."""
    active = {(o.campaign_key, o.is_tag) for o in db.scalars(select(ProductOptIn).where(
        ProductOptIn.product_id == product.id, ProductOptIn.withdrawn_at.is_(None)))}
    choices: list[OptInChoice] = []
    tags: list[str] = []
    for campaign in upcoming_campaigns(db):
        choices.append(OptInChoice(f"c:{campaign.key}", campaign.name,
                                   (campaign.key, False) in active))
        tags.extend(str(tag) for tag in campaign.tags or [] if str(tag) not in tags)
    choices.extend(OptInChoice(f"t:{tag}", t("portal.tag", tag=tag), (tag, True) in active)
                   for tag in tags)
    # Joined targets that are no longer upcoming stay visible so they can be withdrawn.
    offered = {c.value for c in choices}
    for key, is_tag in sorted(active):
        value = f"{'t' if is_tag else 'c'}:{key}"
        if value not in offered:
            label = t("portal.tag", tag=key) if is_tag else _campaign_name(db, key)
            choices.append(OptInChoice(value, label, True))
    return choices


def _campaign_name(db: Session, key: str) -> str:
    """An owner reads campaigns by name; the key is shown only if the campaign is gone."""
    name = db.scalar(select(Campaign.name).where(Campaign.key == key))
    return str(name) if name else key


def _choice_label(db: Session, product: Product, target: str) -> str:
    """What the owner saw on the button for ``target``, for the notice after the click."""
    for choice in opt_in_choices(db, product):
        if choice.value == target:
            return choice.label
    key, is_tag = _target(target)
    return t("portal.tag", tag=key) if is_tag else _campaign_name(db, key)


def _target(value: str) -> tuple[str, bool]:
    kind, _, key = (value or "").partition(":")
    if kind not in ("c", "t") or not key.strip():
        raise BadRequest("portal.unknown_campaign")
    return key.strip(), kind == "t"


def _audit(db: Session, user: User, action: str, entity: str, entity_id: int,
           detail: dict[str, Any]) -> None:
    db.add(AuditLog(actor=user.username, action=action, entity=entity,
                    entity_id=str(entity_id), detail=detail))


# --- business: register and update ----------------------------------------------------------


def _business_values(form: BusinessForm) -> dict[str, Any]:
    kecamatan = wilayah.find_kecamatan(form.kecamatan_code) or wilayah.normalize_kecamatan(
        form.kecamatan_code)
    if kecamatan is None:
        raise FormError(t("biz.err.kecamatan", value=form.kecamatan_code))
    sales = parse_rupiah(form.annual_sales, "portal.field.annual_sales", required=False)
    return {
        "name": form.name, "nib": _compact(form.nib), "owner_name": form.owner_name,
        "kecamatan_code": kecamatan, "desa": _text(form.desa), "address": _text(form.address),
        "phone": _phone(form.phone, "portal.field.phone"),
        "whatsapp": _phone(form.whatsapp, "portal.field.whatsapp"),
        "email": _email(form.email), "annual_sales": sales,
    }


def register_own_business(db: Session, user: User, form: BusinessForm, nik: str) -> Business:
    values = _business_values(form)
    try:
        business = businesses.register_business(db, nik=nik, actor=user.username, **values)
    except businesses.DuplicateError:
        raise FormError(t("portal.duplicate_nib")) from None
    # The owner's own registration waits as a draft until they send it for verification.
    business.verification = Verification.draft
    users.link_business(db, user, business.id, actor=user.username)
    return business


IDENTITY_FIELDS = ("name", "nib", "owner_name", "kecamatan_code")


def update_own_business(db: Session, user: User, business: Business, form: BusinessForm,
                        nik: str) -> Verdict:
    """Apply the owner's changes; identity changes send the business back to review."""
    values = _business_values(form)
    for key in ("name", "owner_name"):
        if not (values[key] or "").strip():
            raise FormError(t("biz.err.required", field=t(f"biz.field.{key}")))
        values[key] = values[key].strip()
    problem = nib_problem(values["nib"])
    if problem:
        raise FormError(problem)
    clash = db.scalars(select(Business.id).where(
        Business.nib == values["nib"], Business.id != business.id)).first()
    if clash is not None:
        raise FormError(t("portal.duplicate_nib"))
    values["size_class"] = businesses.size_class_for(values["annual_sales"])
    match = wilayah.find_desa(values["kecamatan_code"], values["desa"])
    if match:
        values["desa"] = match[1]
    changed = [k for k, v in values.items() if getattr(business, k) != v]
    nik = _compact(nik)
    if nik:
        problem = nik_problem(nik)
        if problem:
            raise FormError(problem)
        business.owner_nik_enc = crypto.encrypt(nik, purpose="nik")
        business.owner_nik_digest = crypto.digest(nik, "nik")
        business.owner_nik_masked = crypto.mask_nik(nik)
        changed.append("nik")
    for key, value in values.items():
        setattr(business, key, value)
    # A draft or rejected business is not in the queue: it stays so until the owner sends it.
    if any(k in changed for k in (*IDENTITY_FIELDS, "nik")) and \
            business.verification not in verification.SUBMITTABLE:
        business.verification = Verification.changed  # held until an admin checks it again
    verdict = businesses.refresh_eligibility(db, business)
    _audit(db, user, "business.update", "business", business.id,
           {"fields": sorted(changed), "eligible": verdict.eligible})
    return verdict


# --- products --------------------------------------------------------------------------------


def _product_values(form: ProductForm) -> dict[str, Any]:
    price = parse_rupiah(form.price, "portal.field.price")
    marketplaces.parse_links(form.links or "")  # a bad link is refused before anything is kept
    return {"name": form.name, "category": form.category, "price": price,
            "description": form.description, "image_url": form.image_url,
            "in_stock": form.in_stock, "certifications": form.certifications}


def update_product(db: Session, user: User, product: Product, form: ProductForm) -> None:
    values = _product_values(form)
    name = (values["name"] or "").strip()
    if not name:
        raise FormError(t("biz.err.required", field=t("biz.field.product_name")))
    category = (values["category"] or "").strip()
    if category not in {c.value for c in Category}:
        raise FormError(t("biz.err.category", value=category))
    product.name = name
    product.category = category
    product.price = int(values["price"])
    product.description = _text(values["description"])
    product.image_url = _text(values["image_url"])
    product.in_stock = bool(values["in_stock"])
    product.certifications = businesses.normalize_certifications(values["certifications"])
    db.flush()
    marketplaces.save_links(db, product, form.links or "")
    businesses.refresh_eligibility(db, product.business)
    _audit(db, user, "product.update", "product", product.id, {"name": name})


def take_photo(request: Request, form: ProductForm, photo: UploadFile | None,
               fetch: bool) -> None:
    """Store an uploaded photo (or fetch the URL when asked) and point the form at it.

    The file's name and declared type are ignored: only its content is judged.
    """
    settings = settings_of(request)
    data = read_upload(photo.file, settings) if photo is not None else None
    stored = photo_from_form(settings, data, form.image_url, fetch=fetch)
    if stored:
        form.image_url = stored


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(prefix="/portal", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect)])


def _kecamatan_options() -> list[tuple[str, str]]:
    return wilayah.kecamatan_list()


def _business_page(request: Request, business: Business | None, form: BusinessForm,
                   error: str | None, status_code: int = 200) -> HTMLResponse:
    return page(request, "portal_business.html", {
        "business": business, "form": form, "error": error,
        "kecamatan_options": _kecamatan_options(),
    }, status_code=status_code)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, saved: str = "", user: User = Depends(require_owner),
             db: Session = Depends(get_db)) -> HTMLResponse:
    business = own_business_or_redirect(db, user)
    products = list(db.scalars(select(Product).where(Product.business_id == business.id)
                               .order_by(Product.id)))
    problems = {p.id: product_problems(p, get_lang()) for p in products}
    return page(request, "portal_home.html", {
        "business": business, "verdict": verdict_of(business), "products": products,
        "problems": problems, "campaigns": campaigns_of(db, products),
        "kecamatan": wilayah.kecamatan_name(business.kecamatan_code),
        "saved": bool(saved), "decision": verification.latest_decision(db, business),
        "submittable": business.verification in verification.SUBMITTABLE,
    })


@router.get("/usaha", response_class=HTMLResponse)
def business_form(request: Request, user: User = Depends(require_owner),
                  db: Session = Depends(get_db)) -> HTMLResponse:
    business = own_business(db, user)
    form = BusinessForm.of(business) if business else BusinessForm()
    return _business_page(request, business, form, None)


@router.post("/usaha", response_class=HTMLResponse)
def business_submit(
    request: Request,
    name: str = Form(""), nib: str = Form(""), owner_name: str = Form(""),
    nik: str = Form(""), kecamatan_code: str = Form(""), desa: str = Form(""),
    address: str = Form(""), phone: str = Form(""), whatsapp: str = Form(""),
    email: str = Form(""), annual_sales: str = Form(""),
    user: User = Depends(require_owner), db: Session = Depends(get_db),
) -> Response:
    # Any business id in the form is ignored: the owner's own business is the only target.
    form = BusinessForm(name, nib, owner_name, kecamatan_code, desa, address, phone,
                        whatsapp, email, annual_sales)
    business = own_business(db, user)
    try:
        if business is None:
            register_own_business(db, user, form, nik)
        else:
            update_own_business(db, user, business, form, nik)
    except (FormError, businesses.BusinessError) as exc:
        db.rollback()
        return _business_page(request, own_business(db, user), form, str(exc), 400)
    db.commit()
    return RedirectResponse("/portal?saved=1", status_code=303)


def _product_page(request: Request, product: Product | None, form: ProductForm,
                  error: str | None, *, db: Session, status_code: int = 200,
                  notice: str | None = None, reasons: tuple[str, ...] = ()) -> HTMLResponse:
    return page(request, "portal_product.html", {
        "product": product, "form": form, "error": error, "notice": notice,
        "reasons": reasons, "categories": [c.value for c in Category],
        "certification_choices": CERTIFICATION_CHOICES,
        "choices": opt_in_choices(db, product) if product else [],
        "problems": product_problems(product, get_lang()) if product else [],
        "campaigns": campaigns_of(db, [product]).get(product.id, []) if product else [],
        "links": form.links if form.links is not None else marketplaces.form_text(db, product),
    }, status_code=status_code)


@router.get("/produk/baru", response_class=HTMLResponse)
def product_new(request: Request, user: User = Depends(require_owner),
                db: Session = Depends(get_db)) -> HTMLResponse:
    own_business_or_redirect(db, user)
    return _product_page(request, None, ProductForm(category=Category.makanan_olahan.value),
                         None, db=db)


@router.post("/produk/baru", response_class=HTMLResponse)
def product_create(
    request: Request,
    name: str = Form(""), category: str = Form(""), price: str = Form(""),
    description: str = Form(""), image_url: str = Form(""), in_stock: str = Form(""),
    certifications: list[str] = Form([]), photo: UploadFile | None = File(None),
    fetch_photo: str = Form(""), links: str = Form(""),
    user: User = Depends(require_owner), db: Session = Depends(get_db),
) -> Response:
    business = own_business_or_redirect(db, user)
    form = ProductForm(name, category, price, description, image_url, bool(in_stock),
                       certifications, links)
    try:
        values = _product_values(form)
        take_photo(request, form, photo, bool(fetch_photo))
        product = businesses.add_product(db, business, **{**values, "image_url": form.image_url})
        marketplaces.save_links(db, product, form.links or "")
        _audit(db, user, "product.create", "product", product.id, {"name": product.name})
    except (FormError, businesses.BusinessError, MediaError) as exc:
        db.rollback()
        return _product_page(request, None, form, str(exc), db=db, status_code=400)
    db.commit()
    return RedirectResponse(f"/portal/produk/{product.id}?saved=1", status_code=303)


@router.get("/produk/{product_id}", response_class=HTMLResponse)
def product_edit(request: Request, product_id: int, saved: str = "",
                 user: User = Depends(require_owner),
                 db: Session = Depends(get_db)) -> HTMLResponse:
    product = own_product(db, user, product_id)
    return _product_page(request, product, ProductForm.of(product), None, db=db,
                         notice=t("portal.saved") if saved else None)


@router.post("/produk/{product_id}", response_class=HTMLResponse)
def product_update(
    request: Request, product_id: int,
    name: str = Form(""), category: str = Form(""), price: str = Form(""),
    description: str = Form(""), image_url: str = Form(""), in_stock: str = Form(""),
    certifications: list[str] = Form([]), photo: UploadFile | None = File(None),
    fetch_photo: str = Form(""), links: str = Form(""),
    user: User = Depends(require_owner), db: Session = Depends(get_db),
) -> Response:
    product = own_product(db, user, product_id)
    form = ProductForm(name, category, price, description, image_url, bool(in_stock),
                       certifications, links)
    try:
        _product_values(form)  # a typing mistake is refused before a photo is stored
        take_photo(request, form, photo, bool(fetch_photo))
        update_product(db, user, product, form)
    except (FormError, businesses.BusinessError, MediaError) as exc:
        db.rollback()
        product = own_product(db, user, product_id)
        return _product_page(request, product, form, str(exc), db=db, status_code=400)
    db.commit()
    return RedirectResponse(f"/portal/produk/{product.id}?saved=1", status_code=303)


@router.post("/produk/{product_id}/ikut", response_class=HTMLResponse)
def product_opt_in(request: Request, product_id: int, target: str = Form(""),
                   user: User = Depends(require_owner),
                   db: Session = Depends(get_db)) -> Response:
    product = own_product(db, user, product_id)
    key, is_tag = _target(target)
    choices = {c.value: c.label for c in opt_in_choices(db, product)}
    label = choices.get(f"{'t' if is_tag else 'c'}:{key}")
    if label is None:
        raise BadRequest("portal.unknown_campaign")
    try:
        businesses.opt_in(db, product, key, actor=user.username, is_tag=is_tag)
    except businesses.NotEligibleError as exc:
        db.commit()  # the refreshed verdict is worth keeping
        return _product_page(request, product, ProductForm.of(product),
                             t("portal.opt_in_refused"), db=db, status_code=409,
                             reasons=exc.reasons)
    db.commit()
    return _product_page(request, product, ProductForm.of(product), None, db=db,
                         notice=t("portal.opt_in_done", target=label))


@router.post("/produk/{product_id}/tarik", response_class=HTMLResponse)
def product_opt_out(request: Request, product_id: int, target: str = Form(""),
                    user: User = Depends(require_owner),
                    db: Session = Depends(get_db)) -> Response:
    product = own_product(db, user, product_id)
    key, is_tag = _target(target)
    label = _choice_label(db, product, target)
    businesses.withdraw_opt_in(db, product, key, user.username, is_tag=is_tag)
    db.commit()
    return _product_page(request, product, ProductForm.of(product), None, db=db,
                         notice=t("portal.opt_out_done", target=label))


@router.get("/keterlibatan", response_class=HTMLResponse)
def engagement(request: Request, user: User = Depends(require_owner),
               db: Session = Depends(get_db)) -> HTMLResponse:
    business = own_business_or_redirect(db, user)
    return page(request, "portal_engagement.html", {
        "business": business, "figures": owner_figures(db, business.id),
    })


@router.get("/laporan")
def own_report(periode: str = "", format: str = "html", user: User = Depends(require_owner),
               db: Session = Depends(get_db)) -> Response:
    """The Pasal 15 report restricted to the owner's own business (by campaign)."""
    business = own_business_or_redirect(db, user)
    return report_file(db, (periode or current_month())[:40], "campaign", format,
                       business_id=business.id)
