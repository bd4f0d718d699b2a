"""Monitoring reports (Pasal 11, 15): a known history, every metric asserted exactly.

The history (period 2026-12, WITA; UTC times below):

- UMKM B1 Kota Soe, B2 Fatumnasi (registered in December), B3 Mollo Utara (not
  eligible), B4 Kota Soe, B5 Kot'olin (no activity), B6 (registered in 2027).
- Campaign "Promo Tenun" (run R1) and "Buletin" (run R2).
- D1 carries B1 (two products), B2 and B3: opened three times, one human click on a B1
  link, unsubscribed twice. D2 carries B1 and B4: only a scanner opened and clicked it.
  D3 (B1) soft- then hard-bounced. D4 (B2) soft-bounced twice. D5 (B1) failed.
  D6 was sent one second before the month began in WITA, D7 (R2, Delivery.business_id
  B3) exactly at the start: opened and reported as spam. D8 is a Facebook post of B1
  with metric snapshots.
- Orders of customer K1 around the click on a B1 link at 2026-12-02 10:00 UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.models import (
    Business,
    CampaignRun,
    Customer,
    Delivery,
    DeliveryProduct,
    EngagementEvent,
    Product,
    SocialPost,
    TrackedLink,
)
from engine.reporting.build import ReportRow, build_report, programme_indicators
from engine.reporting.metrics import (
    METRICS,
    METRICS_DOC_END,
    METRICS_DOC_START,
    metrics_markdown,
)
from engine.reporting.periods import ReportError, parse_period
from tests.factories import (
    make_business,
    make_campaign,
    make_customer,
    make_delivery,
    make_event,
    make_optin,
    make_order,
    make_product,
    make_run,
)

ROOT = Path(__file__).resolve().parents[2]


def utc(*args: int) -> datetime:
    make: Callable[..., datetime] = datetime  # mypy cannot spread ints before tzinfo=
    return make(*args, tzinfo=UTC)


MONTH_START = utc(2026, 11, 30, 16)  # 2026-12-01 00:00 WITA
CLICK_AT = utc(2026, 12, 2, 10)


@dataclass
class History:
    b1: Business
    b2: Business
    b3: Business
    b4: Business
    k1: Customer
    k2: Customer
    r1: CampaignRun
    r2: CampaignRun
    p1a: Product
    campaign1: int
    campaign2: int
    o1_total: int
    o2_total: int


def _carry(session: Session, delivery: Delivery, *products: Product) -> None:
    for position, product in enumerate(products):
        session.add(DeliveryProduct(delivery_id=delivery.id, product_id=product.id,
                                    business_id=product.business_id, position=position))
    session.flush()


def build_history(s: Session) -> History:
    b1 = make_business(s, name="Tenun Ina", kecamatan_code="53.02.01",
                       created_at=utc(2026, 6, 1))
    b2 = make_business(s, name="Madu Hutan", kecamatan_code="53.02.12",
                       created_at=utc(2026, 12, 5))
    b3 = make_business(s, name="Kopi Mollo", kecamatan_code="53.02.03", eligible=False,
                       created_at=utc(2026, 1, 10))
    b4 = make_business(s, name="Jagung Titi", kecamatan_code="53.02.01",
                       created_at=utc(2026, 3, 1))
    b5 = make_business(s, name="Sirih Pinang", kecamatan_code="53.02.20",
                       created_at=utc(2026, 2, 1))
    make_business(s, name="Baru 2027", kecamatan_code="53.02.01", created_at=utc(2027, 1, 5))
    p1a, p1b = make_product(s, b1), make_product(s, b1, price=300_000)
    p2, p3, p4 = make_product(s, b2), make_product(s, b3), make_product(s, b4)
    p5 = make_product(s, b5)
    make_optin(s, p1a, "promo")
    make_optin(s, p2, "promo", withdrawn_at=utc(2026, 12, 10))
    o3 = make_optin(s, p3, "promo")
    o3.opted_at = utc(2026, 11, 1)
    o5 = make_optin(s, p5, "promo")
    o5.opted_at = utc(2027, 1, 2)  # after the period: not opted in yet

    c1 = make_campaign(s, name="Promo Tenun")
    c2 = make_campaign(s, name="Buletin", type="newsletter")
    r1, r2 = make_run(s, c1), make_run(s, c2)
    k1, k2, k3, k4, k5 = (make_customer(s) for _ in range(5))
    at = utc(2026, 12, 1, 2)

    d1 = make_delivery(s, r1, k1, at=at)
    _carry(s, d1, p1a, p1b, p2, p3)
    link_b1 = TrackedLink(run_id=r1.id, url="https://umkm.ttskab.go.id/p/1", url_hash="h1",
                          product_id=p1a.id, business_id=b1.id)
    s.add(link_b1)
    s.flush()
    for minutes in (5, 10, 60):
        make_event(s, k1, type="open", delivery_id=d1.id, run_id=r1.id,
                   at=at + timedelta(minutes=minutes))
    make_event(s, k1, type="click", delivery_id=d1.id, run_id=r1.id, business_id=b1.id,
               product_id=p1a.id, link_id=link_b1.id, at=CLICK_AT)
    for minutes in (70, 71):
        make_event(s, k1, type="unsubscribe", delivery_id=d1.id, run_id=r1.id,
                   at=at + timedelta(minutes=minutes))

    d2 = make_delivery(s, r1, k2, at=at)
    _carry(s, d2, p1a, p4)
    make_event(s, k2, type="open", delivery_id=d2.id, suspected_bot=True,
               at=at + timedelta(seconds=1))
    make_event(s, k2, type="click", delivery_id=d2.id, business_id=b1.id, link_id=link_b1.id,
               suspected_bot=True, at=at + timedelta(seconds=2))

    d3 = make_delivery(s, r1, k3, at=at)
    _carry(s, d3, p1a)
    make_event(s, k3, type="soft_bounce", delivery_id=d3.id)
    make_event(s, k3, type="hard_bounce", delivery_id=d3.id)

    d4 = make_delivery(s, r1, k4, at=at)
    _carry(s, d4, p2)
    for _ in range(2):
        make_event(s, k4, type="soft_bounce", delivery_id=d4.id)

    d5 = make_delivery(s, r1, k5, status="failed", at=at)
    _carry(s, d5, p1a)

    make_delivery(s, r2, k1, at=MONTH_START - timedelta(seconds=1), business_id=b3.id)
    d7 = make_delivery(s, r2, k2, at=MONTH_START, business_id=b3.id)
    make_event(s, k2, type="open", delivery_id=d7.id)
    make_event(s, k2, type="complaint", delivery_id=d7.id)

    d8 = Delivery(run_id=r1.id, channel="facebook", recipient="page:dinas", status="sent",
                  sent_at=utc(2026, 12, 3), created_at=utc(2026, 12, 3))
    s.add(d8)
    s.flush()
    _carry(s, d8, p1b)
    post = SocialPost(delivery_id=d8.id, platform="facebook", business_id=b1.id,
                      product_id=p1b.id, status="published", published_at=utc(2026, 12, 3))
    s.add(post)
    s.flush()
    snapshots = [  # (type, value, day): the latest day wins, not the biggest or the sum
        ("view", 100, 4), ("view", 250, 6), ("view", 150, 5), ("reach", 80, 4),
        ("reach", 200, 6), ("reaction", 5, 4), ("reaction", 12, 6), ("comment", 3, 6),
        ("share", 1, 4), ("share", 2, 6), ("click", 7, 6), ("save", 0, 6),
    ]
    for kind, value, day in snapshots:
        s.add(EngagementEvent(type=kind, channel="facebook", post_id=post.id,
                              delivery_id=d8.id, run_id=r1.id, value=float(value),
                              occurred_at=utc(2026, 12, day)))

    make_event(s, k3, type="lead", run_id=r1.id, business_id=b1.id, at=utc(2026, 12, 10))
    make_event(s, k3, type="lead", run_id=r1.id, business_id=b2.id, suspected_bot=True,
               at=utc(2026, 12, 10))
    make_event(s, k3, type="lead", run_id=r1.id, business_id=b1.id, at=utc(2027, 1, 2))

    o1 = make_order(s, k1, [p1b], at=CLICK_AT + timedelta(days=7))  # exactly N days: in
    o2 = make_order(s, k1, [(p1a, 2)], at=CLICK_AT + timedelta(days=7, seconds=1))  # out
    make_order(s, k1, [p1a], at=CLICK_AT - timedelta(hours=1))  # before the click
    make_order(s, k1, [p2], at=CLICK_AT + timedelta(days=1))  # another UMKM
    make_order(s, k2, [p1a], at=at + timedelta(days=1))  # after a scanner's click only
    make_order(s, k1, [p1a], at=CLICK_AT + timedelta(days=2), status="cancelled")
    s.commit()
    return History(b1, b2, b3, b4, k1, k2, r1, r2, p1a, c1.id, c2.id, o1.total, o2.total)


ZERO_SOCIAL = {"social_posts": 0, "social_views": 0, "social_reach": 0,
               "social_reactions": 0, "social_comments": 0, "social_shares": 0,
               "social_clicks": 0, "social_saves": 0}
SOCIAL = {"social_posts": 1, "social_views": 250, "social_reach": 200,
          "social_reactions": 12, "social_comments": 3, "social_shares": 2,
          "social_clicks": 7, "social_saves": 0}


def expect(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "planned": 0, "sent": 0, "failed": 0, "delivered": 0, "bounced_hard": 0,
        "bounced_soft": 0, "unique_opens": 0, "unique_clicks": 0, "ctr": None,
        "unsubscribes": 0, "complaints": 0, **ZERO_SOCIAL, "whatsapp_clicks": 0, "leads": 0,
        "orders": 0,
        "order_value": 0,
    }
    base.update(values)
    assert set(base) == {k for k, m in METRICS.items() if m.section != "programme"}
    return base


@pytest.fixture
def history(db: Session) -> History:
    return build_history(db)


def test_totals_count_every_metric_exactly(db: Session, history: History) -> None:
    report = build_report(db, "2026-12", "campaign")
    assert report.totals == expect(
        planned=7, sent=6, failed=1, delivered=4, bounced_hard=1, bounced_soft=1,
        unique_opens=2, unique_clicks=1, ctr=pytest.approx(1 / 3), unsubscribes=1,
        complaints=1, **SOCIAL,
        leads=1, orders=1, order_value=history.o1_total,
    )


def test_by_campaign(db: Session, history: History) -> None:
    report = build_report(db, "2026-12", "campaign")
    assert [r.label for r in report.rows] == ["Buletin", "Promo Tenun"]
    assert report.row(history.campaign1).values == expect(  # type: ignore[union-attr]
        planned=6, sent=5, failed=1, delivered=3, bounced_hard=1, bounced_soft=1,
        unique_opens=1, unique_clicks=1, ctr=0.5, unsubscribes=1,
        **SOCIAL, leads=1, orders=1, order_value=history.o1_total,
    )
    assert report.row(history.campaign2).values == expect(  # type: ignore[union-attr]
        planned=1, sent=1, delivered=1, unique_opens=1, ctr=0.0, complaints=1,
    )


def test_by_channel_keeps_social_snapshots_out_of_email_clicks(
    db: Session, history: History
) -> None:
    report = build_report(db, "2026-12", "channel")
    assert [r.label for r in report.rows] == ["Email", "Facebook"]
    assert report.row("email").values == expect(  # type: ignore[union-attr]
        planned=6, sent=5, failed=1, delivered=3, bounced_hard=1, bounced_soft=1,
        unique_opens=2, unique_clicks=1, ctr=pytest.approx(1 / 3), unsubscribes=1,
        complaints=1, leads=1, orders=1, order_value=history.o1_total,
    )
    assert report.row("facebook").values == expect(  # type: ignore[union-attr]
        planned=1, sent=1, delivered=1, ctr=None, **SOCIAL,
    )


def test_by_business_counts_a_message_once_per_business_it_carried(
    db: Session, history: History
) -> None:
    report = build_report(db, "2026-12", "business")
    assert [r.label for r in report.rows] == ["Jagung Titi", "Kopi Mollo", "Madu Hutan",
                                              "Tenun Ina"]
    assert report.row(history.b1.id).values == expect(  # type: ignore[union-attr]
        planned=5, sent=4, failed=1, delivered=3, bounced_hard=1, unique_opens=1,
        unique_clicks=1, ctr=0.5, unsubscribes=1, **SOCIAL, leads=1,
        orders=1, order_value=history.o1_total,
    )
    assert report.row(history.b2.id).values == expect(  # type: ignore[union-attr]
        planned=2, sent=2, delivered=1, bounced_soft=1, unique_opens=1, unique_clicks=1,
        ctr=1.0, unsubscribes=1,
    )
    assert report.row(history.b3.id).values == expect(  # type: ignore[union-attr]
        planned=2, sent=2, delivered=2, unique_opens=2, unique_clicks=1, ctr=0.5,
        unsubscribes=1, complaints=1,
    )
    assert report.row(history.b4.id).values == expect(  # type: ignore[union-attr]
        planned=1, sent=1, delivered=1, ctr=0.0,
    )
    # The total counts D1 once although four business rows include it.
    assert sum(r.values["sent"] for r in report.rows) == 9  # type: ignore[misc]
    assert report.totals["sent"] == 6


def test_by_kecamatan_counts_a_message_once_per_kecamatan(
    db: Session, history: History
) -> None:
    report = build_report(db, "2026-12", "kecamatan")
    assert [(r.key, r.label) for r in report.rows] == [
        ("53.02.01", "Kota Soe"), ("53.02.03", "Mollo Utara"), ("53.02.12", "Fatumnasi")]
    # D2 carried B1 and B4, both in Kota Soe: one message, not two.
    kota_soe = report.row("53.02.01")
    assert kota_soe is not None
    assert kota_soe.values == expect(
        planned=5, sent=4, failed=1, delivered=3, bounced_hard=1, unique_opens=1,
        unique_clicks=1, ctr=0.5, unsubscribes=1, **SOCIAL, leads=1,
        orders=1, order_value=history.o1_total,
    )


def test_by_month_uses_wita_month_boundaries(db: Session, history: History) -> None:
    report = build_report(db, "2026-11..2026-12", "month")
    assert [r.key for r in report.rows] == ["2026-11", "2026-12"]
    november = report.row("2026-11")
    assert november is not None
    # D6 was sent at 23:59:59 WITA on 30 November; D7 one second later is December.
    assert november.values == expect(planned=1, sent=1, delivered=1, ctr=0.0)
    december = report.row("2026-12")
    assert december is not None
    assert december.values == build_report(db, "2026-12", "campaign").totals


def test_owner_restriction_shows_only_that_business(db: Session, history: History) -> None:
    report = build_report(db, "2026-12", "campaign", business_id=history.b2.id)
    assert [r.label for r in report.rows] == ["Promo Tenun"]
    mine = expect(planned=2, sent=2, delivered=1, bounced_soft=1, unique_opens=1,
                  unique_clicks=1, ctr=1.0, unsubscribes=1)
    assert report.rows[0].values == mine
    assert report.totals == mine
    by_business = build_report(db, "2026-12", "business", business_id=history.b2.id)
    assert [r.key for r in by_business.rows] == [history.b2.id]
    by_kecamatan = build_report(db, "2026-12", "kecamatan", business_id=history.b2.id)
    assert [r.key for r in by_kecamatan.rows] == ["53.02.12"]


def test_attribution_window_is_configurable_and_inclusive(
    db: Session, history: History
) -> None:
    # 8 days also catches the order placed 7 days and 1 second after the click.
    wider = build_report(db, "2026-12", "business", attribution_days=8)
    assert wider.totals["orders"] == 2
    assert wider.totals["order_value"] == history.o1_total + history.o2_total
    assert build_report(db, "2026-12", "business", attribution_days=0).totals["orders"] == 0


def test_an_order_goes_to_the_latest_click_once(db: Session) -> None:
    business = make_business(db, name="Tenun Boti")
    product = make_product(db, business, price=90_000)
    customer = make_customer(db)
    early, late = make_campaign(db, name="Awal"), make_campaign(db, name="Akhir")
    for campaign, day in ((early, 1), (late, 3)):
        run = make_run(db, campaign)
        make_event(db, customer, type="click", run_id=run.id, business_id=business.id,
                   at=utc(2026, 12, day, 3))
    make_order(db, customer, [product], at=utc(2026, 12, 4, 3))
    db.commit()
    report = build_report(db, "2026-12", "campaign")
    assert report.totals["orders"] == 1
    assert {r.label: r.values["orders"] for r in report.rows} == {"Akhir": 1}
    assert report.row(late.id).values["order_value"] == 90_000  # type: ignore[union-attr]


def test_programme_indicators(db: Session, history: History) -> None:
    indicators = programme_indicators(db, "2026-12")
    assert indicators.totals == {
        "businesses_registered": 5, "businesses_new": 1, "businesses_eligible": 4,
        "businesses_opted_in": 2, "businesses_active": 4,
    }
    assert indicators.by_kecamatan["53.02.01"] == {
        "businesses_registered": 2, "businesses_new": 0, "businesses_eligible": 2,
        "businesses_opted_in": 1, "businesses_active": 2,
    }
    assert indicators.by_kecamatan["53.02.20"]["businesses_active"] == 0
    november = programme_indicators(db, "2026-11")
    assert november.totals["businesses_registered"] == 4
    assert november.totals["businesses_active"] == 1  # only B3, through D6


def test_empty_database_gives_zero_rows_and_no_ctr(db: Session) -> None:
    report = build_report(db, "2026", "business")
    assert report.rows == []
    assert report.totals == expect()


@pytest.mark.parametrize(
    ("text", "start", "end", "months"),
    [
        ("2026-12", utc(2026, 11, 30, 16), utc(2026, 12, 31, 16), 1),
        ("2026", utc(2025, 12, 31, 16), utc(2026, 12, 31, 16), 12),
        ("2026-10..2026-12", utc(2026, 9, 30, 16), utc(2026, 12, 31, 16), 3),
    ],
)
def test_periods_are_wita_calendar_months(
    text: str, start: datetime, end: datetime, months: int
) -> None:
    period = parse_period(text)
    assert (period.start, period.end, len(period.months)) == (start, end, months)


@pytest.mark.parametrize("text", ["2026-13", "desember", "2026-12..2026-10", "26-1", ""])
def test_bad_periods_are_rejected_with_a_message(text: str) -> None:
    with pytest.raises(ReportError, match=r"2026-10\.\.2026-12|bulan awal"):
        parse_period(text)


def test_docs_metrics_md_matches_the_definitions() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    generated = text.split(METRICS_DOC_START, 1)[1].split(METRICS_DOC_END, 1)[0]
    assert generated.strip() == metrics_markdown().strip()


# --- CLI --------------------------------------------------------------------------------


def _cli(args: list[str]) -> tuple[int, str]:
    from engine.cli.app import app

    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_cli_csv_with_bom_and_indonesian_decimal_comma(
    sqlite_settings: object, tmp_path: Path
) -> None:
    from engine.db import session_scope

    with session_scope() as session:
        history = build_history(session)
        b1_id = history.b1.id
    out = tmp_path / "laporan.csv"
    code, output = _cli(["report", "--period", "2026-12", "--by", "business", "--format",
                         "csv", "--out", str(out), "--decimal-comma"])
    assert code == 0, output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    header = lines[0].split(";")
    assert header[:2] == ["ID", "UMKM"]
    tenun = next(line.split(";") for line in lines if "Tenun Ina" in line)
    assert tenun[0] == str(b1_id)
    assert tenun[header.index("CTR (%)")] == "50,00"
    assert tenun[header.index("Nilai pesanan")] == str(history.o1_total)
    assert lines[-1].split(";")[1] == "Total"


def test_cli_table_html_and_errors(sqlite_settings: object, tmp_path: Path) -> None:
    from engine.db import session_scope

    with session_scope() as session:
        build_history(session)
    code, output = _cli(["report", "--period", "2026-12", "--by", "channel"])
    assert code == 0, output
    assert "Facebook" in output and "Terkirim" in output and "33,3%" in output
    html = tmp_path / "laporan.html"
    code, output = _cli(["report", "--period", "2026-12", "--by", "kecamatan", "--format",
                         "html", "--out", str(html)])
    assert code == 0, output
    assert "<svg" in html.read_text(encoding="utf-8")
    code, output = _cli(["report", "--period", "2026-13"])
    assert code == 1
    assert "2026-10..2026-12" in output and "Traceback" not in output
    code, output = _cli(["report", "--period", "2026-12", "--by", "desa"])
    assert code == 1 and "kecamatan" in output


def test_a_post_the_platform_never_confirmed_is_not_counted(db: Session) -> None:
    """Adapters create the post row at the first attempt (retry marker, Instagram
    container id); a throttled or unfinished attempt is not a published post."""
    campaign = make_campaign(db)
    run = make_run(db, campaign)
    business = make_business(db)
    for status, published in (("published", utc(2026, 12, 3)), ("pending", None)):
        delivery = Delivery(run_id=run.id, channel="instagram", recipient=f"ig:{status}",
                            status="sent" if published else "pending",
                            sent_at=published, created_at=utc(2026, 12, 3))
        db.add(delivery)
        db.flush()
        db.add(SocialPost(delivery_id=delivery.id, platform="instagram",
                          business_id=business.id, status=status, published_at=published,
                          container_id=f"c-{status}",
                          provider_post_id="1790" if published else None))
    db.commit()

    report = build_report(db, "2026-12", "channel")

    assert cast(ReportRow, report.row("instagram")).values["social_posts"] == 1
