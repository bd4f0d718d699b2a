"""The building blocks of the campaign schema: constants, field checks, annotated types.

Why a module of its own: the schema models (:mod:`engine.campaign.schema`), the
cross-field rules (:mod:`engine.campaign.rules`), the template checks and the loader all
speak the same vocabulary (campaign types, order events, channel keys) and word their
problems the same way (a value shown as written, "did you mean"); keeping it here lets
each of them import it without importing one another.

Every check raises a pydantic error whose *type* is an i18n key of the ``umkm`` catalog,
so the loader can translate it and place it at the key's ``file:line:column``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from channels import channel_names
from engine.common.i18n import t, text_of
from engine.common.validation_text import did_you_mean, shown
from engine.umkm import wilayah

DEFAULT_TIMEZONE = "Asia/Makassar"
CAMPAIGN_TYPES = ("promotional", "transactional", "newsletter", "retention", "personalized")
ORDER_EVENTS = ("order_confirmed", "order_shipped", "order_invoiced")
CHANNEL_KEYS = tuple(channel_names(plugins=False))  # built-ins, in registry order
DEFAULT_COOLDOWN_DAYS = 30

Loc = tuple[str | int, ...]


def custom_error(key: str, **ctx: Any) -> PydanticCustomError:
    """A pydantic error whose type is our i18n key, translated when it is reported."""
    return PydanticCustomError(key, text_of(key, "en"), ctx)


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: the raw document may hold anything
    where a mapping belongs, and the schema reports that; the other checks just skip it."""
    return value if isinstance(value, Mapping) else {}


# ----------------------------------------------------------------------------- field types


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_version(value: Any) -> Any:
    """Only ``version: 1`` exists; ``1.0`` or ``"1"`` would hide a future format change."""
    if type(value) is not int or value != 1:
        raise custom_error("campaign.version", value=shown(value))
    return value


_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,78})[a-z0-9]")


def check_slug(value: Any) -> str:
    """The campaign id ends up in URLs, UTM values and log lines: lowercase, digits, dashes."""
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise custom_error("campaign.slug", value=shown(value))
    return value


def check_timezone(value: str) -> str:
    """An IANA zone the scheduler can really use, with the nearest name as a hint."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise custom_error("campaign.timezone", value=shown(value),
                           hint=did_you_mean(value, _timezones())) from None
    return value


def check_hhmm(value: Any) -> str:
    """Send-window bounds as ``HH:MM`` text (YAML would read ``08:00`` oddly otherwise)."""
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise custom_error("campaign.hhmm", value=shown(value))
    return value


def check_cron(value: str) -> str:
    """Five-field cron only: the recurring runs are computed with croniter in the campaign zone."""
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise custom_error("campaign.cron", value=shown(value))
    return value


def _check_kecamatan(value: Any) -> str:
    """A TTS kecamatan code in any spelling Kemendagri uses, stored canonical (53.02.01)."""
    if not isinstance(value, str):
        raise custom_error("campaign.kecamatan_text")
    if wilayah.is_tts_kecamatan(value):
        return wilayah.normalize_kecamatan(value) or value
    by_name = wilayah.find_kecamatan(value)
    hint = t("campaign.hint", name=by_name) if by_name else ""
    raise custom_error("campaign.kecamatan", value=shown(value), hint=hint)


def _as_list(value: Any) -> Any:
    """``kecamatan: 53.02.01`` and ``kecamatan: [53.02.01]`` mean the same; store a list."""
    return [value] if isinstance(value, str | int | float) else value


def _id_text(value: Any) -> Any:
    """A SKU or numeric product id; YAML reads ``42`` as int, store it as text."""
    return str(value) if type(value) is int else value


def _template_path(suffix: str, example: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split("/")
            if (value.startswith("/") or "\\" in value or ".." in parts
                    or not value.endswith(suffix)):
                raise custom_error("campaign.template_path", value=shown(value),
                                   suffix=f" (*{suffix})" if suffix else "", example=example)
        return value

    return check


Days = Annotated[int, Field(gt=0, le=3650)]
Rupiah = Annotated[int, Field(gt=0, le=1_000_000_000)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
JinjaText = Annotated[str, Field(min_length=1, max_length=500)]
KecamatanCode = Annotated[str, BeforeValidator(_check_kecamatan)]
KecamatanCodes = Annotated[list[KecamatanCode], BeforeValidator(_as_list), Field(min_length=1)]
Sku = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=80)]
Category = Literal["makanan_olahan", "kerajinan_tangan"]
EmailTemplate = Annotated[str, BeforeValidator(_template_path(".mjml", "email/promotional.mjml"))]
SocialTemplate = Annotated[str, BeforeValidator(_template_path("", "social/promo.j2"))]


class Strict(BaseModel):
    """Unknown keys are errors everywhere; dumps use the YAML spelling (``from``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

_VIDEO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_-]*)*\.mp4")


def check_video_name(value: Any) -> str:
    """A TikTok video is an MP4 in the media folder's ``videos/``, named relative to it:
    no ``..`` nor absolute path, so a campaign file cannot point the worker at any file."""
    if not isinstance(value, str) or not _VIDEO_NAME.fullmatch(value):
        raise custom_error("campaign.tiktok_video_name", value=shown(value))
    return value


VideoName = Annotated[str, BeforeValidator(check_video_name)]
