"""The campaign studio: list with figures, filters and paging; the editor's validation
endpoint (the CLI's validator, CSRF, bounded body); the preview; role checks."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest

from engine.campaign.loader import validate_files
from engine.models import EngagementEvent, RunStatus, utcnow
from tests.factories import make_campaign, make_customer, make_delivery, make_run
from tests.web_helpers import World, csrf, world_fixture  # noqa: F401 - the "world" fixture
from web.studio_check import MAX_BODY_BYTES, STARTERS, STARTERS_DIR, starter_text
from web.studio_list import PAGE_SIZE

STAFF_GETS = ["/dinas/kampanye", "/dinas/kampanye/baru", "/dinas/kampanye/baru?contoh=social"]
STAFF_POSTS = ["/dinas/kampanye/periksa", "/dinas/kampanye/pratinjau"]


def _campaigns(world: World) -> dict[str, int]:
    """A running promotional campaign with figures, a paused newsletter, a draft."""
    now = utcnow()
    with world.session() as session:
        promo = make_campaign(session, key="promo-tenun", name="Promo Tenun Desember")
        run = make_run(session, promo, status=RunStatus.running, planned=4)
        deliveries = [make_delivery(session, run, make_customer(session), status="sent",
                                    at=now) for _ in range(4)]
        session.add(EngagementEvent(type="open", run_id=run.id, delivery_id=deliveries[0].id))
        session.add(EngagementEvent(type="hard_bounce", run_id=run.id,
                                    delivery_id=deliveries[3].id))
        news = make_campaign(session, key="kabar", name="Kabar Bulanan", type="newsletter")
        make_run(session, news, status=RunStatus.paused)
        soon = make_campaign(session, key="nanti", name="Promo Nanti")
        make_run(session, soon, status=RunStatus.scheduled, scheduled_at=now + timedelta(days=3))
        make_campaign(session, key="draf", name="Draf Retensi", type="retention")
        session.commit()
        return {"promo": promo.id, "news": news.id}


def _row(page: str, campaign_id: int) -> str:
    match = re.search(rf'<tr data-campaign="{campaign_id}">(.*?)</tr>', page, re.DOTALL)
    assert match, f"campaign {campaign_id} not in the list"
    return match.group(1)


def _figure(row: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]*)<', row)
    assert match
    return match.group(1)


def test_list_shows_type_status_and_report_figures(world: World) -> None:
    ids = _campaigns(world)
    page = world.client("staf").get("/dinas/kampanye")
    assert page.status_code == 200
    row = _row(page.text, ids["promo"])
    assert "Promosi" in row and "berjalan" in row and "sedang dikirim" in row
    assert _figure(row, "sent") == "4"
    assert _figure(row, "bounces") == "1"
    # 1 unique open of 3 delivered (4 sent minus 1 bounce), as the report counts.
    assert _figure(row, "open_rate") == "33,3%"
    assert _figure(row, "ctr") == "0,0%"
    assert "Buletin" in _row(page.text, ids["news"]) and "dijeda" in page.text
    assert "draf (belum diluncurkan)" in page.text
    assert 'href="/dinas/kampanye"' in page.text  # the new nav entry


def test_list_filters_by_type_and_status(world: World) -> None:
    _campaigns(world)
    staff = world.client("staf")
    news = staff.get("/dinas/kampanye?jenis=newsletter").text
    assert "Kabar Bulanan" in news and "Promo Tenun" not in news
    scheduled = staff.get("/dinas/kampanye?status=scheduled").text
    assert "Promo Nanti" in scheduled and "Promo Tenun" not in scheduled
    both = staff.get("/dinas/kampanye?jenis=promotional&status=running").text
    assert "Promo Tenun" in both and "Promo Nanti" not in both


@pytest.mark.parametrize(("query", "words"), [
    ("jenis=promo", "Jenis kampanye \"promo\" tidak dikenal"),
    ("status=aktif", "Status \"aktif\" tidak dikenal"),
    ("halaman=-1", "Halaman \"-1\" tidak valid"),
    ("halaman=abc", "Halaman \"abc\" tidak valid"),
    ("halaman=99999999999999999999", "tidak valid"),
    ("periode=kemarin", "kemarin"),
])
def test_bad_list_parameters_are_explained_in_indonesian(world: World, query: str,
                                                         words: str) -> None:
    response = world.client("staf").get(f"/dinas/kampanye?{query}")
    assert response.status_code == 400
    assert words in html.unescape(response.text)
    assert "studio-campaigns" not in response.text


def test_list_pages(world: World) -> None:
    with world.session() as session:
        for n in range(PAGE_SIZE + 3):
            make_campaign(session, key=f"k-{n}", name=f"Kampanye Halaman {n}")
        session.commit()
    staff = world.client("staf")
    first = staff.get("/dinas/kampanye").text
    second = staff.get("/dinas/kampanye?halaman=2").text
    assert first.count("<tr data-campaign=") == PAGE_SIZE
    assert second.count("<tr data-campaign=") == 3
    assert "Halaman 2 dari 2 (23 kampanye)" in second
    assert 'rel="next"' in first and 'rel="prev"' in second
    assert staff.get("/dinas/kampanye?halaman=9").text.count("<tr data-campaign=") == 3


@pytest.mark.parametrize("path", STAFF_GETS)
def test_owner_gets_403_and_visitor_goes_to_login(world: World, path: str) -> None:
    assert world.client("pemilik-a").get(path).status_code == 403
    anonymous = world.client().get(path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


@pytest.mark.parametrize("path", STAFF_POSTS)
def test_owner_cannot_check_or_preview(world: World, path: str) -> None:
    owner = world.client("pemilik-a")
    response = owner.post(path, data={"csrf_token": csrf(owner, "/portal"),
                                      "yaml": starter_text("promotional")})
    assert response.status_code == 403


def test_every_starter_is_valid_for_the_cli() -> None:
    files = sorted(STARTERS_DIR.glob("*.yaml"))
    assert {p.stem for p in files} == set(STARTERS)
    assert validate_files(files) == {p: [] for p in files}


def test_gallery_opens_each_starter_in_the_editor(world: World) -> None:
    staff = world.client("staf")
    gallery = staff.get("/dinas/kampanye/baru").text
    for name in STARTERS:
        assert f'href="/dinas/kampanye/baru?contoh={name}"' in gallery
    editor = staff.get("/dinas/kampanye/baru?contoh=newsletter")
    assert editor.status_code == 200
    assert "id: contoh-buletin" in editor.text and "/static/studio.js" in editor.text
    assert "'unsafe-inline'" in editor.headers["content-security-policy"]
    assert "script-src 'self';" in editor.headers["content-security-policy"]
    bad = staff.get("/dinas/kampanye/baru?contoh=rahasia")
    assert bad.status_code == 400 and "Contoh \"rahasia\" tidak ada" in html.unescape(bad.text)


def post_json(world: World, path: str, fields: dict[str, str],
              user: str = "staf") -> dict[str, object]:
    """POST a studio form as staff (with the session's CSRF token); the JSON answer."""
    client = world.client(user)
    response = client.post(path, data={"csrf_token": csrf(client, "/dinas"), **fields})
    assert response.status_code == 200, response.text[:300]
    data: dict[str, object] = response.json()
    return data


def _check(world: World, text: str) -> dict[str, object]:
    return post_json(world, "/dinas/kampanye/periksa", {"yaml": text})


def test_check_reports_the_error_at_its_line_and_column_with_a_suggestion(
        world: World) -> None:
    text = starter_text("promotional").replace("    subject:", "    subjek:", 1)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "subjek:" in row)
    data = _check(world, text)
    assert data["valid"] is False
    errors = data["errors"]
    assert isinstance(errors, list) and len(errors) == 1
    assert errors[0]["line"] == line and errors[0]["column"] == 5
    assert "apakah maksud Anda 'subject'" in errors[0]["message"]
    assert errors[0]["suggestion"] == "subject"


