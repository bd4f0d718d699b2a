"""The demo's annual plan, agreements and one complaint (Pasal 11-14), fixed by code.

Why deterministic and relative to the reference date: ``umkm demo`` must show the plan
page, the agreements register with one reminder due, and a complaint on the first run,
for the demo's year; the same reference always gives the same rows. Seeded once: a
year that already has a plan, or agreements already present, are left as they are.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Agreement, Business, Complaint
from engine.reporting.plan_file import PlanSpec, plan_of, save_plan
from engine.umkm import agreements, supervision

DEMO_ACTOR = "demo"

DEMO_PLAN: dict[str, object] = {
    "title": "Rencana Pemberdayaan UMKM Berbasis Digital (demo)",
    "notes": "Disusun bersama Bappeda; dipantau setiap triwulan (Pasal 11 ayat 2).",
    "targets": {
        "umkm_terdaftar": [10, 14, 18, 22],
        "umkm_layak": [6, 10, 14, 18],
        "umkm_aktif_digital": [4, 8, 10, 12],
        "kampanye": [2, 3, 3, 4],
        # about what the demo history (engine.demo.history) reaches, so the chart compares
        "jangkauan": [4000, 4500, 5000, 6000],
        "minat": [10, 14, 18, 22],
        "pelatihan": [1, 2, 2, 1],
        "konsultasi": [5, 10, 10, 5],
    },
    "budget": [
        {"source": "apbd", "description": "Pelatihan pemasaran digital dan operasional sistem",
         "amount": 150_000_000, "used": 62_500_000},
        {"source": "apbn", "description": "Dana alokasi khusus non fisik: pendampingan UMKM",
         "amount": 75_000_000, "used": 20_000_000},
        {"source": "lainnya", "description": "CSR perbankan daerah (tidak mengikat)",
         "amount": 25_000_000, "used": 0},
    ],
    "partners": [
        {"name": "Bappeda Kabupaten TTS", "kind": "pemerintah",
         "role": "Perencanaan dan penganggaran program (Pasal 12)."},
        {"name": "Dinas Kominfo Kabupaten TTS", "kind": "pemerintah",
         "role": "Sarana dan prasarana digital, situs web resmi (Pasal 4)."},
        {"name": "Universitas Timor", "kind": "non_pemerintah",
         "role": "Pelatihan dan pendampingan UMKM (Pasal 8 dan 9)."},
    ],
}


def seed_plan(session: Session, reference: datetime) -> None:
    """The plan of the reference year, two agreements (one ending within the reminder
    window) and one open complaint about the first demo business."""
    year = reference.year
    if plan_of(session, year) is None:
        save_plan(session, year, PlanSpec.model_validate(DEMO_PLAN), DEMO_ACTOR)
    if session.scalar(select(func.count(Agreement.id))):
        return
    today = reference.date()
    marketplace = agreements.create_agreement(
        session, provider_name="Lokapasar Nusantara (demo)", kind="lokapasar",
        parties="Pemerintah Kabupaten TTS; PT Lokapasar Nusantara",
        rights_obligations="Penyedia menampilkan produk UMKM binaan tanpa biaya pendaftaran "
                           "dan menjaga data penjual; Dinas memverifikasi UMKM.",
        start_date=date(year - 1, 1, 1), end_date=today + timedelta(days=20),
        actor=DEMO_ACTOR)
    agreements.create_agreement(
        session, provider_name="Kurir Timor Express (demo)", kind="kurir",
        parties="Pemerintah Kabupaten TTS; CV Timor Express",
        rights_obligations="Tarif khusus pengiriman produk UMKM ke Kupang dan luar daerah.",
        start_date=date(year, 1, 1), end_date=date(year + 2, 12, 31), actor=DEMO_ACTOR)
    business_id = session.scalar(select(Business.id).order_by(Business.id).limit(1))
    if session.scalar(select(func.count(Complaint.id))) == 0:
        if business_id is not None:
            supervision.create_complaint(
                session, business_id=business_id, actor=DEMO_ACTOR,
                text="Pembeli melaporkan kemasan rusak saat diterima; mohon diperiksa.")
        else:
            supervision.create_complaint(
                session, agreement_id=marketplace.id, actor=DEMO_ACTOR,
                text="UMKM melaporkan pembayaran dari lokapasar terlambat dua minggu.")
    session.flush()
