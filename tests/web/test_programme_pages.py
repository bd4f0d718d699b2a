"""``/dinas/rencana``, ``/dinas/kesepakatan``, ``/dinas/pengawasan``, ``/portal/pengaduan``.

Role isolation (owners never reach the Dinas pages; staff read; only admins change),
CSRF-protected forms, the PDF refusals over HTTP, and the owner seeing complaints
about their own business only.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.models import Agreement, Complaint, PlanTarget, utcnow
from engine.reporting.periods import local_now_date
from engine.umkm import agreements, supervision
from tests.web_helpers import (
    World,
    csrf,
    post_form,
    world_fixture,  # noqa: F401 - the "world" fixture
)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"
DINAS_PAGES = ("/dinas/rencana", "/dinas/kesepakatan", "/dinas/pengawasan")


def _agreement(world: World, days: int = 200, name: str = "Lokapasar Uji") -> int:
    with world.session() as s:
        today = local_now_date()
        agreement = agreements.create_agreement(
            s, provider_name=name, kind="lokapasar", parties="Pemda; PT Uji",
            rights_obligations="Hak: etalase gratis.", start_date=today - timedelta(days=10),
            end_date=today + timedelta(days=days), actor="admin")
        s.commit()
        return int(agreement.id)


@pytest.mark.parametrize("path", DINAS_PAGES)
def test_owner_gets_403_and_anonymous_the_login(world: World, path: str) -> None:
    owner = world.client("pemilik-a").get(path, follow_redirects=False)
    assert owner.status_code == 403
    anonymous = world.client().get(path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_owner_cannot_open_an_agreement_or_its_document(world: World) -> None:
    agreement_id = _agreement(world)
    client = world.client("pemilik-a")
    for path in (f"/dinas/kesepakatan/{agreement_id}",
                 f"/dinas/kesepakatan/{agreement_id}/dokumen"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 403 and "Lokapasar Uji" not in response.text


def test_staff_views_but_cannot_edit(world: World) -> None:
    agreement_id = _agreement(world)
    staff = world.client("staf")
    listing = staff.get("/dinas/kesepakatan")
    assert listing.status_code == 200 and "Lokapasar Uji" in listing.text
    assert 'id="agreement-form"' not in listing.text
    assert 'id="targets-form"' not in staff.get("/dinas/rencana").text
    token = csrf(staff, "/dinas/kesepakatan")
    for path, data in (("/dinas/kesepakatan", {"provider_name": "X", "kind": "kurir",
                                               "start_date": "2026-01-01",
                                               "end_date": "2026-12-31"}),
                       ("/dinas/rencana/2026", {"kampanye_1": "3"}),
                       ("/dinas/pengawasan", {"text": "x", "business_id": "1"}),
                       (f"/dinas/kesepakatan/{agreement_id}/dokumen", {})):
        response = staff.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert response.status_code == 403, path
    with world.session() as s:
        assert s.scalar(select(Agreement.id).where(Agreement.provider_name == "X")) is None
        assert s.scalars(select(PlanTarget)).first() is None


def test_admin_sets_targets_and_sees_them_charted(world: World) -> None:
    admin = world.client("admin")
    response = post_form(admin, "/dinas/rencana/2026", {"kampanye_1": "3", "kampanye_4": "1.000",
                                                         "minat_2": ""},
                         form_page="/dinas/rencana?tahun=2026")
    assert response.status_code == 303
    page = admin.get("/dinas/rencana", params={"tahun": "2026"})
    assert 'data-chart="plan-kampanye"' in page.text
    assert 'data-series="target" data-key="q4" data-value="1000"' in page.text
    bad = post_form(admin, "/dinas/rencana/2026", {"kampanye_1": "tiga"},
                    form_page="/dinas/rencana")
    assert bad.status_code == 400 and "bilangan bulat" in bad.text
    assert world.client("admin").get("/dinas/rencana?tahun=dua").status_code == 400
    assert world.client("admin").get("/dinas/rencana?tahun=1999").status_code == 400


def test_admin_pastes_the_whole_plan_as_yaml(world: World) -> None:
    admin = world.client("admin")
    bad = post_form(admin, "/dinas/rencana/2026/yaml",
                    {"plan_yaml": "targets:\n  kampanye: [1, 2]\n"}, form_page="/dinas/rencana")
    assert bad.status_code == 422 and "rencana.yaml:2:13" in bad.text
    plan = ("targets:\n  kampanye: [1, 1, 1, 1]\nbudget:\n  - {source: apbn, amount: 7500000}\n"
            "partners:\n  - {name: Universitas Timor, kind: non_pemerintah}\n")
    ok = post_form(admin, "/dinas/rencana/2026/yaml", {"plan_yaml": plan},
                   form_page="/dinas/rencana")
    assert ok.status_code == 303
    text = world.client("staf").get("/dinas/rencana?tahun=2026").text
    assert "Rp 7.500.000" in text and "Universitas Timor" in text
    assert 'id="yaml-form"' not in text  # staff see the plan, not the form


def test_admin_records_an_agreement_and_uploads_its_pdf(world: World) -> None:
    admin = world.client("admin")
    created = post_form(admin, "/dinas/kesepakatan", {
        "provider_name": "Kurir Timor", "kind": "kurir", "parties": "Pemda; CV Timor",
        "rights_obligations": "Tarif khusus.", "start_date": "2026-01-01",
        "end_date": "2027-12-31"})
    assert created.status_code == 303
    detail_path = created.headers["location"].split("?")[0]
    token = csrf(admin, detail_path)
    refusals = [
        (b"GIF89a....", "kontrak.pdf", "application/pdf", "bukan PDF"),
        (b"", "kosong.pdf", "application/pdf", "Pilih berkas PDF"),
        (PDF + b"0" * (world.settings.agreement_max_bytes + 10), "besar.pdf",
         "application/pdf", "terlalu besar"),
    ]
    for data, name, kind, message in refusals:
        response = admin.post(detail_path + "/dokumen", data={"csrf_token": token},
                              files={"document": (name, data, kind)}, follow_redirects=False)
        assert response.status_code == 422 and message in response.text, name
    ok = admin.post(detail_path + "/dokumen", data={"csrf_token": token},
                    files={"document": ("kontrak.txt", PDF, "text/plain")},
                    follow_redirects=False)
    assert ok.status_code == 303
    download = world.client("staf").get(detail_path + "/dokumen")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    bad_date = post_form(admin, "/dinas/kesepakatan", {"provider_name": "Y", "kind": "kurir",
                                                        "start_date": "31-12-2026",
                                                        "end_date": "2027-01-01"})
    assert bad_date.status_code == 400 and "2026-12-31" in bad_date.text


def test_the_reminder_shows_on_the_agreements_page(world: World) -> None:
    soon = _agreement(world, days=10, name="Segera Berakhir")
    _agreement(world, days=300, name="Masih Lama")
    with world.session() as s:
        agreements.remind_expiring(s, utcnow(), 30)
        s.commit()
    text = world.client("staf").get("/dinas/kesepakatan").text
    reminders = text.split('id="reminders"', 1)[1].split("</div>", 1)[0]
    assert f'data-agreement="{soon}"' in reminders and "Masih Lama" not in reminders


def test_complaint_flow_and_the_owner_sees_only_their_own(world: World) -> None:
    agreement_id = _agreement(world)
    admin = world.client("admin")
    a, b = world.ids["business_a"], world.ids["business_b"]
    for data in ({"text": "Kemasan tenun sobek", "business_id": str(a)},
                 {"text": "Madu bocor", "business_id": str(b)},
                 {"text": "Pembayaran lambat", "agreement_id": str(agreement_id)}):
        assert post_form(admin, "/dinas/pengawasan", data).status_code == 303
    both = post_form(admin, "/dinas/pengawasan", {"text": "x", "business_id": str(a),
                                                  "agreement_id": str(agreement_id)})
    assert both.status_code == 422 and "tepat satu" in both.text
    with world.session() as s:
        mine = s.scalars(select(Complaint).where(Complaint.business_id == a)).one()
    followed = post_form(admin, f"/dinas/pengawasan/{mine.id}/tindak-lanjut",
                         {"note": "Sudah diganti", "status": "selesai"},
                         form_page="/dinas/pengawasan")
    assert followed.status_code == 303
    staff_view = world.client("staf").get("/dinas/pengawasan").text
    assert "Sudah diganti" in staff_view and "Pembayaran lambat" in staff_view
    owner = world.client("pemilik-a").get("/portal/pengaduan", params={"business_id": b})
    assert owner.status_code == 200
    assert "Kemasan tenun sobek" in owner.text and "Sudah diganti" in owner.text
    assert "Madu bocor" not in owner.text and "Pembayaran lambat" not in owner.text
    assert "Madu bocor" in world.client("pemilik-b").get("/portal/pengaduan").text
    assert world.client("staf").get("/portal/pengaduan").status_code == 403


def test_engine_refusals_on_the_forms_are_pages_not_json(world: World) -> None:
    admin = world.client("admin")
    response = post_form(admin, "/dinas/pengawasan/999999/tindak-lanjut",
                         {"note": "x", "status": "selesai"}, form_page="/dinas/pengawasan")
    assert response.status_code == 404 and "<html" in response.text.lower()
    with world.session() as s:
        complaint = supervision.create_complaint(s, text="t", actor="admin",
                                                 business_id=world.ids["business_a"])
        s.commit()
        cid = complaint.id
    wrong = post_form(admin, f"/dinas/pengawasan/{cid}/tindak-lanjut",
                      {"note": "x", "status": "hilang"}, form_page="/dinas/pengawasan")
    assert wrong.status_code == 422 and "hilang" in wrong.text
