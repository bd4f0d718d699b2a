"""Service layer for UMKM, their products and campaign opt-ins.

The CLI, the web portal, the importer and the demo dataset all go through these
functions, so the rules live in one place: the NIK is encrypted before it reaches a
column, every change refreshes the cached Pasal 10 verdict, and only products of
eligible businesses with complete information can join a campaign.

Functions ``flush`` but never ``commit``: the caller owns the unit of work
(:func:`engine.db.session_scope`). Errors are :class:`BusinessError` subclasses whose
message is ready to show to staff (Bahasa Indonesia, English via ``--lang en``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common import crypto
from engine.common.errors import Conflict, EngineError, InvalidInput, NotFound
from engine.common.i18n import get_lang, t
from engine.models import (
    AuditLog,
    Business,
    Category,
    DeliveryProduct,
    EngagementEvent,
    OrderItem,
    Product,
    ProductLink,
    ProductOptIn,
    SizeClass,
    SocialPost,
    TrackedLink,
    utcnow,
)
from engine.umkm import wilayah
from engine.umkm.eligibility import (
    Verdict,
    check_business,
    nib_problem,
    nik_problem,
    product_problems,
)

# PP 7/2021 Pasal 35 ayat (5): annual sales ceilings in whole Rupiah.
MIKRO_MAX = 2_000_000_000
KECIL_MAX = 15_000_000_000
MENENGAH_MAX = 50_000_000_000

# Canonical spelling of the certifications DESIGN §4 names; input matches loosely.
CERTIFICATIONS = {"pirt": "PIRT", "p-irt": "PIRT", "halal": "halal", "bpom": "BPOM", "sni": "SNI"}



class BusinessError(EngineError):
    """A refusal with a message meant for staff (translated when shown)."""

    @classmethod
    def because(cls, problem: str) -> Self:
        """An error whose text a rule already wrote (the NIB/NIK checks of eligibility)."""
        return cls("biz.err.problem", problem=problem)


class InvalidDataError(BusinessError, InvalidInput):
    """An input that can never become valid without being corrected."""


class DuplicateError(BusinessError, Conflict):
    """Something that must be unique (NIB, SKU) already exists."""


class NotFoundError(BusinessError, NotFound):
    """No business, product or opt-in matches the reference."""


class NotEligibleError(BusinessError, Conflict):
    """Opt-in refused: the business fails Pasal 10 or the product is incomplete.

    ``reasons`` are the verdict's lines, for a page that lists them one by one.
    """

    def __init__(self, reasons: tuple[str, ...], *, product: str, campaign: str) -> None:
        super().__init__("biz.err.not_eligible", product=product, campaign=campaign,
                         reasons="\n".join(f"- {r}" for r in reasons))
        self.reasons = reasons


# --- businesses --------------------------------------------------------------------


def register_business(
    session: Session,
    *,
    name: str,
    nib: str,
    owner_name: str,
    nik: str,
    kecamatan_code: str,
    desa: str | None = None,
    address: str | None = None,
    phone: str | None = None,
    whatsapp: str | None = None,
    email: str | None = None,
    binaan: bool = False,
    binaan_group: str | None = None,
    annual_sales: int | None = None,
    actor: str = "cli",
) -> Business:
    """Create a UMKM; malformed NIB/NIK or a duplicate NIB are refused outright.

    Why refuse instead of storing and failing the verdict: a NIB or NIK that is not
    well-formed can never become valid without retyping it, so the importer and the
    forms should show the mistake at once. Everything else (domicile outside TTS, not
    yet binaan, no products) is stored and explained by the verdict.
    """
    name = _required(name, "biz.field.name")
    owner_name = _required(owner_name, "biz.field.owner_name")
    nib = _compact(nib)
    nik = _compact(nik)
    for problem in (nib_problem(nib), nik_problem(nik)):
        if problem:
            raise InvalidDataError.because(problem)
    kecamatan = _kecamatan(kecamatan_code)
    size_class = size_class_for(annual_sales)
    _refuse_duplicate_nib(session, nib)

    business = Business(
        name=name,
        nib=nib,
        owner_name=owner_name,
        owner_nik_enc=crypto.encrypt(nik, purpose="nik"),
        owner_nik_digest=crypto.digest(nik, "nik"),
        owner_nik_masked=crypto.mask_nik(nik),
        kecamatan_code=kecamatan,
        desa=_desa(kecamatan, desa),
        address=_optional(address),
        phone=_optional(phone),
        whatsapp=_optional(whatsapp),
        email=_optional(email),
        binaan=binaan,
        binaan_group=_optional(binaan_group),
        size_class=size_class,
        annual_sales=annual_sales,
    )
    session.add(business)
    session.flush()
    verdict = refresh_eligibility(session, business)
    _audit(
        session,
        actor,
        "business.register",
        "business",
        business.id,
        {"name": name, "nib": nib, "kecamatan": kecamatan, "eligible": verdict.eligible},
    )
    return business


def size_class_for(annual_sales: int | None) -> SizeClass:
    """PP 7/2021 Pasal 35: size by annual sales; unknown sales default to mikro."""
    if annual_sales is None:
        return SizeClass.mikro
    if annual_sales < 0:
        raise InvalidDataError("biz.err.sales_negative")
    if annual_sales <= MIKRO_MAX:
        return SizeClass.mikro
    if annual_sales <= KECIL_MAX:
        return SizeClass.kecil
    if annual_sales <= MENENGAH_MAX:
        return SizeClass.menengah
    raise InvalidDataError("biz.err.not_umkm")


def refresh_eligibility(session: Session, business: Business) -> Verdict:
    """Recompute the verdict, cache it on the row and return it in the current language.

    The cache is always written in Indonesian, the staff language, so it reads the same
    whichever ``--lang`` triggered the refresh.
    """
    verdict = check_business(business)
    stored = verdict if get_lang() == "id" else check_business(business, lang="id")
    business.eligible = stored.eligible
    business.eligibility = {**stored.as_dict(), "checked_at": utcnow().isoformat()}
    session.flush()
    return verdict


def set_binaan(
    session: Session,
    business: Business,
    value: bool,
    actor: str,
    *,
    group: str | None = None,
) -> Verdict:
    """Dinas staff mark (or unmark) a business as binaan (Pasal 10 huruf b)."""
    business.binaan = value
    if group is not None:
        business.binaan_group = _optional(group)
    verdict = refresh_eligibility(session, business)
    _audit(
        session,
        actor,
        "business.binaan",
        "business",
        business.id,
        {"binaan": value, "group": business.binaan_group, "eligible": verdict.eligible},
    )
    return verdict


def get_business(session: Session, ref: str | int) -> Business:
    """A business by its NIB (13 digits) or its numeric ID."""
    text = str(ref).strip()
    found: Business | None = None
    if len(text) == 13 and text.isdigit():
        found = session.scalars(select(Business).where(Business.nib == text)).first()
    elif text.isdigit():
        found = session.get(Business, int(text))
    if found is None:
        raise NotFoundError("biz.err.business_not_found", ref=text)
    return found


# --- products --------------------------------------------------------------------------


def add_product(
    session: Session,
    business: Business,
    *,
    name: str,
    category: str,
    price: int,
    description: str | None = None,
    image_url: str | None = None,
    sku: str | None = None,
    in_stock: bool = True,
    certifications: Iterable[str] = (),
) -> Product:
    """Add a product and refresh the business verdict.

    A missing description, photo or price (0) is accepted and reported by the verdict,
    so a UMKM can register first and complete later; a wrong category, a negative price
    or an unknown certification are refused because they are typing mistakes.
    """
    name = _required(name, "biz.field.product_name")
    category_value = _category(category)
    if isinstance(price, bool) or price < 0:
        raise InvalidDataError("biz.err.price")
    certs = normalize_certifications(certifications)
    sku = _optional(sku)
    if sku is not None:
        _refuse_duplicate_sku(session, business, sku)
    product = Product(
        business=business,
        name=name,
        category=category_value,
        price=int(price),
        description=_optional(description),
        image_url=_optional(image_url),
        sku=sku,
        in_stock=in_stock,
        certifications=certs,
    )
    session.add(product)
    session.flush()
    refresh_eligibility(session, business)
    return product


def normalize_certifications(values: Iterable[str]) -> list[str]:
    """``["pirt", "Halal"]`` -> ``["PIRT", "halal"]``; unknown labels are refused."""
    result: list[str] = []
    for raw in values:
        canonical = CERTIFICATIONS.get(raw.strip().casefold())
        if canonical is None:
            raise InvalidDataError("biz.err.certification", value=raw)
        if canonical not in result:
            result.append(canonical)
    return result


def find_product(session: Session, ref: str | int) -> Product:
    """A product by numeric ID, else by SKU (an SKU shared by two UMKM is ambiguous)."""
    text = str(ref).strip()
    if text.isdigit():
        by_id = session.get(Product, int(text))
        if by_id is not None:
            return by_id
    matches = session.scalars(select(Product).where(Product.sku == text).limit(2)).all()
    if len(matches) > 1:
        raise BusinessError("biz.err.sku_ambiguous", ref=text)
    if not matches:
        raise NotFoundError("biz.err.product_not_found", ref=text)
    return matches[0]


# --- opt-in ---------------------------------------------------------------------------


def opt_in(
    session: Session,
    product: Product,
    campaign_key: str,
    *,
    actor: str,
    is_tag: bool = False,
) -> ProductOptIn:
    """Offer a product to a campaign (or to every campaign with tag ``campaign_key``).

    The verdict is recomputed now rather than read from the cache: a stale "eligible"
    must never let a product into a campaign. Idempotent: an active opt-in is returned
    unchanged, a withdrawn one is re-activated.
    """
    key = _required(campaign_key, "biz.field.campaign")
    reasons = opt_in_problems(session, product)
    if reasons:
        raise NotEligibleError(reasons, product=product.name, campaign=key)

    row = _find_opt_in(session, product, key, is_tag)
    if row is not None and row.withdrawn_at is None:
        return row
    if row is None:
        row = ProductOptIn(product_id=product.id, campaign_key=key, is_tag=is_tag)
        session.add(row)
    row.opted_by = actor
    row.opted_at = utcnow()
    row.withdrawn_at = None
    session.flush()
    detail = {"campaign": key, "tag": is_tag}
    _audit(session, actor, "product.opt_in", "product", product.id, detail)
    return row


def opt_in_problems(session: Session, product: Product) -> tuple[str, ...]:
    """Every reason this product cannot join a campaign now (empty when it can)."""
    verdict = refresh_eligibility(session, product.business)
    reasons = [c.message for c in verdict.failures]
    fields = product_problems(product)
    if fields and "produk" not in {c.key for c in verdict.failures}:
        # Normally the business's "produk" criterion already names this product.
        reasons.insert(0, t("biz.err.product_incomplete", fields=", ".join(fields)))
    return tuple(reasons)


def withdraw_opt_in(
    session: Session, product: Product, campaign_key: str, actor: str, *, is_tag: bool = False
) -> ProductOptIn:
    """Stop offering a product to a campaign (idempotent: a second withdrawal is a no-op)."""
    key = campaign_key.strip()
    row = _find_opt_in(session, product, key, is_tag)
    if row is None:
        raise NotFoundError("biz.err.optin_not_found", product=product.name, campaign=key)
    if row.withdrawn_at is None:
        row.withdrawn_at = utcnow()
        session.flush()
        _audit(session, actor, "product.opt_out", "product", product.id, {"campaign": key})
    return row


# --- helpers ---------------------------------------------------------------------------


def _find_opt_in(
    session: Session, product: Product, key: str, is_tag: bool
) -> ProductOptIn | None:
    return session.scalars(
        select(ProductOptIn).where(
            ProductOptIn.product_id == product.id,
            ProductOptIn.campaign_key == key,
            ProductOptIn.is_tag.is_(is_tag),
        )
    ).first()


def _refuse_duplicate_nib(session: Session, nib: str) -> None:
    existing = session.scalars(select(Business).where(Business.nib == nib)).first()
    if existing is not None:
        raise DuplicateError(
            "biz.err.duplicate_nib", nib=nib, id=existing.id, name=existing.name
        )


def _refuse_duplicate_sku(session: Session, business: Business, sku: str) -> None:
    clash = session.scalars(
        select(Product.id).where(Product.business_id == business.id, Product.sku == sku)
    ).first()
    if clash is not None:
        raise DuplicateError("biz.err.duplicate_sku", sku=sku)


def _kecamatan(value: str) -> str:
    """Accept any well-formed code (outside TTS fails the verdict, visibly) or a TTS name."""
    code = wilayah.normalize_kecamatan(value) or wilayah.find_kecamatan(value)
    if code is None:
        raise InvalidDataError("biz.err.kecamatan", value=value)
    return code


def _desa(kecamatan: str, desa: str | None) -> str | None:
    """Store the official desa name when it is recognised, else the text as typed."""
    match = wilayah.find_desa(kecamatan, desa)
    return match[1] if match else _optional(desa)


def _category(value: str) -> str:
    text = str(value).strip().casefold().replace(" ", "_").replace("-", "_")
    try:
        return Category(text).value
    except ValueError:
        raise InvalidDataError("biz.err.category", value=value) from None


def _required(value: str | None, field_key: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidDataError("biz.err.required", field=t(field_key))
    return text


def _optional(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _compact(value: str | None) -> str:
    """Identifiers are often typed in groups (``5302 0141 0792 0001``)."""
    return re.sub(r"[\s.\-]", "", value or "")


def _audit(
    session: Session, actor: str, action: str, entity: str, entity_id: int, detail: dict[str, Any]
) -> None:
    """Who did what; callers pass details that never include the NIK."""
    session.add(
        AuditLog(actor=actor, action=action, entity=entity, entity_id=str(entity_id), detail=detail)
    )
    session.flush()


# --- archive and delete --------------------------------------------------------------------


def set_archived(session: Session, product: Product, archived: bool, actor: str) -> None:
    """Hide a product everywhere (showcase, campaigns, the verdict) or show it again.

    Archiving keeps the row, so the reports of past campaigns still name the product.
    """
    product.archived_at = utcnow() if archived else None
    session.add(AuditLog(actor=actor, action="product.archive" if archived else
                         "product.unarchive", entity="product", entity_id=str(product.id),
                         detail={"name": product.name}))
    session.flush()
    refresh_eligibility(session, product.business)


def _has_history(session: Session, product: Product) -> bool:
    """Whether a delivery, an order, a link, an event or a post refers to the product."""
    for model in (DeliveryProduct, OrderItem, TrackedLink, EngagementEvent, SocialPost):
        column = model.__table__.c.product_id
        if session.scalar(select(column).where(column == product.id).limit(1)) is not None:
            return True
    return False


def delete_product(session: Session, product: Product, actor: str) -> None:
    """Delete a product that nothing refers to yet; one with history must be archived,
    or the Pasal 15 reports of past campaigns would lose what they counted."""
    if _has_history(session, product):
        raise DuplicateError("portal.product_has_history")
    business = product.business
    for row in session.scalars(select(ProductOptIn).where(ProductOptIn.product_id == product.id)):
        session.delete(row)
    for link in session.scalars(select(ProductLink).where(ProductLink.product_id == product.id)):
        session.delete(link)  # SQLite does not cascade unless asked
    session.add(AuditLog(actor=actor, action="product.delete", entity="product",
                         entity_id=str(product.id), detail={"name": product.name}))
    session.delete(product)
    session.flush()
    session.expire(business, ["products"])
    refresh_eligibility(session, business)
