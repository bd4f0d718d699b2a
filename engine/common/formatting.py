"""Indonesian formatting through Babel.

``Rp 150.000``, ``Senin, 1 Desember 2026``, ``14.30 WITA``.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent

WITA = ZoneInfo("Asia/Makassar")
_TZ_LABEL = {"Asia/Makassar": "WITA", "Asia/Jakarta": "WIB", "Asia/Jayapura": "WIT"}


def _locale(lang: str) -> str:
    return "id_ID" if lang == "id" else "en_US"


def rupiah(amount: int | float, lang: str = "id") -> str:
    """Whole Rupiah, ``Rp 150.000`` (Babel id_ID with pattern ``¤ #,##0``)."""
    return format_currency(
        amount, "IDR", format="¤\u00a0#,##0", locale="id_ID", currency_digits=False
    ).replace("\u00a0", " ")


def angka(value: int | float | None, lang: str = "id") -> str:
    """``1.234`` or ``4,5`` (Indonesian separators); ``–`` when there is no figure."""
    if value is None:
        return "–"
    return format_decimal(value, locale=_locale(lang))


def persen(ratio: float, lang: str = "id", digits: int = 2) -> str:
    """``0,30%`` (Indonesian decimal comma) from a ratio such as 0.003."""
    pattern = "#,##0." + "0" * digits + "%" if digits else "#,##0%"
    return format_percent(ratio, format=pattern, locale=_locale(lang))


def tanggal(value: date | datetime, lang: str = "id", tz: str = "Asia/Makassar") -> str:
    """``Senin, 1 Desember 2026``; aware datetimes are shown in the campaign's zone."""
    if isinstance(value, datetime):
        value = _local(value, tz).date()
    return format_date(value, "EEEE, d MMMM y", locale=_locale(lang))


def tanggal_pendek(value: date | datetime, lang: str = "id", tz: str = "Asia/Makassar") -> str:
    """``1 Desember 2026`` (no weekday) for tables and footers."""
    if isinstance(value, datetime):
        value = _local(value, tz).date()
    return format_date(value, "d MMMM y", locale=_locale(lang))


def jam(value: datetime, lang: str = "id", tz: str = "Asia/Makassar") -> str:
    """``14.30 WITA``."""
    local = _local(value, tz)
    pattern = "HH.mm" if lang == "id" else "HH:mm"
    return f"{format_time(local, pattern, locale=_locale(lang))} {_TZ_LABEL.get(tz, tz)}"


def _local(value: datetime, tz: str) -> datetime:
    zone = ZoneInfo(tz)
    if value.tzinfo is None:  # naive values from SQLite are UTC
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone)
