"""JSON API ``/api/v1`` for UMKM shop systems: orders, order events, customer consent.

Authentication is ``Authorization: Bearer <key>`` with the business's own key
(:mod:`engine.umkm.apikeys`); every query is scoped to that business, so a business can read
or change only its own orders (another business's order is simply "not found", which
also does not reveal that it exists).

Customers are shared by every business and the Dinas, so the API never tells a business
more about a person than it already knows (issue 13): an order response echoes only the
contact details the caller sent in that request (``GET`` returns none), a phone number
is never used to link a customer whose email differs from the one sent, and consent a
business records cannot lift a withdrawal the person made
(:func:`engine.customers.consent.grant_by_business` answers 409).

An order event (confirmed, shipped, invoiced) becomes an :class:`OrderEvent` row once
per order and kind; the beat (``engine.delivery.scheduler.trigger_order_events``) turns it into
the transactional mail, so a retried API call never sends a second mail.

Validation errors are FastAPI's 422 with field paths (``loc``); the checks this module
adds itself (unknown SKU, missing contact, dates) answer in Bahasa Indonesia.  Every
status code a route can return is declared in its decorator: the OpenAPI spec at
``/openapi.json`` is tested by property-based fuzzing (``tests/web/test_api_fuzz.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.common.errors import Conflict, NotFound
from engine.common.i18n import t
from engine.customers import consent
from engine.customers.cells import normalize_phone
from engine.db import session_factory
from engine.models import (
    Business,
    ConsentPurpose,
    Customer,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Product,
)
from engine.umkm.apikeys import business_for_api_key

WITA = ZoneInfo("Asia/Makassar")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
EMAIL_PATTERN = (r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                 r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
KECAMATAN_PATTERN = r"^\d{2}\.\d{2}\.\d{2}$"

Text = Annotated[str, StringConstraints(pattern=_NO_CONTROL)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=REF_PATTERN)]
Sku = Annotated[Text, StringConstraints(min_length=1, max_length=64)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
Phone = Annotated[str, StringConstraints(min_length=6, max_length=32,
                                         pattern=r"^\+?[0-9][0-9 ().-]{4,30}$")]
RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN,
                              description="Nomor pesanan di sistem toko (external ref).")]
EmailPath = Annotated[str, Path(max_length=254, pattern=EMAIL_PATTERN,
                                description="Email pelanggan.")]


# ----------------------------------------------------------------------------- schemas
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(_In):
    """The buyer; found by email (then phone), created if missing."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["email"], "properties": {"email": {"type": "string"}}},
        {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
    ]})

    email: Email | None = None
    phone: Phone | None = Field(default=None, description="Nomor HP, mis. 0812-3456-7890.")
    name: Annotated[Text, StringConstraints(min_length=1, max_length=200)] | None = None
    kecamatan_code: Annotated[str, StringConstraints(pattern=KECAMATAN_PATTERN)] | None = None

    @field_validator("phone")
    @classmethod
    def _normalise_phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = normalize_phone(value)
        if normalised is None:
            raise PydanticCustomError("phone_invalid", "Nomor telepon {value!r} tidak sah.",
                                      {"value": value})
        return normalised

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @model_validator(mode="after")
    def _contact(self) -> CustomerIn:
        if not self.email and not self.phone:
            raise PydanticCustomError("customer_contact",
                                      "Isi email atau nomor telepon pelanggan.")
        return self


class OrderLineIn(_In):
    sku: Sku
    quantity: int = Field(default=1, ge=1, le=10_000)
    unit_price: int | None = Field(
        default=None, ge=0, le=1_000_000_000_000,
        description="Harga satuan dalam Rupiah; kosong = harga produk saat ini.")


class OrderIn(_In):
    """Create or replace an order (same ``ref`` = update its lines and customer)."""

    ref: Ref
    customer: CustomerIn
    lines: list[OrderLineIn] = Field(min_length=1, max_length=200)
    ordered_at: datetime | None = Field(
        default=None, description="Waktu pesanan; tanpa zona dibaca sebagai WITA.")

    @field_validator("ordered_at")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.year < 2000 or value.year >= 2100:
            raise PydanticCustomError("ordered_at_range",
                                      "Tanggal pesanan harus antara tahun 2000 dan 2099.")
        aware = value if value.tzinfo else value.replace(tzinfo=WITA)
        return aware.astimezone(UTC)


