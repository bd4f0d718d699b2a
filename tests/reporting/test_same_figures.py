"""Issue 19 acceptance: one known history, the same figures on every surface.

The history (December 2026, one UMKM "Tenun Ina A" in Kota Soe, one campaign):

- four emails carrying its product, sent at NOW: one hard-bounced, two opened (one of
  them twice), one clicked twice by a person and one clicked by a mail scanner;
- a Facebook post of the product whose platform snapshots say 5 then 9 clicks (the latest
  counts), 1.200 views and 1.000 reached accounts;
- three WhatsApp clicks on share-kit links (and one by WhatsApp's link-preview bot);
- two WhatsApp order-button presses (leads);
- one order of Rp 1.250.000 the day after the email click (attributed).

Every surface must show: sent 5, unique opens 2, email clicks 1, CTR 33,3 % (1 of 3
delivered emails), social clicks 9, WhatsApp clicks 3, leads 2, orders 1, Rp 1.250.000;
the dashboard's run row, the campaign (run) page, the owner portal, the web report, the
UMKM and kecamatan pages, the CLI table, the CSV, the HTML file and the PDF's text.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.models import DeliveryProduct, EngagementEvent, SocialPost, TrackedLink
from engine.reporting.build import build_report
from engine.reporting.metrics import format_metric, metric_label
from tests.factories import (
    NOW,
    make_campaign,
    make_customer,
    make_delivery,
    make_event,
    make_order,
    make_run,
)
from tests.web_helpers import World

PERIOD = "2026-12"
CAMPAIGN = "Promo Satu Angka"
EXPECTED = {"sent": "5", "unique_opens": "2", "unique_clicks": "1", "ctr": "33,3%",
            "social_clicks": "9", "social_views": "1.200", "social_reach": "1.000",
            "whatsapp_clicks": "3", "leads": "2", "orders": "1",
            "order_value": "Rp 1.250.000"}
RUN_KEYS = ("sent", "unique_opens", "unique_clicks", "social_clicks", "whatsapp_clicks",
            "leads")
RAW = {"sent": "5", "unique_opens": "2", "unique_clicks": "1", "ctr": "33.33",
       "social_clicks": "9", "social_views": "1200", "social_reach": "1000",
       "whatsapp_clicks": "3", "leads": "2", "orders": "1", "order_value": "1250000"}


def build_known_history(world: World) -> dict[str, int]:
    a, product_id = world.ids["business_a"], world.ids["product_a"]
    with world.session() as s:
        campaign = make_campaign(s, key="promo-satu-angka", name=CAMPAIGN)
        run = make_run(s, campaign, status="finished")
        link = TrackedLink(run_id=run.id, url="https://umkm.ttskab.go.id/produk/1",
                           url_hash="satu", product_id=product_id, business_id=a)
        s.add(link)
        s.flush()
        customers = [make_customer(s) for _ in range(4)]
        emails = []
        for customer in customers:
            delivery = make_delivery(s, run, customer, at=NOW)
            s.add(DeliveryProduct(delivery_id=delivery.id, product_id=product_id,
                                  business_id=a))
            emails.append(delivery)
        s.flush()
        make_event(s, customers[3], type="hard_bounce", delivery_id=emails[3].id)
        for i, minutes in ((0, 5), (0, 9), (1, 7)):
            make_event(s, customers[i], type="open", delivery_id=emails[i].id, run_id=run.id,
                       at=NOW + timedelta(minutes=minutes))
        for minutes in (60, 61):
            make_event(s, customers[0], type="click", delivery_id=emails[0].id, run_id=run.id,
                       business_id=a, product_id=product_id, link_id=link.id,
                       at=NOW + timedelta(minutes=minutes))
        make_event(s, customers[2], type="click", delivery_id=emails[2].id, run_id=run.id,
                   business_id=a, link_id=link.id, suspected_bot=True,
                   at=NOW + timedelta(seconds=2))

        post_delivery = make_delivery(s, run, customers[0], channel="facebook", at=NOW)
        s.add(DeliveryProduct(delivery_id=post_delivery.id, product_id=product_id,
                              business_id=a))
        post = SocialPost(delivery_id=post_delivery.id, platform="facebook", business_id=a,
                          product_id=product_id, status="published", published_at=NOW)
        s.add(post)
        s.flush()
        for kind, value, hours in (("click", 5, 2), ("click", 9, 5), ("view", 1200, 5),
                                   ("reach", 1000, 5)):
            s.add(EngagementEvent(type=kind, channel="facebook", post_id=post.id,
                                  delivery_id=post_delivery.id, run_id=run.id,
                                  value=float(value), occurred_at=NOW + timedelta(hours=hours)))

        visitor = make_customer(s)
        for n, bot in ((0, False), (1, False), (2, False), (3, True)):
            make_event(s, visitor, type="click", channel="whatsapp", run_id=run.id,
                       business_id=a, product_id=product_id, suspected_bot=bot,
                       at=NOW + timedelta(hours=3, minutes=n))
        for n in range(2):
            make_event(s, visitor, type="lead", channel="web", run_id=run.id, business_id=a,
                       product_id=product_id, at=NOW + timedelta(hours=4, minutes=n))
        from engine.models import Product

        product = s.get(Product, product_id)
        assert product is not None
        make_order(s, customers[0], [product], at=NOW + timedelta(days=1), total=1_250_000)
        s.commit()
        return {"campaign": campaign.id, "run": run.id}


# --- reading each surface ------------------------------------------------------------------


def _span_figures(page: str, run_id: int) -> dict[str, str]:
    row = re.search(rf'<tr data-run="{run_id}">(.*?)</tr>', page, re.S)
    assert row is not None, page[:2000]
    return dict(re.findall(r'<span data-event="(\w+)">([^<]*)</span>', row.group(1)))


def _metric_cells(html: str, key: object, *, scope: str = "") -> dict[str, str]:
    """``data-metric`` cells of the row ``data-key=key`` (UMKM, kecamatan, portal tables)."""
    part = html.split(scope, 1)[1] if scope else html
    row = re.search(rf'<tr data-key="{key}">(.*?)</tr>', part, re.S)
    assert row is not None, part[:2000]
    return dict(re.findall(r'<td data-metric="(\w+)">([^<]*)</td>', row.group(1)))


def _report_cells(html: str, key: object) -> dict[str, str]:
    """Every section table of the report (document or web page): header label -> cell."""
    found: dict[str, str] = {}
    for table in re.findall(r'<table class="details" data-section="\w+">(.*?)</table>', html,
                            re.S):
        heads = re.findall(r"<th[^>]*>([^<]*)</th>", table)[1:]
        row = re.search(rf'<tr data-key="{key}">(.*?)</tr>', table, re.S)
        assert row is not None
        cells = re.findall(r"<td>(?:<a [^>]*>)?([^<]*)(?:</a>)?</td>", row.group(1))[1:]
        found.update(zip(heads, cells, strict=True))
    return found


def _by_label(found: dict[str, str], keys: dict[str, str]) -> dict[str, str]:
    """``found`` is keyed by column heading; read it back by metric key."""
    return {k: found[metric_label(k)] for k in keys}


def _cli(args: list[str]) -> str:
    from engine.cli.app import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _cli_table_figures(output: str) -> dict[str, str]:
    """Header label -> value of the campaign's row, over every Rich table printed."""
    found: dict[str, str] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(CAMPAIGN):
            header = next(h for h in reversed(lines[:i]) if h.strip() and "─" not in h
                          and not h.strip().startswith(CAMPAIGN))
            heads = re.split(r"\s{2,}", header.strip())[1:]
            cells = re.split(r"\s{2,}", line.strip())[1:]
            found.update(zip(heads, cells, strict=True))
    return found


