"""Share kit for the shared WhatsApp group (Pasal 7(2)a)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from engine.social.sharekit import MAX_TEXT, build_share_kit

BASE = "https://umkm.ttskab.go.id"
CAMPAIGN = {"id": "akhir-tahun", "name": "Promo Akhir Tahun"}


def product(pid: int, name: str, price: int, whatsapp: str | None, business: str,
            **extra: Any) -> dict[str, Any]:
    return {"id": pid, "name": name, "price": price, "url": f"{BASE}/produk/{pid}",
            "image_url": f"{BASE}/media/{pid}.jpg",
            "business": {"name": business, "whatsapp": whatsapp, "kecamatan": "Kota Soe"},
            **extra}


TENUN = product(7, "Selendang Tenun Ikat Amanuban", 350000, "6281234567890", "Tenun Ina")
MADU = product(8, "Madu Hutan Mollo 500 ml", 1250000, "0813-9876-5432", "Madu Mollo")
KOPI = product(9, "Kopi & Gula <Aren>", 45000, None, "Kopi Fatumnasi")


def text_param(url: str) -> str:
    return parse_qs(urlsplit(url).query)["text"][0]


def test_text_lists_each_product_with_rupiah_price_and_link() -> None:
    kit = build_share_kit(CAMPAIGN, [TENUN, MADU, KOPI], None, BASE)
    assert kit.text.startswith("*Promo Akhir Tahun*")
    assert "*Selendang Tenun Ikat Amanuban* - Rp 350.000" in kit.text
    assert "Rp 1.250.000" in kit.text and "Rp 45.000" in kit.text
    for pid in (7, 8, 9):
        assert f"Lihat: {BASE}/produk/{pid}" in kit.text
    assert "UMKM: Tenun Ina (Kota Soe)" in kit.text
    # plain text: nothing is HTML-escaped
    assert "Kopi & Gula <Aren>" in kit.text and "&amp;" not in kit.text
    assert kit.images == [f"{BASE}/media/7.jpg", f"{BASE}/media/8.jpg", f"{BASE}/media/9.jpg"]


def test_order_links_open_a_chat_with_each_products_own_business() -> None:
    kit = build_share_kit(CAMPAIGN, [TENUN, MADU, KOPI], None, BASE)
    orders = kit.order_links()
    assert [(o.product_id, urlsplit(o.url).path) for o in orders] == [
        (7, "/6281234567890"), (8, "/6281398765432")]  # 08.. normalised to 62..
    assert all(o.url.startswith("https://wa.me/") for o in orders)
    message = text_param(orders[1].url)
    assert message == ("Halo Madu Mollo, saya ingin memesan Madu Hutan Mollo 500 ml "
                       f"(Rp 1.250.000) dari Promo Akhir Tahun. {BASE}/produk/8")
    # url-encoded: no raw spaces, commas or slashes left in the query
    query = urlsplit(orders[1].url).query
    assert " " not in query and "," not in query and "/" not in query
    assert f"Pesan lewat WhatsApp: {orders[0].url}" in kit.text
    # KOPI has no WhatsApp number: listed, but no order link
    assert "Pesan lewat WhatsApp" not in kit.text.split("Kopi & Gula")[1]


def test_share_link_carries_the_whole_text() -> None:
    kit = build_share_kit(CAMPAIGN, [TENUN, MADU], None, BASE)
    share = kit.wa_links[-1]
    assert share.kind == "share" and kit.share_link == share.url
    assert share.url.startswith("https://wa.me/?text=")
    assert unquote(share.url.removeprefix("https://wa.me/?text=")) == kit.text


def test_offer_is_announced() -> None:
    discount = {"kind": "discount", "percent": 15, "code": "TENUN15", "ends": date(2026, 12, 31),
                "title": "Diskon Akhir Tahun", "bundle_price": None}
    kit = build_share_kit(CAMPAIGN, [TENUN], discount, BASE)
    assert ("Diskon Akhir Tahun: diskon 15% dengan kode TENUN15, berlaku sampai "
            "31 Desember 2026") in kit.text
    bundle = {"kind": "bundle", "bundle_price": 450000, "ends": "2026-11-30"}
    assert "Harga paket Rp 450.000, berlaku sampai 30 November 2026" in build_share_kit(
        CAMPAIGN, [TENUN], bundle, BASE).text


def test_relative_links_become_absolute() -> None:
    relative = {**TENUN, "url": "/produk/7", "image_url": "media/7.jpg"}
    kit = build_share_kit(CAMPAIGN, [relative], None, BASE + "/")
    assert f"Lihat: {BASE}/produk/7" in kit.text
    assert kit.images == [f"{BASE}/media/7.jpg"]
    assert text_param(kit.order_links()[0].url).endswith(f"{BASE}/produk/7")


def test_text_stays_under_the_whatsapp_limit() -> None:
    many = [product(n, f"Produk {n} " + "x" * 300, 10000 + n, "6281234567890", f"UMKM {n}")
            for n in range(400)]
    kit = build_share_kit(CAMPAIGN, many, None, BASE)
    assert len(kit.text) <= MAX_TEXT
    assert 0 < kit.omitted_products < 400
    assert f"dan {kit.omitted_products} produk lainnya" in kit.text
    assert len(kit.order_links()) == 400 - kit.omitted_products


def test_to_json_round_trips() -> None:
    kit = build_share_kit(CAMPAIGN, [TENUN], None, BASE)
    document = json.loads(kit.to_json())
    assert document["campaign_id"] == "akhir-tahun"
    assert document["text"] == kit.text
    assert document["share_link"] == kit.share_link
    assert [link["kind"] for link in document["wa_links"]] == ["order", "share"]
    assert "Rp 350.000" in kit.to_json()  # readable UTF-8, not \\u escapes of the text
