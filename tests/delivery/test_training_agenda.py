"""The newsletter's training agenda (Pasal 8) includes the upcoming Dinas trainings of the
``training`` table, next to the YAML's own, and nothing past, cancelled, full or far off."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.delivery.context import content_context, with_agenda
from engine.delivery.preview import render_previews
from engine.models import RegistrationSource, Training, TrainingStatus, utcnow
from engine.umkm import trainings
from tests.web_helpers import make_eligible_business

NEWSLETTER = Path(__file__).resolve().parents[2] / "campaigns" / "newsletter-bulanan.yaml"


def _add(db: Session, topic: str, days: int, capacity: int = 10) -> Training:
    return trainings.create_training(db, topic=topic, trainer="Dinas", capacity=capacity,
                                     starts_at=utcnow() + timedelta(days=days),
                                     place="Aula Dinas, SoE", actor="t")


def test_newsletter_agenda_lists_upcoming_table_trainings(db: Session) -> None:
    spec = load_campaign(NEWSLETTER)
    _add(db, "Foto produk dengan ponsel", 7)
    _add(db, "Terlalu jauh", 90)
    _add(db, "Sudah lewat", -2)
    cancelled = _add(db, "Dibatalkan", 5)
    trainings.set_status(db, cancelled, TrainingStatus.dibatalkan, actor="t")
    full = _add(db, "Penuh", 6, capacity=1)
    business, _ = make_eligible_business(db, "Tenun A")
    trainings.register(db, full.id, business, source=RegistrationSource.portal, actor="a")
    db.flush()
    agenda = with_agenda(db, spec, content_context(spec), "https://umkm.example.id/")
    titles = [tr["title"] for tr in agenda["trainings"]]
    assert titles == ["Pelatihan pemasaran digital untuk UMKM", "Foto produk dengan ponsel"]
    assert agenda["trainings"][1]["url"] == "https://umkm.example.id/portal/pelatihan"
    assert agenda["trainings"][1]["date"].tzinfo is not None
    html = render_previews(db, spec, 1)[0].html
    assert "Foto produk dengan ponsel" in html and "Aula Dinas, SoE" in html
    assert "Terlalu jauh" not in html and "Dibatalkan" not in html and "Penuh" not in html