class OrderEventIn(_In):
    kind: Literal["confirmed", "shipped", "invoiced"]
    courier: Annotated[Text, StringConstraints(min_length=1, max_length=64)] | None = None
    tracking_number: Annotated[Text, StringConstraints(min_length=1, max_length=64)] | None = None


class ConsentIn(_In):
    channel: Literal["email", "whatsapp", "sms"]
    purpose: Literal["marketing", "transactional"] = "marketing"
    granted: bool
    source: Annotated[Text, StringConstraints(min_length=1, max_length=90)] = Field(
        description="Di mana persetujuan diberikan/ditarik, mis. 'checkout-toko'.")


class CustomerOut(BaseModel):
    email: str | None
    phone: str | None


class OrderLineOut(BaseModel):
    sku: str | None
    name: str
    quantity: int
    unit_price: int
    subtotal: int


class OrderEventOut(BaseModel):
    kind: str
    occurred_at: datetime
    processed: bool


class OrderOut(BaseModel):
    ref: str
    status: str
    ordered_at: datetime
    total: int
    courier: str | None
    tracking_number: str | None
    customer: CustomerOut
    lines: list[OrderLineOut]
    events: list[OrderEventOut]


class OrderEventResult(OrderEventOut):
    created: bool


class ConsentOut(BaseModel):
    email: str
    channel: str
    purpose: str
    granted: bool
    source: str
    recorded_at: datetime
    suppression_lifted: bool


class ErrorOut(BaseModel):
    detail: str


# ----------------------------------------------------------------------------- plumbing
bearer = HTTPBearer(auto_error=False, description="Kunci API UMKM (umkm business apikey ID).")
router = APIRouter(prefix="/api/v1", tags=["api"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Kunci API tidak ada atau tidak sah."}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Tidak ditemukan (atau milik UMKM lain)."}}
_BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Isi permintaan tidak dapat dibaca (bukan JSON)."}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Perubahan bersamaan; ulangi permintaan."}}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "Data tidak sah; `detail[].loc` menunjuk kolomnya."}}


def get_session(request: Request) -> Iterator[Session]:
    session = session_factory(request.app.state.settings)()
    try:
        yield session
    finally:
        session.close()


def current_business(
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),
    db: Session = Depends(get_session),
) -> Business:
    """The business whose key was presented; 401 otherwise."""
    business = business_for_api_key(db, credentials.credentials if credentials else None)
    if business is None:
        raise HTTPException(status_code=401, detail=t("api.unauthorized"),
                            headers={"WWW-Authenticate": "Bearer"})
    return business


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _invalid(loc: tuple[str | int, ...], message: str, kind: str, value: Any) -> Exception:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message, "input": value}])


def _order_of(db: Session, business: Business, ref: str) -> Order:
    order = db.scalars(select(Order).where(Order.business_id == business.id,
                                           Order.external_ref == ref)).one_or_none()
    if order is None:
        raise NotFound("api.order_not_found", ref=ref)
    return order


def _order_out(db: Session, order: Order, supplied: CustomerIn | None = None) -> OrderOut:
    """The order; its contact details only as ``supplied`` by this request (else none).

    Why not the stored customer's: the customer may be shared and may hold an email or
    phone this business never had; echoing it would let anyone with a key harvest
    addresses by guessing phone numbers.
    """
    rows = db.execute(
        select(OrderItem, Product.sku, Product.name).join(Product,
                                                         Product.id == OrderItem.product_id)
        .where(OrderItem.order_id == order.id).order_by(OrderItem.id)).all()
    order_events = db.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id)
                              .order_by(OrderEvent.id))
    return OrderOut(
        ref=order.external_ref, status=str(order.status), ordered_at=_aware(order.ordered_at),
        total=order.total, courier=order.shipping_courier,
        tracking_number=order.tracking_number,
        customer=CustomerOut(email=supplied.email if supplied else None,
                             phone=supplied.phone if supplied else None),
        lines=[OrderLineOut(sku=sku, name=name, quantity=item.quantity,
                            unit_price=item.unit_price, subtotal=item.quantity * item.unit_price)
               for item, sku, name in rows],
        events=[_event_out(e) for e in order_events])


