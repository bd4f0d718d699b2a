"""The demo dataset's shape: its constants and the frozen records the generator returns.

Why apart from the generator and the seeding: tests, ``umkm demo`` and the benchmarks
read these records and constants (the demo source tag, the opt-in tags, the deliberate
flaws) without generating or loading anything.

Five demo businesses are deliberately imperfect so the eligibility check has something
to show (see :data:`FLAWS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from engine.models import ConsentChannel, OrderStatus

WITA = ZoneInfo("Asia/Makassar")
DEMO_SOURCE = "demo"
DEMO_ACTOR = "demo"
MEDIA_BASE = "https://umkm.ttskab.go.id/media/produk"

# Campaign tags every complete product of an eligible demo UMKM is offered to (the tags
# of campaigns/*.yaml: the year-end promotion, the monthly bulletin, recommendations),
# and the campaign that handicraft products join by id (the example of DESIGN §5).
OPT_IN_TAGS = ("akhir-tahun", "buletin", "rekomendasi")
TENUN_CAMPAIGN = "promo-tenun-akhir-tahun-2026"

Flaw = Literal["not_binaan", "outside_tts", "invalid_nib", "incomplete_product", "nik_not_tts"]
# What each deliberate flaw demonstrates (the last one is only a warning: still eligible).
FLAWS: dict[str, str] = {
    "not_binaan": "Pasal 10(1)b: bukan binaan Dinas",
    "outside_tts": "Pasal 10(1)d: berdomisili di Kota Kupang, bukan di TTS",
    "invalid_nib": "Pasal 10(1)a: NIB tidak 13 digit",
    "incomplete_product": "Pasal 10(1)c: satu produk draf (tanpa foto dan deskripsi): tidak "
                          "tampil, usahanya tetap layak",
    "nik_not_tts": "Pasal 10(1)e: NIK terbit di luar TTS (5304), alamat di TTS: peringatan",
}

Season = Literal["tenun", "madu", "jeruk", "sei", "pangan", "anyaman"]
ConsentState = Literal["granted", "withdrawn", "never"]


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    category: str
    price: int
    description: str | None
    image_url: str | None
    in_stock: bool
    certifications: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Pasal 10(1)c asks for clear product information: a photo and a description."""
        return bool(self.image_url and self.description)


@dataclass(frozen=True)
class DemoBusiness:
    key: str
    name: str
    nib: str
    owner_name: str
    nik: str
    kecamatan_code: str
    desa: str | None
    address: str
    phone: str
    whatsapp: str
    email: str | None
    binaan: bool
    binaan_group: str | None
    annual_sales: int
    season: Season
    popularity: float
    products: tuple[DemoProduct, ...]
    flaw: Flaw | None = None


@dataclass(frozen=True)
class DemoConsent:
    channel: ConsentChannel
    granted: bool
    recorded_at: datetime


@dataclass(frozen=True)
class DemoCustomer:
    ref: str
    name: str
    email: str | None
    phone: str | None
    kecamatan_code: str | None
    city: str
    preferences: dict[str, Any]
    created_at: datetime
    consents: tuple[DemoConsent, ...]

    def consent_state(self, channel: ConsentChannel) -> ConsentState:
        rows = [c for c in self.consents if c.channel is channel]
        if not rows:
            return "never"
        return "granted" if max(rows, key=lambda c: c.recorded_at).granted else "withdrawn"


@dataclass(frozen=True)
class DemoOrderItem:
    sku: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class DemoOrderEvent:
    kind: OrderStatus
    occurred_at: datetime
    processed: bool


@dataclass(frozen=True)
class DemoOrder:
    external_ref: str
    business_key: str
    customer_ref: str
    ordered_at: datetime
    status: OrderStatus
    items: tuple[DemoOrderItem, ...]
    events: tuple[DemoOrderEvent, ...]
    courier: str | None
    tracking_number: str | None

    @property
    def total(self) -> int:
        return sum(i.quantity * i.unit_price for i in self.items)


@dataclass(frozen=True)
class DemoDataset:
    seed: int
    reference: datetime
    businesses: tuple[DemoBusiness, ...]
    customers: tuple[DemoCustomer, ...]
    orders: tuple[DemoOrder, ...]


@dataclass(frozen=True)
class DemoSummary:
    """What the demo data amounts to in the database (``created`` False: it was there)."""

    created: bool
    businesses: int = 0
    eligible: int = 0
    products: int = 0
    customers: int = 0
    consents: int = 0
    orders: int = 0
    order_items: int = 0
    order_events: int = 0
    opt_ins: int = 0
    history_months: int = 0  # past monthly runs marked "riwayat demo" (engine.demo.history)
