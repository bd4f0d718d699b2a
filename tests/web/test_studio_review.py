"""Four eyes (issue 18): staff submit, a dinas_admin reviews the diff and preview, then
approves and launches (the CLI's launch path, guard included) or sends back with a note."""

from __future__ import annotations

import dataclasses
import html

from sqlalchemy import select

from engine.campaign import sync
from engine.delivery.enqueue import sweep
from engine.models import AuditLog, CampaignRevision, CampaignRun, Delivery, Role, utcnow
from tests.web.studio_flow import CAMPAIGN, KEY, customers, form, revision_id, save, save_and_submit
from tests.web_helpers import World, make_user, world_fixture  # noqa: F401 - "world"


def _state(world: World, rid: int) -> tuple[str, str | None]:
    with world.session() as session:
        row = session.get(CampaignRevision, rid)
        assert row is not None
        return row.review, row.review_note


def test_submit_review_approve_and_launch_names_the_revision(world: World) -> None:
    customers(world, 3)
    rid = save_and_submit(world)
    assert _state(world, rid) == ("submitted", None)
    staff = world.client("staf")
    assert staff.get("/dinas/kampanye/tinjau").status_code == 403
    assert staff.get(f"/dinas/kampanye/tinjau/{rid}").status_code == 403
    assert form(world, "staf", f"/dinas/kampanye/tinjau/{rid}/setujui",
                {"waktu": "sekarang"}).status_code == 403
    admin = world.client("admin")
    queue = admin.get("/dinas/kampanye/tinjau")
    assert queue.status_code == 200 and f'data-revision="{rid}"' in queue.text
    page = html.unescape(admin.get(f"/dinas/kampanye/tinjau/{rid}").text)
    assert "--- (baru)" in page and f"+id: {KEY}" in page
    assert "diskon 15% tenun ikat" in page  # the rendered subject of the preview
    done = form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/setujui", {"waktu": "sekarang"})
    assert done.status_code == 303 and done.headers["location"].startswith("/dinas/run/")
    with world.session() as session:
        run = session.scalars(select(CampaignRun)).one()
        assert run.revision_id == rid and run.status.value == "running"
        assert session.scalar(select(Delivery.id).where(Delivery.run_id == run.id)) is not None
        actions = session.scalars(select(AuditLog.action).where(
            AuditLog.entity == "campaign_revision").order_by(AuditLog.id)).all()
        run_id = run.id
    assert actions == ["campaign.save", "campaign.submit", "campaign.approve",
                       "campaign.launch"]
    assert _state(world, rid)[0] == "launched"
    run_page = html.unescape(world.client("staf").get(f"/dinas/run/{run_id}").text)
    assert f'href="/dinas/kampanye/revisi/{KEY}#revisi-1">revisi 1</a>' in run_page
    assert "disetujui admin" in run_page


def test_a_web_launch_now_leaves_its_rows_to_the_next_sweep_once(world: World) -> None:
    """The web may not import the workers (docs/architecture.md), so it cannot hand the
    rows to the broker itself as ``umkm campaign launch`` does: it must not insert them
    marked as handed over (``hand_over``), or they would wait out the enqueue grace
    period. Unmarked, the beat's next sweep hands each row over exactly once."""
    customers(world, 3)
    rid = save_and_submit(world)
    done = form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/setujui", {"waktu": "sekarang"})
    assert done.status_code == 303
    with world.session() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
    assert len(rows) == 3 and all(row.enqueued_at is None for row in rows)
    now = utcnow()
    handed = [i for b in sweep(world.settings, now) for i in b.delivery_ids]
    assert handed == [row.id for row in rows]
    assert sweep(world.settings, now) == []