def _event_out(event: OrderEvent) -> OrderEventOut:
    return OrderEventOut(kind=str(event.kind), occurred_at=_aware(event.occurred_at),
                         processed=event.processed_at is not None)


def _find_customer(db: Session, data: CustomerIn) -> Customer | None:
    """By email, else by phone, but never a phone holder whose email differs from the one
    sent (that would attach the order, and its mail, to another person)."""
    if data.email:
        found = db.scalars(select(Customer).where(
            func.lower(Customer.email) == data.email)).first()
        if found is not None:
            return found
    if data.phone:
        by_phone = db.scalars(select(Customer).where(Customer.phone == data.phone)).first()
        if by_phone is not None and (not data.email or not by_phone.email):
            return by_phone
    return None


def _phone_taken(db: Session, phone: str | None) -> bool:
    return bool(phone) and db.scalars(
        select(Customer.id).where(Customer.phone == phone)).first() is not None


def _customer_for(db: Session, data: CustomerIn) -> Customer:
    """Find the buyer or create them; existing customers are never edited through the
    API (they may be shared with other businesses and the Dinas's own lists)."""
    found = _find_customer(db, data)
    if found is not None:
        return found
    name = data.name or (data.email.split("@", 1)[0] if data.email else "Pelanggan")
    # A phone that already belongs to someone else is not copied onto the new customer.
    phone = None if _phone_taken(db, data.phone) else data.phone
    customer = Customer(email=data.email, phone=phone, name=name,
                        kecamatan_code=data.kecamatan_code)
    try:
        with db.begin_nested():
            db.add(customer)
    except IntegrityError:  # created concurrently by another request
        found = _find_customer(db, data)
        if found is None:
            raise Conflict("api.conflict") from None
        return found
    return customer


def _products_for(db: Session, business: Business,
                  lines: list[OrderLineIn]) -> dict[str, Product]:
    skus = {line.sku for line in lines}
    products = {p.sku: p for p in db.scalars(select(Product).where(
        Product.business_id == business.id, Product.sku.in_(skus))) if p.sku}
    for index, line in enumerate(lines):
        if line.sku not in products:
            raise _invalid(("body", "lines", index, "sku"),
                           t("api.sku_unknown", sku=line.sku), "sku_unknown", line.sku)
    return products


# ----------------------------------------------------------------------------- routes
@router.post(
    "/orders", response_model=OrderOut, status_code=201,
    summary="Buat atau perbarui pesanan",
    responses={200: {"model": OrderOut, "description": "Pesanan yang sudah ada diperbarui."},
               201: {"description": "Pesanan baru dibuat."},
               **_BAD_BODY, **_UNAUTHORIZED, **_CONFLICT, **_INVALID},
)
def upsert_order(
    payload: OrderIn, response: Response,
    business: Business = Depends(current_business), db: Session = Depends(get_session),
) -> OrderOut:
    """Lines by product SKU of this business; the customer by email or phone."""
    products = _products_for(db, business, payload.lines)
    customer = _customer_for(db, payload.customer)
    order = db.scalars(select(Order).where(Order.business_id == business.id,
                                           Order.external_ref == payload.ref)).one_or_none()
    if order is None:
        order = Order(business_id=business.id, external_ref=payload.ref,
                      status=OrderStatus.confirmed,
                      ordered_at=payload.ordered_at or datetime.now(UTC))
        db.add(order)
    else:
        response.status_code = 200
        db.execute(delete(OrderItem).where(OrderItem.order_id == order.id))
        if payload.ordered_at is not None:
            order.ordered_at = payload.ordered_at
    order.customer_id = customer.id
    total = 0
    try:
        db.flush()
    except IntegrityError:  # the same ref created concurrently: the caller retries
        db.rollback()
        raise Conflict("api.conflict") from None
    for line in payload.lines:
        product = products[line.sku]
        price = line.unit_price if line.unit_price is not None else product.price
        db.add(OrderItem(order_id=order.id, product_id=product.id, quantity=line.quantity,
                         unit_price=price))
        total += price * line.quantity
    order.total = total
    db.commit()
    return _order_out(db, order, payload.customer)