# --- the test ------------------------------------------------------------------------------


def test_every_surface_shows_the_same_figures(world: World, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ids = build_known_history(world)
    with world.session() as db:  # the builder itself, the reference
        report = build_report(db, PERIOD, "campaign")
        row = report.row(ids["campaign"])
        assert row is not None
        assert {k: format_metric(k, row.values[k]) for k in EXPECTED} == EXPECTED
        assert {k: format_metric(k, report.totals[k]) for k in EXPECTED} == EXPECTED
    run_expected = {k: EXPECTED[k] for k in RUN_KEYS}

    staff = world.client("staf")
    home = staff.get("/dinas").text
    assert {k: v for k, v in _span_figures(home, ids["run"]).items() if k in RUN_KEYS} \
        == run_expected
    run_page = staff.get(f"/dinas/kampanye/{ids['campaign']}").text
    assert {k: v for k, v in _span_figures(run_page, ids["run"]).items() if k in RUN_KEYS} \
        == run_expected

    portal = world.client("pemilik-a").get("/portal/keterlibatan").text
    owner_keys = ("sent", "unique_opens", "unique_clicks", "social_clicks",
                  "whatsapp_clicks", "leads", "orders", "order_value")
    assert _metric_cells(portal, world.ids["product_a"]) == {k: EXPECTED[k] for k in owner_keys}
    assert _metric_cells(portal, ids["campaign"], scope='id="engagement-campaigns"') == {
        k: EXPECTED[k] for k in owner_keys}

    web_report = staff.get(f"/dinas/laporan?periode={PERIOD}&by=campaign").text
    web_cells = _report_cells(web_report, ids["campaign"])
    assert _by_label(web_cells, EXPECTED) == EXPECTED
    business_page = staff.get(f"/dinas/usaha/{world.ids['business_a']}?periode={PERIOD}").text
    cells = _metric_cells(business_page, ids["campaign"], scope='id="campaigns"')
    assert {k: cells[k] for k in EXPECTED if k in cells} == {
        k: v for k, v in EXPECTED.items() if k in cells}
    assert set(cells) >= {"unique_clicks", "social_clicks", "whatsapp_clicks", "leads"}
    assert _metric_cells(business_page, world.ids["product_a"], scope='id="products"')[
        "whatsapp_clicks"] == "3"
    kecamatan = staff.get(f"/dinas/kecamatan/53.02.01?periode={PERIOD}").text
    cells = _metric_cells(kecamatan, world.ids["business_a"])
    assert {k: cells[k] for k in EXPECTED if k in cells} == {
        k: v for k, v in EXPECTED.items() if k in cells}
    assert set(cells) >= {"unique_clicks", "social_clicks", "whatsapp_clicks", "leads"}

    monkeypatch.setenv("COLUMNS", "250")  # one line per table row
    table = _cli_table_figures(_cli(["report", "--period", PERIOD, "--by", "campaign"]))
    assert _by_label(table, EXPECTED) == EXPECTED

    csv_path, html_path, pdf_path = (tmp_path / f"laporan.{ext}" for ext in ("csv", "html",
                                                                            "pdf"))
    for fmt, path in (("csv", csv_path), ("html", html_path), ("pdf", pdf_path)):
        _cli(["report", "--period", PERIOD, "--by", "campaign", "--format", fmt,
              "--out", str(path)])
    rows = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"))))
    header, campaign_row = rows[0], next(r for r in rows if r[0] == str(ids["campaign"]))
    got = dict(zip(header, campaign_row, strict=True))
    got[metric_label("ctr")] = got.pop(f"{metric_label('ctr')} (%)")
    assert _by_label(got, RAW) == RAW

    document = html_path.read_text(encoding="utf-8")
    assert _report_cells(document, ids["campaign"]) == web_cells  # the web page = the file

    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF")
    text = _pdf_text(pdf_path)
    for value in ("33,3%", "1.200", "1.000", "Rp 1.250.000", CAMPAIGN):
        assert value in text, value
    for title in ("Tren bulanan", metric_label("whatsapp_clicks"), metric_label("unique_clicks"),
                  metric_label("social_clicks"), metric_label("leads")):
        assert title in text, title
    assert "Pemerintah Kabupaten Timor Tengah Selatan" in text
    assert "Dinas Koperasi dan UMKM" in text and re.search(r"Halaman 1 dari \d+", text)
    pages = _pdf_pages(pdf_path, tmp_path)
    assert pages and all(p.read_bytes().startswith(b"\x89PNG") for p in pages)

    web_pdf = staff.get(f"/dinas/laporan/unduh?periode={PERIOD}&by=campaign&format=pdf")
    assert web_pdf.status_code == 200 and web_pdf.content.startswith(b"%PDF")
    assert web_pdf.headers["content-type"] == "application/pdf"


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        subprocess.run(["bash", "scripts/ensure-system-deps.sh"], check=False,
                       capture_output=True, timeout=900)
        path = shutil.which(tool)
    assert path is not None, f"{tool} missing: bash scripts/ensure-system-deps.sh"
    return path


def _pdf_text(path: Path) -> str:
    done = subprocess.run([_poppler("pdftotext"), "-layout", str(path), "-"],
                          capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


def _pdf_pages(path: Path, tmp_path: Path) -> list[Path]:
    subprocess.run([_poppler("pdftoppm"), "-png", "-r", "40", str(path),
                    str(tmp_path / "seite")], check=True, capture_output=True, timeout=120)
    return sorted(tmp_path.glob("seite*.png"))