def test_check_of_a_valid_starter_gives_the_plan(world: World) -> None:
    with world.session() as session:
        make_customer(session, marketing=True)
        make_customer(session, marketing=True)
        make_customer(session, marketing=False)
        session.commit()
    text = starter_text("whatsapp").replace("tags: [whatsapp]", "tags: [semua-produk]")
    data = _check(world, text)
    assert data["valid"] is True and data["errors"] == []
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert plan["audience"] == 2
    assert {p["name"] for p in plan["products"]} == {"Tenun Tenun Ina A", "Madu Hutan Mollo"}
    assert "2027" in plan["next_send"] and "WITA" in plan["next_send"]


def test_check_matches_the_cli_on_every_broken_example(world: World, tmp_path: Path) -> None:
    broken = sorted((Path(__file__).parents[1] / "campaigns_broken").glob("*.yaml"))[:6]
    for path in broken:
        cli = [(e.line, e.column, e.message) for e in validate_files([path])[path]]
        data = _check(world, path.read_text(encoding="utf-8"))
        web = [(e["line"], e["column"], e["message"])
               for e in data["errors"]]  # type: ignore[attr-defined]
        assert web == cli, path.name


def test_check_needs_the_csrf_token(world: World) -> None:
    staff = world.client("staf")
    response = staff.post("/dinas/kampanye/periksa", data={"yaml": "version: 1"})
    assert response.status_code == 403
    wrong = staff.post("/dinas/kampanye/periksa",
                       data={"yaml": "version: 1", "csrf_token": "palsu"})
    assert wrong.status_code == 403


