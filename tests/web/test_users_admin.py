"""Issues 13 and 16: ``/dinas/pengguna``, account management for Dinas admins only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.models import User
from tests.web_helpers import PASSWORD, World, login, post_form

PAGE = "/dinas/pengguna"


def _user_id(world: World, username: str) -> int:
    with world.session() as db:
        found = db.scalars(select(User.id).where(User.username == username)).one()
    return int(found)


def test_staff_get_403_with_the_reason_and_anonymous_visitors_the_login(world: World) -> None:
    staff = world.client("staf")
    refused = staff.get(PAGE)
    assert refused.status_code == 403
    assert "Hanya admin Dinas" in refused.text
    owner = world.client("pemilik-a")
    assert owner.get(PAGE).status_code == 403
    anonymous = world.client()
    response = anonymous.get(PAGE, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    forged = post_form(staff, PAGE, {"username": "penyusup", "role": "dinas_admin",
                                     "password": "sandi-panjang-1"}, form_page="/dinas")
    assert forged.status_code == 403
    with world.session() as db:
        assert db.scalars(select(User).where(User.username == "penyusup")).first() is None


def test_admin_creates_an_owner_linked_to_a_business_who_can_log_in(world: World) -> None:
    admin = world.client("admin")
    listing = admin.get(PAGE)
    assert listing.status_code == 200 and "pemilik-a" in listing.text
    created = post_form(admin, PAGE, {"username": "pemilik-c", "role": "umkm_owner",
                                      "password": "sandi-pemilik-c", "business_id": ""})
    assert created.status_code == 200, created.text[:500]
    assert "Pengguna pemilik-c dibuat" in created.text
    user_id = _user_id(world, "pemilik-c")
    # business A already has an owner; free it by linking the new account to a fresh one
    with world.session() as db:
        taken = db.get(User, _user_id(world, "pemilik-b"))
        assert taken is not None
        taken.business_id = None
        db.commit()
    linked = post_form(admin, f"{PAGE}/{user_id}/umkm",
                       {"business_id": str(world.ids["business_b"])}, form_page=PAGE)
    assert linked.status_code == 200 and "ditautkan" in linked.text
    owner = world.client()
    assert login(owner, "pemilik-c", "sandi-pemilik-c").status_code == 303
    portal = owner.get("/portal")
    assert portal.status_code == 200 and "Madu Hutan B" in portal.text


def test_a_generated_password_is_shown_once_and_works(world: World) -> None:
    admin = world.client("admin")
    created = post_form(admin, PAGE, {"username": "staf-baru", "role": "dinas_staff"})
    assert created.status_code == 200
    found = re.search(r"staf-baru: (\S+) \(catat", created.text)
    assert found, created.text[:800]
    assert login(world.client(), "staf-baru", found.group(1)).status_code == 303
    assert found.group(1) not in admin.get(PAGE).text


def test_disabling_revokes_a_live_session_at_once(world: World) -> None:
    victim = world.client("pemilik-a")
    assert victim.get("/portal").status_code == 200
    copied = world.client()
    copied.cookies.update(dict(victim.cookies.items()))
    assert copied.get("/portal").status_code == 200
    admin = world.client("admin")
    response = post_form(admin, f"{PAGE}/{_user_id(world, 'pemilik-a')}/status",
                         {"active": "0"}, form_page=PAGE)
    assert response.status_code == 200 and "pemilik-a dinonaktifkan" in response.text
    for client in (victim, copied):
        gone = client.get("/portal", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert login(world.client(), "pemilik-a").status_code == 401
    enabled = post_form(admin, f"{PAGE}/{_user_id(world, 'pemilik-a')}/status",
                        {"active": "1"}, form_page=PAGE)
    assert enabled.status_code == 200
    assert login(world.client(), "pemilik-a").status_code == 303


def test_reset_password_replaces_the_old_one_and_ends_sessions(world: World) -> None:
    victim = world.client("pemilik-b")
    admin = world.client("admin")
    response = post_form(admin, f"{PAGE}/{_user_id(world, 'pemilik-b')}/sandi",
                         {"password": "sandi-baru-yang-panjang"}, form_page=PAGE)
    assert response.status_code == 200 and "diganti" in response.text
    assert victim.get("/portal", follow_redirects=False).status_code == 303
    assert login(world.client(), "pemilik-b", PASSWORD).status_code == 401
    assert login(world.client(), "pemilik-b", "sandi-baru-yang-panjang").status_code == 303


@pytest.mark.parametrize(("path", "data", "expected"), [
    (PAGE, {"username": "pemilik-a", "role": "umkm_owner", "password": "sandi-panjang-1"},
     "sudah"),
    (PAGE, {"username": "orang-baru", "role": "umkm_owner", "password": "pendek"},
     "8"),
    (PAGE, {"username": "orang-baru", "role": "umkm_owner", "password": "sandi-panjang-1",
            "business_id": "987654"}, "987654"),
    (PAGE, {"username": "orang-baru", "role": "umkm_owner", "password": "sandi-panjang-1",
            "business_id": "99999999999999999999999"}, "ID UMKM harus berupa angka"),
    (PAGE, {"username": "orang-baru", "role": "raja", "password": "sandi-panjang-1"}, "raja"),
    ("{user}/sandi", {"password": "pendek"}, "8"),
    ("{user}/umkm", {"business_id": "-1"}, "ID UMKM harus berupa angka"),
    ("{user}/umkm", {"business_id": "987654"}, "987654"),
])
def test_bad_input_is_a_400_in_indonesian(world: World, path: str, data: dict[str, str],
                                          expected: str) -> None:
    admin = world.client("admin")
    target = path.replace("{user}", f"{PAGE}/{_user_id(world, 'pemilik-baru')}")
    response = post_form(admin, target, data, form_page=PAGE)
    assert response.status_code == 400, response.text[:500]
    assert expected in response.text
    with world.session() as db:
        assert db.scalars(select(User).where(User.username == "orang-baru")).first() is None


def test_an_unknown_or_huge_user_id_is_a_404_not_a_500(world: World) -> None:
    admin = world.client("admin")
    for user_id in ("987654", "99999999999999999999999"):
        response = post_form(admin, f"{PAGE}/{user_id}/status", {"active": "0"},
                             form_page=PAGE)
        assert response.status_code in (404, 422), response.text[:300]
        assert response.status_code != 500
