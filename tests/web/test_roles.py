"""Issue 13 finding 11: ``dinas_admin`` verifies businesses; ``dinas_staff`` runs campaigns
and reports and sees the verification queue read-only; a renamed business leaves the
showcase and every catalogue until an admin approves it again."""

from __future__ import annotations

from engine.campaign.catalog import eligible_products
from engine.models import Business, Verification
from tests.web_helpers import (
    World,
    csrf,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)


def _decide(world: World, username: str, business_id: int, action: str) -> int:
    client = world.client(username)
    response = client.post(f"/dinas/usaha/{business_id}/verifikasi", data={
        "csrf_token": csrf(client, "/dinas/verifikasi"), "action": action, "binaan": "1"},
        follow_redirects=False)
    return int(response.status_code)


def _state(world: World, business_id: int) -> tuple[Verification, bool]:
    with world.session() as session:
        business = session.get(Business, business_id)
        assert business is not None
        return business.verification, business.eligible


def test_staff_cannot_approve_or_reject_a_business(world: World) -> None:
    bid = world.ids["business_a"]
    before = _state(world, bid)
    for action in ("approve", "reject"):
        assert _decide(world, "staf", bid, action) == 403
    assert _state(world, bid) == before


def test_staff_sees_the_queue_read_only_and_admin_gets_the_buttons(world: World) -> None:
    staff_page = world.client("staf").get("/dinas/verifikasi")
    assert staff_page.status_code == 200
    assert 'value="approve"' not in staff_page.text
    assert 'value="approve"' in world.client("admin").get("/dinas/verifikasi").text


def test_admin_can_approve_and_reject(world: World) -> None:
    bid = world.ids["business_b"]
    assert _decide(world, "admin", bid, "approve") == 303
    assert _state(world, bid) == (Verification.verified, True)
    assert _decide(world, "admin", bid, "reject") == 303
    assert _state(world, bid)[0] == Verification.rejected


def test_staff_still_runs_reports_and_sees_account_health(world: World) -> None:
    staff = world.client("staf")
    for path in ("/dinas", "/dinas/laporan", "/dinas/akun-sosial", "/dinas/verifikasi",
                 "/dinas/pelatihan", "/dinas/pendampingan"):
        assert staff.get(path).status_code == 200, path


def _in_catalogue(world: World, product_id: int) -> bool:
    with world.session() as session:
        products = eligible_products(session, campaign_key="promo-x",
                                     campaign_tags=["semua-produk"])
        return product_id in {p.id for p in products}


def test_renamed_business_is_hidden_until_an_admin_approves_it(world: World) -> None:
    bid, pid = world.ids["business_a"], world.ids["product_a"]
    visitor = world.client()
    with world.session() as session:
        business = session.get(Business, bid)
        assert business is not None
        business.verification = Verification.verified
        session.commit()
        form = {"name": "=Nama Baru Belum Dicek", "nib": business.nib,
                "owner_name": business.owner_name, "nik": "",
                "kecamatan_code": business.kecamatan_code, "desa": "", "address": "",
                "whatsapp": "081299998888", "phone": "", "email": "", "annual_sales": ""}
    assert visitor.get(f"/produk/{pid}").status_code == 200 and _in_catalogue(world, pid)
    assert post_form(world.client("pemilik-a"), "/portal/usaha", form).status_code == 303
    assert _state(world, bid) == (Verification.changed, False)
    assert visitor.get(f"/produk/{pid}").status_code == 404
    assert "Nama Baru Belum Dicek" not in visitor.get("/produk").text
    assert not _in_catalogue(world, pid)
    queue = world.client("admin").get("/dinas/verifikasi?status=changed").text
    assert "Nama Baru Belum Dicek" in queue
    assert _decide(world, "staf", bid, "approve") == 403
    assert _decide(world, "admin", bid, "approve") == 303
    assert _state(world, bid) == (Verification.verified, True)
    assert visitor.get(f"/produk/{pid}").status_code == 200 and _in_catalogue(world, pid)
