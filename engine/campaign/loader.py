"""Campaign files -> validated specs, with every problem at its ``file:line:column``.

Why: a campaign file is written by hand; ``umkm campaign validate`` (and every launch)
reports *all* problems of a file together, printed the way editors and CI annotate, each
with a hint ("did you mean 'subject'?"). This module reads the YAML with its source map
(:mod:`engine.campaign.yamlsource`), validates it against the schema
(:mod:`engine.campaign.schema`), the type rules (:mod:`engine.campaign.rules`) and the
template checks (:mod:`engine.campaign.template_checks`), and turns pydantic's errors
into text at the key or value they are about.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from engine.campaign.rules import type_rule_problems, value_rule_problems
from engine.campaign.schema import RULE_MODELS, RULE_MODIFIERS, CampaignSpec, rule_primaries
from engine.campaign.template_checks import template_problems
from engine.campaign.yamlsource import Document, Position, SourceMap, parse, read_text
from engine.common.errors import InvalidInput
from engine.common.i18n import t
from engine.common.validation_text import describe_error, did_you_mean


@dataclass(frozen=True)
class CampaignError:
    """One problem, printed the way editors and CI annotate: ``file:line:column: message``."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class CampaignValidationError(InvalidInput):
    """Every problem found in one campaign file (never just the first)."""

    def __init__(self, errors: list[CampaignError]):
        super().__init__("campaign.invalid", errors="\n".join(str(e) for e in errors))
        self.errors = errors


