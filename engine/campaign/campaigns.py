"""Campaign YAML, version 1: the schema (pydantic) and the validator staff run before launch.

Why this module is strict: a campaign file is written by hand and reviewed in git; every
mistake must be caught by ``umkm campaign validate`` with ``file:line:column`` and a hint,
never halfway through sending to thousands of customers. So:

* every model forbids unknown keys (and suggests the nearest valid key),
* cross-field rules that depend on the campaign ``type`` are checked on the raw document,
  so *all* problems of a file are reported together, each at its own key,
* subjects, preheaders and UTM values are compiled and test-rendered in the same sandboxed,
  StrictUndefined Jinja environment that sends the real mail, with the render context
  this campaign will really have (``offer`` is ``None`` when the campaign has none).

The dumped shape (``spec.to_storage()``) equals the YAML shape, so ``engine.campaign.audience`` can
compile ``spec.audience.model_dump(mode="json", exclude_none=True)`` without a second
vocabulary, and a stored spec validates again with ``CampaignSpec.model_validate``.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeAlias, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.campaign.yamlsource import Document, Position, SourceMap, parse, read_text
from engine.common.i18n import has_message, t, text_of
from engine.message import templating
from engine.umkm import wilayah

DEFAULT_TIMEZONE = "Asia/Makassar"
CAMPAIGN_TYPES = ("promotional", "transactional", "newsletter", "retention", "personalized")
ORDER_EVENTS = ("order_confirmed", "order_shipped", "order_invoiced")
CHANNEL_KEYS = ("email", "facebook", "instagram", "tiktok", "whatsapp")
DEFAULT_COOLDOWN_DAYS = 30

Loc = tuple[str | int, ...]



# ----------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class CampaignError:
    """One problem, printed the way editors and CI annotate: ``file:line:column: message``."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class CampaignValidationError(Exception):
    """Every problem found in one campaign file (never just the first)."""

    def __init__(self, errors: list[CampaignError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def _custom(key: str, **ctx: Any) -> PydanticCustomError:
    """A pydantic error whose type is our i18n key, translated when it is reported."""
    return PydanticCustomError(key, text_of(key, "en"), ctx)


def _show(value: Any) -> str:
    """A value as the user wrote it, short enough for one error line."""
    if value is None:
        return t("campaign.empty_value")
    text = f"'{value}'" if isinstance(value, str) else (
        str(value).lower() if isinstance(value, bool) else str(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return t("campaign.hint", name=matches[0]) if matches else ""


# ----------------------------------------------------------------------------- field types


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_version(value: Any) -> Any:
    if type(value) is not int or value != 1:
        raise _custom("campaign.version", value=_show(value))
    return value


_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,78})[a-z0-9]")


def _check_slug(value: Any) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise _custom("campaign.slug", value=_show(value))
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _custom("campaign.timezone", value=_show(value),
                      hint=_hint(value, _timezones())) from None
    return value


def _check_hhmm(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise _custom("campaign.hhmm", value=_show(value))
    return value


def _check_cron(value: str) -> str:
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise _custom("campaign.cron", value=_show(value))
    return value


def _check_kecamatan(value: Any) -> str:
    """A TTS kecamatan code in any spelling Kemendagri uses, stored canonical (53.02.01)."""
    if not isinstance(value, str):
        raise _custom("campaign.kecamatan_text")
    if wilayah.is_tts_kecamatan(value):
        return wilayah.normalize_kecamatan(value) or value
    by_name = wilayah.find_kecamatan(value)
    hint = t("campaign.hint", name=by_name) if by_name else ""
    raise _custom("campaign.kecamatan", value=_show(value), hint=hint)


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
                raise _custom("campaign.template_path", value=_show(value),
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


class _Strict(BaseModel):
    """Unknown keys are errors everywhere; dumps use the YAML spelling (``from``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


# ----------------------------------------------------------------------------- audience


class ConsentRule(_Strict):
    consent: Literal["marketing", "transactional"]
    channel: Literal["email", "whatsapp"] | None = None


class KecamatanRule(_Strict):
    kecamatan: KecamatanCodes


class PurchasedCategoryRule(_Strict):
    purchased_category: Category
    within_days: Days | None = None


class PurchasedProductRule(_Strict):
    purchased_product: Sku
    within_days: Days | None = None


class PurchasedWithinRule(_Strict):
    purchased_within_days: Days


class NoPurchaseRule(_Strict):
    no_purchase_days: Days


class TotalSpendMinRule(_Strict):
    """``{total_spend_min: 500000, total_spend_max: 2000000}`` is one range rule."""

    total_spend_min: Annotated[int, Field(ge=0)]
    total_spend_max: Annotated[int, Field(ge=0)] | None = None
    within_days: Days | None = None

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.total_spend_max is not None and self.total_spend_max < self.total_spend_min:
            raise _custom("campaign.spend_range", low=self.total_spend_min,
                          high=self.total_spend_max)
        return self


class TotalSpendMaxRule(_Strict):
    total_spend_max: Annotated[int, Field(ge=0)]
    within_days: Days | None = None


class EngagedRule(_Strict):
    engaged_within_days: Days


class TagRule(_Strict):
    tag: Text


class AllRule(_Strict):
    all: Literal[True]


class AnyRule(_Strict):
    """An OR group inside ``include`` (which is otherwise ANDed)."""

    any: Annotated[list[Rule], Field(min_length=1)]


RULE_MODELS: dict[str, type[_Strict]] = {
    "consent": ConsentRule,
    "kecamatan": KecamatanRule,
    "purchased_category": PurchasedCategoryRule,
    "purchased_product": PurchasedProductRule,
    "purchased_within_days": PurchasedWithinRule,
    "no_purchase_days": NoPurchaseRule,
    "total_spend_min": TotalSpendMinRule,
    "total_spend_max": TotalSpendMaxRule,
    "engaged_within_days": EngagedRule,
    "tag": TagRule,
    "all": AllRule,
    "any": AnyRule,
}
RULE_MODIFIERS = ("channel", "within_days")


def _rule_tag(value: Any) -> str | None:
    """Pick the rule model from its one primary key (None = not exactly one)."""
    if isinstance(value, BaseModel):
        keys: Iterable[str] = type(value).model_fields
    elif isinstance(value, Mapping):
        keys = value.keys()
    else:
        return None
    primaries = _primaries(keys)
    return f"rule:{primaries[0]}" if len(primaries) == 1 else None


def _primaries(keys: Iterable[Any]) -> list[str]:
    """Primary keys of a rule; a spend range (min with max) counts as one."""
    primaries = [str(k) for k in keys if k in RULE_MODELS]
    if "total_spend_min" in primaries and "total_spend_max" in primaries:
        primaries.remove("total_spend_max")
    return primaries


Rule: TypeAlias = Annotated[
    Annotated[ConsentRule, Tag("rule:consent")]
    | Annotated[KecamatanRule, Tag("rule:kecamatan")]
    | Annotated[PurchasedCategoryRule, Tag("rule:purchased_category")]
    | Annotated[PurchasedProductRule, Tag("rule:purchased_product")]
    | Annotated[PurchasedWithinRule, Tag("rule:purchased_within_days")]
    | Annotated[NoPurchaseRule, Tag("rule:no_purchase_days")]
    | Annotated[TotalSpendMinRule, Tag("rule:total_spend_min")]
    | Annotated[TotalSpendMaxRule, Tag("rule:total_spend_max")]
    | Annotated[EngagedRule, Tag("rule:engaged_within_days")]
    | Annotated[TagRule, Tag("rule:tag")]
    | Annotated[AllRule, Tag("rule:all")]
    | Annotated[AnyRule, Tag("rule:any")],
    Discriminator(_rule_tag, custom_error_type="campaign.rule_shape",
                  custom_error_message="an audience rule needs exactly one primary key"),
]
AnyRule.model_rebuild()


class FrequencyCap(_Strict):
    max: Annotated[int, Field(gt=0, le=100)]
    per_days: Days


class Audience(_Strict):
    """``include`` rules are ANDed, ``exclude`` rules ORed; ``{any: [...]}`` is an OR group."""

    include: list[Rule] = Field(default_factory=list)
    exclude: list[Rule] = Field(default_factory=list)
    frequency_cap: FrequencyCap | None = None


# ----------------------------------------------------------------------------- schedule


class SendWindow(_Strict):
    """Hours (campaign timezone) when bulk mail may go out; may wrap past midnight."""

    from_: Annotated[str, BeforeValidator(_check_hhmm)] = Field(alias="from")
    to: Annotated[str, BeforeValidator(_check_hhmm)]

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.from_ == self.to:
            raise _custom("campaign.window_empty")
        return self

    def contains(self, moment: time) -> bool:
        start, end = time.fromisoformat(self.from_), time.fromisoformat(self.to)
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end


class Trigger(_Strict):
    event: Literal["order_confirmed", "order_shipped", "order_invoiced"] | None = None
    inactive_days: Days | None = None
    cooldown_days: Days | None = None

    @model_validator(mode="after")
    def _default_cooldown(self) -> Self:
        if self.inactive_days is not None and self.cooldown_days is None:
            self.cooldown_days = DEFAULT_COOLDOWN_DAYS
        return self


class Schedule(_Strict):
    start: datetime | None = None
    end: datetime | None = None
    send_window: SendWindow | None = None
    cron: Annotated[str, AfterValidator(_check_cron)] | None = None
    trigger: Trigger | None = None

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if end is not None and start is not None:
            a, b = _comparable(start, end)
            if b <= a:
                raise _custom("campaign.end_before_start", end=str(end), start=str(start))
        return end


def _comparable(a: datetime, b: datetime) -> tuple[datetime, datetime]:
    """Naive and aware mixed: read the naive one in the other's zone (same as the spec)."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        zone = a.tzinfo or b.tzinfo
        a, b = a.replace(tzinfo=a.tzinfo or zone), b.replace(tzinfo=b.tzinfo or zone)
    return a, b


# ----------------------------------------------------------------------------- content


class Products(_Strict):
    opt_in: Literal["required", "optional"] = "required"
    category: Category | None = None
    kecamatan: KecamatanCodes | None = None
    max_price: Rupiah | None = None
    per_message: Annotated[int, Field(ge=1, le=12)] = 3
    featured: list[Sku] | None = None


class Offer(_Strict):
    kind: Literal["discount", "new_product", "bundle"]
    percent: Annotated[int, Field(ge=1, le=90)] | None = None
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,40}$")] | None = None
    ends: date | None = None
    title: Text | None = None
    bundle_price: Rupiah | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> Self:
        if self.kind == "discount" and self.percent is None:
            raise _custom("campaign.offer_percent")
        if self.kind == "bundle" and self.bundle_price is None:
            raise _custom("campaign.offer_bundle")
        return self


class EmailVariant(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    subject: JinjaText | None = None
    template: EmailTemplate | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.subject is None and self.template is None:
            raise _custom("campaign.variant_empty")
        return self


class EmailChannel(_Strict):
    template: EmailTemplate
    subject: JinjaText
    preheader: JinjaText | None = None
    from_name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    variants: Annotated[list[EmailVariant], Field(max_length=4)] = Field(default_factory=list)


class SocialChannel(_Strict):
    """Facebook Page, Instagram, TikTok: posted by the Dinas or the business account."""

    account: Literal["dinas", "business"] = "dinas"
    template: SocialTemplate
    per: Literal["product", "campaign"] = "campaign"


class WhatsAppTemplate(_Strict):
    """An approved Cloud API message template; its body takes two parameters, the
    customer's first name ({{1}}) and the tracked product/campaign link ({{2}})."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$")]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")] = "id"


class WhatsAppChannel(_Strict):
    """``share_kit``: links for the shared WhatsApp group; ``cloud_api``: sent by the API.

    In ``cloud_api`` mode ``template`` is either an approved template (sent to everyone
    with WhatsApp consent) or a ``social/*.j2`` text, which WhatsApp only allows as a
    reply inside the 24-hour window a customer opens by writing to us.
    """

    mode: Literal["share_kit", "cloud_api"] = "share_kit"
    account: Literal["dinas", "business"] = "dinas"
    template: Annotated[
        Annotated[SocialTemplate, Tag("file")] | Annotated[WhatsAppTemplate, Tag("approved")],
        Discriminator(lambda v: "approved" if isinstance(v, Mapping | WhatsAppTemplate)
                      else "file"),
    ] | None = None
    per: Literal["product", "campaign"] = "campaign"

    @model_validator(mode="after")
    def _cloud_api_needs_template(self) -> Self:
        if self.mode == "cloud_api" and self.template is None:
            raise _custom("campaign.wa_template_needed")
        return self


def plugin_channels() -> frozenset[str]:
    """Channels added by third parties (entry points ``umkm.channels``): post platforms."""
    from channels.base import BUILTIN_ADAPTERS, available_channels

    return frozenset(n for n in available_channels()
                     if n not in BUILTIN_ADAPTERS and n not in CHANNEL_KEYS)


class Channels(_Strict):
    """The built-in channels, plus any plugin channel (``{account, template, per}``) that
    is installed: a third-party adapter works in a campaign without changing the engine."""

    email: EmailChannel | None = None
    facebook: SocialChannel | None = None
    instagram: SocialChannel | None = None
    tiktok: SocialChannel | None = None
    whatsapp: WhatsAppChannel | None = None
    _plugins: dict[str, SocialChannel] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _plugin_channels(cls, data: Any, handler: Callable[[Any], Channels]) -> Channels:
        """Keys of installed plugins are social channels; every other key stays strict."""
        unknown = [k for k in data if k not in cls.model_fields] \
            if isinstance(data, Mapping) else []
        installed = plugin_channels() if unknown else frozenset()
        plugins = {k: data[k] for k in unknown if k in installed}
        if not plugins:
            return cls._at_least_one(handler(data))
        core = {k: v for k, v in data.items() if k not in plugins}
        errors: list[InitErrorDetails] = []
        parsed: dict[str, SocialChannel] = {}
        for name, value in plugins.items():
            try:
                parsed[name] = SocialChannel.model_validate(value)
            except ValidationError as exc:
                errors += [_rebased(e, name) for e in exc.errors(include_url=False)]
        model: Channels | None = None
        try:
            model = handler(core) if core else cls.model_construct()
        except ValidationError as exc:
            errors = [*(_rebased(e) for e in exc.errors(include_url=False)), *errors]
        if errors or model is None:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        model._plugins = parsed
        return model

    @staticmethod
    def _at_least_one(model: Channels) -> Channels:
        if not model.names():
            raise _custom("campaign.no_channel")
        return model

    @model_serializer(mode="wrap")
    def _dump_plugins(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        dumped = handler(self)
        dumped.update({name: config.model_dump(mode="json", exclude_none=True)
                       for name, config in self._plugins.items()})
        return dumped

    @property
    def plugins(self) -> dict[str, SocialChannel]:
        return dict(self._plugins)

    def names(self) -> list[str]:
        return [name for name in CHANNEL_KEYS if getattr(self, name) is not None] + \
            sorted(self._plugins)


def _rebased(error: Mapping[str, Any], *prefix: str | int) -> InitErrorDetails:
    """A reported error again, under ``prefix`` (plugin channels are validated apart)."""
    kind = str(error["type"])
    ctx = dict(error.get("ctx") or {})
    details: InitErrorDetails = {
        "type": PydanticCustomError(kind, text_of(kind, "en"), ctx) if has_message(kind)
        else (PydanticCustomError(kind, str(error.get("msg") or kind), ctx)
              if kind.startswith("campaign.") else kind),
        "loc": (*prefix, *error["loc"]),
        "input": error.get("input"),
    }
    if ctx and not has_message(kind) and not kind.startswith("campaign."):
        details["ctx"] = ctx
    return details


_URL = r"^https?://\S+$"


class Article(_Strict):
    title: Text
    summary: Annotated[str, Field(max_length=1000)] | None = None
    url: Annotated[str, Field(pattern=_URL, max_length=500)]


class Training(_Strict):
    """A Dinas training session (Pasal 8) announced in a newsletter."""

    title: Text
    date: datetime
    place: Text
    url: Annotated[str, Field(pattern=_URL, max_length=500)] | None = None


class Content(_Strict):
    """Editorial content of a newsletter: ``articles`` and ``trainings`` in the render
    context come from here, so the file under review is exactly what goes out."""

    articles: list[Article] = Field(default_factory=list)
    trainings: list[Training] = Field(default_factory=list)


class Utm(_Strict):
    source: Text
    medium: Text
    campaign: Text | None = None
    content: Text | None = None


class Tracking(_Strict):
    utm: Utm


# ----------------------------------------------------------------------------- the spec


class CampaignSpec(_Strict):
    """A validated campaign. Datetimes are timezone-aware (naive ones read in ``timezone``)."""

    version: Annotated[Literal[1], BeforeValidator(_check_version)]
    id: Annotated[str, BeforeValidator(_check_slug)]
    name: Text
    type: Literal["promotional", "transactional", "newsletter", "retention", "personalized"]
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=60)]],
                    Field(max_length=50)] = Field(default_factory=list)
    timezone: Annotated[str, AfterValidator(_check_timezone)] = DEFAULT_TIMEZONE
    schedule: Schedule
    audience: Audience = Field(default_factory=Audience)
    products: Products | None = None
    offer: Offer | None = None
    content: Content | None = None
    channels: Channels
    tracking: Tracking | None = None

    @model_validator(mode="after")
    def _localize_and_check(self, info: ValidationInfo) -> Self:
        zone = ZoneInfo(self.timezone)
        for name in ("start", "end"):
            value = getattr(self.schedule, name)
            if value is not None and value.tzinfo is None:
                setattr(self.schedule, name, value.replace(tzinfo=zone))
        for training in self.content.trainings if self.content else []:
            if training.date.tzinfo is None:
                training.date = training.date.replace(tzinfo=zone)
        if not (info.context or {}).get("skip_rules"):
            problems = type_rule_problems(self.to_storage()) + _value_rule_problems(self)
            if problems:
                first = problems[0]
                raise PydanticCustomError(first.key, text_of(first.key, "en"), first.params)
        return self

    # -- helpers for the scheduler, planner and renderer --------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def email(self) -> EmailChannel | None:
        return self.channels.email

    @property
    def trigger(self) -> Trigger | None:
        return self.schedule.trigger

    @property
    def channel_names(self) -> list[str]:
        return self.channels.names()

    @property
    def is_transactional(self) -> bool:
        return self.type == "transactional"

    def start_utc(self) -> datetime | None:
        return self.schedule.start.astimezone(UTC) if self.schedule.start else None

    def end_utc(self) -> datetime | None:
        return self.schedule.end.astimezone(UTC) if self.schedule.end else None

    def next_cron_utc(self, after: datetime) -> datetime | None:
        """The next recurring run strictly after ``after`` (cron read in the campaign zone)."""
        if self.schedule.cron is None:
            return None
        base = (after if after.tzinfo else after.replace(tzinfo=UTC)).astimezone(self.zone)
        nxt: datetime = croniter(self.schedule.cron, base).get_next(datetime)
        return nxt.astimezone(UTC)

    def in_send_window(self, moment: datetime) -> bool:
        """Whether bulk sending is allowed at ``moment`` (aware, any zone)."""
        window = self.schedule.send_window
        if window is None:
            return True
        local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(self.zone)
        return window.contains(local.time())

    def to_storage(self) -> dict[str, Any]:
        """The canonical JSON shape (= the YAML shape) stored in ``Campaign.spec``."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_storage(cls, stored: Mapping[str, Any]) -> CampaignSpec:
        """The typed spec again from ``Campaign.spec`` (validated once more: rows may be old)."""
        return cls.model_validate(dict(stored))


def spec_hash(spec: CampaignSpec) -> str:
    """SHA-256 of the canonical JSON: unchanged files re-launch as the same campaign."""
    canonical = json.dumps(spec.to_storage(), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- type rules


@dataclass(frozen=True)
class RuleProblem:
    """A cross-field problem at ``path`` (a key of the document)."""

    path: Loc
    key: str
    params: dict[str, Any]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def type_rule_problems(data: Mapping[str, Any]) -> list[RuleProblem]:
    """Rules that depend on ``type``, checked on the raw document so that every one of
    them is reported even when other parts of the file are broken."""
    kind = data.get("type")
    if kind not in CAMPAIGN_TYPES:
        return []
    problems: list[RuleProblem] = []
    if isinstance(data.get("schedule"), Mapping):
        problems += _schedule_rules(kind, data["schedule"])
    problems += _audience_rules(kind, data)
    if kind == "promotional" and data.get("offer") is None:
        problems.append(RuleProblem((), "campaign.needs_offer", {}))
    return problems


def _schedule_rules(kind: str, schedule: Mapping[str, Any]) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    here: Loc = ("schedule",)
    trigger = _mapping(schedule.get("trigger"))
    trigger_path: Loc = (*here, "trigger")
    if "trigger" in schedule and kind not in ("transactional", "retention"):
        problems.append(RuleProblem(trigger_path, "campaign.trigger_not_for", {"type": kind}))
    if "cron" in schedule and kind not in ("newsletter", "personalized"):
        problems.append(RuleProblem((*here, "cron"), "campaign.cron_not_for", {"type": kind}))
    if kind == "transactional":
        if trigger.get("event") is None:
            problems.append(RuleProblem(trigger_path if "trigger" in schedule else here,
                                        "campaign.needs_event",
                                        {"events": ", ".join(ORDER_EVENTS)}))
        problems += [RuleProblem((*trigger_path, k), "campaign.trigger_key_not_for",
                                 {"name": k, "type": kind})
                     for k in ("inactive_days", "cooldown_days") if k in trigger]
    elif kind == "retention":
        if trigger.get("inactive_days") is None:
            problems.append(RuleProblem(trigger_path if "trigger" in schedule else here,
                                        "campaign.needs_inactive_days", {}))
        if "event" in trigger:
            problems.append(RuleProblem((*trigger_path, "event"), "campaign.trigger_key_not_for",
                                        {"name": "event", "type": kind}))
    elif kind == "newsletter":
        if schedule.get("cron") is None and schedule.get("start") is None:
            problems.append(RuleProblem(here, "campaign.needs_cron_or_start", {}))
    elif schedule.get("start") is None:
        problems.append(RuleProblem(here, "campaign.needs_start", {"type": kind}))
    return problems


def _audience_rules(kind: str, data: Mapping[str, Any]) -> list[RuleProblem]:
    audience = data.get("audience")
    if audience is not None and not isinstance(audience, Mapping):
        return []  # the schema reports the wrong type
    audience = audience or {}
    if kind == "transactional":
        if audience.get("frequency_cap") is not None:
            return [RuleProblem(("audience", "frequency_cap"), "campaign.transactional_cap", {})]
        return []
    if not audience.get("include"):
        where: Loc = ("audience", "include") if "include" in audience else (
            ("audience",) if "audience" in data else ())
        return [RuleProblem(where, "campaign.empty_audience", {})]
    return []


def _value_rule_problems(spec: CampaignSpec) -> list[RuleProblem]:
    """Rules that need parsed values (dates), checked once the schema passed."""
    start = spec.schedule.start
    if spec.offer and spec.offer.ends and start and spec.offer.ends < start.date():
        return [RuleProblem(("offer", "ends"), "campaign.offer_ends_before_start",
                            {"ends": str(spec.offer.ends), "start": str(start.date())})]
    return []


# ----------------------------------------------------------------------------- templates


def _email_template_checker() -> Callable[[str, dict[str, Any]], None] | None:
    """``engine.message.render.check_email_template`` once that module exists (MJML + Jinja)."""
    try:
        module = importlib.import_module("engine.message.render")
    except ModuleNotFoundError as exc:
        if exc.name == "engine.message.render":
            return None
        raise
    checker: Callable[[str, dict[str, Any]], None] | None = getattr(
        module, "check_email_template", None)
    return checker


def render_context(data: Mapping[str, Any], channel: str = "email") -> dict[str, Any]:
    """The sample render context *this* campaign will have: its own id, name, type and
    offer (``None`` without one), ``order`` only for transactional mail."""
    kind = data.get("type") if data.get("type") in CAMPAIGN_TYPES else "promotional"
    ctx = templating.sample_context(str(kind))
    ctx["channel"] = channel
    ctx["campaign"] = {"id": data.get("id") if isinstance(data.get("id"), str) else "contoh",
                       "name": data.get("name") if isinstance(data.get("name"), str)
                       else "Contoh Kampanye", "type": kind}
    raw_offer = data.get("offer")
    if raw_offer is None:
        ctx["offer"] = None
    else:
        try:
            offer = Offer.model_validate(raw_offer)
            ctx["offer"] = {**dict.fromkeys(ctx["offer"]), **offer.model_dump(by_alias=False)}
        except ValidationError:
            pass  # reported by the schema; keep the sample offer for the other checks
    _apply_content(ctx, data)
    trigger = _mapping(_mapping(data.get("schedule")).get("trigger"))
    if kind != "transactional":
        ctx["order"] = None
    elif trigger.get("event") in ORDER_EVENTS:
        ctx["order"] = {**ctx["order"], "status": str(trigger["event"]).removeprefix("order_")}
    if kind == "retention" and type(trigger.get("inactive_days")) is int:
        ctx["days_inactive"] = trigger["inactive_days"]
    return ctx


def _apply_content(ctx: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Articles and trainings of the file itself (datetimes in the campaign zone)."""
    if data.get("content") is None:
        return
    try:
        content = Content.model_validate(data["content"])
        zone = ZoneInfo(str(data.get("timezone") or DEFAULT_TIMEZONE))
    except (ValidationError, ZoneInfoNotFoundError, ValueError):
        return  # reported by the schema
    ctx["articles"] = [a.model_dump(by_alias=False) for a in content.articles]
    ctx["trainings"] = [
        {**tr.model_dump(by_alias=False),
         "date": tr.date if tr.date.tzinfo else tr.date.replace(tzinfo=zone)}
        for tr in content.trainings
    ]


@dataclass(frozen=True)
class _Found:
    path: Loc
    message: str


def template_problems(data: Mapping[str, Any]) -> list[_Found]:
    """Compile and test-render every template and expression the campaign will use."""
    channels = _mapping(data.get("channels"))
    problems: list[_Found] = []
    email = _mapping(channels.get("email"))
    if email:
        ctx = render_context(data, "email")
        here: Loc = ("channels", "email")
        for field in ("subject", "preheader"):
            problems += _expression(email.get(field), (*here, field), ctx)
        problems += _email_template(email.get("template"), (*here, "template"), ctx)
        variants = email.get("variants")
        for i, variant in enumerate(variants if isinstance(variants, list) else []):
            variant = _mapping(variant)
            problems += _expression(variant.get("subject"), (*here, "variants", i, "subject"), ctx)
            problems += _email_template(variant.get("template"),
                                        (*here, "variants", i, "template"), ctx)
    extra = [k for k in channels if k not in CHANNEL_KEYS]
    plugins = sorted(plugin_channels() & set(extra)) if extra else []
    for name in ("facebook", "instagram", "tiktok", "whatsapp", *plugins):
        template = _mapping(channels.get(name)).get("template")
        if isinstance(template, str) and not templating.template_exists(template):
            problems.append(_Found(("channels", name, "template"), _missing_template(template)))
    utm = _mapping(_mapping(data.get("tracking")).get("utm"))
    for field, value in utm.items():
        for channel in [n for n in CHANNEL_KEYS if n in channels] or ["email"]:
            found = _expression(value, ("tracking", "utm", field), render_context(data, channel))
            if found:
                problems += found
                break
    return problems


def _expression(source: Any, path: Loc, ctx: dict[str, Any]) -> list[_Found]:
    if not isinstance(source, str) or not source:
        return []  # wrong types and empty text are reported by the schema
    field = ".".join(str(p) for p in path[1:] if p != "channels")
    try:
        rendered = templating.render_checked(templating.compile_string(source), ctx)
    except templating.TemplateProblem as problem:
        return [_Found(path, t("campaign.expression_problem", field=field,
                               problem=problem.message))]
    except Exception as exc:  # a filter fed the wrong type (e.g. Decimal
        # errors from ``rupiah``) is still the author's mistake, never a traceback
        return [_Found(path, t("campaign.expression_problem", field=field,
                               problem=f"{type(exc).__name__}: {exc}"))]
    if path[-1] == "subject" and (not rendered.strip() or "\n" in rendered.strip()):
        return [_Found(path, t("campaign.subject_blank", field=field, rendered=_show(rendered)))]
    return []


def _email_template(name: Any, path: Loc, ctx: dict[str, Any]) -> list[_Found]:
    if not isinstance(name, str) or not name.endswith(".mjml") or ".." in name.split("/"):
        return []  # the schema reports it
    if not templating.template_exists(name):
        return [_Found(path, _missing_template(name))]
    checker = _email_template_checker()
    if checker is None:
        return []
    try:
        checker(name, ctx)
    except templating.TemplateProblem as problem:
        where = t("campaign.template_line", line=problem.lineno) if problem.lineno else ""
        shown = problem.template if problem.template and problem.template != name else name
        return [_Found(path, t("campaign.template_problem", name=shown, where=where,
                               problem=problem.message))]
    except Exception as exc:  # as in _expression: report it, never crash
        return [_Found(path, t("campaign.template_problem", name=name, where="",
                               problem=f"{type(exc).__name__}: {exc}"))]
    return []


def _missing_template(name: str) -> str:
    """Suggest by file stem (every email template shares 'email/' and '.mjml')."""
    folder = (templating.TEMPLATES_DIR / name).parent
    suffix = Path(name).suffix
    available = sorted(
        p for p in folder.glob(f"*{suffix}") if p.is_file()
    ) if folder.is_dir() and templating.TEMPLATES_DIR in folder.resolve().parents else []
    names = [str(p.relative_to(templating.TEMPLATES_DIR)) for p in available]
    close = difflib.get_close_matches(Path(name).stem, [p.stem for p in available], n=1,
                                      cutoff=0.75)
    if close:
        hint = t("campaign.hint", name=names[[p.stem for p in available].index(close[0])])
    else:
        hint = t("campaign.available", names=", ".join(names)) if names else ""
    return t("campaign.template_missing", name=name, hint=hint)


# ----------------------------------------------------------------------------- pydantic -> text


_TYPE_MESSAGES = {
    "int_type": "campaign.int", "int_parsing": "campaign.int", "int_from_float": "campaign.int",
    "string_type": "campaign.str", "bool_type": "campaign.bool", "bool_parsing": "campaign.bool",
    "list_type": "campaign.list", "dict_type": "campaign.mapping",
    "model_type": "campaign.mapping", "model_attributes_type": "campaign.mapping",
    "datetime_type": "campaign.datetime", "datetime_parsing": "campaign.datetime",
    "datetime_from_date_parsing": "campaign.datetime", "date_type": "campaign.date",
    "date_parsing": "campaign.date", "date_from_datetime_parsing": "campaign.date",
    "date_from_datetime_inexact": "campaign.date",
}
_LIMIT_MESSAGES = {"greater_than": ("campaign.gt", "gt"),
                   "greater_than_equal": ("campaign.ge", "ge"),
                   "less_than": ("campaign.lt", "lt"), "less_than_equal": ("campaign.le", "le"),
                   "string_too_short": ("campaign.too_short", "min_length"),
                   "too_short": ("campaign.too_few", "min_length"),
                   "string_too_long": ("campaign.too_long", "max_length"),
                   "too_long": ("campaign.too_many", "max_length")}


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
    """Translate one pydantic error and find where in the file it belongs."""
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _keys_of(_model_at(loc[:-1]))
        path, _ = smap.deepest(loc)
        return smap.key_or_value(path), t("campaign.unknown_key", name=name,
                                          hint=_hint(name, allowed), allowed=", ".join(allowed))
    if kind == "missing":
        path, _ = smap.deepest(loc[:-1])
        name = str(loc[-1])
        hint = t("campaign.version_hint") if loc == ("version",) else ""
        return smap.key_or_value(path), t("campaign.missing", name=name, hint=hint)
    if kind == "campaign.rule_shape":
        return _describe_rule(loc, value, smap)
    path, _ = smap.deepest(loc)
    position = smap.value(path)
    if has_message(kind):
        return position, t(kind, **ctx)
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", ""))) or [
            str(ctx.get("expected", "")).lower()]
        return position, t("campaign.literal", value=_show(value),
                           hint=_hint(str(value), allowed), allowed=", ".join(allowed))
    if kind in _TYPE_MESSAGES:
        return position, t(_TYPE_MESSAGES[kind], value=_show(value))
    if kind in _LIMIT_MESSAGES:
        key, limit = _LIMIT_MESSAGES[kind]
        return position, t(key, limit=ctx.get(limit), value=_show(value),
                           actual=ctx.get("actual_length", "?"))
    return position, t("campaign.other", detail=error.get("msg", kind))


def _describe_rule(loc: tuple[str | int, ...], value: Any, smap: SourceMap) -> tuple[Position, str]:
    path, _ = smap.deepest(loc)
    allowed = ", ".join(RULE_MODELS)
    if not isinstance(value, Mapping):
        return smap.value(path), t("campaign.rule_not_mapping")
    primaries = _primaries(value)
    unknown = [k for k in value if k not in RULE_MODELS and k not in RULE_MODIFIERS]
    if len(primaries) > 1:
        return (smap.key_or_value((*path, primaries[1])),
                t("campaign.rule_two_primaries", found=", ".join(primaries)))
    if unknown:
        name = str(unknown[0])
        return (smap.key_or_value((*path, name)),
                t("campaign.rule_unknown", name=name,
                  hint=_hint(name, [*RULE_MODELS, *RULE_MODIFIERS]), allowed=allowed))
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
    rules = type_rule_problems(data) + (_value_rule_problems(spec) if spec else [])
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


__all__ = [
    "CAMPAIGN_TYPES",
    "Audience",
    "CampaignError",
    "CampaignSpec",
    "CampaignValidationError",
    "Channels",
    "Content",
    "EmailChannel",
    "Offer",
    "Products",
    "Schedule",
    "Trigger",
    "WhatsAppTemplate",
    "check_files",
    "load_campaign",
    "plugin_channels",
    "render_context",
    "spec_hash",
    "validate_files",
]
