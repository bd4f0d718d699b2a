"""Loading the demo dataset into the database once, and counting what is there.

Businesses and products go through the service layer (:mod:`engine.umkm.businesses`) so
that NIK encryption and the Pasal 10 verdict are computed exactly as for a real
registration. Customers, consents and orders are bulk-inserted with the models: they
have no business rules of their own and a few thousand rows must load in a blink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine.config import get_settings
from engine.demo.catalog import CATALOG
from engine.demo.dataset import (
    DEMO_ACTOR,
    DEMO_SOURCE,
    OPT_IN_TAGS,
    TENUN_CAMPAIGN,
    DemoBusiness,
    DemoCustomer,
    DemoDataset,
    DemoSummary,
)
from engine.demo.generator import as_utc, generate
from engine.demo.history import HISTORY_NOTE, seed_history
from engine.demo.pictures import store_picture
from engine.demo.plan_seed import seed_plan
from engine.demo.programme_seed import seed_programmes
from engine.models import (
    AuditLog,
    Business,
    CampaignRun,
    Category,
    Consent,
    ConsentPurpose,
    Customer,
    Order,
    OrderEvent,
    OrderItem,
    Product,
    ProductOptIn,
)
from engine.umkm import businesses as service

DEMO_BUSINESS_NAMES = tuple(spec.name for spec in CATALOG)
LEGACY_PLACEHOLDER_NIB = "0000000000000"
Step = Callable[[str], None]


def seed_demo(
    session: Session,
    *,
    seed: int = 17,
    reference: datetime | None = None,
    on_step: Step | None = None,
) -> DemoSummary:
    """Load the demo dataset once; a second call adds nothing and reports what is there.

    The caller owns the transaction (``session_scope``): everything is flushed, nothing
    is committed here, so a failure leaves no half-seeded database.
    """
    step = on_step or (lambda _msg: None)
    if already_seeded(session):
        _history(session, step, seed, reference)  # a demo seeded before the history
        return summarize(session, created=False)
    data = generate(seed=seed, reference=reference)
    step("businesses")
    products = _persist_businesses(session, data.businesses)
    step("customers")
    customer_ids = _insert_customers(session, data.customers)
    step("orders")
    _insert_orders(session, data, products, customer_ids)
    seed_programmes(session, demo_business_ids(session), data.reference)  # Pasal 8 and 9
    seed_plan(session, data.reference)  # Pasal 11-14: plan, agreements, a complaint
    session.flush()
    _history(session, step, seed, data.reference)
    return summarize(session, created=True)


def _history(session: Session, step: Step, seed: int, reference: datetime | None) -> None:
    """A year of past runs (engine.demo.history): every report chart gets a trend."""
    step("history")
    seed_history(session, as_utc(reference or datetime.now(UTC)), seed=seed)


def already_seeded(session: Session) -> bool:
    found = session.scalar(
        select(Business.id).where(Business.name.in_(DEMO_BUSINESS_NAMES)).limit(1)
    )
    return found is not None


def _persist_businesses(
    session: Session, businesses: Iterable[DemoBusiness]
) -> dict[tuple[str, str], Product]:
    """Register through the service layer, then opt complete products in to campaigns."""
    products: dict[tuple[str, str], Product] = {}
    for demo in businesses:
        business = service.register_business(
            session, name=demo.name, nib=_registrable_nib(demo), owner_name=demo.owner_name,
            nik=demo.nik, kecamatan_code=demo.kecamatan_code, desa=demo.desa,
            address=demo.address, phone=demo.phone, whatsapp=demo.whatsapp, email=demo.email,
            binaan=demo.binaan, binaan_group=demo.binaan_group,
            annual_sales=demo.annual_sales, actor=DEMO_ACTOR,
        )
        for p in demo.products:
            # The dataset names a photo; the seed draws it and stores it in our media store.
            photo = store_picture(get_settings(), p.name) if p.image_url else None
            products[demo.key, p.sku] = service.add_product(
                session, business, name=p.name, category=p.category, price=p.price,
                description=p.description, image_url=photo, sku=p.sku,
                in_stock=p.in_stock, certifications=p.certifications,
            )
        if demo.flaw == "invalid_nib":
            _restore_legacy_nib(session, business, demo.nib)
        verdict = service.refresh_eligibility(session, business)
        if verdict.eligible:
            _opt_in(session, [products[demo.key, p.sku] for p in demo.products if p.complete])
    return products


def _registrable_nib(demo: DemoBusiness) -> str:
    """The service refuses a malformed NIB outright (it can never become valid by itself);
    the legacy record is registered with a placeholder and then given its real NIB."""
    return demo.nib if demo.flaw != "invalid_nib" else LEGACY_PLACEHOLDER_NIB


def _restore_legacy_nib(session: Session, business: Business, nib: str) -> None:
    """Recreate a record carried over from the Dinas's pre-engine register, whose NIB was
    copied with a digit missing. New registrations can no longer produce such a row, but
    migrated data can, and the Pasal 10 verdict must show it (criterion ``nib``)."""
    business.nib = nib
    session.add(AuditLog(actor=DEMO_ACTOR, action="business.legacy_nib", entity="business",
                         entity_id=str(business.id), detail={"nib": nib}))
    session.flush()


def _opt_in(session: Session, products: Sequence[Product]) -> None:
    for product in products:
        for tag in OPT_IN_TAGS:
            service.opt_in(session, product, tag, actor=DEMO_ACTOR, is_tag=True)
        if product.category == Category.kerajinan_tangan.value:
            service.opt_in(session, product, TENUN_CAMPAIGN, actor=DEMO_ACTOR)


def _insert_customers(session: Session, customers: Sequence[DemoCustomer]) -> dict[str, int]:
    rows: list[dict[str, Any]] = [
        {"email": c.email, "phone": c.phone, "name": c.name, "kecamatan_code": c.kecamatan_code,
         "preferences": c.preferences, "attributes": {"source": DEMO_SOURCE, "kota": c.city},
         "tags": [], "created_at": c.created_at}
        for c in customers
    ]
    ids = session.scalars(
        insert(Customer).returning(Customer.id, sort_by_parameter_order=True), rows
    ).all()
    by_ref = {c.ref: cid for c, cid in zip(customers, ids, strict=True)}
    consents = [
        {"customer_id": by_ref[c.ref], "channel": k.channel, "purpose": ConsentPurpose.marketing,
         "granted": k.granted, "source": DEMO_SOURCE, "recorded_at": k.recorded_at}
        for c in customers for k in c.consents
    ]
    if consents:
        session.execute(insert(Consent), consents)
    return by_ref


def _insert_orders(
    session: Session,
    data: DemoDataset,
    products: dict[tuple[str, str], Product],
    customer_ids: dict[str, int],
) -> None:
    if not data.orders:
        return
    business_ids = {key: product.business_id for (key, _sku), product in products.items()}
    rows = [
        {"business_id": business_ids[o.business_key], "customer_id": customer_ids[o.customer_ref],
         "external_ref": o.external_ref, "status": o.status, "ordered_at": o.ordered_at,
         "total": o.total, "shipping_courier": o.courier, "tracking_number": o.tracking_number}
        for o in data.orders
    ]
    order_ids = session.scalars(
        insert(Order).returning(Order.id, sort_by_parameter_order=True), rows
    ).all()
    items = []
    events = []
    for order, oid in zip(data.orders, order_ids, strict=True):
        for item in order.items:
            items.append({"order_id": oid, "product_id": products[order.business_key, item.sku].id,
                          "quantity": item.quantity, "unit_price": item.unit_price})
        for ev in order.events:
            events.append({"order_id": oid, "kind": ev.kind, "occurred_at": ev.occurred_at,
                           "source": DEMO_SOURCE,
                           "processed_at": ev.occurred_at if ev.processed else None})
    session.execute(insert(OrderItem), items)
    session.execute(insert(OrderEvent), events)


# --------------------------------------------------------------------------- reading back


def demo_business_ids(session: Session) -> list[int]:
    return list(session.scalars(
        select(Business.id).where(Business.name.in_(DEMO_BUSINESS_NAMES)).order_by(Business.id)
    ))


def demo_customer_filter() -> Any:
    """SQL condition selecting demo customers (JSON attribute, portable SQLite/PostgreSQL)."""
    return Customer.attributes["source"].as_string() == DEMO_SOURCE


def summarize(session: Session, *, created: bool) -> DemoSummary:
    """Count the demo rows as they are in the database (not as generated)."""
    bids = demo_business_ids(session)
    pids = select(Product.id).where(Product.business_id.in_(bids))
    oids = select(Order.id).where(Order.business_id.in_(bids))

    def count(stmt: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)

    return DemoSummary(
        created=created,
        businesses=len(bids),
        eligible=count(select(Business.id).where(Business.id.in_(bids), Business.eligible)),
        products=count(pids),
        customers=count(select(Customer.id).where(demo_customer_filter())),
        consents=count(select(Consent.id).where(Consent.source == DEMO_SOURCE)),
        orders=count(oids),
        order_items=count(select(OrderItem.id).where(OrderItem.order_id.in_(oids))),
        order_events=count(select(OrderEvent.id).where(OrderEvent.order_id.in_(oids))),
        opt_ins=count(select(ProductOptIn.id).where(ProductOptIn.product_id.in_(pids),
                                                    ProductOptIn.withdrawn_at.is_(None))),
        history_months=count(select(CampaignRun.id).where(
            CampaignRun.status_reason == HISTORY_NOTE)),
    )
