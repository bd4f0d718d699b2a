"""Studio revisions: every save of a changed text is a new numbered revision with its
author, time and diff against the previous one; an unchanged text makes none."""

from __future__ import annotations

import html

from sqlalchemy import select

from engine.models import AuditLog, CampaignRevision
from tests.web.test_studio import post_json
from tests.web_helpers import World, csrf, world_fixture  # noqa: F401 - the "world" fixture
from web.studio_check import starter_text


def _save(world: World, text: str, user: str = "staf") -> dict[str, object]:
    return post_json(world, "/dinas/kampanye/simpan", {"yaml": text}, user)


def test_saves_become_numbered_revisions_with_a_diff(world: World) -> None:
    first = starter_text("newsletter")
    second = first.replace("Kabar UMKM TTS Bulanan", "Kabar UMKM TTS Edisi Februari")
    one = _save(world, first)
    assert one["ok"] is True and one["number"] == 1 and one["new"] is True
    assert _save(world, first)["new"] is False  # nothing changed: no revision
    two = _save(world, second, user="admin")
    assert two["number"] == 2 and two["url"] == "/dinas/kampanye/revisi/contoh-buletin"
    with world.session() as session:
        rows = session.scalars(select(CampaignRevision).order_by(CampaignRevision.number)).all()
        assert [(r.number, r.author, r.yaml_text) for r in rows] == [
            (1, "staf", first), (2, "admin", second)]
        assert session.scalars(select(AuditLog.action).where(
            AuditLog.action == "campaign.save")).all() == ["campaign.save"] * 2
        second_id = rows[1].id
    page = html.unescape(world.client("staf").get("/dinas/kampanye/revisi/contoh-buletin").text)
    assert "Revisi 2 oleh admin" in page and "Revisi 1 oleh staf" in page
    assert "-name: Kabar UMKM TTS Bulanan" in page
    assert "+name: Kabar UMKM TTS Edisi Februari" in page
    editor = world.client("staf").get(f"/dinas/kampanye/baru?revisi={second_id}")
    assert editor.status_code == 200 and "Edisi Februari" in editor.text


def test_an_invalid_campaign_is_not_saved(world: World) -> None:
    data = _save(world, "version: 1\nid: rusak\n")
    assert data["ok"] is False and "Perbaiki dulu" in str(data["error"]) and data["errors"]
    with world.session() as session:
        assert session.scalars(select(CampaignRevision)).all() == []


def test_revision_pages_refuse_owners_and_unknown_revisions(world: World) -> None:
    _save(world, starter_text("retention"))
    owner = world.client("pemilik-a")
    assert owner.get("/dinas/kampanye/revisi/contoh-retensi").status_code == 403
    assert owner.post("/dinas/kampanye/simpan", data={
        "csrf_token": csrf(owner, "/portal"), "yaml": starter_text("retention")}
    ).status_code == 403
    staff = world.client("staf")
    assert staff.get("/dinas/kampanye/revisi/tidak-ada").status_code == 404
    assert staff.get("/dinas/kampanye/baru?revisi=999999").status_code == 404
    assert staff.get("/dinas/kampanye/baru?revisi=abc").status_code == 404
    no_token = staff.post("/dinas/kampanye/simpan", data={"yaml": starter_text("retention")})
    assert no_token.status_code == 403
