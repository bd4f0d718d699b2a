"""The data model of DESIGN §4 (SQLAlchemy 2.0, typed).

Conventions: money is whole Rupiah (``int``); times are timezone-aware UTC; JSON
columns hold provider payloads and free-form attributes; personal data (NIK, tokens)
is encrypted before it reaches a column (see :mod:`engine.common.crypto`). Tables of newer
concerns live in submodules of this package and are imported at the bottom, so
``Base.metadata`` always holds every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import NAMING, Base, BigId, StrEnum, aware, utcnow
from engine.models.base import enum_type as _enum

__all__ = ["NAMING", "Base", "BigId", "StrEnum", "aware", "utcnow"]


class Category(StrEnum):
    """Pasal 1 angka 6: UMKM products are processed food and handicrafts."""

    makanan_olahan = "makanan_olahan"
    kerajinan_tangan = "kerajinan_tangan"


class SizeClass(StrEnum):
    mikro = "mikro"
    kecil = "kecil"
    menengah = "menengah"


class Verification(StrEnum):
    pending = "pending"
    verified = "verified"
    rejected = "rejected"
    # Registered by its owner in the portal, not yet sent for verification ("Kirim untuk
    # verifikasi" moves it to pending); never in the Dinas queue until then.
    draft = "draft"
    # The name, NIB, owner or kecamatan changed after registration: held out of the showcase
    # and every catalogue until an admin checks it again (see engine.umkm.eligibility.hold).
    changed = "changed"


class ConsentChannel(StrEnum):
    email = "email"
    whatsapp = "whatsapp"
    sms = "sms"


class ConsentPurpose(StrEnum):
    marketing = "marketing"
    transactional = "transactional"


class SuppressionReason(StrEnum):
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"
    manual = "manual"


class OrderStatus(StrEnum):
    confirmed = "confirmed"
    shipped = "shipped"
    invoiced = "invoiced"
    cancelled = "cancelled"


class CampaignType(StrEnum):
    promotional = "promotional"
    transactional = "transactional"
    newsletter = "newsletter"
    retention = "retention"
    personalized = "personalized"


class RunStatus(StrEnum):
    scheduled = "scheduled"
    running = "running"
    paused = "paused"
    finished = "finished"
    cancelled = "cancelled"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


class Role(StrEnum):
    dinas_admin = "dinas_admin"
    dinas_staff = "dinas_staff"
    umkm_owner = "umkm_owner"
    pendamping = "pendamping"  # tenaga pendamping of Pasal 9 ayat (2), appointed by the Dinas


class Business(Base):
    """A UMKM. ``owner_nik_enc`` is a Fernet token; ``owner_nik_digest`` finds duplicates."""

    __tablename__ = "business"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    nib: Mapped[str] = mapped_column(String(32), index=True, unique=True)
    owner_name: Mapped[str] = mapped_column(String(200))
    owner_nik_enc: Mapped[str] = mapped_column(Text)
    owner_nik_digest: Mapped[str] = mapped_column(String(64), index=True)
    owner_nik_masked: Mapped[str] = mapped_column(String(32))
    kecamatan_code: Mapped[str] = mapped_column(String(16), index=True)
    desa: Mapped[str | None] = mapped_column(String(120))
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    whatsapp: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    binaan: Mapped[bool] = mapped_column(Boolean, default=False)
    binaan_group: Mapped[str | None] = mapped_column(String(120))
    size_class: Mapped[SizeClass] = mapped_column(_enum(SizeClass), default=SizeClass.mikro)
    annual_sales: Mapped[int | None] = mapped_column(BigInteger)
    verification: Mapped[Verification] = mapped_column(
        _enum(Verification), default=Verification.pending
    )
    # Cached Pasal 10 verdict (engine.umkm.eligibility), refreshed whenever the business or its
    # products change, so catalog queries can filter in SQL without decrypting NIKs.
    eligible: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    api_key_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    products: Mapped[list[Product]] = relationship(back_populates="business")

    def __repr__(self) -> str:  # never the NIK, not even encrypted
        return f"<Business id={self.id} name={self.name!r} nib={self.nib}>"


class Product(Base):
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    sku: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), index=True)
    price: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(500))
    in_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    certifications: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Archived by its owner: kept for the reports of past campaigns, shown nowhere.
    archived_at: Mapped[datetime | None] = mapped_column()

    business: Mapped[Business] = relationship(back_populates="products")

    __table_args__ = (UniqueConstraint("business_id", "sku"),)


class ProductOptIn(Base):
    """A product offered to a campaign (by campaign id) or to every campaign with a tag."""

    __tablename__ = "product_optin"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    campaign_key: Mapped[str] = mapped_column(String(120), index=True)
    is_tag: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_by: Mapped[str] = mapped_column(String(120))
    opted_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("product_id", "campaign_key", "is_tag"),)


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kecamatan_code: Mapped[str | None] = mapped_column(String(16), index=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """Proof of consent (UU 27/2022): an append-only history; the newest row wins."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    channel: Mapped[ConsentChannel] = mapped_column(_enum(ConsentChannel))
    purpose: Mapped[ConsentPurpose] = mapped_column(_enum(ConsentPurpose))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_consent_lookup", "customer_id", "channel", "purpose", "recorded_at"),
    )