def test_an_author_cannot_approve_and_a_note_reaches_the_author(world: World) -> None:
    with world.session() as session:
        make_user(session, "admin2", Role.dinas_admin)
        session.commit()
    rid = save_and_submit(world, user="admin")
    own = form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/setujui", {"waktu": "jadwal"})
    assert own.status_code == 403 and "prinsip empat mata" in html.unescape(own.text)
    assert form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/kembalikan",
                {"catatan": "x"}).status_code == 403
    assert _state(world, rid) == ("submitted", None)
    empty = form(world, "admin2", f"/dinas/kampanye/tinjau/{rid}/kembalikan", {"catatan": " "})
    assert empty.status_code == 400 and "Tulis catatan" in html.unescape(empty.text)
    back = form(world, "admin2", f"/dinas/kampanye/tinjau/{rid}/kembalikan",
                {"catatan": "Ganti subjek, terlalu panjang."})
    assert back.status_code == 303
    assert _state(world, rid) == ("returned", "Ganti subjek, terlalu panjang.")
    author = world.client("admin")
    editor = html.unescape(author.get(f"/dinas/kampanye/baru?revisi={rid}").text)
    assert "Catatan peninjau (admin2):" in editor and "Ganti subjek, terlalu panjang." in editor
    history = html.unescape(author.get(f"/dinas/kampanye/revisi/{KEY}").text)
    assert "Ganti subjek, terlalu panjang." in history and "dikembalikan" in history
    # Sent back, it can be submitted again (or edited into a new revision).
    assert form(world, "admin", f"/dinas/kampanye/ajukan/{rid}").status_code == 303
    assert _state(world, rid)[0] == "submitted"
    with world.session() as session:
        assert session.scalars(select(CampaignRun)).all() == []


def test_the_review_diff_is_against_the_last_launched_revision(world: World) -> None:
    first = save_and_submit(world)
    assert form(world, "admin", f"/dinas/kampanye/tinjau/{first}/setujui",
                {"waktu": "jadwal"}).status_code == 303
    save(world, CAMPAIGN.replace("Promo Uji Empat Mata", "Promo Kedua"))
    third = CAMPAIGN.replace("Promo Uji Empat Mata", "Promo Ketiga")
    rid = save_and_submit(world, text=third)
    assert revision_id(world, 3) == rid
    page = html.unescape(world.client("admin").get(f"/dinas/kampanye/tinjau/{rid}").text)
    assert "--- revisi 1" in page and "+++ revisi 3" in page
    assert "-name: Promo Uji Empat Mata" in page and "+name: Promo Ketiga" in page
    with world.session() as session:
        run = session.scalars(select(CampaignRun)).one()
        assert run.status.value == "scheduled" and run.revision_id == first
    # Only the newest revision can be submitted; revision 2 was never submitted.
    stale = form(world, "staf", f"/dinas/kampanye/ajukan/{revision_id(world, 2)}")
    assert stale.status_code == 409


def test_the_launch_guard_still_refuses_in_production(world: World) -> None:
    customers(world, 1)
    rid = save_and_submit(world)
    world.app.state.settings = dataclasses.replace(
        world.settings, social_mode="live", whatsapp_app_secret=world.settings.secret_key)
    refused = form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/setujui",
                   {"waktu": "sekarang"})
    assert refused.status_code == 409
    assert "Kampanye massal ditolak" in html.unescape(refused.text)
    assert _state(world, rid)[0] == "submitted"  # not approved, nothing launched
    with world.session() as session:
        assert session.scalars(select(CampaignRun)).all() == []


def test_owners_get_403_on_every_review_page(world: World) -> None:
    rid = save_and_submit(world)
    owner = world.client("pemilik-a")
    for path in ("/dinas/kampanye/tinjau", f"/dinas/kampanye/tinjau/{rid}", "/dinas/audit"):
        assert owner.get(path).status_code == 403, path
    assert world.client("staf").get("/dinas/kampanye/tinjau/999999").status_code == 403
    assert world.client("admin").get("/dinas/kampanye/tinjau/999999").status_code == 404
    bad = form(world, "admin", f"/dinas/kampanye/tinjau/{rid}/setujui", {"waktu": "besok"})
    assert bad.status_code == 400


def test_the_revision_page_shows_an_open_sync_conflict(world: World) -> None:
    save(world)
    with world.session() as session:
        session.add(AuditLog(actor="cli", action=sync.CONFLICT_ACTION, entity="campaign",
                             entity_id=KEY, detail={"campaign": KEY, "file": "uji.yaml",
                                                    "number": 1, "synced": 0}))
        session.commit()
    page = html.unescape(world.client("staf").get(f"/dinas/kampanye/revisi/{KEY}").text)
    assert f"Konflik pada kampanye {KEY}: berkas uji.yaml" in page
    assert "revisi 1 yang lebih baru" in page
    with world.session() as session:
        session.add(AuditLog(actor="cli", action=sync.SYNC_ACTION, entity="campaign",
                             entity_id=KEY, detail={}))
        session.commit()
    page = world.client("staf").get(f"/dinas/kampanye/revisi/{KEY}").text
    assert 'id="sync-conflict"' not in page