@router.get(
    "/orders/{ref}", response_model=OrderOut, summary="Lihat pesanan",
    responses={**_UNAUTHORIZED, **_NOT_FOUND, **_INVALID},
)
def get_order(ref: RefPath, business: Business = Depends(current_business),
              db: Session = Depends(get_session)) -> OrderOut:
    return _order_out(db, _order_of(db, business, ref))


@router.post(
    "/orders/{ref}/events", response_model=OrderEventResult, status_code=201,
    summary="Catat peristiwa pesanan (memicu email transaksional)",
    responses={200: {"model": OrderEventResult,
                     "description": "Peristiwa ini sudah tercatat sebelumnya (idempoten)."},
               201: {"description": "Peristiwa baru dicatat; email dikirim oleh penjadwal."},
               **_BAD_BODY, **_UNAUTHORIZED, **_NOT_FOUND, **_INVALID},
)
def add_order_event(
    ref: RefPath, payload: OrderEventIn, response: Response,
    business: Business = Depends(current_business), db: Session = Depends(get_session),
) -> OrderEventResult:
    """One event per order and kind: a repeated call answers 200 and changes nothing."""
    order = _order_of(db, business, ref)
    kind = OrderStatus(payload.kind)
    existing = db.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                   OrderEvent.kind == kind)).one_or_none()
    if existing is not None:
        response.status_code = 200
        return OrderEventResult(**_event_out(existing).model_dump(), created=False)
    event = OrderEvent(order_id=order.id, kind=kind, source="api",
                       occurred_at=datetime.now(UTC))
    try:
        with db.begin_nested():
            db.add(event)
    except IntegrityError:  # the same event posted twice at once
        again = db.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                    OrderEvent.kind == kind)).one()
        response.status_code = 200
        return OrderEventResult(**_event_out(again).model_dump(), created=False)
    if order.status != OrderStatus.cancelled:
        order.status = kind
    if payload.courier is not None:
        order.shipping_courier = payload.courier
    if payload.tracking_number is not None:
        order.tracking_number = payload.tracking_number
    db.commit()
    return OrderEventResult(**_event_out(event).model_dump(), created=True)


@router.post(
    "/customers/{email}/consent", response_model=ConsentOut, status_code=201,
    summary="Catat persetujuan atau penarikan persetujuan pelanggan (UU 27/2022)",
    responses={201: {"description": "Dicatat (riwayat persetujuan bersifat tambah-saja)."},
               409: {"model": ErrorOut, "description":
                     "Pelanggan sendiri telah menarik persetujuan; hanya ia yang dapat "
                     "memulihkannya lewat tautan konfirmasi. Tidak ada yang diubah."},
               **_BAD_BODY, **_UNAUTHORIZED, **_NOT_FOUND, **_INVALID},
)
def record_customer_consent(
    email: EmailPath, payload: ConsentIn,
    business: Business = Depends(current_business), db: Session = Depends(get_session),
) -> ConsentOut:
    """Only for customers who ordered from this business.  A renewed marketing consent
    lifts only a withdrawal this business recorded itself; a withdrawal the person made
    (unsubscribe, WhatsApp BERHENTI, complaint) answers 409 and changes nothing: the
    person lifts it through the confirmed opt-in link the Dinas sends."""
    address = email.lower()
    customer = db.scalars(
        select(Customer).where(func.lower(Customer.email) == address,
                               Customer.id.in_(select(Order.customer_id).where(
                                   Order.business_id == business.id)))).first()
    if customer is None:
        raise NotFound("api.customer_not_found", email=address)
    purpose = ConsentPurpose(payload.purpose)
    lifted = False
    if payload.granted:
        row, lifted = consent.grant_by_business(db, customer, payload.channel, business.id,
                                                payload.source, purpose=purpose)
    else:
        row = consent.withdraw(db, customer, payload.channel,
                               consent.business_source(business.id, payload.source),
                               purpose=purpose)
    db.commit()
    return ConsentOut(email=address, channel=payload.channel, purpose=payload.purpose,
                      granted=row.granted, source=row.source,
                      recorded_at=_aware(row.recorded_at), suppression_lifted=lifted)
