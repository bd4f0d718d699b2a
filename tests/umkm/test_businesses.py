"""Service layer on SQLite and PostgreSQL: NIK at rest, duplicates, verdict cache, opt-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engine.common import crypto
from engine.common.i18n import set_lang
from engine.models import AuditLog, Business, Product, ProductOptIn, SizeClass
from engine.umkm import businesses as svc

NIK = "5302014107920001"


@pytest.fixture(autouse=True)
def indonesian() -> Iterator[None]:
    set_lang("id")
    yield
    set_lang(None)


def register(db: Session, **overrides: Any) -> Business:
    args: dict[str, Any] = {
        "name": "Tenun Ikat Mollo",
        "nib": "1234567890123",
        "owner_name": "Yohana Tefa",
        "nik": NIK,
        "kecamatan_code": "53.02.03",
        "binaan": True,
        "actor": "test",
    }
    args.update(overrides)
    return svc.register_business(db, **args)


def add_complete(db: Session, business: Business, **overrides: Any) -> Product:
    args: dict[str, Any] = {
        "name": "Selendang tenun ikat",
        "category": "kerajinan_tangan",
        "price": 350_000,
        "description": "Tenun ikat motif Mollo, pewarna alami.",
        "image_url": "https://umkm.ttskab.go.id/media/selendang.jpg",
        "sku": "TEN-01",
    }
    args.update(overrides)
    return svc.add_product(db, business, **args)


def test_nik_is_encrypted_at_rest_and_never_in_plain_columns(db: Session) -> None:
    business = register(db, nik="5302 0141 0792 0001")  # typed in groups
    db.commit()
    row = db.execute(text("SELECT * FROM business")).mappings().one()
    raw = json.dumps({k: str(v) for k, v in row.items()})
    assert NIK not in raw
    assert row["owner_nik_masked"] == "5302**********01"
    assert row["owner_nik_digest"] == crypto.digest(NIK, "nik")
    assert crypto.decrypt(row["owner_nik_enc"], purpose="nik") == NIK
    audit = db.scalars(select(AuditLog)).all()
    assert [a.action for a in audit] == ["business.register"]
    assert NIK not in json.dumps(audit[0].detail)
    assert audit[0].entity_id == str(business.id)


def test_registration_caches_the_verdict(db: Session) -> None:
    business = register(db, binaan=False)
    assert business.eligible is False
    assert set(business.eligibility["failures"]) == {"binaan", "produk"}
    assert NIK not in json.dumps(business.eligibility)


def test_duplicate_nib_is_refused_in_indonesian(db: Session) -> None:
    register(db)
    with pytest.raises(svc.DuplicateError, match=r"NIB 1234567890123 sudah terdaftar"):
        register(db, name="Usaha lain", nik="5302010107920001")
    assert db.scalar(select(func.count()).select_from(Business)) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("nik", "5302013102920001", "tanggal lahir"),
        ("nik", "53020141079200", "16 digit"),
        ("nib", "12345", "13 digit"),
        ("kecamatan_code", "Jakarta", "tidak dikenali"),
        ("name", "  ", "Nama usaha wajib diisi"),
    ],
)
def test_malformed_input_is_refused_and_nothing_is_stored(
    db: Session, field: str, value: str, message: str
) -> None:
    with pytest.raises(svc.InvalidDataError, match=message):
        register(db, **{field: value})
    assert db.scalar(select(func.count()).select_from(Business)) == 0


def test_address_outside_tts_is_stored_but_not_eligible(db: Session) -> None:
    business = register(db, kecamatan_code="530101")
    add_complete(db, business)
    assert business.kecamatan_code == "53.01.01"
    assert business.eligible is False
    assert business.eligibility["failures"] == ["domisili"]


def test_kecamatan_name_and_desa_are_normalised(db: Session) -> None:
    business = register(db, kecamatan_code="Kota Soe", desa="kelurahan soe")
    assert (business.kecamatan_code, business.desa) == ("53.02.01", "SoE")


@pytest.mark.parametrize(
    ("sales", "size"),
    [
        (None, SizeClass.mikro),
        (2_000_000_000, SizeClass.mikro),
        (2_000_000_001, SizeClass.kecil),
        (15_000_000_000, SizeClass.kecil),
        (15_000_000_001, SizeClass.menengah),
        (50_000_000_000, SizeClass.menengah),
    ],
)
def test_size_class_follows_pp_7_2021(sales: int | None, size: SizeClass) -> None:
    assert svc.size_class_for(sales) == size


def test_above_50_miliar_is_not_umkm() -> None:
    with pytest.raises(svc.InvalidDataError, match="bukan UMKM"):
        svc.size_class_for(50_000_000_001)


def test_adding_a_complete_product_makes_the_business_eligible(db: Session) -> None:
    business = register(db)
    assert business.eligible is False
    product = add_complete(db, business, certifications=["pirt", "Halal"])
    assert business.eligible is True
    assert product.certifications == ["PIRT", "halal"]
    db.commit()
    stored = db.scalars(select(Business)).one()
    assert stored.eligible is True and stored.eligibility["eligible"] is True


def test_product_input_mistakes_are_refused(db: Session) -> None:
    business = register(db)
    add_complete(db, business)
    with pytest.raises(svc.DuplicateError, match="SKU"):
        add_complete(db, business)
    with pytest.raises(svc.InvalidDataError, match="Kategori"):
        add_complete(db, business, sku="X", category="minuman")
    with pytest.raises(svc.InvalidDataError, match="Sertifikasi"):
        add_complete(db, business, sku="Y", certifications=["ISO"])


def test_opt_in_refused_for_ineligible_business_then_accepted(db: Session) -> None:
    business = register(db, binaan=False)
    product = add_complete(db, business)
    with pytest.raises(svc.NotEligibleError) as refused:
        svc.opt_in(db, product, "ramadan-2026", actor="test")
    assert any("binaan" in r for r in refused.value.reasons)
    assert "ramadan-2026" in str(refused.value)
    assert db.scalar(select(func.count()).select_from(ProductOptIn)) == 0

    svc.set_binaan(db, business, True, "staf")
    row = svc.opt_in(db, product, "ramadan-2026", actor="test")
    assert row.withdrawn_at is None and row.opted_by == "test"


def test_opt_in_refused_for_incomplete_product(db: Session) -> None:
    business = register(db)
    draft = add_complete(db, business, sku="DRAFT", description=None, image_url=None)
    with pytest.raises(svc.NotEligibleError) as refused:
        svc.opt_in(db, draft, "ramadan-2026", actor="test")
    assert "deskripsi" in str(refused.value) and "URL foto" in str(refused.value)


def test_opt_in_is_idempotent_and_reactivates_after_withdrawal(db: Session) -> None:
    product = add_complete(db, register(db))
    first = svc.opt_in(db, product, "ramadan-2026", actor="a")
    again = svc.opt_in(db, product, "ramadan-2026", actor="b")
    assert again.id == first.id and again.opted_by == "a"

    withdrawn = svc.withdraw_opt_in(db, product, "ramadan-2026", "a")
    assert withdrawn.withdrawn_at is not None
    svc.withdraw_opt_in(db, product, "ramadan-2026", "a")  # second withdrawal: no-op

    back = svc.opt_in(db, product, "ramadan-2026", actor="b")
    assert back.id == first.id and back.withdrawn_at is None and back.opted_by == "b"
    db.commit()
    assert db.scalar(select(func.count()).select_from(ProductOptIn)) == 1
    actions = db.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions.count("product.opt_in") == 2 and actions.count("product.opt_out") == 1


def test_withdrawing_an_unknown_opt_in_is_a_clear_error(db: Session) -> None:
    product = add_complete(db, register(db))
    with pytest.raises(svc.NotFoundError, match="tidak terdaftar pada kampanye"):
        svc.withdraw_opt_in(db, product, "tidak-ada", "a")


def test_lookups_by_id_nib_and_sku(db: Session) -> None:
    business = register(db)
    product = add_complete(db, business)
    assert svc.get_business(db, str(business.id)) is business
    assert svc.get_business(db, "1234567890123") is business
    assert svc.find_product(db, str(product.id)) is product
    assert svc.find_product(db, "TEN-01") is product
    with pytest.raises(svc.NotFoundError, match="tidak ditemukan"):
        svc.get_business(db, "999")
    with pytest.raises(svc.NotFoundError, match="tidak ditemukan"):
        svc.find_product(db, "NOPE")


def test_foreign_nik_with_tts_address_stays_eligible_with_a_warning(db: Session) -> None:
    business = register(db, nik="5304014107920001")
    add_complete(db, business)
    assert business.eligible is True
    assert business.eligibility["warnings"] == ["nik"]
