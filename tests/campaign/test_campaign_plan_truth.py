"""Issue 19: ``umkm campaign plan`` says what launch and the beat will really do.

The next send comes from the cron AND the window (``0 9 1 * *`` read in WITA), the
counts per channel equal the rows launch makes (email, each social platform, WhatsApp),
and a product list longer than the screen ends in "... dan N lainnya" matching the count.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.campaign.loader import load_campaign
from engine.cli.app import app
from engine.common.formatting import WITA
from engine.config import Settings
from engine.db import session_factory
from engine.delivery import scheduler
from engine.models import Campaign, CampaignRun, Delivery
from tests.factories import (
    NOW,
    make_business,
    make_customer,
    make_optin,
    make_order,
    make_product,
)

REPO = Path(__file__).resolve().parents[2]
NEWSLETTER = REPO / "campaigns" / "newsletter-bulanan.yaml"
PROMO = REPO / "campaigns" / "promo-tenun-akhir-tahun-2026.yaml"
PROMO_ID = "promo-tenun-akhir-tahun-2026"
PRODUCTS = 16


def wita(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WITA).astimezone(UTC)


def _customers(db: Session, n: int = 5) -> None:
    shop = make_business(db, name="Tenun Nunkolo")
    kain = make_product(db, shop, name="Kain Pembeli", price=100_000)
    for _ in range(n):
        customer = make_customer(db, marketing=True, at=NOW - timedelta(days=90))
        make_order(db, customer, [kain], at=NOW - timedelta(days=30))


def _promo_world(db: Session) -> None:
    """Five buyers of handicraft and 16 opted-in handicraft products of two shops."""
    _customers(db)
    shops = [make_business(db, name=f"Tenun {name}") for name in ("Boti", "Niki-Niki")]
    for n in range(PRODUCTS):
        product = make_product(db, shops[n % 2], name=f"Kain Tenun {n + 1:02d}",
                               price=50_000 + 1000 * n)
        make_optin(db, product, PROMO_ID)
    db.commit()


def test_newsletter_next_send_is_the_next_cron_occurrence_in_wita(db: Session) -> None:
    spec = load_campaign(NEWSLETTER)
    # 2 December 10.07 WITA: the 1 December occurrence is past (more than 12 h ago).
    assert scheduler.plan(db, spec, wita(2026, 12, 2, 10, 7)).first_send == wita(2027, 1, 1, 9)
    # Before start: the first occurrence at or after schedule.start.
    assert scheduler.plan(db, spec, wita(2025, 11, 20, 12)).first_send == wita(2026, 1, 1, 9)
    # At 07.00 WITA on the 1st the cron says 09.00, inside the 08.00-20.00 window.
    assert scheduler.plan(db, spec, wita(2026, 12, 1, 7)).first_send == wita(2026, 12, 1, 9)


def test_newsletter_occurrence_just_passed_goes_at_the_next_tick_unless_it_ran(
        db: Session) -> None:
    spec = load_campaign(NEWSLETTER)
    _customers(db)
    db.commit()
    at = wita(2026, 12, 1, 11)  # two hours after the occurrence: the beat still sends it
    report = scheduler.plan(db, spec, at)
    assert report.first_send == at
    scheduler.launch(db, spec, str(NEWSLETTER), now=at)
    created = scheduler.due_recurring(db, at)
    assert len(created) == 1
    made = db.scalar(select(func.count()).select_from(Delivery)
                     .where(Delivery.run_id == created[0]))
    assert report.channels == {"email": made} and made == 5
    assert scheduler.plan(db, spec, at).first_send == wita(2027, 1, 1, 9)


def test_promo_plan_counts_equal_the_rows_launch_makes_per_channel(db: Session) -> None:
    _promo_world(db)
    spec = load_campaign(PROMO)
    report = scheduler.plan(db, spec, NOW)
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0  # dry run rolled back
    assert db.scalar(select(func.count()).select_from(CampaignRun)) == 0
    assert len(report.products) == PRODUCTS
    launched = scheduler.launch(db, spec, str(PROMO), now=NOW)
    assert launched.run is not None
    made = Counter(db.scalars(select(Delivery.channel).where(
        Delivery.run_id == launched.run.id)))
    assert report.channels == dict(made)
    assert report.channels == {"email": 5, "facebook": PRODUCTS, "instagram": PRODUCTS,
                               "tiktok": 1, "whatsapp": 1}
    assert report.first_send == NOW


def test_cli_plan_lists_fifteen_products_and_the_rest_as_a_count(
        sqlite_settings: Settings) -> None:
    session = session_factory(sqlite_settings)()
    try:
        _promo_world(session)
    finally:
        session.close()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["campaign", "plan", str(PROMO)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Produk UMKM yang ikut ({PRODUCTS}):" in out
    listed = re.findall(r"^\s+• Kain Tenun \d\d — ", out, re.MULTILINE)
    assert len(listed) == 15
    assert f"... dan {PRODUCTS - 15} lainnya" in out
    assert (f"Per kanal: email: 5, facebook: {PRODUCTS}, instagram: {PRODUCTS}, "
            "tiktok: 1, whatsapp: 1") in out


def test_cli_plan_of_the_monthly_newsletter_names_the_first_of_the_month(
        sqlite_settings: Settings) -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["campaign", "plan",
                                                            str(NEWSLETTER)])
    assert result.exit_code == 0, result.output
    match = re.search(r"Kirim pertama: \w+, (\d+) \w+ \d{4} 09\.00 WITA", result.output)
    assert match and match.group(1) == "1", result.output
