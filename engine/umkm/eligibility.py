"""Pasal 10 ayat (1) Perbup TTS 17/2025: which UMKM may receive digital empowerment.

One verdict, one reason per criterion, so staff see *everything* that is missing at
once instead of fixing one field per round trip:

========  ===========================================================================
nib       huruf a: Nomor Induk Berusaha, 13 digits (OSS-RBA; no public checksum)
nik       huruf e: owner is a resident, proven by NIK (16 digits, DDMMYY + serial)
domisili  huruf d: the business address is in a TTS kecamatan (Kemendagri 53.02.xx)
binaan    huruf b: the business belongs to a group supervised by the Dinas
produk    huruf c: clear, complete product information
========  ===========================================================================

A NIK records the place of *first* registration, so a NIK from another regency with a
TTS address is a ``warning`` for staff review, never a hard ``fail`` (DESIGN §8).
Messages never contain the NIK or any part of the birth date it encodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from urllib.parse import urlparse

from engine.common import crypto
from engine.common.formatting import WITA
from engine.common.i18n import t
from engine.models import Business, Category, Product, Verification
from engine.umkm import wilayah

OK, WARNING, FAIL = "ok", "warning", "fail"
CRITERIA = ("nib", "nik", "domisili", "binaan", "produk")
CATEGORIES = tuple(c.value for c in Category)
TTS_NIK_PREFIX = "5302"
HOLD = "verifikasi"  # not a Pasal 10 criterion: see hold()



class ProductInfo(Protocol):
    """What eligibility needs from a product; both :class:`Product` and
    :class:`ProductData` satisfy it (read-only, so ORM descriptors match)."""

    @property
    def name(self) -> str | None: ...

    @property
    def category(self) -> str | None: ...

    @property
    def description(self) -> str | None: ...

    @property
    def price(self) -> int | None: ...

    @property
    def image_url(self) -> str | None: ...


@dataclass(frozen=True)
class ProductData:
    """A product that is not (yet) in the database: import previews, forms, tests."""

    name: str | None = None
    category: str | None = None
    description: str | None = None
    price: int | None = None
    image_url: str | None = None


@dataclass(frozen=True)
class Criterion:
    key: str  # 'nib' | 'nik' | 'domisili' | 'binaan' | 'produk'
    status: str  # 'ok' | 'warning' | 'fail'
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    """The Pasal 10 outcome: eligible unless some criterion failed (warnings allowed)."""

    criteria: tuple[Criterion, ...]

    @property
    def eligible(self) -> bool:
        return not self.failures

    @property
    def warnings(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.status == WARNING)

    @property
    def failures(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.status == FAIL)

    def criterion(self, key: str) -> Criterion:
        return next(c for c in self.criteria if c.key == key)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form cached in ``Business.eligibility``; holds no NIK by construction."""
        return {
            "eligible": self.eligible,
            "criteria": [c.as_dict() for c in self.criteria],
            "warnings": [c.key for c in self.warnings],
            "failures": [c.key for c in self.failures],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Verdict:
        """Rebuild a cached verdict (e.g. ``Business.eligibility``) without decrypting."""
        rows = (data or {}).get("criteria") or []
        return cls(tuple(Criterion(r["key"], r["status"], r["message"]) for r in rows))


def evaluate(
    *,
    nib: str,
    nik: str,
    kecamatan_code: str,
    binaan: bool,
    products: Sequence[ProductInfo],
    today: date | None = None,
    lang: str | None = None,
) -> Verdict:
    """Judge the five Pasal 10 criteria from plain values (no database, no decryption)."""
    today = today or datetime.now(WITA).date()
    domicile = _domicile(kecamatan_code, lang)
    return Verdict(
        (
            _nib(nib, lang),
            _nik(nik, address_in_tts=domicile.status == OK, today=today, lang=lang),
            domicile,
            _binaan(binaan, lang),
            _products(products, lang),
        )
    )


def check_business(
    business: Business,
    products: Sequence[Product] | None = None,
    *,
    today: date | None = None,
    lang: str | None = None,
) -> Verdict:
    """The verdict of a stored business; the NIK is decrypted only in memory."""
    nik = crypto.decrypt(business.owner_nik_enc, purpose="nik") if business.owner_nik_enc else ""
    verdict = evaluate(
        nib=business.nib,
        nik=nik,
        kecamatan_code=business.kecamatan_code,
        binaan=bool(business.binaan),
        products=[p for p in (business.products if products is None else products)
                  if p.archived_at is None],  # an archived product is neither shown nor judged
        today=today,
        lang=lang,
    )
    held = hold(business, lang)
    return verdict if held is None else Verdict((*verdict.criteria, held))


def hold(business: Business, lang: str | None = None) -> Criterion | None:
    """A failing ``verifikasi`` entry while a changed identity awaits the Dinas, else ``None``.

    Not a Pasal 10 criterion, so it only appears when it blocks: the five criteria judge
    the data, but a new name or NIB nobody has checked must not reach the showcase or a
    campaign on the strength of the business's earlier approval. Businesses never
    re-identified (pending new registrations, verified ones) are judged as before.
    """
    if business.verification != Verification.changed:
        return None
    return Criterion(HOLD, FAIL, t("elig.verifikasi.changed", lang))


# --- identifiers ------------------------------------------------------------------


def nib_problem(nib: str | None, lang: str | None = None) -> str | None:
    """Why a NIB is malformed, or ``None``. OSS-RBA NIBs are 13 digits, nothing more."""
    value = (nib or "").strip()
    if not value:
        return t("elig.nib.missing", lang)
    if len(value) != 13 or not value.isdigit():
        return t("elig.nib.format", lang, nib=_echo(value))
    return None


def nik_problem(nik: str | None, today: date | None = None, lang: str | None = None) -> str | None:
    """Why a NIK cannot be a real Dukcapil NIK, or ``None``; the NIK is never echoed."""
    value = (nik or "").strip()
    if not value:
        return t("elig.nik.missing", lang)
    if not value.isdigit() or not value.isascii():
        return t("elig.nik.letters", lang)
    if len(value) != 16:
        return t("elig.nik.length", lang, length=len(value))
    if nik_birth_date(value, today) is None:
        return t("elig.nik.date", lang)
    if value[12:] == "0000":
        return t("elig.nik.serial", lang)
    return None


def nik_birth_date(nik: str, today: date | None = None) -> date | None:
    """The birth date encoded in digits 7-12 (DDMMYY, day + 40 for women), or ``None``.

    YY has no century: the date is real if it exists in 20YY or 19YY and is not in the
    future (so 29 Feb is valid for ``00`` via 2000, and ``31 02`` never is).
    """
    today = today or datetime.now(WITA).date()
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > 40:
        day -= 40
    for century in (2000, 1900):
        try:
            born = date(century + year, month, day)
        except ValueError:
            continue
        if born <= today:
            return born
    return None


# --- the five criteria ---------------------------------------------------------------


def _nib(nib: str, lang: str | None) -> Criterion:
    problem = nib_problem(nib, lang)
    if problem:
        return Criterion("nib", FAIL, problem)
    return Criterion("nib", OK, t("elig.nib.ok", lang, nib=nib.strip()))


def _nik(nik: str, *, address_in_tts: bool, today: date, lang: str | None) -> Criterion:
    problem = nik_problem(nik, today, lang)
    if problem:
        return Criterion("nik", FAIL, problem)
    value = nik.strip()
    if value.startswith(TTS_NIK_PREFIX):
        return Criterion("nik", OK, t("elig.nik.ok", lang))
    region = f"{value[:2]}.{value[2:4]}"
    if address_in_tts:
        return Criterion("nik", WARNING, t("elig.nik.outside_review", lang, region=region))
    return Criterion("nik", FAIL, t("elig.nik.outside", lang, region=region))


def _domicile(kecamatan_code: str, lang: str | None) -> Criterion:
    raw = (kecamatan_code or "").strip()
    if not raw:
        return Criterion("domisili", FAIL, t("elig.dom.missing", lang))
    code = wilayah.normalize_kecamatan(raw)
    if code is None:
        return Criterion("domisili", FAIL, t("elig.dom.format", lang, code=_echo(raw)))
    name = wilayah.kecamatan_name(code)
    if name is not None:
        return Criterion("domisili", OK, t("elig.dom.ok", lang, name=name))
    if code.startswith(wilayah.REGENCY_CODE + "."):
        return Criterion("domisili", FAIL, t("elig.dom.unknown", lang, code=code))
    return Criterion("domisili", FAIL, t("elig.dom.outside", lang, code=code))


def _binaan(binaan: bool, lang: str | None) -> Criterion:
    if binaan:
        return Criterion("binaan", OK, t("elig.binaan.ok", lang))
    return Criterion("binaan", FAIL, t("elig.binaan.fail", lang))


def _products(products: Sequence[ProductInfo], lang: str | None) -> Criterion:
    """At least one complete product; incomplete ones are drafts, named, never a failure.

    Why drafts do not fail the business: an owner adding a fourth product must not take
    the three finished ones off the showcase and out of every campaign until the photo is
    taken. A draft is simply not shown (the catalog query skips incomplete listings).
    """
    if not products:
        return Criterion("produk", FAIL, t("elig.produk.none", lang))
    drafts = []
    for position, product in enumerate(products, start=1):
        problems = product_problems(product, lang)
        if problems:
            label = (product.name or "").strip() or t("elig.produk.unnamed", lang, n=position)
            drafts.append(f"{label} ({', '.join(problems)})")
    complete = len(products) - len(drafts)
    items = "; ".join(drafts)
    if not complete:
        return Criterion("produk", FAIL, t("elig.produk.incomplete", lang, items=items))
    if drafts:
        return Criterion("produk", OK, t("elig.produk.ok_drafts", lang, count=complete,
                                         items=items))
    return Criterion("produk", OK, t("elig.produk.ok", lang, count=complete))


def product_problems(p: ProductInfo, lang: str | None = None) -> list[str]:
    """The missing or invalid fields of one product, as words staff understand.

    "Clear and correct" (Pasal 10 huruf c) is read as: a name, a Pasal 1 angka 6
    category, a description, a positive price and a photo buyers can see.
    """
    problems: list[str] = []
    if not _filled(p.name):
        problems.append(t("elig.field.name", lang))
    if p.category not in CATEGORIES:
        problems.append(t("elig.field.category", lang))
    if not _filled(p.description):
        problems.append(t("elig.field.description", lang))
    price = p.price
    if isinstance(price, bool) or not isinstance(price, int | float) or price <= 0:
        problems.append(t("elig.field.price", lang))
    if not is_photo_url(p.image_url):
        problems.append(t("elig.field.image_url", lang))
    return problems


def is_photo_url(url: str | None) -> bool:
    """An absolute http(s) URL, or a site path (``/media/...``) served by our own web app."""
    value = (url or "").strip()
    if not value or any(ch.isspace() for ch in value):
        return False
    if value.startswith("/") and not value.startswith("//"):
        return True
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _filled(value: str | None) -> bool:
    return bool(value and value.strip())


def _echo(value: str) -> str:
    """Quote user input back in a message, unless it may be a NIK typed in the wrong field.

    Anything with 14+ digits is masked: a NIB is 13 digits, a NIK 16 (UU 27/2022).
    """
    if sum(ch.isdigit() for ch in value) > 13:
        return repr(crypto.mask_nik(value))
    return repr(value)
