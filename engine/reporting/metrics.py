"""What each report number means: the metric definitions, written once.

Why one table in code: the same wording is rendered into every report (CLI, HTML,
dashboard) and into ``docs/metrics.md`` (a test keeps the file identical), so the
definition a Dinas officer reads can never drift from the one the SQL implements
(:mod:`engine.reporting.sources`). Formatting lives here too because a metric's ``kind``
(count, ratio, rupiah) decides how it is printed everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from babel.numbers import format_decimal, format_percent

from engine.common.formatting import rupiah
from engine.common.i18n import get_lang, t

Value = int | float | None


@dataclass(frozen=True)
class MetricDef:
    """How one number is counted; ``kind`` decides its formatting (count, ratio, rupiah)."""

    section: Literal["email", "social", "conversion", "programme"]
    kind: Literal["count", "ratio", "rupiah"]
    label: dict[str, str]
    definition: dict[str, str]


def _m(section: Any, kind: Any, label_id: str, label_en: str, def_id: str,
       def_en: str) -> MetricDef:
    """One definition in both languages, so the table below reads as one line per fact."""
    return MetricDef(section, kind, {"id": label_id, "en": label_en},
                     {"id": def_id, "en": def_en})


METRICS: dict[str, MetricDef] = {
    "planned": _m(
        "email", "count", "Rencana kirim", "Planned",
        "Baris outbox (pesan atau unggahan) yang dibuat dalam periode, apa pun statusnya.",
        "Outbox rows (messages or posts) created in the period, whatever their status."),
    "sent": _m(
        "email", "count", "Terkirim", "Sent",
        "Pesan yang dikonfirmasi terkirim oleh kanal (waktu kirim dalam periode).",
        "Messages the channel confirmed as sent, with the send time in the period."),
    "failed": _m(
        "email", "count", "Gagal", "Failed",
        "Baris outbox yang dibuat dalam periode dan berakhir gagal (tidak terkirim).",
        "Outbox rows created in the period that ended failed (never sent)."),
    "delivered": _m(
        "email", "count", "Sampai", "Delivered",
        "Terkirim dikurangi pesan yang memantul (keras atau lunak).",
        "Sent minus messages that bounced (hard or soft)."),
    "bounced_hard": _m(
        "email", "count", "Pantulan keras", "Hard bounces",
        "Pesan terkirim dalam periode dengan laporan pantulan permanen (peristiwa "
        "hard_bounce, status DSN 5.x.x); dihitung sekali per pesan.",
        "Messages sent in the period with a permanent bounce report (event hard_bounce, "
        "DSN status 5.x.x); counted once per message."),
    "bounced_soft": _m(
        "email", "count", "Pantulan lunak", "Soft bounces",
        "Pesan terkirim dalam periode yang hanya memiliki pantulan sementara (peristiwa "
        "soft_bounce); dihitung sekali per pesan.",
        "Messages sent in the period with only temporary bounces (event soft_bounce); "
        "counted once per message."),
    "unique_opens": _m(
        "email", "count", "Dibuka (unik)", "Unique opens",
        "Pesan terkirim dalam periode yang dibuka minimal sekali oleh manusia; pembukaan "
        "berulang dihitung sekali dan yang ditandai bot diabaikan.",
        "Messages sent in the period opened at least once by a person; repeated opens "
        "count once and opens flagged as bots are ignored."),
    "unique_clicks": _m(
        "email", "count", "Diklik (unik)", "Unique clicks",
        "Pesan terkirim dalam periode dengan minimal satu klik tautan oleh manusia; klik "
        "pemindai keamanan (suspected_bot) diabaikan.",
        "Messages sent in the period with at least one link click by a person; clicks "
        "by security scanners (suspected_bot) are ignored."),
    "ctr": _m(
        "email", "ratio", "CTR", "Click-through rate",
        "Diklik (unik) dibagi Sampai; kosong bila tidak ada pesan yang sampai.",
        "Unique clicks divided by delivered; empty when nothing was delivered."),
    "unsubscribes": _m(
        "email", "count", "Berhenti langganan", "Unsubscribes",
        "Pesan terkirim dalam periode yang menghasilkan permintaan berhenti langganan; "
        "dihitung sekali per pesan.",
        "Messages sent in the period that led to an unsubscribe; counted once per message."),
    "complaints": _m(
        "email", "count", "Keluhan spam", "Complaints",
        "Pesan terkirim dalam periode yang dilaporkan sebagai spam; sekali per pesan.",
        "Messages sent in the period reported as spam; once per message."),
    "social_posts": _m(
        "social", "count", "Unggahan", "Posts",
        "Unggahan media sosial yang terbit dalam periode.",
        "Social media posts published in the period."),
    "social_views": _m(
        "social", "count", "Tayangan", "Views",
        "Jumlah tayangan unggahan yang terbit dalam periode, dari nilai terakhir yang "
        "dibaca dari platform (bukan jumlah semua pembacaan).",
        "Views of posts published in the period, from the latest value read from the "
        "platform (not the sum of all readings)."),
    "social_reach": _m(
        "social", "count", "Jangkauan", "Reach",
        "Akun unik yang dijangkau unggahan dalam periode (nilai terakhir per unggahan).",
        "Unique accounts reached by posts of the period (latest value per post)."),
    "social_reactions": _m(
        "social", "count", "Reaksi", "Reactions",
        "Suka dan reaksi lain pada unggahan dalam periode (nilai terakhir per unggahan).",
        "Likes and other reactions on posts of the period (latest value per post)."),
    "social_comments": _m(
        "social", "count", "Komentar", "Comments",
        "Komentar pada unggahan dalam periode (nilai terakhir per unggahan).",
        "Comments on posts of the period (latest value per post)."),
    "social_shares": _m(
        "social", "count", "Dibagikan", "Shares",
        "Berapa kali unggahan dalam periode dibagikan (nilai terakhir per unggahan).",
        "Times posts of the period were shared (latest value per post)."),
    "social_clicks": _m(
        "social", "count", "Klik sosial", "Social clicks",
        "Klik tautan pada unggahan dalam periode, menurut platform (nilai terakhir).",
        "Link clicks on posts of the period, as reported by the platform (latest value)."),
    "social_saves": _m(
        "social", "count", "Disimpan", "Saves",
        "Berapa kali unggahan dalam periode disimpan (nilai terakhir per unggahan).",
        "Times posts of the period were saved (latest value per post)."),
    "leads": _m(
        "conversion", "count", "Prospek", "Leads",
        "Tombol pesan lewat WhatsApp di etalase yang ditekan dalam periode, kecuali bot.",
        "Order-via-WhatsApp button presses on the showcase in the period, except bots."),
    "orders": _m(
        "conversion", "count", "Pesanan teratribusi", "Attributed orders",
        "Pesanan (bukan batal) dalam periode oleh pelanggan yang sama dari UMKM yang sama, "
        "paling lama N hari (inklusif) setelah klik tautan UMKM itu; kampanye = klik "
        "terakhir sebelum pesanan.",
        "Orders (not cancelled) in the period by the same customer from the same UMKM, "
        "at most N days (inclusive) after a click on a link of that UMKM; campaign = the "
        "last click before the order."),
    "order_value": _m(
        "conversion", "rupiah", "Nilai pesanan", "Order value",
        "Jumlah total Rupiah dari pesanan teratribusi.",
        "Sum of the Rupiah totals of attributed orders."),
    "businesses_registered": _m(
        "programme", "count", "UMKM terdaftar", "Businesses registered",
        "UMKM yang terdaftar sampai akhir periode.",
        "Businesses registered by the end of the period."),
    "businesses_new": _m(
        "programme", "count", "UMKM baru", "New businesses",
        "UMKM yang mendaftar dalam periode.",
        "Businesses that registered during the period."),
    "businesses_eligible": _m(
        "programme", "count", "UMKM layak", "Eligible businesses",
        "UMKM terdaftar yang saat ini memenuhi Pasal 10.",
        "Registered businesses that currently meet Pasal 10."),
    "businesses_opted_in": _m(
        "programme", "count", "UMKM ikut kampanye", "Businesses opted in",
        "UMKM terdaftar dengan minimal satu produk yang diikutkan kampanye dan belum ditarik "
        "pada akhir periode.",
        "Registered businesses with at least one product opted in to a campaign and not "
        "withdrawn at the end of the period."),
    "businesses_active": _m(
        "programme", "count", "UMKM aktif digital", "Digitally active businesses",
        "UMKM yang dalam periode dipromosikan dalam pesan terkirim atau unggahan, atau "
        "mendapat peristiwa keterlibatan (buka, klik, prospek, ...).",
        "Businesses promoted in a sent message or post in the period, or with an "
        "engagement event (open, click, lead, ...) in the period."),
}

REPORT_METRICS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.section != "programme")
INDICATOR_METRICS: tuple[str, ...] = tuple(
    k for k, m in METRICS.items() if m.section == "programme"
)
SECTIONS: dict[str, dict[str, str]] = {
    "email": {"id": "Pesan", "en": "Messages"},
    "social": {"id": "Media sosial", "en": "Social media"},
    "conversion": {"id": "Prospek dan pesanan", "en": "Leads and orders"},
    "programme": {"id": "Indikator program", "en": "Programme indicators"},
}
METRICS_DOC_START = "<!-- metrics:start (generated from engine.reporting.metrics.METRICS) -->"
METRICS_DOC_END = "<!-- metrics:end -->"


def metric_label(key: str, lang: str | None = None) -> str:
    """The column heading people read for ``key`` (the page's language by default)."""
    return METRICS[key].label[lang or get_lang()]


def metrics_markdown() -> str:
    """The definitions table of ``docs/metrics.md`` (a test keeps the file identical)."""
    lines = ["| key | section | Nama | Definisi | Name | Definition |",
             "|---|---|---|---|---|---|"]
    for key, m in METRICS.items():
        cells = [f"`{key}`", m.section, m.label["id"], m.definition["id"], m.label["en"],
                 m.definition["en"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --- presentation shared by the CLI, the HTML report and the dashboard ------------


def format_metric(key: str, value: Value, lang: str | None = None) -> str:
    """``1.234``, ``25,0%`` or ``Rp 150.000`` (Indonesian by default); ``–`` for no value."""
    lang = lang or get_lang()
    locale = "id_ID" if lang == "id" else "en_US"
    if value is None:
        return "–"
    kind = METRICS[key].kind
    if kind == "ratio":
        return format_percent(value, "#,##0.0%", locale=locale)
    if kind == "rupiah":
        return rupiah(value, lang)
    return format_decimal(value, locale=locale)


def dimension_label(by: str, lang: str | None = None) -> str:
    """The heading of the grouping column (``Kampanye``, ``Kecamatan``, ...)."""
    return t(f"report.by.{by}", lang)
