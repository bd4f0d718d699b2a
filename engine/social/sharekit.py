"""Share kit for the shared WhatsApp group of Pasal 7(2)a.

Why a kit and not a send: the WhatsApp Cloud API cannot post into an existing
community group (DESIGN §7), so for that group the engine prepares everything staff
need to forward by hand: a ready-to-paste Indonesian text (one block per product, with
its link), the product image links, a ``wa.me`` order link per product that opens a
chat with the UMKM itself (so the buyer orders from the business directly, not through
the Dinas), and one ``wa.me/?text=`` link that shares the whole text to a chosen group.

Tracking (issue 17): the product and order links of a kit that was planned for a run go
through ``/t/c/<token>`` (the ``track`` callable, a :class:`~engine.engagement.tracking.
DeliveryTracker` of the run's share-kit row with the WhatsApp UTM values), so every
click in the group is an engagement event of channel ``whatsapp`` attributed to the UMKM
of the product. Without ``track`` (a preview) the links are plain.

:func:`build_share_kit` is a pure function of the campaign and product contexts (the
``products`` entries of the render context, see :mod:`engine.message.templating`); the
dashboard shows its result and the outbox stores ``to_json()``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote, urljoin

from engine.common.formatting import rupiah, tanggal_pendek
from engine.customers.cells import normalize_phone
from engine.message.templating import DINAS

# WhatsApp's limit for one text message; the kit stays below it so it can be pasted whole.
MAX_TEXT = 65536
WA_ME = "https://wa.me/"
FOOTER = f"Dibagikan oleh {DINAS['name']}."
ORDER_LABEL = "pesan-wa"
CATALOG_LABEL = "katalog"

#: ``track(url, product, label)``: the tracked (``/t/c/...``) form of a link.
Track = Callable[[str, Mapping[str, Any] | None, str | None], str]


def _untracked(url: str, _product: Mapping[str, Any] | None, _label: str | None) -> str:
    return url


@dataclass(frozen=True, slots=True)
class WaLink:
    """A ``wa.me`` link: ``order`` opens a chat with one UMKM, ``share`` forwards the text."""

    kind: Literal["order", "share"]
    url: str
    label: str
    product_id: int | None = None
    business_name: str | None = None


@dataclass(frozen=True, slots=True)
class ShareKit:
    """Everything staff forward to the shared group for one campaign."""

    campaign_id: str
    campaign_name: str
    text: str
    images: list[str] = field(default_factory=list)
    wa_links: list[WaLink] = field(default_factory=list)
    omitted_products: int = 0

    @property
    def share_link(self) -> str:
        return next(link.url for link in self.wa_links if link.kind == "share")

    def order_links(self) -> list[WaLink]:
        return [link for link in self.wa_links if link.kind == "order"]

    def to_json(self) -> str:
        """The kit as JSON (UTF-8 text kept readable) for the outbox and the dashboard."""
        document = asdict(self)
        document["share_link"] = self.share_link
        return json.dumps(document, ensure_ascii=False, indent=2)


def build_share_kit(
    campaign: Mapping[str, Any],
    products: Sequence[Mapping[str, Any]],
    offer: Mapping[str, Any] | None,
    base_url: str,
    track: Track | None = None,
) -> ShareKit:
    """Build the share kit of one campaign (plain text: WhatsApp shows no HTML)."""
    track = track or _untracked
    name = str(campaign.get("name") or "")
    header = _header(name, offer)
    blocks: list[str] = []
    images: list[str] = []
    order_links: list[WaLink] = []
    budget = MAX_TEXT - len(header) - len(FOOTER) - 200  # room for the "more" line
    used = 0
    shown = 0
    for number, product in enumerate(products, start=1):
        plain = _absolute(base_url, str(product.get("url") or ""))
        url = track(plain, product, None) if plain else plain
        order = _order_link(product, name, plain, track)
        block = _product_block(number, product, url, order)
        if used + len(block) + 2 > budget:
            break
        blocks.append(block)
        used += len(block) + 2
        shown += 1
        image = _absolute(base_url, str(product.get("image_url") or ""))
        if image and image not in images:
            images.append(image)
        if order is not None:
            order_links.append(order)
    omitted = len(products) - shown
    parts = [header, *blocks]
    if omitted:
        catalog = track(_absolute(base_url, "/produk"), None, CATALOG_LABEL)
        parts.append(f"…dan {omitted} produk lainnya di {catalog}")
    parts.append(FOOTER)
    text = "\n\n".join(p for p in parts if p)
    share = WaLink("share", f"{WA_ME}?text={quote(text, safe='')}", "Bagikan ke grup WhatsApp")
    return ShareKit(
        campaign_id=str(campaign.get("id") or ""),
        campaign_name=name,
        text=text,
        images=images,
        wa_links=[*order_links, share],
        omitted_products=omitted,
    )


def _header(name: str, offer: Mapping[str, Any] | None) -> str:
    lines = [f"*{name}*"] if name else []
    if offer:
        line = _offer_line(offer)
        if line:
            lines.append(line)
    lines.append("Produk pilihan UMKM Kabupaten Timor Tengah Selatan:")
    return "\n".join(lines)


def _offer_line(offer: Mapping[str, Any]) -> str:
    """``Diskon Akhir Tahun: diskon 15% dengan kode TENUN15, berlaku sampai 31 Desember 2026``."""
    kind = offer.get("kind")
    if kind == "discount" and offer.get("percent"):
        detail = f"diskon {offer['percent']}%"
    elif kind == "bundle" and offer.get("bundle_price"):
        detail = f"harga paket {rupiah(int(offer['bundle_price']))}"
    elif kind == "new_product":
        detail = "produk baru"
    else:
        detail = ""
    if offer.get("code"):
        detail += f" dengan kode {offer['code']}"
    ends = _as_date(offer.get("ends"))
    if ends is not None:
        detail += f", berlaku sampai {tanggal_pendek(ends)}"
    detail = detail.strip(" ,")
    title = str(offer.get("title") or "").strip()
    if title and detail:
        return f"{title}: {detail}"
    return title or (detail[:1].upper() + detail[1:])


def _product_block(
    number: int, product: Mapping[str, Any], url: str, order: WaLink | None
) -> str:
    business = _business(product)
    lines = [f"{number}. *{product.get('name', '')}* - {rupiah(int(product.get('price') or 0))}"]
    where = str(business.get("kecamatan") or "").strip()
    if business.get("name"):
        lines.append(f"   UMKM: {business['name']}" + (f" ({where})" if where else ""))
    if url:
        lines.append(f"   Lihat: {url}")
    if order is not None:
        lines.append(f"   Pesan lewat WhatsApp: {order.url}")
    return "\n".join(lines)


def _order_link(product: Mapping[str, Any], campaign_name: str, url: str,
                track: Track) -> WaLink | None:
    """``https://wa.me/<UMKM digits>?text=<order message>`` (tracked through ``track``);
    None without a valid number. The message itself names the plain product page: it is
    read by the UMKM, and its click is not a promotion click."""
    business = _business(product)
    digits = normalize_phone(str(business.get("whatsapp") or ""))
    if digits is None:
        return None
    price = rupiah(int(product.get("price") or 0))
    message = f"Halo {business.get('name') or 'Kak'}, saya ingin memesan {product.get('name')} " \
        f"({price})"
    if campaign_name:
        message += f" dari {campaign_name}"
    message += "." + (f" {url}" if url else "")
    product_id = product.get("id")
    return WaLink(
        "order",
        track(f"{WA_ME}{digits}?text={quote(message, safe='')}", product, ORDER_LABEL),
        f"Pesan {product.get('name')}",
        product_id=int(product_id) if product_id is not None else None,
        business_name=str(business.get("name") or "") or None,
    )


def _business(product: Mapping[str, Any]) -> Mapping[str, Any]:
    business = product.get("business")
    return business if isinstance(business, Mapping) else {}


def _absolute(base_url: str, url: str) -> str:
    if not url or url.startswith(("http://", "https://")):
        return url
    return urljoin(base_url.rstrip("/") + "/", url.lstrip("/"))


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
