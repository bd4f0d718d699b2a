"""CSV imports of customers and orders (spreadsheets exported by Dinas staff and UMKM).

Why it is shaped this way:

* **Streamed, bounded memory.** The file is read line by line (``csv`` over a generator
  of decoded lines); only one batch of rows and a small set of keys per row (for
  duplicate detection) are held at a time.
* **Checked before anything is written.** A first pass decodes and parses the whole file
  without touching the database, so a file that is not UTF-8, has broken CSV quoting or
  wrong columns is refused as a whole (:class:`ImportFileError`) and nothing is written.
* **One transaction per batch.** A crash mid-file leaves only whole batches; every row is
  idempotent (customers keyed by email, else phone; orders by ``(NIB, order_ref)``,
  lines by product; events unique per kind), so re-running the same file finishes the
  rest and adds nothing twice.
* **Messages point at the file.** Every rejected row is reported as ``file:line: reason``
  with the physical line number (header = line 1), in Bahasa Indonesia by default.
* **Consent is proof (UU 27/2022).** A :class:`~engine.models.Consent` row is appended
  only when a customer's state for a channel actually changes, with the file name as
  source and the import time, so the history stays an honest, append-only record.
"""

from __future__ import annotations

import csv
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from zoneinfo import ZoneInfo

import phonenumbers
from babel.numbers import NumberFormatError, parse_decimal
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, selectinload

from engine.common.i18n import t
from engine.db import session_factory
from engine.models import (
    Business,
    Category,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Product,
    utcnow,
)
from engine.umkm.wilayah import find_kecamatan, kecamatan_list

__all__ = [
    "CUSTOMER_COLUMNS",
    "ORDER_COLUMNS",
    "ColumnSpec",
    "CsvInfo",
    "ImportFileError",
    "ImportReport",
    "RowError",
    "import_customers",
    "import_orders",
    "inspect_csv",
    "normalize_phone",
]

T = TypeVar("T")
Progress = Callable[[int], None]

WITA = ZoneInfo("Asia/Makassar")



# --------------------------------------------------------------------------- results


MAX_KEPT_ERRORS = 1_000  # row errors kept for display; all of them are counted
MAX_LINE_BYTES = 1 << 20  # one physical CSV line; longer is not a spreadsheet export
MAX_REMEMBERED_KEYS = 50_000  # per-file duplicate detection window (bounded memory)

