"""The annual programme plan (Pasal 11-12): its indicators, its YAML file and its storage.

Why a YAML file next to the web form: the Dinas drafts the rencana tahunan with the
Bappeda in a document, so ``umkm rencana set 2026 --file plan.yaml`` loads the agreed
numbers in one step, and the same file is kept as the record of what was planned. The
file is read with :mod:`engine.campaign.yamlsource` (positions, no YAML 1.1 surprises)
and checked with pydantic; every problem is reported at once as ``file:line:column:``
in Indonesian, like a campaign file.

Targets are per quarter. Two indicators are *stocks* (UMKM registered, UMKM eligible):
the target of a quarter is the level at its end, and the year's figure is the last
quarter's. The others are *flows* counted within each quarter; the year is the sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.campaign.loader import CampaignError
from engine.campaign.yamlsource import Position, SourceMap, parse, read_text
from engine.common.errors import InvalidInput
from engine.common.i18n import t
from engine.common.validation_text import describe_error
from engine.models import PlanBudget, PlanPartner, PlanTarget, ProgrammePlan

INDICATORS: tuple[str, ...] = ("umkm_terdaftar", "umkm_layak", "umkm_aktif_digital",
                               "kampanye", "jangkauan", "minat", "pelatihan", "konsultasi")
CUMULATIVE: frozenset[str] = frozenset({"umkm_terdaftar", "umkm_layak"})
BUDGET_SOURCES: tuple[str, ...] = ("apbd", "apbn", "lainnya")
PARTNER_KINDS: tuple[str, ...] = ("pemerintah", "non_pemerintah")
QUARTERS = 4
MIN_YEAR, MAX_YEAR = 2025, 2100


def indicator_label(key: str, lang: str | None = None) -> str:
    """The Indonesian (or English) name of an indicator key."""
    return t(f"plan.indicator.{key}", lang=lang)


# --- the file schema --------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Quarterly = list[int]


class Targets(_Strict):
    """One list of four quarterly targets (Q1..Q4) per indicator; omitted = no target."""

    umkm_terdaftar: Quarterly | None = None
    umkm_layak: Quarterly | None = None
    umkm_aktif_digital: Quarterly | None = None
    kampanye: Quarterly | None = None
    jangkauan: Quarterly | None = None
    minat: Quarterly | None = None
    pelatihan: Quarterly | None = None
    konsultasi: Quarterly | None = None


class BudgetLine(_Strict):
    source: Literal["apbd", "apbn", "lainnya"]
    description: str = Field("", max_length=300)
    amount: int = Field(ge=0)
    used: int = Field(0, ge=0)


class Partner(_Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["pemerintah", "non_pemerintah"] = "pemerintah"
    role: str = Field("", max_length=2000)


class PlanSpec(_Strict):
    year: int | None = None
    title: str = Field("", max_length=200)
    notes: str = Field("", max_length=5000)
    targets: Targets = Field(default_factory=Targets)
    budget: list[BudgetLine] = Field(default_factory=list, max_length=100)
    partners: list[Partner] = Field(default_factory=list, max_length=100)

    def target_rows(self) -> dict[str, list[int]]:
        return {k: v for k, v in self.targets.model_dump().items() if v is not None}


# One located problem, printed ``file:line:column: message`` like a campaign's.
PlanFileProblem = CampaignError


class PlanFileError(InvalidInput):
    """Every problem of one plan file (never only the first)."""

    def __init__(self, problems: list[PlanFileProblem]):
        super().__init__("plan.file_invalid", errors="\n".join(str(p) for p in problems))
        self.problems = problems


# --- reading --------------------------------------------------------------------------------


def read_plan_file(path: Path, year: int) -> PlanSpec:
    """The plan in ``path`` for ``year``; :class:`PlanFileError` lists every problem."""
    text, problem = read_text(path)
    if problem is not None or text is None:
        position = problem.position if problem else Position(1, 1)
        message = problem.message if problem else t("plan.file_unreadable")
        raise PlanFileError([PlanFileProblem(str(path), position.line, position.column,
                                             message)])
    return parse_plan_text(text, str(path), year)


def parse_plan_text(text: str, file: str, year: int) -> PlanSpec:
    """:func:`read_plan_file` for text already read (tests, the web form)."""
    document = parse(text)
    problems = [PlanFileProblem(file, p.position.line, p.position.column, p.message)
                for p in document.problems]
    if document.data is None or problems:
        raise PlanFileError(problems or [PlanFileProblem(file, 1, 1, t("yaml.empty"))])
    try:
        spec = PlanSpec.model_validate(document.data)
    except ValidationError as exc:
        raise PlanFileError([_problem(file, e, document.source_map)
                             for e in exc.errors()]) from exc
    problems = _semantic_problems(spec, year, file, document.source_map)
    if problems:
        raise PlanFileError(problems)
    return spec


def _semantic_problems(spec: PlanSpec, year: int, file: str,
                       smap: SourceMap) -> list[PlanFileProblem]:
    """What the schema cannot say: four quarters, no negative target, the right year."""
    problems: list[PlanFileProblem] = []
    if spec.year is not None and spec.year != year:
        pos = smap.value(("year",))
        problems.append(PlanFileProblem(file, pos.line, pos.column,
                                        t("plan.year_mismatch", file_year=spec.year, year=year)))
    for key, values in spec.target_rows().items():
        pos = smap.value(("targets", key))
        if len(values) != QUARTERS:
            problems.append(PlanFileProblem(file, pos.line, pos.column,
                                            t("plan.four_quarters", count=len(values))))
        for i, value in enumerate(values):
            if value < 0:
                at = smap.value(("targets", key, i))
                problems.append(PlanFileProblem(file, at.line, at.column,
                                                t("plan.negative", value=value)))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _problem(file: str, error: Mapping[str, Any], smap: SourceMap) -> PlanFileProblem:
    """One pydantic error in Indonesian (the campaign files' own wording,
    :func:`describe_error`), at the place in the file it belongs to."""
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    path, _ = smap.deepest(loc if kind != "missing" else loc[:-1])
    position = smap.key_or_value(path) if kind in ("missing", "extra_forbidden") \
        else smap.value(path)
    allowed = _allowed_keys(loc[:-1]) if kind == "extra_forbidden" else []
    return PlanFileProblem(file, position.line, position.column, describe_error(error, allowed))


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = PlanSpec
    if loc[:1] == ("targets",):
        model = Targets
    elif loc[:1] == ("budget",):
        model = BudgetLine
    elif loc[:1] == ("partners",):
        model = Partner
    return list(model.model_fields)


# --- storage --------------------------------------------------------------------------------


def plan_of(session: Session, year: int) -> ProgrammePlan | None:
    return session.scalars(select(ProgrammePlan).where(ProgrammePlan.year == year)).first()


def _plan_for_update(session: Session, year: int, actor: str) -> ProgrammePlan:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput("plan.bad_year", year=year, low=MIN_YEAR, high=MAX_YEAR)
    plan = plan_of(session, year)
    if plan is None:
        plan = ProgrammePlan(year=year, title="", updated_by=actor)
        session.add(plan)
        session.flush()
    plan.updated_by = actor
    return plan


def save_plan(session: Session, year: int, spec: PlanSpec, actor: str) -> ProgrammePlan:
    """Replace the year's plan (targets, budget lines, partners) with ``spec``."""
    plan = _plan_for_update(session, year, actor)
    plan.title, plan.notes = spec.title, spec.notes or None
    _replace_targets(session, plan, spec.target_rows())
    session.execute(delete(PlanBudget).where(PlanBudget.plan_id == plan.id))
    session.execute(delete(PlanPartner).where(PlanPartner.plan_id == plan.id))
    session.add_all(PlanBudget(plan_id=plan.id, source=b.source, description=b.description,
                               amount=b.amount, used=b.used) for b in spec.budget)
    session.add_all(PlanPartner(plan_id=plan.id, name=p.name, kind=p.kind, role=p.role)
                    for p in spec.partners)
    session.flush()
    return plan


