"""Pasal 10 eligibility: one reason per criterion, NIK rules, TTS domicile, products."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

from engine.common.i18n import set_lang
from engine.umkm import wilayah
from engine.umkm.eligibility import (
    CRITERIA,
    FAIL,
    OK,
    WARNING,
    ProductData,
    Verdict,
    evaluate,
    nik_problem,
    product_problems,
)

TODAY = date(2026, 6, 1)
NIK = "5302014107920001"  # kec 01, female, born 01-07-1992
NIB = "1234567890123"
GOOD = ProductData(
    name="Kopi Mollo",
    category="makanan_olahan",
    description="Kopi arabika sangrai dari Mollo Utara, 250 gram.",
    price=45_000,
    image_url="https://umkm.ttskab.go.id/media/kopi.jpg",
)


@pytest.fixture(autouse=True)
def indonesian() -> Iterator[None]:
    set_lang("id")
    yield
    set_lang(None)


def verdict(**overrides: object) -> Verdict:
    args: dict[str, object] = {
        "nib": NIB,
        "nik": NIK,
        "kecamatan_code": "53.02.01",
        "binaan": True,
        "products": [GOOD],
        "today": TODAY,
    }
    args.update(overrides)
    return evaluate(**args)  # type: ignore[arg-type]


def test_complete_business_is_eligible_with_one_reason_per_criterion() -> None:
    v = verdict()
    assert v.eligible and not v.failures and not v.warnings
    assert tuple(c.key for c in v.criteria) == CRITERIA
    assert all(c.status == OK and c.message for c in v.criteria)
    assert "Kota Soe" in v.criterion("domisili").message


@pytest.mark.parametrize(
    ("nib", "status"),
    [
        ("1234567890123", OK),
        (" 1234567890123 ", OK),
        ("", FAIL),
        ("123456789012", FAIL),  # 12 digits
        ("12345678901234", FAIL),  # 14 digits
        ("12345678901a3", FAIL),  # a letter
    ],
)
def test_nib_is_exactly_13_digits(nib: str, status: str) -> None:
    v = verdict(nib=nib)
    assert v.criterion("nib").status == status
    assert v.eligible is (status == OK)


@pytest.mark.parametrize(
    ("nik", "expected", "why"),
    [
        ("5302014107920001", OK, ""),
        ("5302010107920001", OK, ""),  # man, 01-07-1992
        ("5302012902000001", OK, ""),  # 29 Feb 2000 (leap year)
        ("5302016902000001", OK, ""),  # woman, 29 Feb 2000
        ("5302011012590001", OK, ""),  # 10-12-1959: 2059 is future, 1959 is not
        ("", FAIL, "belum diisi"),
        ("530201410792001", FAIL, "16 digit"),  # 15 digits
        ("53020141079200011", FAIL, "16 digit"),  # 17 digits
        ("5302O14107920001", FAIL, "angka"),  # letter O for zero
        ("5302013102920001", FAIL, "tanggal lahir"),  # 31 Feb
        ("5302017102920001", FAIL, "tanggal lahir"),  # woman, 31 Feb
        ("5302012902010001", FAIL, "tanggal lahir"),  # 29 Feb 1901/2001: not leap
        ("5302013207920001", FAIL, "tanggal lahir"),  # day 32
        ("5302013607920001", FAIL, "tanggal lahir"),  # day 36: neither man nor woman
        ("5302017207920001", FAIL, "tanggal lahir"),  # woman, day 32
        ("5302010013920001", FAIL, "tanggal lahir"),  # month 13
        ("5302010100920001", FAIL, "tanggal lahir"),  # month 00
        ("5302014107920000", FAIL, "0000"),  # serial 0000
    ],
)
def test_nik_rules(nik: str, expected: str, why: str) -> None:
    criterion = verdict(nik=nik).criterion("nik")
    assert criterion.status == expected, criterion.message
    assert why in criterion.message


def test_nik_birth_date_in_the_future_is_invalid() -> None:
    # 29-02-00 exists only in 2000 (1900 was not a leap year): future if "today" is 1999.
    assert nik_problem("5302012902000001", today=date(1999, 12, 31)) is not None
    assert nik_problem("5302012902000001", today=date(2000, 3, 1)) is None


def test_nik_from_another_regency_with_tts_address_is_a_warning_not_a_failure() -> None:
    v = verdict(nik="5304014107920001")  # BPS-style code, TTS address
    nik = v.criterion("nik")
    assert nik.status == WARNING
    assert "53.04" in nik.message and "petugas" in nik.message
    assert v.eligible  # warnings never block
    assert [c.key for c in v.warnings] == ["nik"]


def test_nik_and_address_both_outside_tts_fail_residency() -> None:
    v = verdict(nik="5304014107920001", kecamatan_code="53.01.01")
    assert v.criterion("nik").status == FAIL
    assert v.criterion("domisili").status == FAIL


@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        ("53.02.05", OK, "Amanuban Tengah"),
        ("530205", OK, "Amanuban Tengah"),
        ("5302.05", OK, "Amanuban Tengah"),
        ("53.02.32", OK, "Nunbena"),
        ("53.01.01", FAIL, "di luar Kabupaten TTS"),
        ("53.04.01", FAIL, "di luar Kabupaten TTS"),  # BPS code of TTS is not TTS here
        ("53.02.33", FAIL, "tidak ada dalam daftar"),
        ("53.02", FAIL, "tidak dikenali"),
        ("", FAIL, "belum diisi"),
    ],
)
def test_domicile_is_a_tts_kecamatan_of_the_kemendagri_list(
    code: str, status: str, text: str
) -> None:
    criterion = verdict(kecamatan_code=code).criterion("domisili")
    assert criterion.status == status
    assert text in criterion.message


def test_binaan_must_be_set_by_the_dinas() -> None:
    v = verdict(binaan=False)
    assert not v.eligible
    assert [c.key for c in v.failures] == ["binaan"]
    assert "binaan" in v.criterion("binaan").message


def test_no_products_fails() -> None:
    v = verdict(products=[])
    assert [c.key for c in v.failures] == ["produk"]
    assert "minimal satu produk" in v.criterion("produk").message


def test_incomplete_product_is_a_named_draft_not_a_failure() -> None:
    bare = ProductData(name="Tenun Buna", category="kerajinan_tangan", price=350_000)
    v = verdict(products=[GOOD, bare])
    message = v.criterion("produk").message
    assert v.criterion("produk").status == OK and v.eligible
    assert "Draf" in message and "Tenun Buna (deskripsi, URL foto)" in message
    assert "Kopi Mollo" not in message  # the complete product is not blamed
    only_drafts = verdict(products=[bare])
    assert only_drafts.criterion("produk").status == FAIL
    assert "Tenun Buna (deskripsi, URL foto)" in only_drafts.criterion("produk").message


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"name": "  "}, "nama"),
        ({"category": "minuman"}, "kategori"),
        ({"category": None}, "kategori"),
        ({"description": ""}, "deskripsi"),
        ({"price": 0}, "harga"),
        ({"price": -5}, "harga"),
        ({"price": None}, "harga"),
        ({"image_url": None}, "URL foto"),
        ({"image_url": "foto kopi.jpg"}, "URL foto"),
        ({"image_url": "ftp://x.test/a.jpg"}, "URL foto"),
    ],
)
def test_product_problems_names_each_missing_field(change: dict[str, object], missing: str) -> None:
    product = replace(GOOD, **change)  # type: ignore[arg-type]
    problems = product_problems(product)
    assert len(problems) == 1 and missing in problems[0]
    assert verdict(products=[product]).criterion("produk").status == FAIL


def test_unnamed_product_is_identified_by_position() -> None:
    message = verdict(products=[replace(GOOD, price=0), replace(GOOD, name="")]
                      ).criterion("produk").message
    assert "produk ke-2 (nama)" in message and "Kopi Mollo (harga" in message


def test_site_relative_photo_path_is_accepted() -> None:
    assert product_problems(replace(GOOD, image_url="/media/produk/1.jpg")) == []


def test_verdict_lists_every_failure_at_once() -> None:
    v = verdict(nib="12", kecamatan_code="53.01.01", binaan=False, products=[])
    assert {c.key for c in v.failures} == {"nib", "domisili", "binaan", "produk"}
    assert len(v.criteria) == 5


@pytest.mark.parametrize("nik", [NIK, "5302013102920001", "5302O14107920001", "5304014107920001"])
def test_verdict_dict_is_json_and_never_contains_the_nik(nik: str) -> None:
    data = verdict(nik=nik, nib=nik).as_dict()  # even a NIK typed into the NIB field
    text = json.dumps(data)
    assert nik not in text
    assert nik[6:12] not in text  # nor the birth date it encodes
    assert Verdict.from_dict(data) == verdict(nik=nik, nib=nik)


def test_english_messages() -> None:
    set_lang("en")
    v = verdict(binaan=False, products=[replace(GOOD, description=None)])
    assert "Not yet designated" in v.criterion("binaan").message
    assert "description" in v.criterion("produk").message
    assert "Located in Kecamatan Kota Soe" in v.criterion("domisili").message


# --- the Kemendagri table --------------------------------------------------------------


@pytest.mark.parametrize("code", ["53.02.05", "530205", "5302.05", " 53.02.05 "])
def test_normalize_kecamatan_accepts_common_spellings(code: str) -> None:
    assert wilayah.normalize_kecamatan(code) == "53.02.05"
    assert wilayah.kecamatan_name(code) == "Amanuban Tengah"
    assert wilayah.is_tts_kecamatan(code)


@pytest.mark.parametrize("code", ["53.2.5", "5302", "53.02.05.2001", "abc", ""])
def test_normalize_kecamatan_rejects_malformed_codes(code: str) -> None:
    assert wilayah.normalize_kecamatan(code) is None
    assert not wilayah.is_tts_kecamatan(code)


def test_outside_tts_is_well_formed_but_not_tts() -> None:
    assert wilayah.normalize_kecamatan("530101") == "53.01.01"
    assert not wilayah.is_tts_kecamatan("530101")
    assert wilayah.kecamatan_name("53.01.01") is None


def test_kecamatan_list_has_the_32_kecamatan_by_name_in_kemendagri_spelling() -> None:
    rows = wilayah.kecamatan_list()
    assert len(rows) == 32
    names = [name for _, name in rows]
    assert names == sorted(names, key=str.casefold)
    assert rows[0] == ("53.02.08", "Amanatun Selatan") and ("53.02.01", "Kota Soe") in rows
    assert "Ki'e" in names and "Kot'olin" in names and "KI'E" not in names


def test_desa_lookup_by_kecamatan() -> None:
    desa = wilayah.desa_list("530201")
    assert ("53.02.01.1001", "SoE") in desa
    assert all(code.startswith("53.02.01.") for code, _ in desa)
    assert wilayah.find_desa("53.02.01", "Kelurahan soe") == ("53.02.01.1001", "SoE")
    assert wilayah.find_desa("53.02.02", "SoE") is None  # not in that kecamatan
    assert wilayah.desa_name("53.02.01.1001") == "SoE"
    assert wilayah.find_kecamatan("amanuban tengah") == "53.02.05"