@dataclass(frozen=True)
class RowError:
    """One rejected row; ``str()`` gives the compiler-style ``file:line: reason``."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    """Counts per data row: every row ends in exactly one of the three buckets."""

    file: str
    accepted: int = 0  # created or changed something
    unchanged: int = 0  # already present, nothing added
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.accepted + self.unchanged + self.rejected

    def reject(self, line: int, reason: str) -> None:
        self.keep(RowError(self.file, line, reason))

    def keep(self, error: RowError) -> None:
        """Count every rejected row; keep the first :data:`MAX_KEPT_ERRORS` messages, so a
        file of a million bad rows cannot exhaust memory (nobody reads past those)."""
        self.rejected += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing was written.

    The message is already translated and starts with ``file:line:``.
    """


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class ColumnSpec:
    """Canonical column names, their accepted spellings (English and Indonesian)."""

    aliases: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    one_of: tuple[str, ...] = ()

    def lookup(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for canonical, names in self.aliases.items():
            for name in (canonical, *names):
                table[_fold_header(name)] = canonical
        return table


CUSTOMER_COLUMNS = ColumnSpec(
    aliases={
        "name": ("nama", "nama_lengkap", "nama_pelanggan", "full_name"),
        "email": ("e_mail", "surel", "alamat_email", "alamat_surel"),
        "phone": ("telepon", "telp", "no_telp", "no_telepon", "nomor_telepon", "hp", "no_hp",
                  "nomor_hp", "ponsel", "handphone", "whatsapp", "wa", "no_wa",
                  "nomor_whatsapp"),
        "kecamatan": ("kec", "kode_kecamatan", "kecamatan_code", "district"),
        "consent_email": ("izin_email", "setuju_email", "persetujuan_email"),
        "consent_whatsapp": ("consent_wa", "izin_whatsapp", "izin_wa", "setuju_whatsapp",
                             "setuju_wa", "persetujuan_whatsapp", "persetujuan_wa"),
        "preferences": ("preferensi", "minat", "kategori", "categories"),
        "tags": ("tag", "label"),
    },
    required=("name",),
    one_of=("email", "phone"),
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


def _fold_header(name: str) -> str:
    """``"No. HP"`` -> ``"no_hp"``, ``"E-mail"`` -> ``"e_mail"``: spreadsheet headers vary."""
    return "_".join(re.split(r"[^0-9a-z]+", name.strip().casefold())).strip("_")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CsvInfo:
    """What the checking pass learned: delimiter, column order and number of data rows."""

    delimiter: str
    columns: tuple[str, ...]  # canonical name per position
    rows: int


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


def _decoded_lines(handle: BinaryIO, file: str) -> Iterator[str]:
    """UTF-8 lines (BOM dropped); a bad byte is reported with its line number.

    Decoding per physical line is safe because no UTF-8 multi-byte sequence contains
    ``\\n``, and it tells the user exactly where the bad byte is.
    """
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportFileError(t("import.file.line_too_long", file=file, line=number,
                                    limit=MAX_LINE_BYTES // 1024))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError(t("import.file.not_utf8", file=file, line=number)) from exc
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def _detect_delimiter(header: str) -> str:
    """Indonesian spreadsheets (decimal comma) export ``;``; everything else ``,``."""
    return ";" if header.count(";") > header.count(",") else ","


def _map_header(cells: Sequence[str], spec: ColumnSpec, file: str) -> tuple[str, ...]:
    lookup = spec.lookup()
    columns: list[str] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for cell in cells:
        canonical = lookup.get(_fold_header(cell))
        if canonical is None:
            unknown.append(cell.strip() or "''")
            columns.append("")
            continue
        if canonical in seen:
            raise ImportFileError(
                t("import.file.repeated_column", file=file, column=canonical,
                  names=f"{seen[canonical]}, {cell.strip()}")
            )
        seen[canonical] = cell.strip()
        columns.append(canonical)
    if unknown:
        raise ImportFileError(
            t("import.file.unknown_columns", file=file, columns=", ".join(unknown),
              known=", ".join(spec.aliases))
        )
    missing = [name for name in spec.required if name not in seen]
    if missing:
        raise ImportFileError(
            t("import.file.missing_columns", file=file, columns=", ".join(missing))
        )
    if spec.one_of and not any(name in seen for name in spec.one_of):
        raise ImportFileError(
            t("import.file.need_one_of", file=file, columns=", ".join(spec.one_of))
        )
    return tuple(columns)


@contextmanager
def _open_rows(path: Path, spec: ColumnSpec) -> Iterator[tuple[CsvInfo, Iterator[_Row | RowError]]]:
    """Open, decode and check the header; yield its facts and the data rows.

    Rows are :class:`_Row`, or a :class:`RowError` for a row of the wrong shape.
    ``CsvInfo.rows`` is unknown (-1) here: :func:`inspect_csv` counts them.
    """
    file = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise ImportFileError(t("import.file.not_found", file=file)) from exc
    except OSError as exc:
        raise ImportFileError(t("import.file.unreadable", file=file, detail=exc.strerror)) from exc
    with handle:
        lines = _decoded_lines(handle, file)
        skipped = 0  # blank lines above the header still count for line numbers
        first = next(lines, None)
        while first is not None and not first.strip():
            skipped += 1
            first = next(lines, None)
        if first is None:
            raise ImportFileError(t("import.file.empty", file=file))
        delimiter = _detect_delimiter(first)
        reader = csv.reader(_chain_first(first, lines), delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise ImportFileError(
                t("import.file.broken_csv", file=file, line=skipped + 1, detail=exc)
            ) from exc
        columns = _map_header(header, spec, file)
        info = CsvInfo(delimiter=delimiter, columns=columns, rows=-1)
        yield info, _iter_rows(reader, columns, file, skipped)


def _chain_first(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _iter_rows(
    reader: Any, columns: tuple[str, ...], file: str, offset: int
) -> Iterator[_Row | RowError]:
    """Data rows with the physical line each starts on (quoted cells may span lines)."""
    previous: int = reader.line_num
    while True:
        start = offset + previous + 1
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(
                t("import.file.broken_csv", file=file, line=start, detail=exc)
            ) from exc
        previous = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank line or ";;;;" left by a spreadsheet
        if len(cells) != len(columns):
            yield RowError(
                file, start,
                t("import.row.field_count", got=len(cells), expected=len(columns)),
            )
            continue
        yield _Row(start, {name: cell.strip() for name, cell in zip(columns, cells, strict=True)})


def inspect_csv(path: Path, spec: ColumnSpec) -> CsvInfo:
    """Read the whole file once without the database: encoding, quoting, header, row count.

    Raises :class:`ImportFileError`; the CLI also uses the row count for its progress bar.
    """
    with _open_rows(path, spec) as (info, rows):
        count = sum(1 for _ in rows)
    return CsvInfo(delimiter=info.delimiter, columns=info.columns, rows=count)


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _run_import(
    path: Path,
    spec: ColumnSpec,
    batch_size: int,
    progress: Progress | None,
    handle_batch: Callable[[Session, list[_Row], ImportReport], None],
) -> ImportReport:
    """Check the file, then feed it to ``handle_batch`` with one commit per batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inspect_csv(path, spec)  # refuse a bad file before anything is written
    report = ImportReport(file=str(path))
    done = 0
    factory = session_factory()
    with _open_rows(path, spec) as (_info, rows):
        for batch in _batched(rows, batch_size):
            good: list[_Row] = []
            for item in batch:
                if isinstance(item, RowError):
                    report.keep(item)
                else:
                    good.append(item)
            if good:
                with factory() as session, session.begin(), session.no_autoflush:
                    handle_batch(session, good, report)
            done += len(batch)
            if progress is not None:
                progress(done)
    report.errors.sort(key=lambda error: error.line)
    return report


# --------------------------------------------------------------------------- parsing

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
# Statuses an order has passed through once it reports one: an invoice or a shipment
# means it was confirmed (an invoice may come before or after shipping).
_REACHED = {
    OrderStatus.confirmed: (OrderStatus.confirmed,),
    OrderStatus.shipped: (OrderStatus.confirmed, OrderStatus.shipped),
    OrderStatus.invoiced: (OrderStatus.confirmed, OrderStatus.invoiced),
}
_STATUS_RANK = {OrderStatus.confirmed: 0, OrderStatus.shipped: 1, OrderStatus.invoiced: 2}
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


class _Invalid(Exception):
    """A row-level problem; the message is the translated reason."""


def _limit(value: str, column: str, limit: int) -> str:
    if len(value) > limit:
        raise _Invalid(t("import.row.too_long", column=column, limit=limit))
    return value


def _email(value: str) -> str | None:
    if not value:
        return None
    email = value.casefold()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise _Invalid(t("import.row.bad_email", value=value))
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


def _phone(value: str) -> str | None:
    if not value:
        return None
    phone = normalize_phone(value)
    if phone is None:
        raise _Invalid(t("import.row.bad_phone", value=value))
    return phone


def _consent(value: str, column: str) -> bool | None:
    folded = value.casefold()
    if not folded:
        return None  # empty = no change
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise _Invalid(t("import.row.bad_consent", column=column, value=value))


def _split_list(value: str) -> list[str]:
    """``"a | b|a"`` -> ``["a", "b"]`` (order kept, duplicates dropped)."""
    items = [part.strip() for part in value.split("|")]
    return list(dict.fromkeys(item for item in items if item))


def _categories(value: str) -> list[str] | None:
    if not value:
        return None
    result: list[str] = []
    for item in _split_list(value):
        category = _CATEGORY_ALIASES.get(_fold_header(item))
        if category is None:
            raise _Invalid(
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


def _kecamatan(value: str) -> str | None:
    """A code or a name; spreadsheets also write ``Kie``/``KIE`` for ``KI'E``."""
    if not value:
        return None
    code = find_kecamatan(value) or _kecamatan_squashed().get(_squash(value))
    if code is None:
        raise _Invalid(t("import.row.unknown_kecamatan", value=value))
    return code


def _quantity(value: str) -> int:
    if not re.fullmatch(r"\d{1,7}", value) or int(value) < 1:
        raise _Invalid(t("import.row.bad_quantity", value=value))
    return int(value)


def _price(value: str) -> int:
    """Whole Rupiah from ``150000``, ``150.000``, ``Rp 150.000`` or ``150.000,00``.

    A comma is the Indonesian decimal mark, so ``150,000`` is refused rather than read as
    Rp 150: only ``,0``/``,00`` may follow it.
    """
    text = re.sub(r"^(rp\.?|idr)", "", value.strip().casefold()).strip().replace("\u00a0", "")
    text = text.replace(" ", "")
    if not text or ("," in text and not re.search(r",0{1,2}$", text)):
        raise _Invalid(t("import.row.bad_price", value=value))
    try:
        amount = parse_decimal(text, locale="id_ID", strict=True)
    except NumberFormatError as exc:
        raise _Invalid(t("import.row.bad_price", value=value)) from exc
    if amount < 0 or amount != amount.to_integral_value() or amount > Decimal(10) ** 12:
        raise _Invalid(t("import.row.bad_price", value=value))
    return int(amount)


def _ordered_at(value: str) -> datetime:
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
        raise _Invalid(t("import.row.bad_date", value=value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=WITA)
    return parsed.astimezone(UTC)


def _status(value: str) -> OrderStatus:
    if not value:
        return OrderStatus.confirmed
    status = _STATUS_ALIASES.get(value.casefold())
    if status is None:
        raise _Invalid(t("import.row.bad_status", value=value))
    return status


def _as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class _CustomerRow:
    line: int
    name: str
    email: str | None
    phone: str | None
    kecamatan: str | None
    consents: dict[ConsentChannel, bool | None]
    categories: list[str] | None
    tags: list[str]


def _parse_customer(row: _Row) -> _CustomerRow:
    values = row.values
    name = _limit(values.get("name", ""), "name", 200)
    email = _email(values.get("email", ""))
    phone = _phone(values.get("phone", ""))
    kecamatan = _kecamatan(values.get("kecamatan", ""))
    consents = {
        ConsentChannel.email: _consent(values.get("consent_email", ""), "consent_email"),
        ConsentChannel.whatsapp: _consent(values.get("consent_whatsapp", ""), "consent_whatsapp"),
    }
    categories = _categories(values.get("preferences", ""))
    tags = [_limit(tag, "tags", 64) for tag in _split_list(values.get("tags", ""))]
    if not name:
        raise _Invalid(t("import.row.name_missing"))
    if email is None and phone is None:
        raise _Invalid(t("import.row.contact_missing"))
    return _CustomerRow(row.line, name, email, phone, kecamatan, consents, categories, tags)


@dataclass
class _CustomerRun:
    """State that lives across batches of one customer import."""

    source: str
    # Recent keys only (bounded), as hashes of the address -> line: a 50 MB file stays
    # under its memory budget. A duplicate further back is found in the database instead
    # and counted as unchanged, never imported twice. A 64-bit hash collision within the
    # window (odds ~1e-10 per file) would reject that row, visibly, as a duplicate.
    seen_email: OrderedDict[int, int] = field(default_factory=OrderedDict)
    seen_phone: OrderedDict[int, int] = field(default_factory=OrderedDict)


class _CustomerBatch:
    """Apply one batch of parsed rows inside one transaction."""

    def __init__(self, session: Session, rows: list[_CustomerRow], run: _CustomerRun) -> None:
        self.session = session
        self.run = run
        self.now = utcnow()
        emails = {r.email for r in rows if r.email}
        phones = {r.phone for r in rows if r.phone}
        found: list[Customer] = []
        if emails:
            found += session.scalars(select(Customer).where(Customer.email.in_(emails))).all()
        if phones:
            found += session.scalars(select(Customer).where(Customer.phone.in_(phones))).all()
        self.by_email = {c.email: c for c in found if c.email}
        self.by_phone = {c.phone: c for c in found if c.phone}
        self.consent: dict[tuple[int, ConsentChannel], bool] = {}
        ids = {c.id for c in found}
        if ids:
            history = session.execute(
                select(Consent.customer_id, Consent.channel, Consent.granted)
                .where(Consent.customer_id.in_(ids), Consent.purpose == ConsentPurpose.marketing)
                .order_by(Consent.recorded_at, Consent.id)
            )
            for customer_id, channel, granted in history:
                self.consent[(customer_id, channel)] = granted  # newest wins
        self.new_consents: list[tuple[Customer, ConsentChannel, bool]] = []
        self.new_state: dict[tuple[int, ConsentChannel], bool] = {}

    def duplicate_of(self, row: _CustomerRow) -> str | None:
        for what, value, seen in (("email", row.email, self.run.seen_email),
                                 (t("import.word.phone"), row.phone, self.run.seen_phone)):
            if value and hash(value) in seen:
                return t("import.row.duplicate_customer", line=seen[hash(value)], what=what)
        return None

    def remember(self, row: _CustomerRow) -> None:
        for value, seen in ((row.email, self.run.seen_email), (row.phone, self.run.seen_phone)):
            if value:
                seen[hash(value)] = row.line
                if len(seen) > MAX_REMEMBERED_KEYS:
                    seen.popitem(last=False)

    def apply(self, row: _CustomerRow) -> bool:
        """Create or update the customer; True when anything changed."""
        by_email = self.by_email.get(row.email) if row.email else None
        by_phone = self.by_phone.get(row.phone) if row.phone else None
        if by_email is not None and by_phone is not None and by_email is not by_phone:
            raise _Invalid(t("import.row.key_conflict", email=row.email, phone=row.phone))
        customer = by_email or by_phone
        if customer is None:
            customer = self._create(row)
            changed = True
        else:
            changed = self._update(customer, row)
        return self._consents(customer, row) or changed

    def _create(self, row: _CustomerRow) -> Customer:
        self._check_consent_addresses(row.email, row.phone, row)
        customer = Customer(
            email=row.email, phone=row.phone, name=row.name, kecamatan_code=row.kecamatan,
            preferences={"categories": row.categories} if row.categories else {},
            attributes={}, tags=list(row.tags),
        )
        self.session.add(customer)
        if row.email:
            self.by_email[row.email] = customer
        if row.phone:
            self.by_phone[row.phone] = customer
        return customer

    def _update(self, customer: Customer, row: _CustomerRow) -> bool:
        if row.email and customer.email and customer.email != row.email:
            # Found by phone, but that phone belongs to someone with another email
            # (families share phones): never overwrite an identity silently.
            raise _Invalid(t("import.row.phone_taken", phone=row.phone))
        self._check_consent_addresses(row.email or customer.email,
                                      row.phone or customer.phone, row)
        changed = False
        if row.email and customer.email != row.email:
            customer.email = row.email
            self.by_email[row.email] = customer
            changed = True
        if row.phone and customer.phone != row.phone:
            if customer.phone:
                self.by_phone.pop(customer.phone, None)
            customer.phone = row.phone
            self.by_phone[row.phone] = customer
            changed = True
        if customer.name != row.name:
            customer.name = row.name
            changed = True
        if row.kecamatan and customer.kecamatan_code != row.kecamatan:
            customer.kecamatan_code = row.kecamatan
            changed = True
        preferences = dict(customer.preferences or {})
        if row.categories is not None and preferences.get("categories") != row.categories:
            customer.preferences = {**preferences, "categories": row.categories}
            changed = True
        current_tags = list(customer.tags or [])
        missing = [tag for tag in row.tags if tag not in current_tags]
        if missing:  # tags are merged: other sources (campaigns, staff) also set them
            customer.tags = current_tags + missing
            changed = True
        return changed

    @staticmethod
    def _check_consent_addresses(email: str | None, phone: str | None, row: _CustomerRow) -> None:
        if row.consents[ConsentChannel.email] and not email:
            raise _Invalid(t("import.row.consent_no_email"))
        if row.consents[ConsentChannel.whatsapp] and not phone:
            raise _Invalid(t("import.row.consent_no_phone"))

    def _consents(self, customer: Customer, row: _CustomerRow) -> bool:
        changed = False
        for channel, wanted in row.consents.items():
            if wanted is None:
                continue
            key = (id(customer), channel)
            if key in self.new_state:
                current = self.new_state[key]
            elif customer.id is not None:
                current = self.consent.get((customer.id, channel), False)
            else:
                current = False  # a new customer has consented to nothing yet
            if wanted != current:
                self.new_consents.append((customer, channel, wanted))
                self.new_state[key] = wanted
                changed = True
        return changed

    def finish(self) -> None:
        """Flush new customers (to get ids), then append the consent proof rows."""
        self.session.flush()
        self.session.add_all(
            Consent(customer_id=customer.id, channel=channel, purpose=ConsentPurpose.marketing,
                    granted=granted, source=self.run.source, recorded_at=self.now)
            for customer, channel, granted in self.new_consents
        )


def import_customers(
    path: Path, *, batch_size: int = 500, progress: Progress | None = None
) -> ImportReport:
    """Import (create or update) customers and their consent from a CSV file.

    Idempotent: customers are keyed by email, else phone; a consent row is appended only
    when the state changes; preferences go to ``preferences["categories"]`` and tags are
    merged. Raises :class:`ImportFileError` before writing anything when the file as a
    whole is unusable. ``progress`` is called after each committed batch with the number
    of data rows handled so far (matches :attr:`CsvInfo.rows` at the end).
    """
    run = _CustomerRun(source=f"import:{path.name}"[:120])

    def handle(session: Session, rows: list[_Row], report: ImportReport) -> None:
        parsed: list[_CustomerRow] = []
        for row in rows:
            try:
                parsed.append(_parse_customer(row))
            except _Invalid as exc:
                report.reject(row.line, str(exc))
        batch = _CustomerBatch(session, parsed, run)
        for item in parsed:
            duplicate = batch.duplicate_of(item)
            if duplicate:
                report.reject(item.line, duplicate)
                continue
            try:
                changed = batch.apply(item)
            except _Invalid as exc:
                report.reject(item.line, str(exc))
                continue
            batch.remember(item)
            if changed:
                report.accepted += 1
            else:
                report.unchanged += 1
        batch.finish()

    return _run_import(path, CUSTOMER_COLUMNS, batch_size, progress, handle)


# --------------------------------------------------------------------------- orders


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


def _parse_order(row: _Row) -> _OrderRow:
    values = row.values
    ref = _limit(values.get("order_ref", ""), "order_ref", 64)
    nib = values.get("nib", "")
    if not ref:
        raise _Invalid(t("import.row.ref_missing"))
    if not re.fullmatch(r"\d{13}", nib):
        raise _Invalid(t("import.row.bad_nib", value=nib))
    email = _email(values.get("customer_email", ""))
    phone = _phone(values.get("customer_phone", ""))
    if email is None and phone is None:
        raise _Invalid(t("import.row.customer_missing"))
    sku = _limit(values.get("sku", ""), "sku", 64)
    if not sku:
        raise _Invalid(t("import.row.sku_missing"))
    return _OrderRow(
        line=row.line, ref=ref, nib=nib, email=email, phone=phone, sku=sku,
        quantity=_quantity(values.get("quantity", "")),
        unit_price=_price(values.get("unit_price", "")),
        ordered_at=_ordered_at(values.get("ordered_at", "")),
        status=_status(values.get("status", "")),
        courier=_limit(values.get("courier", ""), "courier", 64) or None,
        tracking=_limit(values.get("tracking_number", ""), "tracking_number", 64) or None,
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
            raise _Invalid(t("import.row.ambiguous_business", nib=row.nib))
        business_id = self.run.businesses.get(row.nib)
        if business_id is None:
            raise _Invalid(t("import.row.unknown_business", nib=row.nib))
        product_id = self.run.products.get((business_id, row.sku))
        if product_id is None:
            raise _Invalid(t("import.row.unknown_sku", sku=row.sku, nib=row.nib))
        customer_id = (self.by_email.get(row.email) if row.email else None) or (
            self.by_phone.get(row.phone) if row.phone else None
        )
        if customer_id is None:
            who = " / ".join(v for v in (row.email, row.phone) if v)
            raise _Invalid(t("import.row.unknown_customer", who=who))
        return business_id, product_id, customer_id

    def apply(self, row: _OrderRow) -> bool:
        """Create or extend the order with this line; True when anything changed."""
        business_id, product_id, customer_id = self._resolve(row)
        line_key = (row.nib, row.ref, row.sku)
        if line_key in self.run.seen_lines:
            raise _Invalid(t("import.row.duplicate_line", line=self.run.seen_lines[line_key],
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
            raise _Invalid(t("import.row.order_other_customer", ref=row.ref))
        recorded = _as_utc(order.ordered_at)
        if recorded != row.ordered_at:
            when = recorded.astimezone(WITA).strftime("%Y-%m-%d %H:%M")
            raise _Invalid(t("import.row.order_other_time", ref=row.ref, when=when))

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

    def handle(session: Session, rows: list[_Row], report: ImportReport) -> None:
        parsed: list[_OrderRow] = []
        for row in rows:
            try:
                parsed.append(_parse_order(row))
            except _Invalid as exc:
                report.reject(row.line, str(exc))
        batch = _OrderBatch(session, parsed, run)
        for item in parsed:
            try:
                changed = batch.apply(item)
            except _Invalid as exc:
                report.reject(item.line, str(exc))
                continue
            if changed:
                report.accepted += 1
            else:
                report.unchanged += 1
        batch.finish()

    return _run_import(path, ORDER_COLUMNS, batch_size, progress, handle)