class Suppression(Base):
    __tablename__ = "suppression"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(254))
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("channel", "address"),)


class Order(Base):
    __tablename__ = "order"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    external_ref: Mapped[str] = mapped_column(String(64))
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus), default=OrderStatus.confirmed)
    ordered_at: Mapped[datetime] = mapped_column(index=True)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_courier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))

    items: Mapped[list[OrderItem]] = relationship(back_populates="order")

    __table_args__ = (UniqueConstraint("business_id", "external_ref"),)


class OrderItem(Base):
    __tablename__ = "order_item"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[int] = mapped_column(BigInteger)

    order: Mapped[Order] = relationship(back_populates="items")


class OrderEvent(Base):
    """confirmed / shipped / invoiced: each one triggers a transactional email once."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    kind: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(32), default="api")
    processed_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("order_id", "kind"),)


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[CampaignType] = mapped_column(_enum(CampaignType))
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str | None] = mapped_column(String(500))
    # Triggered and recurring campaigns (transactional, retention, newsletter) act only
    # while active; `campaign launch` activates, `campaign cancel` deactivates.
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignRun(Base):
    __tablename__ = "campaign_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), default=RunStatus.scheduled)
    trigger_key: Mapped[str | None] = mapped_column(String(200))
    scheduled_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    status_reason: Mapped[str | None] = mapped_column(Text)
    planned: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_revisions.id"))

    __table_args__ = (UniqueConstraint("campaign_id", "trigger_key"),)


_OPEN_ROWS = text("status IN ('pending', 'sending')")
_SENT_ROWS = text("sent_at IS NOT NULL")


class Delivery(Base):
    """The outbox row (DESIGN §6). Unique per (run, recipient, channel)."""

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_run.id"))
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(254))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.pending
    )
    variant: Mapped[str | None] = mapped_column(String(32))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # When ids were last handed to the broker: the sweeper re-enqueues only rows whose
    # message may have been lost (older than its grace period), not every pending row.
    enqueued_at: Mapped[datetime | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()
    # The claim's lease (issue 14): who holds the row while it is ``sending`` and until
    # when. The holder renews it while it works; the sweeper requeues only rows whose
    # lease expired, and a record or a send is fenced on ``lease_owner``.
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    message_id: Mapped[str | None] = mapped_column(String(255))
    provider_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "recipient", "channel"),
        Index("ix_delivery_run_status", "run_id", "status", "id"),
        # Partial (issue 22): a claim or an outcome is never a HOT update (``status`` is
        # indexed), so every index gets an entry per update; these two get one only
        # for the rows their queries look for: open rows, sent rows.
        Index("ix_delivery_status_next", "status", "next_attempt_at",
              postgresql_where=_OPEN_ROWS, sqlite_where=_OPEN_ROWS),
        # Monthly reports scan deliveries by send and creation time.
        Index("ix_delivery_sent_at", "sent_at",
              postgresql_where=_SENT_ROWS, sqlite_where=_SENT_ROWS),
        Index("ix_delivery_created_at", "created_at"),
    )


class DeliveryProduct(Base):
    """Which products (and so which UMKM) a message or post carried: per-UMKM attribution."""

    __tablename__ = "delivery_product"

    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    # The product's business, copied (no foreign key: the product's own guarantees it,
    # and the check cost PostgreSQL ~9 µs per row on the hot path; migration 0016).
    business_id: Mapped[int] = mapped_column(BigId, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class TrackedLink(Base):
    __tablename__ = "tracked_link"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_run.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"))
    label: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (UniqueConstraint("run_id", "url_hash"),)


class EngagementEvent(Base):
    __tablename__ = "engagement_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), default="email")
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id"), index=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("social_post.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_run.id"))
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("tracked_link.id"))
    value: Mapped[float | None] = mapped_column(Float)
    suspected_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Idempotency key of a buffered open/click (engine.engagement.ingest): one per
    # accepted request, so a stream entry written twice is stored once. NULL elsewhere.
    event_key: Mapped[str | None] = mapped_column(String(40), unique=True)

    __table_args__ = (
        Index("ix_event_business_time", "business_id", "occurred_at"),
        Index("ix_event_run_type", "run_id", "type"),
        Index("ix_event_type_time", "type", "occurred_at"),
    )


class SocialAccount(Base):
    __tablename__ = "social_account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(32), default="dinas")
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"))
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(120))
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(32), default="ok")
    cooldown_until: Mapped[datetime | None] = mapped_column()
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("platform", "external_id"),)


class SocialPost(Base):
    __tablename__ = "social_post"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id"), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("social_account.id"))
    platform: Mapped[str] = mapped_column(String(32))
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))
    container_id: Mapped[str | None] = mapped_column(String(120))
    provider_post_id: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    published_at: Mapped[datetime | None] = mapped_column()
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role))
    business_id: Mapped[int | None] = mapped_column(ForeignKey("business.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebSessionRecord(Base):
    """A server-side login session; the browser holds only the opaque id (stored hashed)."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class LoginAttempt(Base):
    """One atomic counter of login attempts per key (user name, address, global) and window."""

    __tablename__ = "login_attempt"

    attempt_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    hits: Mapped[int] = mapped_column(Integer, default=0)


