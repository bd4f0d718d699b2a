"""Pydantic's validation errors as Indonesian (or English) sentences, one function for
every hand-written file the product reads (campaign YAML, the annual plan YAML).

Why one shared translation: pydantic writes "Field required", "Input should be a valid
integer, unable to parse string as an integer" or "String should match pattern
'^[a-z0-9_]{1,512}$'", which mean nothing to a Dinas officer and are English on an
Indonesian screen. Each error *type* (pydantic's stable code, not its English text) maps
to a catalog sentence that names the value as written and what is expected; two readers
that translated separately drifted apart (the plan file had no text for a bad boolean,
date or URL). The caller finds the error's place in the file; this module only words it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.common.i18n import has_message, t

__all__ = ["PATTERN_WORDS", "describe_error", "did_you_mean", "shown"]


def shown(value: Any) -> str:
    """A value as the user wrote it, short enough for one error line."""
    if value is None:
        return t("campaign.empty_value")
    text = f"'{value}'" if isinstance(value, str) else (
        str(value).lower() if isinstance(value, bool) else str(value))
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """The "did you mean" hint for the nearest of ``choices``, or nothing when none is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return t("campaign.hint", name=matches[0]) if matches else ""


_TYPE_MESSAGES = {
    "int_type": "campaign.int", "int_parsing": "campaign.int", "int_from_float": "campaign.int",
    "float_type": "validation.number", "float_parsing": "validation.number",
    "decimal_type": "validation.number", "decimal_parsing": "validation.number",
    "string_type": "campaign.str", "bool_type": "campaign.bool", "bool_parsing": "campaign.bool",
    "list_type": "campaign.list", "dict_type": "campaign.mapping",
    "model_type": "campaign.mapping", "model_attributes_type": "campaign.mapping",
    "datetime_type": "campaign.datetime", "datetime_parsing": "campaign.datetime",
    "datetime_from_date_parsing": "campaign.datetime", "date_type": "campaign.date",
    "date_parsing": "campaign.date", "date_from_datetime_parsing": "campaign.date",
    "date_from_datetime_inexact": "campaign.date",
    "url_type": "validation.url", "url_parsing": "validation.url",
    "url_syntax_violation": "validation.url", "url_scheme": "validation.url",
    "url_too_long": "validation.url",
}
_LIMIT_MESSAGES = {"greater_than": ("campaign.gt", "gt"),
                   "greater_than_equal": ("campaign.ge", "ge"),
                   "less_than": ("campaign.lt", "lt"), "less_than_equal": ("campaign.le", "le"),
                   "string_too_short": ("campaign.too_short", "min_length"),
                   "too_short": ("campaign.too_few", "min_length"),
                   "string_too_long": ("campaign.too_long", "max_length"),
                   "too_long": ("campaign.too_many", "max_length")}
# Regular expressions of the schemas, described in words (i18n keys).
PATTERN_WORDS = {r"^https?://\S+$": "campaign.pattern.url",
                 r"^[A-Za-z0-9_-]{2,40}$": "campaign.pattern.code",
                 r"^[a-z0-9_]{1,512}$": "campaign.pattern.wa_name",
                 r"^[a-z]{2,3}(_[A-Z]{2})?$": "campaign.pattern.wa_language"}


def field_name(loc: Sequence[str | int]) -> str:
    """``targets.pelatihan.2``: the dotted place of an error (internal tags left out)."""
    return ".".join(str(k) for k in loc if not (isinstance(k, str) and k.startswith("rule:")))


def _choices(expected: Any) -> list[str]:
    """pydantic's ``"'a', 'b' or 'c'"`` as ``["a", "b", "c"]``."""
    return re.findall(r"'([^']*)'", str(expected or "")) or [str(expected or "").lower()]


def _pattern(loc: Sequence[str | int], value: Any, pattern: str) -> str:
    words = PATTERN_WORDS.get(pattern)
    expected = t(words) if words else t("campaign.pattern.regex", pattern=pattern)
    return t("campaign.pattern", field=field_name(loc), value=shown(value), expected=expected)


def _other(error: Mapping[str, Any], kind: str, value: Any) -> str:
    """A type without its own sentence: our own validators' text (a ``value_error``
    carries the sentence we raised), else a generic Indonesian line with pydantic's code."""
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and ctx.get("error") is not None:
        return t("campaign.other", detail=str(ctx["error"]))
    return t("validation.other", value=shown(value), kind=kind)


def describe_error(error: Mapping[str, Any], allowed: Sequence[str] = (),
                   hints: bool = True) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a sentence.

    ``allowed`` are the keys the mapping at the error's place accepts (for an unknown
    key); ``hints`` adds "did you mean ..." where a close choice exists.
    """
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        return t("campaign.unknown_key", name=name,
                 hint=did_you_mean(name, allowed) if hints else "", allowed=", ".join(allowed))
    if kind == "missing":
        return t("campaign.missing", name=str(loc[-1]) if loc else "?", hint="")
    if has_message(kind):  # our own PydanticCustomError types are catalog keys
        return t(kind, **ctx)
    if kind in ("literal_error", "enum"):
        choices = _choices(ctx.get("expected"))
        return t("campaign.literal", value=shown(value),
                 hint=did_you_mean(str(value), choices) if hints else "",
                 allowed=", ".join(choices))
    if kind == "string_pattern_mismatch":
        return _pattern(loc, value, str(ctx.get("pattern", "")))
    if kind in _TYPE_MESSAGES:
        return t(_TYPE_MESSAGES[kind], value=shown(value))
    if kind in _LIMIT_MESSAGES:
        key, limit = _LIMIT_MESSAGES[kind]
        return t(key, limit=ctx.get(limit), value=shown(value),
                 actual=ctx.get("actual_length", "?"))
    return _other(error, kind, value)
