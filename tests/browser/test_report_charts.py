"""The HTML report in a real browser: headless Chromium draws every chart offline.

The ``browser`` fixture (``tests/browser/conftest.py``) is the one Playwright session of
the whole test run: a second ``sync_playwright()`` in the same process fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from engine.db import session_scope
from engine.reporting.html import render_report_html
from engine.reporting.metrics import METRICS
from tests.reporting.test_reports import build_history


@pytest.fixture
def report_file(sqlite_settings: Settings, tmp_path: Path) -> Path:
    with session_scope() as session:
        build_history(session)
    with session_scope() as session:
        html = render_report_html(session, "2026-12", "business")
    path = tmp_path / "laporan-2026-12.html"
    path.write_text(html, encoding="utf-8")
    return path


def _bars(page: Any, chart: str, series: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.eval_on_selector_all(
        f'svg[data-chart="{chart}"] rect.bar[data-series="{series}"]',
        """els => els.map(e => { const b = e.getBBox();
             return {key: e.dataset.key, value: Number(e.dataset.value),
                     width: b.width, height: b.height}; })""")
    return result


def _texts(page: Any, chart: str, cls: str) -> list[str]:
    result: list[str] = page.eval_on_selector_all(
        f'svg[data-chart="{chart}"] text.{cls}', "els => els.map(e => e.textContent)")
    return result


def test_report_charts_render_offline_in_chromium(
    browser: Any, report_file: Path, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report_file.as_uri())
    screenshot = tmp_path / "laporan.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000
    assert requests == [report_file.as_uri()], "the report must not load anything else"

    # Trend: six months ending December, three series, December's bars drawn and labelled.
    months = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    for series, december in (("sent", 6), ("unique_opens", 2), ("unique_clicks", 1)):
        bars = _bars(page, "trend", series)
        assert [b["key"] for b in bars] == months
        assert bars[-1]["value"] == december and bars[-1]["height"] > 10
    november = _bars(page, "trend", "sent")[-2]
    assert november["value"] == 1 and 0 < november["height"] < 6 * 10
    assert "Des 2026" in _texts(page, "trend", "axis")
    assert _texts(page, "trend", "legend") == ["Terkirim", "Dibuka (unik)", "Klik email (unik)"]

    # Channel comparison: one bar per channel in each small chart, widths follow values.
    sent = {b["key"]: b for b in _bars(page, "channel-sent", "sent")}
    assert set(sent) == {"email", "facebook"}
    assert sent["email"]["width"] > 4 * sent["facebook"]["width"] > 0
    assert _texts(page, "channel-sent", "label") == ["5", "1"]
    reach = _bars(page, "channel-social_reach", "social_reach")
    assert [(b["key"], b["value"]) for b in reach] == [("email", 0), ("facebook", 200)]

    # Top businesses: ranked by attributed order value, with Rupiah data labels.
    assert _texts(page, "top-order_value", "axis")[0] == "Tenun Ina"
    assert "Rp 300.000" in _texts(page, "top-order_value", "label")
    assert len(_bars(page, "top-sent", "sent")) == 4

    # Map-like table: all 32 kecamatan, shaded by messages sent.
    cells = page.eval_on_selector_all(
        "td[data-kecamatan]",
        "els => els.map(e => [e.dataset.kecamatan, Number(e.dataset.value),"
        " getComputedStyle(e).backgroundColor])")
    assert len(cells) == 32
    shade = {code: (value, color) for code, value, color in cells}
    assert shade["53.02.01"] == (4, "rgb(31, 95, 139)")
    assert shade["53.02.20"] == (0, "rgb(247, 250, 252)")

    # Every metric definition is printed in the report itself.
    definitions = page.eval_on_selector_all("dl.defs dd", "els => els.map(e => e.textContent)")
    assert definitions == [m.definition("id") for m in METRICS.values()]
    page.close()


def test_report_prints_to_pdf(browser: Any, report_file: Path, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(report_file.as_uri())
    page.emulate_media(media="print")
    pdf = tmp_path / "laporan.pdf"
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 2
    page.close()
