"""Pasal 8 and 9 in the monitoring report: training participation and guidance figures
for the report's period, per kecamatan and per UMKM or topic (Pasal 15).

Why one module between the figures and the outputs: the HTML document, the web page
``/dinas/laporan`` (both through :func:`render_programme_section`) and the CLI table of
``umkm report`` (through :func:`programme_tables`) then show the same rows with the same
Indonesian labels, counted by :mod:`engine.reporting.programme_training` and
:mod:`engine.reporting.programme_guidance` exactly as the Dinas pages count them. A
period without any training or guidance request adds nothing to a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session

from engine.common.formatting import angka
from engine.common.i18n import get_lang, install_jinja, t
from engine.message.templating import TEMPLATES_DIR
from engine.reporting.periods import Period
from engine.reporting.programme_guidance import GuidanceRow, GuidanceSummary, guidance_summary
from engine.reporting.programme_training import (
    ParticipationRow,
    TrainingParticipation,
    training_participation,
)

__all__ = ["ProgrammeFigures", "ProgrammeTable", "programme_figures",
           "programme_tables", "render_programme_section"]


@dataclass(frozen=True)
class ProgrammeFigures:
    """The period's Pasal 8 and Pasal 9 figures (trainings by start, requests by date)."""

    period: Period
    training: TrainingParticipation
    guidance: GuidanceSummary

    @property
    def has_training(self) -> bool:
        return self.training.trainings_held > 0 or self.training.registrations > 0

    @property
    def has_guidance(self) -> bool:
        return any(row.requests for row in self.guidance.by_topic)

    @property
    def has_any(self) -> bool:
        return self.has_training or self.has_guidance


def programme_figures(session: Session, period: Period) -> ProgrammeFigures | None:
    """The figures of ``period``, or None when it had no training and no request."""
    figures = ProgrammeFigures(period, training_participation(session, period.start, period.end),
                               guidance_summary(session, period.start, period.end))
    return figures if figures.has_any else None


# --- one table model for both outputs ----------------------------------------------------


@dataclass(frozen=True)
class ProgrammeTable:
    """A titled table of already formatted cells; the first ``labels`` columns are text,
    the others figures (right-aligned in the terminal)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    total: list[str] | None = None
    labels: int = 1


def _num(value: float | None) -> str:
    return angka(value, get_lang())


def _training_cells(row: ParticipationRow, with_kecamatan: bool) -> list[str]:
    head = [row.label, row.kecamatan] if with_kecamatan else [row.label]
    return [*head, _num(row.registrations), _num(row.attended), _num(row.trainings)]


def _guidance_cells(row: GuidanceRow, label: str) -> list[str]:
    return [label, _num(row.requests), _num(row.sessions), _num(row.waiting),
            _num(row.median_response_hours)]


def _training_tables(training: TrainingParticipation) -> list[ProgrammeTable]:
    counts = [t("training.report.registrations"), t("training.report.attended"),
              t("training.report.trainings")]
    total = [t("report.total"), _num(training.registrations), _num(training.attended),
             _num(training.trainings_held)]
    return [
        ProgrammeTable("training-kecamatan", t("report.prog.training_by_kecamatan"),
                       [t("guidance.col.kecamatan"), *counts],
                       [_training_cells(r, False) for r in training.by_kecamatan], total),
        ProgrammeTable("training-business", t("report.prog.training_by_business"),
                       [t("guidance.col.business"), t("guidance.col.kecamatan"), *counts],
                       [_training_cells(r, True) for r in training.by_business], labels=2),
    ]


def _guidance_tables(guidance: GuidanceSummary) -> list[ProgrammeTable]:
    counts = [t("guidance.report.requests"), t("guidance.col.sessions"),
              t("guidance.report.waiting"), t("guidance.report.median")]
    requests = sum(r.requests for r in guidance.by_topic)
    total = [t("report.total"), _num(requests), _num(sum(r.sessions for r in guidance.by_topic)),
             _num(sum(r.waiting for r in guidance.by_topic)), "–"]
    return [
        ProgrammeTable("guidance-topic", t("report.prog.guidance_by_topic"),
                       [t("guidance.col.topic"), *counts],
                       [_guidance_cells(r, t(f"guidance.topic.{r.key}"))
                        for r in guidance.by_topic], total),
        ProgrammeTable("guidance-kecamatan", t("report.prog.guidance_by_kecamatan"),
                       [t("guidance.col.kecamatan"), *counts],
                       [_guidance_cells(r, r.label) for r in guidance.by_kecamatan], total),
    ]


def programme_tables(figures: ProgrammeFigures) -> list[ProgrammeTable]:
    """The tables of the figures that the period has (trainings, guidance or both)."""
    tables: list[ProgrammeTable] = []
    if figures.has_training:
        tables += _training_tables(figures.training)
    if figures.has_guidance:
        tables += _guidance_tables(figures.guidance)
    return tables


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "reports")),
                      autoescape=select_autoescape(["j2", "html"]), trim_blocks=True,
                      lstrip_blocks=True)
    install_jinja(env)
    return env


def render_programme_section(figures: ProgrammeFigures | None) -> Markup:
    """The report's ``<section id="programmes">`` (empty without figures)."""
    if figures is None:
        return Markup("")
    training = figures.training
    return Markup(_environment().get_template("programme_section.html.j2").render(
        figures=figures, tables=programme_tables(figures),
        training_totals=t("training.report.totals", held=training.trainings_held,
                          registrations=training.registrations, attended=training.attended)))
