"""Small builders for test data, written straight through the models.

Each builder adds the row, flushes (so ``.id`` is set) and returns it; every argument
has a sensible default and unique values (NIB, email, external refs) come from one
counter, so tests state only what matters to them. Times are aware UTC; pass ``at=``
relative to the test's own ``now``. Tests that need several sessions should commit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from engine.common import crypto
from engine.models import (
    Business,
    Campaign,
    CampaignRun,
    CampaignType,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductOptIn,
    Suppression,
    SuppressionReason,
)

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09.00 WITA, a convenient fixed "now"
# A stored photo as engine.media keeps it (the site path of its square JPEG variant).
PHOTO = "/media/" + "ab" * 32 + "/square.jpg"

DEFAULT_NIK = "5302014107920001"
_seq = itertools.count(1)
T = TypeVar("T")


def _next() -> int:
    return next(_seq)


def _save(session: Session, obj: T) -> T:
    session.add(obj)
    session.flush()
    return obj


def make_business(
    session: Session,
    *,
    name: str | None = None,
    nik: str = DEFAULT_NIK,
    kecamatan_code: str = "53.02.01",
    eligible: bool = True,
    whatsapp: str | None = "6281234567890",
    **fields: Any,
) -> Business:
    n = _next()
    values: dict[str, Any] = {
        "name": name or f"UMKM Uji {n}",
        "nib": f"{9120000000000 + n}",
        "owner_name": f"Pemilik {n}",
        "owner_nik_enc": crypto.encrypt(nik, purpose="nik"),
        "owner_nik_digest": crypto.digest(nik, "nik"),
        "owner_nik_masked": crypto.mask_nik(nik),
        "kecamatan_code": kecamatan_code,
        "desa": "SoE",
        "address": "Jl. Soekarno No. 1, SoE",
        "whatsapp": whatsapp,
        "eligible": eligible,
    }
    values.update(fields)
    return _save(session, Business(**values))


def make_product(
    session: Session,
    business: Business,
    *,
    name: str | None = None,
    category: str = "kerajinan_tangan",
    price: int = 150_000,
    description: str | None = "Produk asli Timor Tengah Selatan.",
    image_url: str | None = PHOTO,
    in_stock: bool = True,
    sku: str | None = None,
    **fields: Any,
) -> Product:
    n = _next()
    return _save(session, Product(
        business_id=business.id, name=name or f"Produk {n}", category=category, price=price,
        description=description, image_url=image_url, in_stock=in_stock,
        sku=sku or f"SKU-{n}", **fields,
    ))


def make_optin(
    session: Session,
    product: Product,
    campaign_key: str,
    *,
    is_tag: bool = False,
    withdrawn_at: datetime | None = None,
    opted_by: str = "pemilik",
) -> ProductOptIn:
    return _save(session, ProductOptIn(
        product_id=product.id, campaign_key=campaign_key, is_tag=is_tag,
        withdrawn_at=withdrawn_at, opted_by=opted_by,
    ))


def make_customer(
    session: Session,
    *,
    email: str | None = "",
    phone: str | None = None,
    name: str | None = None,
    kecamatan_code: str | None = "53.02.01",
    tags: Sequence[str] = (),
    preferences: dict[str, Any] | None = None,
    marketing: bool | None = None,
    at: datetime = NOW,
) -> Customer:
    """``email=""`` (default) generates a unique address; ``None`` leaves it empty.
    ``marketing=True/False`` also records a marketing consent row on the email channel."""
    n = _next()
    customer = _save(session, Customer(
        email=f"pelanggan{n}@contoh.id" if email == "" else email, phone=phone,
        name=name or f"Pelanggan {n}", kecamatan_code=kecamatan_code, tags=list(tags),
        preferences=preferences or {},
    ))
    if marketing is not None:
        make_consent(session, customer, granted=marketing, at=at)
    return customer


def make_consent(
    session: Session,
    customer: Customer,
    *,
    channel: str = "email",
    purpose: str = "marketing",
    granted: bool = True,
    at: datetime = NOW,
    source: str = "formulir",
) -> Consent:
    return _save(session, Consent(
        customer_id=customer.id, channel=ConsentChannel(channel),
        purpose=ConsentPurpose(purpose), granted=granted, source=source, recorded_at=at,
    ))


def make_suppression(
    session: Session, address: str, *, channel: str = "email", reason: str = "unsubscribed"
) -> Suppression:
    return _save(session, Suppression(
        channel=channel, address=address, reason=SuppressionReason(reason),
    ))


def make_order(
    session: Session,
    customer: Customer,
    products: Sequence[Product | tuple[Product, int]],
    *,
    at: datetime = NOW,
    status: str = "confirmed",
    total: int | None = None,
) -> Order:
    """One order of ``products`` (or ``(product, quantity)``) from the first one's UMKM."""
    lines = [p if isinstance(p, tuple) else (p, 1) for p in products]
    n = _next()
    order = _save(session, Order(
        business_id=lines[0][0].business_id, customer_id=customer.id,
        external_ref=f"INV-{n}", status=OrderStatus(status), ordered_at=at,
        total=total if total is not None else sum(p.price * q for p, q in lines),
    ))
    for product, quantity in lines:
        session.add(OrderItem(order_id=order.id, product_id=product.id, quantity=quantity,
                              unit_price=product.price))
    session.flush()
    return order


def make_campaign(
    session: Session, *, key: str | None = None, type: str = "promotional", **fields: Any
) -> Campaign:
    n = _next()
    values: dict[str, Any] = {
        "key": key or f"kampanye-{n}", "name": f"Kampanye {n}", "type": CampaignType(type),
        "spec": {}, "spec_hash": f"{n:064d}",
    }
    values.update(fields)
    return _save(session, Campaign(**values))


def make_run(session: Session, campaign: Campaign, **fields: Any) -> CampaignRun:
    return _save(session, CampaignRun(
        campaign_id=campaign.id, trigger_key=fields.pop("trigger_key", f"run-{_next()}"),
        **fields,
    ))


def make_delivery(
    session: Session,
    run: CampaignRun,
    customer: Customer,
    *,
    channel: str = "email",
    status: str = "sent",
    at: datetime = NOW,
    **fields: Any,
) -> Delivery:
    recipient = customer.email if channel == "email" else customer.phone
    return _save(session, Delivery(
        run_id=run.id, channel=channel, recipient=recipient or f"tanpa-alamat-{_next()}",
        customer_id=customer.id, status=DeliveryStatus(status),
        sent_at=at if status == "sent" else None, created_at=at, **fields,
    ))


def make_event(
    session: Session,
    customer: Customer,
    *,
    type: str = "open",
    at: datetime = NOW,
    suspected_bot: bool = False,
    **fields: Any,
) -> EngagementEvent:
    return _save(session, EngagementEvent(
        type=type, customer_id=customer.id, occurred_at=at, suspected_bot=suspected_bot,
        **fields,
    ))
