"""Issue 17 (reports): after ``umkm demo`` the WhatsApp row has clicks from the tracked
share-kit links, and the social sandbox's invented figures are marked as simulated in
every output and never counted in totals or Pasal 15 indicators."""

from __future__ import annotations

import csv
import io

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from channels.metrics import MetricType
from channels.sandbox import fake_counts
from engine.cli.app import app
from engine.common.formatting import WITA
from engine.config import Settings
from engine.db import session_factory
from engine.demo.whatsapp_clicks import simulate_share_kit_clicks
from engine.models import Delivery, DeliveryProduct, EngagementEvent, SocialPost, aware
from engine.reporting.build import build_report, programme_indicators
from engine.reporting.csv_export import report_csv
from engine.reporting.html import render_report_html
from engine.social.metrics import poll_metrics
from engine.social.plan import SHARE_KIT_RECIPIENT


def test_sandbox_reach_never_exceeds_views() -> None:
    for n in range(300):
        counts = fake_counts(f"sandbox-tiktok-{n}")
        assert counts[MetricType.REACH] <= counts[MetricType.VIEW]


def test_demo_report_by_channel_has_whatsapp_clicks_and_marked_simulations(
        sqlite_settings: Settings) -> None:
    runner = CliRunner()
    demo = runner.invoke(app, ["demo"])
    assert demo.exit_code == 0, demo.output
    assert poll_metrics(sqlite_settings) > 0  # the beat's metrics tick on sandbox posts
    with session_factory(sqlite_settings)() as db:
        kit = db.scalars(select(SocialPost).where(SocialPost.platform == "whatsapp")).first()
        assert kit is not None and kit.published_at is not None
        period = aware(kit.published_at).astimezone(WITA).strftime("%Y-%m")  # type: ignore[union-attr]
        clicks = db.scalars(select(EngagementEvent).where(
            EngagementEvent.type == "click", EngagementEvent.channel == "whatsapp")).all()
        assert clicks and all(c.raw.get("demo") for c in clicks)
        assert all(c.business_id is not None and not c.suspected_bot for c in clicks)
        assert simulate_share_kit_clicks(db) == 0  # a second demo run adds none

        report = build_report(db, period, "channel")
        whatsapp = report.row("whatsapp")
        assert whatsapp is not None and whatsapp.values["whatsapp_clicks"] == len(clicks)
        assert whatsapp.values["unique_clicks"] == 0  # email clicks only
        simulated = {r.key: r for r in report.simulated}
        assert "facebook" in simulated and (simulated["facebook"].values["social_views"] or 0) > 0
        real_posts = db.scalar(select(func.count()).select_from(SocialPost).where(
            SocialPost.platform == "whatsapp", SocialPost.provider_post_id.is_not(None)))
        assert report.totals["social_posts"] == real_posts  # sandbox posts never in totals
        assert report.totals["social_views"] == 0
        facebook = report.row("facebook")
        assert facebook is None or facebook.values["social_posts"] == 0
        for row in report.simulated:
            assert (row.values["social_reach"] or 0) <= (row.values["social_views"] or 0)

        # Pasal 15 "digitally active": a UMKM only in sandbox posts does not count.
        by_business = build_report(db, period, "business")
        assert by_business.simulated

        rows = list(csv.reader(io.StringIO(report_csv(report).decode("utf-8-sig"))))
        assert rows[0][-1] == "Simulasi"
        marked = [r for r in rows[1:] if r[-1] == "ya"]
        assert {r[0] for r in marked} == {str(k) for k in simulated}
        html = render_report_html(db, period, "channel")
        assert 'data-simulated="1"' in html and "(simulasi)" in html
        # Pasal 15 "digitally active": sandbox posts and messages make no UMKM active.
        active = programme_indicators(db, period).totals["businesses_active"]
        assert active == _active_without_sandbox(db, period)

    table = runner.invoke(app, ["report", "--period", period, "--by", "channel"])
    assert table.exit_code == 0, table.output
    assert "Facebook (simulasi)" in table.output
    assert "tidak dihitung dalam total" in table.output
    clicks_table = table.output.split("Klik WhatsApp")[1].split("Total")[0]
    [whatsapp_line] = [line.split() for line in clicks_table.splitlines()
                       if line.strip().startswith("WhatsApp") and "simulasi" not in line]
    assert int(whatsapp_line[1]) > 0, table.output  # the first column: Klik WhatsApp


def _active_without_sandbox(db: Session, period: str) -> int:
    """The same count with every sandbox post and message removed from the database."""
    sandbox = [d for (d,) in db.execute(select(Delivery.id).where(
        Delivery.provider_id.like("sandbox-%"), Delivery.channel != "email",
        Delivery.recipient != SHARE_KIT_RECIPIENT))]
    posts = select(SocialPost.id).where(SocialPost.delivery_id.in_(sandbox))
    db.execute(delete(EngagementEvent).where(EngagementEvent.post_id.in_(posts)))
    db.execute(delete(EngagementEvent).where(EngagementEvent.delivery_id.in_(sandbox)))
    db.execute(delete(SocialPost).where(SocialPost.delivery_id.in_(sandbox)))
    db.execute(delete(DeliveryProduct).where(DeliveryProduct.delivery_id.in_(sandbox)))
    db.execute(delete(Delivery).where(Delivery.id.in_(sandbox)))
    db.flush()
    count = programme_indicators(db, period).totals["businesses_active"]
    db.rollback()
    return count
