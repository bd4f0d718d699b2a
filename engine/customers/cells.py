"""One cell of an imported CSV row -> a clean typed value, or the reason it is refused.

Why a module of its own: customer and order imports read the same kinds of cells (email,
phone, consent, prices written the Indonesian way, dates in WITA) and must refuse them
with the same translated reason; the web forms and the share kit normalize phone numbers
with the same :func:`normalize_phone`, so a customer found by one is found by all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from babel.numbers import NumberFormatError, parse_decimal

from engine.common.i18n import t
from engine.customers.csvfile import Invalid, fold_header
from engine.models import Category, OrderStatus
from engine.umkm.wilayah import find_kecamatan, kecamatan_list

WITA = ZoneInfo("Asia/Makassar")

_EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_YES = frozenset({"ya", "y", "iya", "yes", "1", "true", "benar", "setuju"})
_NO = frozenset({"tidak", "tdk", "no", "n", "0", "false", "salah", "tolak", "menolak"})
_STATUS_ALIASES = {
    "confirmed": OrderStatus.confirmed,
    "dikonfirmasi": OrderStatus.confirmed,
    "konfirmasi": OrderStatus.confirmed,
    "shipped": OrderStatus.shipped,
    "dikirim": OrderStatus.shipped,
    "invoiced": OrderStatus.invoiced,
    "ditagih": OrderStatus.invoiced,
    "tagihan": OrderStatus.invoiced,
}
_DATE_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H.%M", "%d/%m/%Y", "%d-%m-%Y %H:%M", "%d-%m-%Y")
_CATEGORY_ALIASES = {
    "makanan_olahan": Category.makanan_olahan,
    "makanan": Category.makanan_olahan,
    "pangan_olahan": Category.makanan_olahan,
    "processed_food": Category.makanan_olahan,
    "kerajinan_tangan": Category.kerajinan_tangan,
    "kerajinan": Category.kerajinan_tangan,
    "handicraft": Category.kerajinan_tangan,
    "handicrafts": Category.kerajinan_tangan,
}


def limited(value: str, column: str, limit: int) -> str:
    """A cell longer than its database column is refused, never cut: a cut name or
    reference would silently become another one."""
    if len(value) > limit:
        raise Invalid(t("import.row.too_long", column=column, limit=limit))
    return value


def parse_email(value: str) -> str | None:
    """Lowercased (addresses are matched case-blind); empty = none, malformed = refused."""
    if not value:
        return None
    email = value.casefold()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise Invalid(t("import.row.bad_email", value=value))
    return email


def normalize_phone(value: str) -> str | None:
    """``0812-3456-7890`` / ``+62 812 3456 7890`` / ``81234567890`` -> ``6281234567890``.

    ``None`` when the text is not a valid Indonesian (or international) number. Excel
    drops the leading zero of a phone typed as a number; libphonenumber restores it.
    """
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    elif re.fullmatch(r"62\d{8,13}", re.sub(r"[\s.()-]", "", text)):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, "ID")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def parse_phone(value: str) -> str | None:
    """:func:`normalize_phone`, but a cell that is not a phone number is refused."""
    if not value:
        return None
    phone = normalize_phone(value)
    if phone is None:
        raise Invalid(t("import.row.bad_phone", value=value))
    return phone


def parse_consent(value: str, column: str) -> bool | None:
    """Yes/no in Indonesian or English; empty means "no change", not "no"."""
    folded = value.casefold()
    if not folded:
        return None  # empty = no change
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise Invalid(t("import.row.bad_consent", column=column, value=value))


def split_list(value: str) -> list[str]:
    """``"a | b|a"`` -> ``["a", "b"]`` (order kept, duplicates dropped)."""
    items = [part.strip() for part in value.split("|")]
    return list(dict.fromkeys(item for item in items if item))


def parse_categories(value: str) -> list[str] | None:
    """Preferred product categories (``a | b``) in any accepted spelling, canonical."""
    if not value:
        return None
    result: list[str] = []
    for item in split_list(value):
        category = _CATEGORY_ALIASES.get(fold_header(item))
        if category is None:
            raise Invalid(
                t("import.row.bad_category", value=item,
                  choices=", ".join(c.value for c in Category))
            )
        if category.value not in result:
            result.append(category.value)
    return result


@lru_cache(maxsize=1)
def _kecamatan_squashed() -> dict[str, str]:
    return {_squash(name): code for code, name in kecamatan_list()}


def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def parse_kecamatan(value: str) -> str | None:
    """A code or a name; spreadsheets also write ``Kie``/``KIE`` for ``KI'E``."""
    if not value:
        return None
    code = find_kecamatan(value) or _kecamatan_squashed().get(_squash(value))
    if code is None:
        raise Invalid(t("import.row.unknown_kecamatan", value=value))
    return code


def parse_quantity(value: str) -> int:
    """A whole, positive number of items (at most seven digits)."""
    if not re.fullmatch(r"\d{1,7}", value) or int(value) < 1:
        raise Invalid(t("import.row.bad_quantity", value=value))
    return int(value)


def parse_price(value: str) -> int:
    """Whole Rupiah from ``150000``, ``150.000``, ``Rp 150.000`` or ``150.000,00``.

    A comma is the Indonesian decimal mark, so ``150,000`` is refused rather than read as
    Rp 150: only ``,0``/``,00`` may follow it.
    """
    text = re.sub(r"^(rp\.?|idr)", "", value.strip().casefold()).strip().replace("\u00a0", "")
    text = text.replace(" ", "")
    if not text or ("," in text and not re.search(r",0{1,2}$", text)):
        raise Invalid(t("import.row.bad_price", value=value))
    try:
        amount = parse_decimal(text, locale="id_ID", strict=True)
    except NumberFormatError as exc:
        raise Invalid(t("import.row.bad_price", value=value)) from exc
    if amount < 0 or amount != amount.to_integral_value() or amount > Decimal(10) ** 12:
        raise Invalid(t("import.row.bad_price", value=value))
    return int(amount)


def parse_ordered_at(value: str) -> datetime:
    """ISO (``2026-03-14 10:30``, with or without a zone) or ``14/03/2026``; naive = WITA."""
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for pattern in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
    if parsed is None:
        raise Invalid(t("import.row.bad_date", value=value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=WITA)
    return parsed.astimezone(UTC)


def parse_status(value: str) -> OrderStatus:
    """The order status in Indonesian or English; empty = confirmed."""
    if not value:
        return OrderStatus.confirmed
    status = _STATUS_ALIASES.get(value.casefold())
    if status is None:
        raise Invalid(t("import.row.bad_status", value=value))
    return status


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
