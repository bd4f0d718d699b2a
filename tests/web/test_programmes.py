"""Pasal 8 trainings and Pasal 9 guidance over HTTP: registration rules, attendance,
assignment by an admin only, and role isolation (owners, pendamping, staff)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.models import (
    Attendance,
    GuidanceRequest,
    GuidanceStatus,
    Role,
    Training,
    TrainingRegistration,
    utcnow,
)
from engine.umkm import trainings
from tests.web_helpers import (
    World,
    make_user,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)


def _training(world: World, capacity: int = 1, days: int = 5, topic: str = "Foto produk"
              ) -> int:
    with world.session() as session:
        training = trainings.create_training(
            session, topic=topic, trainer="Politeknik Kupang", capacity=capacity,
            starts_at=utcnow() + timedelta(days=days), place="Aula Dinas, SoE", actor="t")
        session.commit()
        return training.id


def _pendampings(world: World) -> dict[str, int]:
    with world.session() as session:
        ids = {name: make_user(session, name, Role.pendamping).id
               for name in ("pendamping-1", "pendamping-2")}
        session.commit()
        return ids


def _registrations(world: World, training_id: int) -> list[tuple[int, str]]:
    with world.session() as session:
        return [(r.business_id, r.source.value) for r in session.scalars(
            select(TrainingRegistration).where(TrainingRegistration.training_id == training_id)
            .order_by(TrainingRegistration.id))]


def test_owner_registers_once_and_a_full_training_is_refused_in_indonesian(world: World
                                                                           ) -> None:
    tid = _training(world, capacity=1)
    owner_a, owner_b = world.client("pemilik-a"), world.client("pemilik-b")
    listing = owner_a.get("/portal/pelatihan")
    assert listing.status_code == 200 and "Foto produk" in listing.text
    assert "https://wa.me/?text=" in listing.text and "Tenun%20Ina%20A" in listing.text
    # A business_id naming B in the form is ignored: the owner's own business registers.
    done = post_form(owner_a, "/portal/pelatihan/daftar",
                     {"training_id": str(tid), "business_id": str(world.ids["business_b"])},
                     form_page="/portal/pelatihan")
    assert done.status_code == 303
    assert _registrations(world, tid) == [(world.ids["business_a"], "portal")]
    again = post_form(owner_a, "/portal/pelatihan/daftar", {"training_id": str(tid)},
                      form_page="/portal/pelatihan")
    assert again.status_code == 409 and "sudah terdaftar" in again.text
    full = post_form(owner_b, "/portal/pelatihan/daftar", {"training_id": str(tid)},
                     form_page="/portal/pelatihan")
    assert full.status_code == 409 and "sudah penuh (1 peserta)" in full.text
    assert len(_registrations(world, tid)) == 1
    bad = post_form(owner_b, "/portal/pelatihan/daftar", {"training_id": "abc"},
                    form_page="/portal/pelatihan")
    assert bad.status_code == 400
    # A's registration is listed for A and not for B.
    assert "Foto produk" in owner_a.get("/portal/pelatihan").text.split('id="mine"')[1]
    assert 'id="mine"' not in owner_b.get("/portal/pelatihan").text


def test_staff_creates_records_whatsapp_registration_and_attendance(world: World) -> None:
    staff = world.client("staf")
    bad = post_form(staff, "/dinas/pelatihan", {
        "topic": "Pemasaran daring", "trainer": "Dinas", "starts_at": "2030-01-10T09:00",
        "capacity": "20", "place": "", "online_url": "javascript:alert(1)"})
    assert bad.status_code == 400 and "http:// atau https://" in bad.text
    made = post_form(staff, "/dinas/pelatihan", {
        "topic": "Pemasaran daring", "trainer": "Dinas", "starts_at": "2030-01-10T09:00",
        "capacity": "20", "place": "", "online_url": "https://meet.example.id/abc"})
    assert made.status_code == 303
    tid = int(made.headers["location"].rsplit("/", 1)[1])
    with world.session() as session:
        training = session.get(Training, tid)
        assert training is not None and training.starts_at.hour == 1  # 09:00 WITA
    page = staff.get(f"/dinas/pelatihan/{tid}")
    assert "10 Januari 2030" in page.text and "09.00 WITA" in page.text
    path = f"/dinas/pelatihan/{tid}"
    assert post_form(staff, f"{path}/peserta", {"business_id": str(world.ids["business_b"])},
                     form_page=path).status_code == 303
    assert _registrations(world, tid) == [(world.ids["business_b"], "whatsapp")]
    assert post_form(staff, f"{path}/hadir", {"business_id": str(world.ids["business_b"]),
                                              "attended": "1"}, form_page=path).status_code == 303
    unregistered = post_form(staff, f"{path}/hadir", {
        "business_id": str(world.ids["business_a"]), "attended": "1"}, form_page=path)
    assert unregistered.status_code == 404
    with world.session() as session:
        reg = session.scalars(select(TrainingRegistration)).one()
        assert reg.attendance == Attendance.hadir and reg.attendance_by == "staf"
    listing = staff.get("/dinas/pelatihan").text
    assert "1 pelatihan, 1 pendaftaran, 1 hadir." in listing
    assert world.client("pemilik-a").get("/dinas/pelatihan").status_code == 403


def _request(world: World, owner: str = "pemilik-a", topic: str = "legalitas") -> int:
    client = world.client(owner)
    response = post_form(client, "/portal/pendampingan",
                         {"topic": topic, "description": "Cara mengurus PIRT"})
    assert response.status_code == 303
    with world.session() as session:
        return int(session.scalars(select(GuidanceRequest.id).order_by(
            GuidanceRequest.id.desc())).first() or 0)


def test_guidance_flow_and_isolation(world: World) -> None:
    helpers = _pendampings(world)
    rid = _request(world)
    owner_a, owner_b = world.client("pemilik-a"), world.client("pemilik-b")
    assert 'data-status="diajukan"' in owner_a.get(f"/portal/pendampingan/{rid}").text
    assert owner_b.get(f"/portal/pendampingan/{rid}").status_code == 404
    assert "Cara mengurus PIRT" not in owner_b.get("/portal/pendampingan").text
    bad_topic = post_form(owner_a, "/portal/pendampingan", {"topic": "pajak",
                                                            "description": "x"})
    assert bad_topic.status_code == 400 and "tidak dikenal" in bad_topic.text
    # Staff see the request but cannot assign; the admin can, to a pendamping only.
    staff, admin = world.client("staf"), world.client("admin")
    assert "Cara" not in staff.get("/dinas/pendampingan").text  # notes stay private
    assert 'action="/dinas/pendampingan/' not in staff.get("/dinas/pendampingan").text
    form = {"pendamping_id": str(helpers["pendamping-1"])}
    assert post_form(staff, f"/dinas/pendampingan/{rid}/tugaskan", form,
                     form_page="/dinas/pendampingan").status_code == 403
    with world.session() as session:
        staff_id = session.scalars(select(GuidanceRequest)).one().pendamping_id
    assert staff_id is None
    not_helper = post_form(admin, f"/dinas/pendampingan/{rid}/tugaskan",
                           {"pendamping_id": str(_user_id(world, "staf"))},
                           form_page="/dinas/pendampingan")
    assert not_helper.status_code == 400 and "bukan tenaga pendamping" in not_helper.text
    assert post_form(admin, f"/dinas/pendampingan/{rid}/tugaskan", form,
                     form_page="/dinas/pendampingan").status_code == 303
    # Pendamping 1 sees and works on it; pendamping 2 and staff cannot.
    one, two = world.client("pendamping-1"), world.client("pendamping-2")
    assert f"/pendamping/permintaan/{rid}" in one.get("/pendamping").text
    assert f"/pendamping/permintaan/{rid}" not in two.get("/pendamping").text
    assert two.get(f"/pendamping/permintaan/{rid}").status_code == 404
    assert staff.get(f"/pendamping/permintaan/{rid}").status_code == 403
    assert owner_a.get("/pendamping").status_code == 403
    path = f"/pendamping/permintaan/{rid}"
    session_form = {"held_on": "2026-12-02", "duration_minutes": "45",
                    "notes": "Formulir PIRT diisi bersama", "private_notes": "RAHASIA-PENDAMPING",
                    "follow_up": "Unggah foto dapur", "follow_up_due": "2026-12-09"}
    assert post_form(two, f"{path}/sesi", session_form,
                     form_page="/pendamping").status_code == 404
    assert post_form(one, f"{path}/sesi", session_form, form_page=path).status_code == 303
    assert post_form(one, f"{path}/sesi", {**session_form, "duration_minutes": "0"},
                     form_page=path).status_code == 400
    assert "RAHASIA-PENDAMPING" in one.get(path).text
    owner_view = owner_a.get(f"/portal/pendampingan/{rid}").text
    assert 'data-status="berjalan"' in owner_view and "Formulir PIRT diisi bersama" in owner_view
    assert "Unggah foto dapur" in owner_view and "RAHASIA-PENDAMPING" not in owner_view
    assert post_form(one, f"{path}/selesai", {}, form_page=path).status_code == 303
    with world.session() as session:
        assert session.scalars(select(GuidanceRequest)).one().status == GuidanceStatus.selesai
    report = staff.get("/dinas/pendampingan").text
    assert "RAHASIA-PENDAMPING" not in report


def _user_id(world: World, username: str) -> int:
    from engine.models import User
    with world.session() as session:
        return int(session.scalars(select(User.id).where(User.username == username)).one())


def test_pendamping_account_from_the_admin_page_lands_on_its_page(world: World) -> None:
    admin = world.client("admin")
    created = post_form(admin, "/dinas/pengguna", {"username": "pendamping-baru",
                                                   "role": "pendamping",
                                                   "password": "Kuat-sekali-2026",
                                                   "business_id": ""})
    assert created.status_code == 200 and "pendamping-baru" in created.text
    refused = post_form(admin, "/dinas/pengguna", {
        "username": "pendamping-usaha", "role": "pendamping", "password": "Kuat-sekali-2026",
        "business_id": str(world.ids["business_a"])})
    assert refused.status_code == 400
    client = world.client()
    from tests.web_helpers import login
    response = login(client, "pendamping-baru", "Kuat-sekali-2026")
    assert response.status_code == 303 and response.headers["location"] == "/pendamping"
    assert client.get("/pendamping").status_code == 200
    assert client.get("/dinas").status_code == 403
    assert client.get("/portal/pelatihan", follow_redirects=False).status_code == 403
