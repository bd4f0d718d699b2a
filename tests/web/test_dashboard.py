"""The Dinas dashboard: staff only, live run progress, pause/resume, verification queue,
share kits, social account health and reports."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.common import crypto
from engine.models import (
    AuditLog,
    Business,
    CampaignRun,
    EngagementEvent,
    RunStatus,
    SocialAccount,
    Verification,
    utcnow,
)
from engine.umkm import businesses
from tests.factories import make_campaign, make_customer, make_delivery, make_run
from tests.web_helpers import (
    World,
    csrf,
    make_eligible_business,
    world_fixture,  # noqa: F401 - the "world" fixture
)

STAFF_GETS = ["/dinas", "/dinas/progress.json", "/dinas/verifikasi", "/dinas/akun-sosial",
              "/dinas/laporan", "/dinas/kampanye/1"]
STAFF_POSTS = ["/dinas/run/1/jeda", "/dinas/run/1/lanjut", "/dinas/usaha/1/verifikasi"]


def _campaign_with_run(world: World, status: RunStatus = RunStatus.running) -> dict[str, int]:
    """A run with 3 sent, 1 failed and 2 pending deliveries, and some engagement."""
    with world.session() as session:
        campaign = make_campaign(session, key="promo-tenun", name="Promo Tenun Desember")
        run = make_run(session, campaign, status=status, planned=6)
        deliveries = []
        for state in ("sent", "sent", "sent", "failed", "pending", "pending"):
            error = "550 mailbox tidak ada" if state == "failed" else None
            deliveries.append(make_delivery(session, run, make_customer(session), status=state,
                                            error=error))
        for kind in ("open", "open", "click", "lead"):
            session.add(EngagementEvent(type=kind, run_id=run.id, delivery_id=deliveries[0].id,
                                        business_id=world.ids["business_a"],
                                        product_id=world.ids["product_a"]))
        session.add(EngagementEvent(type="click", run_id=run.id, suspected_bot=True,
                                    business_id=world.ids["business_a"]))
        session.commit()
        return {"campaign": campaign.id, "run": run.id}


@pytest.mark.parametrize("path", STAFF_GETS)
def test_owners_and_visitors_cannot_open_staff_pages(world: World, path: str) -> None:
    _campaign_with_run(world)
    owner = world.client("pemilik-a")
    response = owner.get(path)
    assert response.status_code == 403
    assert "Promo Tenun" not in response.text
    anonymous = world.client().get(path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


@pytest.mark.parametrize("path", STAFF_POSTS)
def test_owners_cannot_use_staff_actions(world: World, path: str) -> None:
    ids = _campaign_with_run(world)
    owner = world.client("pemilik-a")
    url = path.replace("/1/", f"/{ids['run']}/") if "/run/" in path else path
    response = owner.post(url, data={"csrf_token": csrf(owner, "/portal"), "action": "approve",
                                     "binaan": "1"})
    assert response.status_code == 403
    with world.session() as session:
        run = session.get(CampaignRun, ids["run"])
        assert run is not None and run.status == RunStatus.running
        assert session.get(Business, 1).verification == Verification.pending  # type: ignore[union-attr]


def test_dashboard_shows_live_progress_and_engagement(world: World) -> None:
    ids = _campaign_with_run(world)
    staff = world.client("staf")
    page = staff.get("/dinas").text
    assert "Promo Tenun Desember" in page
    assert f'data-run="{ids["run"]}"' in page
    assert "4 / 6" in page  # sent + failed of 6
    assert "terkirim 3" in page and "gagal 1" in page and "menunggu 2" in page
    assert "550 mailbox tidak ada (1)" in page
    # The report's run figures: two opens of one message are one unique open; the bot
    # click is not counted.
    assert '<span data-event="unique_clicks">1</span>' in page
    assert '<span data-event="unique_opens">1</span>' in page
    assert "/static/dinas.js" in page
    data = staff.get("/dinas/progress.json").json()
    run = next(r for r in data["runs"] if r["id"] == ids["run"])
    assert {k: n for k, n in run["counts"].items() if n} == {"sent": 3, "failed": 1, "pending": 2}
    assert run["done"] == 4 and run["total"] == 6 and run["status"] == "running"
    assert run["engagement"] == {"sent": "3", "unique_opens": "1", "unique_clicks": "1",
                                 "social_clicks": "0", "whatsapp_clicks": "0", "leads": "1",
                                 "unsubscribes": "0"}
    assert run["errors"] == [{"error": "550 mailbox tidak ada", "count": 1}]


def test_staff_pause_and_resume_a_run(world: World) -> None:
    ids = _campaign_with_run(world)
    staff = world.client("staf")
    token = csrf(staff, "/dinas")
    response = staff.post(f"/dinas/run/{ids['run']}/jeda", data={"csrf_token": token},
                          follow_redirects=False)
    assert response.status_code == 303
    page = staff.get(response.headers["location"]).text
    assert f"Putaran {ids['run']} dijeda." in page
    assert f'action="/dinas/run/{ids["run"]}/lanjut"' in page
    with world.session() as session:
        run = session.get(CampaignRun, ids["run"])
        assert run is not None and run.status == RunStatus.paused
        assert run.status_reason == "dijeda oleh staf (dasbor)"
    staff.post(f"/dinas/run/{ids['run']}/lanjut", data={"csrf_token": token})
    with world.session() as session:
        run = session.get(CampaignRun, ids["run"])
        assert run is not None and run.status == RunStatus.running
        actions = session.scalars(select(AuditLog.action).where(
            AuditLog.entity == "campaign_run")).all()
        assert sorted(actions) == ["run.pause", "run.resume"]
    assert staff.post("/dinas/run/99999/jeda", data={"csrf_token": token}).status_code == 404


def _pending_business(world: World) -> int:
    with world.session() as session:
        business, _ = make_eligible_business(session, "Anyaman Oenino", opt_in_to="semua-produk")
        businesses.set_binaan(session, business, False, "test")  # not yet confirmed
        session.commit()
        return business.id


def test_verification_queue_approve_confirms_binaan(world: World) -> None:
    bid = _pending_business(world)
    staff = world.client("admin")  # verifying is an admin decision (issue 13)
    page = staff.get("/dinas/verifikasi").text
    assert "Anyaman Oenino" in page and "5302**********01" in page
    assert "5302014107920001" not in page
    assert "Belum ditetapkan sebagai UMKM binaan Dinas" in page
    token = csrf(staff, "/dinas/verifikasi")
    response = staff.post(f"/dinas/usaha/{bid}/verifikasi", data={
        "csrf_token": token, "action": "approve", "binaan": "1",
        "binaan_group": "Kelompok Anyaman Oenino"}, follow_redirects=False)
    assert response.status_code == 303
    assert "Anyaman Oenino disetujui" in staff.get(response.headers["location"]).text
    with world.session() as session:
        business = session.get(Business, bid)
        assert business is not None
        assert business.verification == Verification.verified
        assert business.binaan and business.eligible
        assert business.binaan_group == "Kelompok Anyaman Oenino"
    assert "Anyaman Oenino" not in staff.get("/dinas/verifikasi").text  # left the queue
    assert "Anyaman Oenino" in staff.get("/dinas/verifikasi?status=verified").text


def test_rejecting_a_business_removes_it_from_the_showcase(world: World) -> None:
    staff = world.client("admin")  # verifying is an admin decision (issue 13)
    visitor = world.client()
    assert visitor.get(f"/produk/{world.ids['product_a']}").status_code == 200
    response = staff.post(f"/dinas/usaha/{world.ids['business_a']}/verifikasi", data={
        "csrf_token": csrf(staff, "/dinas/verifikasi"), "action": "reject",
        "note": "NIB tidak sesuai OSS"}, follow_redirects=False)
    assert response.status_code == 303
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        assert business.verification == Verification.rejected
        assert not business.binaan and not business.eligible
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "business.verify")).one()
        assert audit.actor == "admin" and audit.detail["note"] == "NIB tidak sesuai OSS"
    assert visitor.get(f"/produk/{world.ids['product_a']}").status_code == 404
    bad = staff.post(f"/dinas/usaha/{world.ids['business_b']}/verifikasi",
                     data={"csrf_token": csrf(staff, "/dinas"), "action": "hapus"})
    assert bad.status_code == 400


def test_social_accounts_show_health_but_never_tokens(world: World) -> None:
    now = utcnow()
    with world.session() as session:
        session.add(SocialAccount(
            platform="facebook", owner="dinas", name="Dinas UMKM TTS", external_id="1001",
            access_token_enc=crypto.encrypt("EAAB-rahasia-token-xyz", "social-token"),
            token_expires_at=now + timedelta(days=3), status="ok"))
        session.add(SocialAccount(
            platform="tiktok", owner="dinas", name="umkm.tts", external_id="tt-9",
            access_token_enc=crypto.encrypt("act.rahasia-tiktok", "social-token"),
            refresh_token_enc=crypto.encrypt("rft.rahasia-refresh", "social-token"),
            status="needs_reconnect", cooldown_until=now + timedelta(hours=1)))
        session.commit()
        encrypted = [a.access_token_enc for a in session.scalars(select(SocialAccount))]
    page = world.client("staf").get("/dinas/akun-sosial").text
    assert "Dinas UMKM TTS" in page and "umkm.tts" in page
    assert "token kedaluwarsa dalam" in page
    assert "needs_reconnect" in page and "jeda sampai" in page
    for secret in ("EAAB", "rahasia", "act.", "rft.", *encrypted):
        assert secret not in page


def test_campaign_page_has_runs_and_the_whatsapp_share_kit(world: World) -> None:
    ids = _campaign_with_run(world)
    with world.session() as session:
        tagged = make_campaign(session, key="pameran-tts", name="Pameran Produk TTS",
                               tags=["semua-produk"],
                               spec={"offer": {"kind": "new_product", "title": "Produk Baru"}})
        empty = make_campaign(session, key="kosong", tags=["tidak-ada"])
        session.commit()
        tagged_id, empty_id = tagged.id, empty.id
    staff = world.client("staf")
    page = staff.get(f"/dinas/kampanye/{ids['campaign']}").text
    assert "Promo Tenun Desember" in page and f'data-run="{ids["run"]}"' in page
    kit = html.unescape(staff.get(f"/dinas/kampanye/{tagged_id}").text)
    assert "*Pameran Produk TTS*" in kit and "Produk Baru" in kit
    assert "Tenun Tenun Ina A" in kit and "Madu Hutan Mollo" in kit
    assert "https://wa.me/6281234567890?text=" in kit  # order link to the UMKM itself
    assert "https://wa.me/?text=" in kit  # share the whole text to a group
    assert "Kampanye ini tidak menawarkan produk" in staff.get(f"/dinas/kampanye/{empty_id}").text
    assert staff.get("/dinas/kampanye/99999").status_code == 404


def test_reports_page_renders_a_table_and_explains_bad_input(world: World) -> None:
    _campaign_with_run(world)  # deliveries sent on 1 December 2026 (tests.factories.NOW)
    staff = world.client("staf")
    page = staff.get("/dinas/laporan?periode=2026-12&by=campaign")
    assert page.status_code == 200
    assert 'id="report"' in page.text and "Terkirim" in page.text
    row = re.search(r'<table class="details" data-section="email">.*?'
                    r"<td>Promo Tenun Desember</td>(.*?)</tr>", page.text, re.S)
    assert row is not None
    assert re.findall(r"<td>([^<]*)</td>", row.group(1))[1] == "3"  # planned, sent
    assert '<option value="business" >per UMKM</option>' in page.text
    assert 'svg class="chart" data-chart="trend"' in page.text  # the CLI's own charts
    bad = staff.get("/dinas/laporan?periode=kemarin")
    assert bad.status_code == 400
    assert 'id="report"' not in bad.text and 'class="fail"' in bad.text


def test_dashboard_and_run_page_words_are_indonesian(world: World) -> None:
    """Issue 19: no English campaign type, no "Run" column, "sedang dikirim" (in flight)
    apart from "terkirim" (sent)."""
    ids = _campaign_with_run(world)
    with world.session() as session:
        run = session.get(CampaignRun, ids["run"])
        assert run is not None
        make_delivery(session, run, make_customer(session), status="sending")
        session.commit()
    staff = world.client("staf")
    home = staff.get("/dinas").text
    row = home.split("Promo Tenun Desember</a><br>", 1)[1].split("</tr>", 1)[0]
    assert "<td>Promosi</td>" in row and "promotional" not in row
    assert "<th>Run</th>" not in home and "<th>Putaran</th>" in home
    assert "sedang dikirim 1" in home and "terkirim 3" in home
    assert re.search(r"(?<!sedang )dikirim", home) is None
    campaign = staff.get(f"/dinas/kampanye/{ids['campaign']}").text
    assert "Promosi" in campaign and "promotional" not in campaign
    page = staff.get(f"/dinas/run/{ids['run']}").text
    assert f"<h1>Putaran #{ids['run']}: " in page and "Run #" not in page
