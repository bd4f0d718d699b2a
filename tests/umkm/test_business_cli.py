"""``umkm business|product|optin`` through Typer's CliRunner on the embedded SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from engine.cli.app import app
from engine.common.i18n import set_lang
from engine.config import Settings, reset_settings
from engine.db import dispose_engines

NIK = "5302014107920001"
MASKED = "5302**********01"
NIB = "1234567890123"

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(autouse=True)
def reset_language() -> Iterator[None]:
    """``--lang en`` sets a context variable; never let it leak into other tests."""
    yield
    set_lang(None)


def umkm(*args: str, input: str | None = None) -> Result:
    result = runner.invoke(app, list(args), input=input)
    assert NIK not in result.output, "a full NIK was printed"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def add_business(*extra: str, nik: str = NIK, nib: str = NIB) -> Result:
    return umkm(
        "business", "add", "--name", "Tenun Ikat Mollo", "--nib", nib, "--owner", "Yohana Tefa",
        "--nik", nik, "--kecamatan", "53.02.03", *extra,
    )


def add_product(business: str = "1", *extra: str) -> Result:
    return umkm(
        "product", "add", "--business", business, "--name", "Selendang tenun",
        "--category", "kerajinan_tangan", "--price", "Rp 350.000",
        "--description", "Tenun ikat motif Mollo", "--photo", "https://x.test/s.jpg",
        "--sku", "TEN-01", *extra,
    )


def test_add_list_show_mask_the_nik(sqlite_settings: Settings) -> None:
    added = add_business("--binaan")
    assert added.exit_code == 0, added.output
    assert "UMKM #1 Tenun Ikat Mollo terdaftar" in added.output
    assert "Belum ada produk" in added.output  # the verdict explains what is missing

    listed = umkm("business", "list")
    assert listed.exit_code == 0
    assert MASKED in listed.output and "Mollo Utara" in listed.output and NIB in listed.output

    shown = umkm("business", "show", NIB)
    assert shown.exit_code == 0
    assert MASKED in shown.output
    for label in ("NIB (huruf a)", "NIK penduduk", "Domisili", "Binaan Dinas", "Informasi produk"):
        assert label in shown.output


def test_nik_prompt_is_hidden(sqlite_settings: Settings) -> None:
    result = umkm(
        "business", "add", "--name", "Madu Hutan", "--nib", NIB, "--owner", "Ama",
        "--kecamatan", "Amanuban Tengah", input=NIK + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "NIK pemilik (16 digit)" in result.output
    assert "Amanuban Tengah" in umkm("business", "list").output


def test_english_output(sqlite_settings: Settings) -> None:
    add_business()
    result = umkm("--lang", "en", "business", "show", "1")
    assert result.exit_code == 0
    assert "Not eligible" in result.output
    assert "Not yet designated as a Dinas-supervised" in result.output
    assert "Belum" not in result.output


@pytest.mark.parametrize(
    ("nik", "message"),
    [
        ("5302013102920001", "bukan tanggal lahir yang valid"),  # 31 Feb
        ("5302A14107920001", "hanya boleh berisi angka"),
        ("530201410792", "harus tepat 16 digit"),
    ],
)
def test_bad_nik_is_a_clear_error(sqlite_settings: Settings, nik: str, message: str) -> None:
    result = add_business(nik=nik)
    assert result.exit_code == 1
    assert message in result.output
    assert nik not in result.output
    assert "Belum ada UMKM" in umkm("business", "list").output


def test_duplicate_nib_and_unknown_references(sqlite_settings: Settings) -> None:
    add_business()
    dup = add_business(nik="5302010107920001")
    assert dup.exit_code == 1 and "sudah terdaftar" in dup.output
    missing = umkm("business", "show", "42")
    assert missing.exit_code == 1 and "tidak ditemukan" in missing.output
    price = add_product("1", "--price", "dua ribu")
    assert price.exit_code == 1 and "bukan jumlah Rupiah" in price.output


def test_check_exit_code_follows_the_verdict(sqlite_settings: Settings) -> None:
    add_business()
    add_product()
    not_yet = umkm("business", "check", "1")
    assert not_yet.exit_code == 1
    assert "Belum ditetapkan sebagai UMKM binaan" in not_yet.output

    staff = umkm("business", "binaan", "1", "--ya")
    assert staff.exit_code == 0 and "ditandai sebagai binaan" in staff.output
    ok = umkm("business", "check", "1")
    assert ok.exit_code == 0 and "Layak menerima" in ok.output

    every = umkm("business", "check", "--all")
    assert every.exit_code == 0 and "1 dari 1 UMKM layak" in every.output
    assert umkm("business", "check").exit_code == 1


def test_products_are_listed_in_rupiah(sqlite_settings: Settings) -> None:
    add_business("--binaan")
    added = add_product("1", "--cert", "pirt")
    assert added.exit_code == 0, added.output
    listed = umkm("product", "list", "--business", NIB)
    assert "Rp 350.000" in listed.output and "Kerajinan tangan" in listed.output
    bad = umkm(
        "product", "add", "--business", "1", "--name", "Kopi", "--category", "minuman",
        "--price", "1000",
    )
    assert bad.exit_code == 1 and "makanan_olahan atau kerajinan_tangan" in bad.output


def test_optin_requires_eligibility_and_can_be_withdrawn(sqlite_settings: Settings) -> None:
    add_business()
    add_product()
    refused = umkm("optin", "TEN-01", "ramadan-2026")
    assert refused.exit_code == 1
    assert "tidak dapat diikutkan" in refused.output and "binaan" in refused.output

    umkm("business", "binaan", "1", "--ya")
    accepted = umkm("optin", "TEN-01", "ramadan-2026")
    assert accepted.exit_code == 0 and "diikutkan ke kampanye ramadan-2026" in accepted.output
    assert umkm("optin", "1", "ramadan-2026").exit_code == 0  # idempotent
    withdrawn = umkm("optin", "1", "ramadan-2026", "--withdraw")
    assert withdrawn.exit_code == 0 and "ditarik" in withdrawn.output
    tagged = umkm("optin", "1", "tenun", "--tag")
    assert "semua kampanye bertag tenun" in tagged.output


def test_missing_database_is_created_on_first_use(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = tmp_path / "fresh" / "umkm.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{fresh}")
    reset_settings()
    dispose_engines()
    result = umkm("business", "list")
    assert result.exit_code == 0, result.output
    assert "Belum ada UMKM" in result.output
    assert fresh.exists()

