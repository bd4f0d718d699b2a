"""CSV import of orders: one order line per row; rows sharing NIB + order_ref form one order.

Why it is shaped this way:

* **Idempotent rows.** Orders are keyed by ``(NIB, order_ref)``, lines by product and
  events are unique per order and kind, so re-running the same file (read by
  :mod:`engine.customers.csvfile`: checked whole first, then one transaction per batch)
  adds no order, line or event twice.
* **Events for the transactional mail.** Each status an order reached becomes one
  :class:`~engine.models.OrderEvent` (source ``csv``, unprocessed) that the
  order-event trigger turns into confirmation, shipping or invoice mail.
* **Lookups cached per file.** Businesses and products are few, so they are loaded once
  per file; customers and orders once per batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, selectinload

from engine.common.i18n import t
from engine.customers.cells import (
    WITA,
    as_utc,
    limited,
    parse_email,
    parse_ordered_at,
    parse_phone,
    parse_price,
    parse_quantity,
    parse_status,
)
from engine.customers.csvfile import (
    ColumnSpec,
    ImportReport,
    Invalid,
    Progress,
    Row,
    parse_rows,
    run_import,
)
from engine.models import (
    Business,
    Customer,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Product,
    utcnow,
)

ORDER_COLUMNS = ColumnSpec(
    aliases={
        "order_ref": ("ref", "no_pesanan", "nomor_pesanan", "kode_pesanan", "order_id",
                      "order_no", "order_number"),
        "nib": ("nib_usaha",),
        "customer_email": ("email_pelanggan", "email", "surel"),
        "customer_phone": ("telepon_pelanggan", "hp_pelanggan", "wa_pelanggan", "phone",
                           "telepon", "hp", "no_hp", "whatsapp"),
        "sku": ("kode_produk", "product_sku"),
        "quantity": ("qty", "jumlah", "kuantitas"),
        "unit_price": ("harga", "harga_satuan", "price"),
        "ordered_at": ("tanggal", "tanggal_pesanan", "waktu_pesanan", "order_date", "date"),
        "status": ("status_pesanan",),
        "courier": ("kurir", "ekspedisi", "shipping_courier"),
        "tracking_number": ("resi", "no_resi", "nomor_resi", "tracking"),
    },
    required=("order_ref", "nib", "sku", "quantity", "unit_price", "ordered_at"),
    one_of=("customer_email", "customer_phone"),
)

# Statuses an order has passed through once it reports one: an invoice or a shipment
# means it was confirmed (an invoice may come before or after shipping).
_REACHED = {
    OrderStatus.confirmed: (OrderStatus.confirmed,),
    OrderStatus.shipped: (OrderStatus.confirmed, OrderStatus.shipped),
    OrderStatus.invoiced: (OrderStatus.confirmed, OrderStatus.invoiced),
}
_STATUS_RANK = {OrderStatus.confirmed: 0, OrderStatus.shipped: 1, OrderStatus.invoiced: 2}


@dataclass(frozen=True)
class _OrderRow:
    line: int
    ref: str
    nib: str
    email: str | None
    phone: str | None
    sku: str
    quantity: int
    unit_price: int
    ordered_at: datetime
    status: OrderStatus
    courier: str | None
    tracking: str | None


def _parse_order(row: Row) -> _OrderRow:
    values = row.values
    ref = limited(values.get("order_ref", ""), "order_ref", 64)
    nib = values.get("nib", "")
    if not ref:
        raise Invalid(t("import.row.ref_missing"))
    if not re.fullmatch(r"\d{13}", nib):
        raise Invalid(t("import.row.bad_nib", value=nib))
    email = parse_email(values.get("customer_email", ""))
    phone = parse_phone(values.get("customer_phone", ""))
    if email is None and phone is None:
        raise Invalid(t("import.row.customer_missing"))
    sku = limited(values.get("sku", ""), "sku", 64)
    if not sku:
        raise Invalid(t("import.row.sku_missing"))
    return _OrderRow(
        line=row.line, ref=ref, nib=nib, email=email, phone=phone, sku=sku,
        quantity=parse_quantity(values.get("quantity", "")),
        unit_price=parse_price(values.get("unit_price", "")),
        ordered_at=parse_ordered_at(values.get("ordered_at", "")),
        status=parse_status(values.get("status", "")),
        courier=limited(values.get("courier", ""), "courier", 64) or None,
        tracking=limited(values.get("tracking_number", ""), "tracking_number", 64) or None,
    )


@dataclass
class _OrderRun:
    """Lookups cached for the whole file (businesses and products are few)."""

    businesses: dict[str, int | None] = field(default_factory=dict)  # nib -> id, None=unknown
    ambiguous: set[str] = field(default_factory=set)
    products: dict[tuple[int, str], int | None] = field(default_factory=dict)
    seen_lines: dict[tuple[str, str, str], int] = field(default_factory=dict)


class _OrderBatch:
    """Apply one batch of order lines inside one transaction."""

    def __init__(self, session: Session, rows: list[_OrderRow], run: _OrderRun) -> None:
        self.session = session
        self.run = run
        self.now = utcnow()
        self._load_businesses({r.nib for r in rows} - run.businesses.keys())
        self._load_products(rows)
        self.by_email, self.by_phone = self._load_customers(rows)
        self.orders, self.events = self._load_orders(rows)
        self.touched: dict[int, Order] = {}
        self.new_events: list[tuple[Order, OrderStatus, datetime]] = []

    def _load_businesses(self, nibs: set[str]) -> None:
        if not nibs:
            return
        for nib in nibs:
            self.run.businesses[nib] = None
        for business_id, nib in self.session.execute(
            select(Business.id, Business.nib).where(Business.nib.in_(nibs))
        ):
            if self.run.businesses[nib] is not None:
                self.run.ambiguous.add(nib)
            self.run.businesses[nib] = business_id

    def _load_products(self, rows: list[_OrderRow]) -> None:
        wanted: set[tuple[int, str]] = set()
        for row in rows:
            business_id = self.run.businesses.get(row.nib)
            if business_id is not None and (business_id, row.sku) not in self.run.products:
                wanted.add((business_id, row.sku))
        if not wanted:
            return
        for key in wanted:
            self.run.products[key] = None
        found = self.session.execute(
            select(Product.id, Product.business_id, Product.sku).where(
                Product.business_id.in_({b for b, _ in wanted}),
                Product.sku.in_({s for _, s in wanted}),
            )
        )
        for product_id, business_id, sku in found:
            if (business_id, sku) in wanted:
                self.run.products[(business_id, sku)] = product_id

    def _load_customers(self, rows: list[_OrderRow]) -> tuple[dict[str, int], dict[str, int]]:
        emails = {r.email for r in rows if r.email}
        phones = {r.phone for r in rows if r.phone}
        by_email: dict[str, int] = {}
        by_phone: dict[str, int] = {}
        if emails:
            for customer_id, email in self.session.execute(
                select(Customer.id, Customer.email).where(Customer.email.in_(emails))
            ):
                by_email[email] = customer_id
        if phones:
            for customer_id, phone in self.session.execute(
                select(Customer.id, Customer.phone).where(Customer.phone.in_(phones))
            ):
                by_phone[phone] = customer_id
        return by_email, by_phone

    def _load_orders(
        self, rows: list[_OrderRow]
    ) -> tuple[dict[tuple[int, str], Order], dict[int, set[OrderStatus]]]:
        keys = {(self.run.businesses[r.nib], r.ref) for r in rows
                if self.run.businesses.get(r.nib) is not None}
        orders: dict[tuple[int, str], Order] = {}
        events: dict[int, set[OrderStatus]] = {}
        if not keys:
            return orders, events
        found = self.session.scalars(
            select(Order)
            .where(tuple_(Order.business_id, Order.external_ref).in_(list(keys)))
            .options(selectinload(Order.items))
        ).all()
        for order in found:
            orders[(order.business_id, order.external_ref)] = order
            events[id(order)] = set()
        if found:
            by_id = {order.id: order for order in found}
            for order_id, kind in self.session.execute(
                select(OrderEvent.order_id, OrderEvent.kind).where(
                    OrderEvent.order_id.in_(by_id)
                )
            ):
                events[id(by_id[order_id])].add(kind)
        return orders, events

    def _resolve(self, row: _OrderRow) -> tuple[int, int, int]:
        """(business id, product id, customer id) or a reason why the row cannot be used."""
        if row.nib in self.run.ambiguous:
            raise Invalid(t("import.row.ambiguous_business", nib=row.nib))
        business_id = self.run.businesses.get(row.nib)
        if business_id is None:
            raise Invalid(t("import.row.unknown_business", nib=row.nib))
        product_id = self.run.products.get((business_id, row.sku))
        if product_id is None:
            raise Invalid(t("import.row.unknown_sku", sku=row.sku, nib=row.nib))
        customer_id = (self.by_email.get(row.email) if row.email else None) or (
            self.by_phone.get(row.phone) if row.phone else None
        )
        if customer_id is None:
            who = " / ".join(v for v in (row.email, row.phone) if v)
            raise Invalid(t("import.row.unknown_customer", who=who))
        return business_id, product_id, customer_id

    def apply(self, row: _OrderRow) -> bool:
        """Create or extend the order with this line; True when anything changed."""
        business_id, product_id, customer_id = self._resolve(row)
        line_key = (row.nib, row.ref, row.sku)
        if line_key in self.run.seen_lines:
            raise Invalid(t("import.row.duplicate_line", line=self.run.seen_lines[line_key],
                             ref=row.ref, sku=row.sku))
        order = self.orders.get((business_id, row.ref))
        changed = False
        if order is None:
            order = Order(business_id=business_id, customer_id=customer_id,
                          external_ref=row.ref, status=row.status,
                          ordered_at=row.ordered_at, total=0, shipping_courier=row.courier,
                          tracking_number=row.tracking)
            self.session.add(order)
            self.orders[(business_id, row.ref)] = order
            self.events[id(order)] = set()
            changed = True
        else:
            self._check_same_order(order, row, customer_id)
            changed = self._update_shipping(order, row)
        changed = self._line(order, product_id, row) or changed
        changed = self._advance(order, row) or changed
        self.run.seen_lines[line_key] = row.line
        self.touched[id(order)] = order
        return changed

    @staticmethod
    def _check_same_order(order: Order, row: _OrderRow, customer_id: int) -> None:
        if order.customer_id != customer_id:
            raise Invalid(t("import.row.order_other_customer", ref=row.ref))
        recorded = as_utc(order.ordered_at)
        if recorded != row.ordered_at:
            when = recorded.astimezone(WITA).strftime("%Y-%m-%d %H:%M")
            raise Invalid(t("import.row.order_other_time", ref=row.ref, when=when))

    @staticmethod
    def _update_shipping(order: Order, row: _OrderRow) -> bool:
        changed = False
        if row.courier and order.shipping_courier != row.courier:
            order.shipping_courier = row.courier
            changed = True
        if row.tracking and order.tracking_number != row.tracking:
            order.tracking_number = row.tracking
            changed = True
        return changed

    @staticmethod
    def _line(order: Order, product_id: int, row: _OrderRow) -> bool:
        existing = next((i for i in order.items if i.product_id == product_id), None)
        if existing is None:
            order.items.append(
                OrderItem(product_id=product_id, quantity=row.quantity, unit_price=row.unit_price)
            )
            return True
        if (existing.quantity, existing.unit_price) == (row.quantity, row.unit_price):
            return False
        existing.quantity, existing.unit_price = row.quantity, row.unit_price
        return True

    def _advance(self, order: Order, row: _OrderRow) -> bool:
        """Record each status the order reached once (unique per order and kind)."""
        reached = self.events[id(order)]
        changed = False
        for kind in _REACHED[row.status]:
            if kind in reached:
                continue
            occurred = row.ordered_at if kind is OrderStatus.confirmed else self.now
            self.new_events.append((order, kind, occurred))
            reached.add(kind)
            changed = True
        current = _STATUS_RANK.get(order.status)
        if current is not None and _STATUS_RANK[row.status] > current:
            order.status = row.status
        return changed

    def finish(self) -> None:
        """Totals from the lines, then the events (which need the new orders' ids)."""
        for order in self.touched.values():
            order.total = sum(item.quantity * item.unit_price for item in order.items)
        self.session.flush()
        self.session.add_all(
            OrderEvent(order_id=order.id, kind=kind, occurred_at=occurred, source="csv",
                       processed_at=None)
            for order, kind, occurred in self.new_events
        )


def import_orders(
    path: Path, *, batch_size: int = 500, progress: Progress | None = None
) -> ImportReport:
    """Import orders (one line per row; rows sharing NIB + order_ref form one order).

    Businesses, products (by SKU) and customers must already exist. Each status reached
    creates one :class:`~engine.models.OrderEvent` (source ``csv``, unprocessed) for the
    transactional-email trigger; a re-import adds no order, line or event twice.
    ``progress`` works as in :func:`import_customers`.
    """
    run = _OrderRun()

    def handle(session: Session, rows: list[Row], report: ImportReport) -> None:
        parsed = parse_rows(rows, _parse_order, report)
        batch = _OrderBatch(session, parsed, run)
        for item in parsed:
            try:
                changed = batch.apply(item)
            except Invalid as exc:
                report.reject(item.line, str(exc))
                continue
            report.count(changed)
        batch.finish()

    return run_import(path, ORDER_COLUMNS, batch_size, progress, handle)
