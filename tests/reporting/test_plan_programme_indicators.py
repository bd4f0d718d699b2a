"""The plan's pelatihan and konsultasi indicators count Pasal 8 and 9 records.

A training counts in the WITA quarter it starts in, and only once staff mark it held
(``selesai``); a guidance session counts in the quarter of its local date. The records sit
on the edges of the quarters so a shifted boundary or a flipped comparison fails.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from engine.models import Role, TrainingStatus
from engine.reporting.programme_plan import REALISATION, quarter_bounds
from engine.umkm import guidance, trainings
from tests.web_helpers import NIK_A, make_eligible_business, make_user


def _training(db: Session, starts_at: datetime, status: TrainingStatus | None) -> None:
    training = trainings.create_training(db, topic="Foto produk", trainer="Dinas",
                                         starts_at=starts_at, capacity=5, place="Aula",
                                         actor="t")
    if status is not None:
        trainings.set_status(db, training, status, actor="t")


def _count(db: Session, key: str, quarter: int) -> int:
    start, end = quarter_bounds(2026, quarter)
    return REALISATION[key](db, start, end)


def test_trainings_held_count_in_their_wita_quarter(db: Session) -> None:
    # 31 March 16:30 UTC is 1 April 00:30 WITA: the second quarter.
    _training(db, datetime(2026, 3, 31, 16, 30, tzinfo=UTC), TrainingStatus.selesai)
    # 31 March 15:30 UTC is 31 March 23:30 WITA: still the first quarter.
    _training(db, datetime(2026, 3, 31, 15, 30, tzinfo=UTC), TrainingStatus.selesai)
    _training(db, datetime(2026, 5, 2, 1, tzinfo=UTC), TrainingStatus.dibatalkan)
    _training(db, datetime(2026, 5, 3, 1, tzinfo=UTC), None)  # scheduled, not held
    db.flush()
    assert [_count(db, "pelatihan", q) for q in (1, 2, 3, 4)] == [1, 1, 0, 0]


def test_guidance_sessions_count_by_their_local_date(db: Session) -> None:
    business, _ = make_eligible_business(db, "Tenun A", NIK_A)
    helper = make_user(db, "pendamping-q", Role.pendamping)
    request = guidance.create_request(db, business, "legalitas", "NIB", actor="a")
    guidance.assign(db, request, helper, actor="admin")
    for held_on in (date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 2),
                    date(2026, 12, 31)):
        guidance.log_session(db, request, helper, held_on=held_on, duration_minutes=30,
                             notes="Sesi")
    db.flush()
    assert [_count(db, "konsultasi", q) for q in (1, 2, 3, 4)] == [0, 1, 2, 1]