# ----------------------------------------------------------------------------- pydantic -> text


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (Union, type(int | None)) and len(args) == 1:
        return _unwrap(args[0])
    return tp


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The schema model that owns the mapping at ``loc`` (for "did you mean")."""
    current: Any = CampaignSpec
    for element in loc:
        current = _unwrap(current)
        if isinstance(element, str) and element.startswith("rule:"):
            current = RULE_MODELS.get(element[5:])
        elif isinstance(element, str) and get_origin(current) in (Union, type(int | None)):
            current = _tagged(current, element)  # a discriminated union's branch
        elif isinstance(element, int):
            current = get_args(current)[0] if get_origin(current) is list else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            current = fields[element].annotation if element in fields else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _tagged(union: Any, tag: str) -> Any:
    for option in get_args(union):
        if get_origin(option) is Annotated and any(
                isinstance(m, Tag) and m.tag == tag for m in get_args(option)[1:]):
            return get_args(option)[0]
    return None


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _describe(error: Mapping[str, Any], smap: SourceMap) -> tuple[Position, str]:
    """Word one pydantic error (:func:`describe_error`) and find where in the file it is."""
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    if kind == "campaign.rule_shape":
        return _describe_rule(loc, error.get("input"), smap)
    if kind == "extra_forbidden":
        path, _ = smap.deepest(loc)
        return smap.key_or_value(path), describe_error(error, _keys_of(_model_at(loc[:-1])))
    if kind == "missing":
        path, _ = smap.deepest(loc[:-1])
        if loc == ("version",):
            return smap.key_or_value(path), t("campaign.missing", name="version",
                                              hint=t("campaign.version_hint"))
        return smap.key_or_value(path), describe_error(error)
    path, _ = smap.deepest(loc)
    return smap.value(path), describe_error(error)


def _describe_rule(loc: tuple[str | int, ...], value: Any, smap: SourceMap) -> tuple[Position, str]:
    path, _ = smap.deepest(loc)
    allowed = ", ".join(RULE_MODELS)
    if not isinstance(value, Mapping):
        return smap.value(path), t("campaign.rule_not_mapping")
    primaries = rule_primaries(value)
    unknown = [k for k in value if k not in RULE_MODELS and k not in RULE_MODIFIERS]
    if len(primaries) > 1:
        return (smap.key_or_value((*path, primaries[1])),
                t("campaign.rule_two_primaries", found=", ".join(primaries)))
    if unknown:
        name = str(unknown[0])
        return (smap.key_or_value((*path, name)),
                t("campaign.rule_unknown", name=name,
                  hint=did_you_mean(name, [*RULE_MODELS, *RULE_MODIFIERS]), allowed=allowed))
    return smap.value(path), t("campaign.rule_no_primary", found=", ".join(map(str, value)),
                               allowed=allowed)


# ----------------------------------------------------------------------------- loading


@dataclass
class _Checked:
    spec: CampaignSpec | None
    errors: list[CampaignError]
    data: Any
    source_map: SourceMap


def _check(path: Path) -> _Checked:
    """Every problem of one file, in file order; the spec when there are none."""
    file = str(path)
    text, problem = read_text(path)
    if text is None:
        assert problem is not None
        return _Checked(None, [_error(file, problem.position, problem.message)], None,
                        SourceMap())
    return _check_source(file, text)


def _check_source(file: str, text: str) -> _Checked:
    """Every problem of one campaign text named ``file`` (a path or the editor's name)."""
    document = parse(text)
    found = [(p.position, p.message) for p in document.problems]
    spec: CampaignSpec | None = None
    if document.data is not None:
        spec, schema_found = _check_document(document)
        found += schema_found
    elif not found:  # e.g. a lone tag or anchor: a document with nothing in it
        found.append((Position(1, 1), t("yaml.empty")))
    errors = sorted({_error(file, pos, msg) for pos, msg in found},
                    key=lambda e: (e.line, e.column, e.message))
    return _Checked(spec if not errors else None, errors, document.data, document.source_map)


def _check_document(document: Document) -> tuple[CampaignSpec | None, list[tuple[Position, str]]]:
    data, smap = document.data, document.source_map
    if not isinstance(data, dict):
        return None, [(smap.value(()), t("campaign.top_level"))]
    found: list[tuple[Position, str]] = []
    spec: CampaignSpec | None = None
    try:
        spec = CampaignSpec.model_validate(data, context={"skip_rules": True})
    except ValidationError as exc:
        found += [_describe(e, smap) for e in _without_echoes(exc.errors(include_url=False))]
    rules = type_rule_problems(data) + (value_rule_problems(
        spec.schedule.start, spec.offer.ends if spec.offer else None) if spec else [])
    found += [(smap.key_or_value(p.path), t(p.key, **p.params)) for p in rules]
    found += [(smap.value(p.path), p.message) for p in template_problems(data)]
    return spec, found


def _without_echoes(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop "'subject' is missing" when the same mapping has a misspelt ``subjek``:
    the suggestion on the unknown key already says it, once."""
    misspelt: set[tuple[Any, ...]] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            parent = tuple(error["loc"][:-1])
            for name in difflib.get_close_matches(str(error["loc"][-1]),
                                                  _keys_of(_model_at(parent)), n=1, cutoff=0.6):
                misspelt.add((*parent, name))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in misspelt)]


def _error(file: str, position: Position, message: str) -> CampaignError:
    return CampaignError(file, position.line, position.column, message)


def load_campaign(path: Path) -> CampaignSpec:
    """Read and fully validate one campaign file (schema, type rules, templates)."""
    checked = _check(Path(path))
    if checked.spec is None:
        raise CampaignValidationError(checked.errors)
    return checked.spec


def check_text(text: str, file: str) -> tuple[CampaignSpec | None, list[CampaignError]]:
    """Validate a campaign given as text (the browser studio's editor), exactly as
    ``umkm campaign validate`` validates a file: the spec, or every problem in order."""
    checked = _check_source(file, text)
    return checked.spec, checked.errors


def validate_files(paths: Iterable[Path]) -> dict[Path, list[CampaignError]]:
    """Validate many files; also flags a campaign id used by more than one file."""
    return {path: errors for path, (_spec, errors) in check_files(paths).items()}


def check_files(
    paths: Iterable[Path],
) -> dict[Path, tuple[CampaignSpec | None, list[CampaignError]]]:
    """Like :func:`validate_files`, also returning each valid spec (``None`` on errors)."""
    results: dict[Path, tuple[CampaignSpec | None, list[CampaignError]]] = {}
    owners: dict[str, tuple[Path, Position]] = {}
    for path in dict.fromkeys(Path(p) for p in paths):
        checked = _check(path)
        errors = list(checked.errors)
        campaign_id = checked.data.get("id") if isinstance(checked.data, dict) else None
        if isinstance(campaign_id, str):
            here = checked.source_map.value(("id",))
            if campaign_id in owners:
                other, pos = owners[campaign_id]
                errors.append(_error(str(path), here, t(
                    "campaign.duplicate_id", value=campaign_id,
                    other=f"{other}:{pos.line}:{pos.column}")))
            else:
                owners[campaign_id] = (path, here)
        errors.sort(key=lambda e: (e.line, e.column))
        results[path] = (checked.spec if not errors else None, errors)
    return results


def locate(path: Path, keys: tuple[str | int, ...]) -> Position:
    """Where ``keys`` sits in the file (its key, else the nearest enclosing one): checks
    made after loading (the catalog's photos, the TikTok app) point at the line they are
    about, like every schema error, instead of at 1:1."""
    text, _problem = read_text(path)
    return Position(1, 1) if text is None else locate_text(text, keys)


def locate_text(text: str, keys: tuple[str | int, ...]) -> Position:
    """:func:`locate` for a campaign given as text (the browser studio's editor)."""
    source_map = parse(text).source_map
    found, _complete = source_map.deepest(keys)
    return source_map.key_or_value(found)
