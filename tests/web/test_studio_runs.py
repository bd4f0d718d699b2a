"""The run page (counts from delivery rows, revision, cancel), the audit log page and
the editor's test send through a real SMTP server on loopback (issue 18)."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from engine.delivery.context import reset_process_state
from engine.delivery.trial_send import RATE_MAX, set_contact
from engine.models import AuditLog, CampaignRun, Delivery, DeliveryStatus, User, utcnow
from tests.smtp_server import ScriptedSMTPServer
from tests.web.studio_flow import CAMPAIGN, customers, form, save_and_submit
from tests.web.test_studio import post_json
from tests.web_helpers import World, csrf, world_fixture  # noqa: F401 - "world"


def _launched(world: World, when: str = "sekarang") -> int:
    customers(world, 4)
    rid = save_and_submit(world)
    assert form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/setujui",
                {"waktu": when}).status_code == 303
    with world.session() as session:
        return int(session.scalars(select(CampaignRun.id)).one())


def test_run_page_counts_rows_and_cancel_skips_what_is_held(world: World) -> None:
    run_id = _launched(world)
    with world.session() as session:
        rows = session.scalars(select(Delivery).where(Delivery.run_id == run_id)
                               .order_by(Delivery.id)).all()
        assert len(rows) == 4
        rows[0].status, rows[0].sent_at = DeliveryStatus.sent, utcnow()
        session.commit()
    data = world.client("staf").get(f"/dinas/run/{run_id}/progress.json").json()
    assert (data["sent"], data["held"], data["total"]) == (1, 3, 4)
    assert [(m["channel"], m["total"], m["done"]) for m in data["messages"]] == [
        ("email", 4, 1)]
    page = world.client("staf").get(f"/dinas/run/{run_id}")
    assert 'data-field="held">3<' in page.text and f"/dinas/run/{run_id}/batal" in page.text
    done = form(world, "staf", f"/dinas/run/{run_id}/batal")
    assert done.status_code == 303
    data = world.client("staf").get(f"/dinas/run/{run_id}/progress.json").json()
    assert (data["status"], data["sent"], data["held"], data["skipped"]) == (
        "cancelled", 1, 0, 3)
    assert data["stopped_at"]  # a cancelled run says when it last sent
    again = form(world, "staf", f"/dinas/run/{run_id}/batal")
    assert "sudah dibatalkan" in html.unescape(world.client("staf").get(
        again.headers["location"]).text)
    with world.session() as session:
        assert session.scalars(select(AuditLog.action).where(
            AuditLog.entity == "campaign_run")).all() == ["run.cancel", "run.cancel"]
    assert world.client("pemilik-a").get(f"/dinas/run/{run_id}").status_code == 403
    assert world.client("staf").get("/dinas/run/abc").status_code == 404


def test_audit_page_is_admin_only_filters_and_pages(world: World) -> None:
    run_id = _launched(world, "jadwal")
    paused = form(world, "staf", f"/dinas/run/{run_id}/jeda", {"kembali": "run"})
    assert paused.headers["location"].startswith(f"/dinas/run/{run_id}?msg=")
    assert form(world, "staf", f"/dinas/run/{run_id}/lanjut").headers["location"].startswith(
        "/dinas?msg=")
    assert world.client("staf").get("/dinas/audit").status_code == 403
    admin = world.client("admin")
    page = admin.get("/dinas/audit")
    assert page.status_code == 200
    for action in ("campaign.save", "campaign.submit", "campaign.approve", "campaign.launch",
                   "run.pause", "run.resume"):
        assert f'data-action="{action}"' in page.text, action
    # Known actions read in Indonesian, the identifier beside them.
    assert "Putaran dijeda<br><small><code>run.pause</code>" in page.text
    assert '<option value="campaign.launch" >Kampanye diluncurkan</option>' in page.text
    only = admin.get("/dinas/audit?aksi=run.pause").text
    assert only.count("data-action=") == 1
    by_staff = admin.get("/dinas/audit?pengguna=staf").text
    assert 'data-action="campaign.approve"' not in by_staff
    assert 'data-action="campaign.submit"' in by_staff
    bad = admin.get("/dinas/audit?halaman=nol")
    assert bad.status_code == 400 and "tidak valid" in html.unescape(bad.text)
    with world.session() as session:
        session.add_all([AuditLog(actor="mesin", action="uji.isi", entity="x")
                         for _ in range(60)])
        session.commit()
    second = admin.get("/dinas/audit?aksi=uji.isi&halaman=2").text
    assert second.count('data-action="uji.isi"') == 10


@pytest.fixture
def smtp_world(world: World, smtp_server: ScriptedSMTPServer) -> Iterator[World]:
    world.app.state.settings = dataclasses.replace(
        world.settings, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    yield world
    reset_process_state()


def _own(world: World, username: str, email: str | None, phone: str | None = None) -> None:
    with world.session() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        set_contact(session, user, email=email, whatsapp=phone, actor="admin")
        session.commit()


def test_test_send_goes_to_the_own_address_by_smtp_marked_and_limited(
        smtp_world: World, smtp_server: ScriptedSMTPServer) -> None:
    world = smtp_world
    customers(world, 2)
    first = world.client("staf")
    refused = first.post("/dinas/kampanye/uji-kirim", data={
        "csrf_token": csrf(first, "/dinas"), "yaml": CAMPAIGN, "kanal": "email"})
    assert refused.status_code == 400 and "umkm user contact staf" in refused.json()["error"]
    _own(world, "staf", "staf.dinas@ttskab.go.id")
    data = post_json(world, "/dinas/kampanye/uji-kirim", {"yaml": CAMPAIGN, "kanal": "email"})
    assert data["ok"] is True and "staf.dinas@ttskab.go.id" in str(data["message"])
    assert [m.rcpt_tos for m in smtp_server.messages] == [["staf.dinas@ttskab.go.id"]]
    subject = str(smtp_server.messages[0].message["Subject"])
    assert subject.startswith("[UJI] ") and "diskon 15% tenun ikat" in subject
    with world.session() as session:
        assert session.scalars(select(CampaignRun)).all() == []  # never a campaign figure
        assert session.scalars(select(Delivery)).all() == []
    for _ in range(RATE_MAX - 1):
        post_json(world, "/dinas/kampanye/uji-kirim", {"yaml": CAMPAIGN, "kanal": "email"})
    client = world.client("staf")
    over = client.post("/dinas/kampanye/uji-kirim", data={
        "csrf_token": csrf(client, "/dinas"), "yaml": CAMPAIGN, "kanal": "email"})
    assert over.status_code == 429 and "Terlalu banyak uji kirim" in over.json()["error"]
    assert len(smtp_server.messages) == RATE_MAX
    # The admin's own limit is their own; WhatsApp goes to their own number (sandbox).
    _own(world, "admin", None, "0812-3456-7890")
    wa = post_json(world, "/dinas/kampanye/uji-kirim", {"yaml": CAMPAIGN, "kanal": "whatsapp"},
                   "admin")
    assert wa["ok"] is True and "6281234567890" in str(wa["message"])

