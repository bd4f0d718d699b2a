"""The UMKM and kecamatan pages, their 404s, and PDF requests without Chromium (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.reporting import pdf
from tests.reporting.test_same_figures import PERIOD, build_known_history
from tests.web_helpers import World


def test_unknown_business_and_kecamatan_are_indonesian_404s(world: World) -> None:
    staff = world.client("staf")
    missing = staff.get("/dinas/usaha/987654")
    assert missing.status_code == 404 and "UMKM dengan ID 987654 tidak ditemukan" in missing.text
    nowhere = staff.get("/dinas/kecamatan/99.99.99")
    assert nowhere.status_code == 404
    assert "tidak ada di Kabupaten Timor Tengah Selatan" in nowhere.text
    owner = world.client("pemilik-a")
    assert owner.get(f"/dinas/usaha/{world.ids['business_a']}").status_code == 403


def test_report_tables_link_to_the_business_and_kecamatan_pages(world: World) -> None:
    build_known_history(world)
    staff = world.client("staf")
    by_business = staff.get(f"/dinas/laporan?periode={PERIOD}&by=business").text
    assert f'href="/dinas/usaha/{world.ids["business_a"]}"' in by_business
    assert 'href="/dinas/kecamatan/53.02.01"' in by_business  # the map cells
    page = staff.get(f"/dinas/kecamatan/53.02.01?periode={PERIOD}").text
    assert "Kota Soe" in page and f'href="/dinas/usaha/{world.ids["business_a"]}"' in page
    assert "Madu Hutan B" not in page  # another kecamatan
    business = staff.get(f"/dinas/usaha/{world.ids['business_a']}?periode={PERIOD}").text
    assert 'data-chart="trend"' in business and "Promo Satu Angka" in business


def test_without_chromium_a_pdf_is_refused_in_indonesian(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf, "chromium_path", lambda: None)
    staff = world.client("staf")
    response = staff.get(f"/dinas/laporan/unduh?periode={PERIOD}&format=pdf")
    assert response.status_code == 503
    assert not response.content.startswith(b"%PDF")
    assert "application/pdf" not in response.headers["content-type"]
    assert "Chromium tidak ditemukan" in response.text

    from engine.cli.app import app

    out = tmp_path / "x.pdf"
    result = CliRunner().invoke(app, ["report", "--period", PERIOD, "--format", "pdf",
                                      "--out", str(out)])
    assert result.exit_code != 0 and "Chromium tidak ditemukan" in result.output
    assert not out.exists()


def test_web_report_styles_come_from_the_site_not_inline(world: World) -> None:
    """The CSP allows no inline <style>: the web pages link the report's stylesheet."""
    css = world.client().get("/aset/laporan.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".umkm-report table.map td.shade-5" in css.text
    page = world.client("staf").get(f"/dinas/laporan?periode={PERIOD}&by=kecamatan").text
    assert '<link rel="stylesheet" href="/aset/laporan.css">' in page
    assert "<style" not in page and 'class="shade-0"' in page
