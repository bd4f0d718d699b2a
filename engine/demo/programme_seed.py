"""Demo trainings (Pasal 8) and guidance requests (Pasal 9), deterministic from the
demo's reference time and its businesses (in id order).

Why through the services: the demo then shows exactly what the rules allow (a full
training, one registration per business, sessions only by the assigned pendamping),
and the dashboard's participation and guidance figures have real numbers to show. The
demo pendamping account ``pendamping-demo`` has no usable password until an admin sets
one (``umkm user passwd pendamping-demo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import (
    Business,
    GuidanceRequest,
    RegistrationSource,
    Role,
    TrainingStatus,
    User,
)
from engine.umkm import guidance, trainings

ACTOR = "demo"
PENDAMPING = "pendamping-demo"
# (topic, trainer, days from reference, capacity, place, online link, registered slice)
TRAININGS = (
    ("Foto produk dengan ponsel", "Dinas Koperasi & UMKM TTS", -20, 20, "Aula Dinas, SoE",
     None, slice(0, 6)),
    ("Pemasaran lewat WhatsApp Business", "Politeknik Negeri Kupang", 10, 25, None,
     "https://umkm.ttskab.go.id/pelatihan/daring", slice(2, 7)),
    ("Pembukuan sederhana untuk usaha mikro", "Bank NTT Cabang SoE", 24, 2,
     "Balai Desa Kuatae, Kota Soe", None, slice(0, 2)),
)
# (business index, topic, description, hours to assignment or None, sessions, closed)
REQUESTS = (
    (0, "legalitas", "Ingin mengurus NIB dan izin PIRT untuk keripik pisang.", 5, 2, True),
    (1, "pemasaran", "Belajar berjualan di lokapasar dan memotret tenun.", 20, 1, False),
    (3, "permodalan", "Butuh informasi KUR untuk membeli alat tenun baru.", 48, 0, False),
    (4, "standardisasi_sertifikasi", "Cara mendapatkan sertifikat halal madu hutan.", None, 0,
     False),
)


def seed_programmes(session: Session, business_ids: Sequence[int], reference: datetime
                    ) -> None:
    """A few trainings with registrations and attendance, and guidance with sessions."""
    businesses = [b for b in (session.get(Business, bid) for bid in sorted(business_ids))
                  if b is not None]
    if len(businesses) < 7:
        return
    _trainings(session, businesses, reference)
    _guidance(session, businesses, reference, _pendamping(session))


def _trainings(session: Session, businesses: list[Business], reference: datetime) -> None:
    for topic, trainer, days, capacity, place, link, chosen in TRAININGS:
        starts = reference + timedelta(days=days)
        training = trainings.create_training(
            session, topic=topic, trainer=trainer, starts_at=starts, capacity=capacity,
            place=place, online_url=link, actor=ACTOR)
        for index, business in enumerate(businesses[chosen]):
            source = RegistrationSource.whatsapp if index % 3 == 2 else RegistrationSource.portal
            registration = trainings.register(session, training.id, business, source=source,
                                              actor=ACTOR, now=starts - timedelta(days=7))
            registration.registered_at = starts - timedelta(days=7, hours=-index)
            if days < 0:
                trainings.record_attendance(session, training.id, business.id, index % 3 != 2,
                                            actor=ACTOR)
        if days < 0:
            trainings.set_status(session, training, TrainingStatus.selesai, actor=ACTOR)


def _pendamping(session: Session) -> User:
    found = session.scalars(select(User).where(User.username == PENDAMPING)).first()
    if found is None:  # "!" is no Argon2 hash: nobody logs in until a password is set
        found = User(username=PENDAMPING, password_hash="!", role=Role.pendamping,
                     active=True)
        session.add(found)
        session.flush()
    return found


def _guidance(session: Session, businesses: list[Business], reference: datetime,
              helper: User) -> None:
    for index, topic, text, hours, sessions, closed in REQUESTS:
        request: GuidanceRequest = guidance.create_request(session, businesses[index], topic,
                                                           text, actor=ACTOR)
        asked = reference - timedelta(days=30 - 5 * index)
        request.created_at = asked
        if hours is None:
            continue
        guidance.assign(session, request, helper, actor=ACTOR)
        request.assigned_at = asked + timedelta(hours=hours)
        for number in range(sessions):
            held = asked + timedelta(days=2 + 7 * number)
            entry = guidance.log_session(
                session, request, helper, held_on=held.date(), duration_minutes=60 + 15 * number,
                notes=f"Sesi {number + 1}: {text}", follow_up="Lengkapi dokumen yang kurang",
                follow_up_due=(held + timedelta(days=7)).date())
            entry.created_at = held
        if closed:
            guidance.close_request(session, request, helper)
            request.closed_at = asked + timedelta(days=20)
    session.flush()
