"""CSV import of customers and their consent (spreadsheets exported by Dinas staff and UMKM).

Why it is shaped this way:

* **Idempotent rows.** Customers are keyed by email, else phone; re-running the same
  file changes nothing and adds nothing twice (the file is read by
  :mod:`engine.customers.csvfile`: checked whole first, then one transaction per batch).
* **Consent is proof (UU 27/2022).** A :class:`~engine.models.Consent` row is appended
  only when a customer's state for a channel actually changes, with the file name as
  source and the import time, so the history stays an honest, append-only record.
* **No identity overwritten silently.** A phone that belongs to someone with another
  email (families share phones) is a rejected row, never a merge.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.i18n import t
from engine.customers.cells import (
    limited,
    parse_categories,
    parse_consent,
    parse_email,
    parse_kecamatan,
    parse_phone,
    split_list,
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
from engine.models import Consent, ConsentChannel, ConsentPurpose, Customer, utcnow

MAX_REMEMBERED_KEYS = 50_000  # per-file duplicate detection window (bounded memory)

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


def _parse_customer(row: Row) -> _CustomerRow:
    values = row.values
    name = limited(values.get("name", ""), "name", 200)
    email = parse_email(values.get("email", ""))
    phone = parse_phone(values.get("phone", ""))
    kecamatan = parse_kecamatan(values.get("kecamatan", ""))
    consents = {
        ConsentChannel.email: parse_consent(values.get("consent_email", ""), "consent_email"),
        ConsentChannel.whatsapp: parse_consent(values.get("consent_whatsapp", ""),
                                               "consent_whatsapp"),
    }
    categories = parse_categories(values.get("preferences", ""))
    tags = [limited(tag, "tags", 64) for tag in split_list(values.get("tags", ""))]
    if not name:
        raise Invalid(t("import.row.name_missing"))
    if email is None and phone is None:
        raise Invalid(t("import.row.contact_missing"))
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
            raise Invalid(t("import.row.key_conflict", email=row.email, phone=row.phone))
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
            raise Invalid(t("import.row.phone_taken", phone=row.phone))
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
            raise Invalid(t("import.row.consent_no_email"))
        if row.consents[ConsentChannel.whatsapp] and not phone:
            raise Invalid(t("import.row.consent_no_phone"))

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

    def handle(session: Session, rows: list[Row], report: ImportReport) -> None:
        parsed = parse_rows(rows, _parse_customer, report)
        batch = _CustomerBatch(session, parsed, run)
        for item in parsed:
            duplicate = batch.duplicate_of(item)
            if duplicate:
                report.reject(item.line, duplicate)
                continue
            try:
                changed = batch.apply(item)
            except Invalid as exc:
                report.reject(item.line, str(exc))
                continue
            batch.remember(item)
            report.count(changed)
        batch.finish()

    return run_import(path, CUSTOMER_COLUMNS, batch_size, progress, handle)