def set_targets(session: Session, year: int, targets: dict[str, list[int]],
                actor: str) -> ProgrammePlan:
    """Replace only the targets (the web form); budget and partners stay as they are."""
    for key, values in targets.items():
        if key not in INDICATORS or len(values) != QUARTERS or min(values) < 0:
            raise InvalidInput("plan.bad_targets", key=key)
    plan = _plan_for_update(session, year, actor)
    _replace_targets(session, plan, targets)
    session.flush()
    return plan


def _replace_targets(session: Session, plan: ProgrammePlan,
                     targets: dict[str, list[int]]) -> None:
    session.execute(delete(PlanTarget).where(PlanTarget.plan_id == plan.id))
    session.add_all(PlanTarget(plan_id=plan.id, indicator=key, quarter=q + 1, target=value)
                    for key, values in targets.items() for q, value in enumerate(values))


def targets_of(session: Session, plan: ProgrammePlan) -> dict[str, list[int | None]]:
    """Every indicator's four quarterly targets (None where none was set)."""
    table: dict[str, list[int | None]] = {k: [None] * QUARTERS for k in INDICATORS}
    for row in session.scalars(select(PlanTarget).where(PlanTarget.plan_id == plan.id)):
        if row.indicator in table and 1 <= row.quarter <= QUARTERS:
            table[row.indicator][row.quarter - 1] = int(row.target)
    return table
