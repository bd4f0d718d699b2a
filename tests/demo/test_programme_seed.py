"""The demo's trainings and guidance (Pasal 8 and 9): deterministic, and the figures the
dashboard shows from them are real."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.demo.seeding import seed_demo
from engine.models import GuidanceRequest, GuidanceSession, Training, TrainingRegistration
from engine.reporting.programme_guidance import guidance_summary
from engine.reporting.programme_training import training_participation

REF = datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_demo_seeds_trainings_and_guidance_once(db: Session) -> None:
    seed_demo(db, reference=REF)
    seed_demo(db, reference=REF)  # idempotent: nothing twice
    assert db.scalar(select(func.count(Training.id))) == 3
    assert db.scalar(select(func.count(TrainingRegistration.id))) == 6 + 5 + 2
    assert db.scalar(select(func.count(GuidanceRequest.id))) == 4
    assert db.scalar(select(func.count(GuidanceSession.id))) == 3
    participation = training_participation(db)
    assert (participation.registrations, participation.attended) == (13, 4)
    topics = {r.key: (r.requests, r.sessions, r.median_response_hours)
              for r in guidance_summary(db).by_topic}
    assert topics["legalitas"] == (1, 2, 5.0)
    assert topics["standardisasi_sertifikasi"] == (1, 0, None)