def test_oversized_body_is_refused_with_413_in_indonesian(world: World) -> None:
    staff = world.client("staf")
    token = csrf(staff, "/dinas")
    response = staff.post("/dinas/kampanye/periksa",
                          data={"csrf_token": token, "yaml": "#" * (MAX_BODY_BYTES + 10)})
    assert response.status_code == 413
    assert f"terlalu besar (maks. {MAX_BODY_BYTES // 1024} KB)" in response.text
    long = staff.post("/dinas/kampanye/periksa",
                      data={"csrf_token": token, "yaml": "a" * 250_000})
    assert long.status_code == 400 and "terlalu panjang" in long.json()["detail"]


def _preview(world: World, text: str, penerima: str = "") -> dict[str, object]:
    return post_json(world, "/dinas/kampanye/pratinjau", {"yaml": text, "penerima": penerima})


def test_preview_renders_the_email_for_a_chosen_recipient(world: World) -> None:
    with world.session() as session:
        chosen = make_customer(session, name="Yohana Nenobais", marketing=True)
        make_customer(session, name="Markus Tefa", marketing=True)
        session.commit()
        chosen_id = chosen.id
    text = starter_text("promotional").replace(
        "{purchased_category: kerajinan_tangan, within_days: 365}", "{all: true}").replace(
        "tags: [tenun, akhir-tahun]", "tags: [semua-produk]")
    data = _preview(world, text, str(chosen_id))
    assert data["ok"] is True, data
    emails = data["emails"]
    assert isinstance(emails, list) and [e["variant"] for e in emails] == ["A", "B"]
    assert emails[0]["recipient"] == "Yohana Nenobais"
    assert emails[0]["subject"].startswith("Yohana, diskon 15%")
    assert "TENUN15" in emails[0]["preheader"]
    assert "<html" in emails[0]["html"].lower() and "Yohana" in emails[0]["text"]
    names = {r["name"] for r in data["recipients"]}  # type: ignore[attr-defined]
    assert {"Yohana Nenobais", "Markus Tefa"} <= names
    posts = data["posts"]
    assert isinstance(posts, list)
    assert {p["platform"] for p in posts} >= {"facebook", "instagram", "tiktok"}
    facebook = next(p for p in posts if p["platform"] == "facebook")
    assert facebook["limit"] and facebook["length"] == len(facebook["text"])
    assert "Tenun" in facebook["text"] or "Madu" in facebook["text"]
    assert data["share_kit"] and "wa.me" in str(data["share_kit"])


def test_preview_of_an_invalid_campaign_asks_to_fix_it_first(world: World) -> None:
    data = _preview(world, "version: 1\nid: x\n")
    assert data["ok"] is False and "Perbaiki dulu" in str(data["error"])
    assert data["errors"]
    client = world.client("staf")
    bad = client.post("/dinas/kampanye/pratinjau", data={
        "csrf_token": csrf(client, "/dinas"), "yaml": starter_text("social"),
        "penerima": "satu"})
    assert bad.status_code == 400 and "Penerima \"satu\" tidak valid" in bad.json()["detail"]