class SignupCode(Base):
    """A one-time code of an owner's sign-up (issue 16): only its HMAC is stored.

    Bound to the browser session that asked for it (``session_hash``), so a code read
    elsewhere cannot finish somebody else's sign-up; ``user_id`` is set when the account
    was made, which is how a contact is known to be taken and where notices go.
    """

    __tablename__ = "signup_code"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    contact: Mapped[str] = mapped_column(String(254), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    session_hash: Mapped[str] = mapped_column(String(64), index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    verified_at: Mapped[datetime | None] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)


class OptinLinkSend(Base):
    """One confirmed-opt-in link sent to a (customer, channel): the rate limit's memory.

    Why a table: the limit must hold across CLI runs, web processes and restarts, or
    the self-service form could be used to flood a person who left with links.
    """

    __tablename__ = "optin_link_send"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    channel: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (Index("ix_optin_link_send_customer_channel_sent",
                            "customer_id", "channel", "sent_at"),)


class CampaignRevision(Base):
    """One saved version of a campaign's YAML (the studio's "Simpan"), by YAML ``id``: the
    text, comments included, is what reviewers diff and what round-trips to ``campaigns/``."""

    __tablename__ = "campaign_revisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_key: Mapped[str] = mapped_column(String(120))
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(120))
    yaml_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Four eyes (engine.campaign.review) and the file text it was based on (sync).
    review: Mapped[str] = mapped_column(String(16), default="draft")
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str | None] = mapped_column(String(120))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    base_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("campaign_key", "number"),)


class ProductLink(Base):
    """A marketplace page of a product (Pasal 7(4)); a row, so ``/m/<id>`` names it and a
    click is attributed and can only go to this URL."""

    __tablename__ = "product_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"),
                                            index=True)
    marketplace: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


from engine.models.abtest import *  # noqa: E402, F403
from engine.models.dmarc import *  # noqa: E402, F403
from engine.models.guidance import *  # noqa: E402, F403
from engine.models.programme import *  # noqa: E402, F403
from engine.models.reporting import *  # noqa: E402, F403
from engine.models.studio import *  # noqa: E402, F403
from engine.models.training import *  # noqa: E402, F403
