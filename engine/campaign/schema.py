"""Campaign YAML, version 1: the schema (pydantic models) of a campaign file.

Why it is strict: a campaign file is written by hand and reviewed in git; every mistake
must be caught by ``umkm campaign validate`` (:mod:`engine.campaign.loader`) with
``file:line:column`` and a hint, never halfway through sending to thousands of customers.
So every model forbids unknown keys (the loader suggests the nearest valid key), and the
cross-field rules that depend on the campaign ``type`` (:mod:`engine.campaign.rules`) run
on the raw document too, so *all* problems of a file are reported together.

The dumped shape (``spec.to_storage()``) equals the YAML shape, so ``engine.campaign.audience`` can
compile ``spec.audience.model_dump(mode="json", exclude_none=True)`` without a second
vocabulary, and a stored spec validates again with ``CampaignSpec.model_validate``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal, Self, TypeAlias
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
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

from channels import plugin_channels as registry_plugins
from engine.campaign.fields import (
    CHANNEL_KEYS,
    DEFAULT_COOLDOWN_DAYS,
    DEFAULT_TIMEZONE,
    Category,
    Days,
    EmailTemplate,
    JinjaText,
    KecamatanCodes,
    Rupiah,
    Sku,
    SocialTemplate,
    Strict,
    Text,
    VideoName,
    check_cron,
    check_hhmm,
    check_slug,
    check_timezone,
    check_version,
    custom_error,
)
from engine.campaign.rules import type_rule_problems, value_rule_problems
from engine.campaign.winner import WinnerRule
from engine.common.i18n import has_message, text_of

# ----------------------------------------------------------------------------- audience


class ConsentRule(Strict):
    consent: Literal["marketing", "transactional"]
    channel: Literal["email", "whatsapp"] | None = None


class KecamatanRule(Strict):
    kecamatan: KecamatanCodes


class PurchasedCategoryRule(Strict):
    purchased_category: Category
    within_days: Days | None = None


class PurchasedProductRule(Strict):
    purchased_product: Sku
    within_days: Days | None = None


class PurchasedWithinRule(Strict):
    purchased_within_days: Days


class NoPurchaseRule(Strict):
    no_purchase_days: Days


class TotalSpendMinRule(Strict):
    """``{total_spend_min: 500000, total_spend_max: 2000000}`` is one range rule."""

    total_spend_min: Annotated[int, Field(ge=0)]
    total_spend_max: Annotated[int, Field(ge=0)] | None = None
    within_days: Days | None = None

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.total_spend_max is not None and self.total_spend_max < self.total_spend_min:
            raise custom_error("campaign.spend_range", low=self.total_spend_min,
                          high=self.total_spend_max)
        return self


class TotalSpendMaxRule(Strict):
    total_spend_max: Annotated[int, Field(ge=0)]
    within_days: Days | None = None


class EngagedRule(Strict):
    engaged_within_days: Days


class TagRule(Strict):
    tag: Text


class AllRule(Strict):
    all: Literal[True]


class AnyRule(Strict):
    """An OR group inside ``include`` (which is otherwise ANDed)."""

    any: Annotated[list[Rule], Field(min_length=1)]


RULE_MODELS: dict[str, type[Strict]] = {
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
    primaries = rule_primaries(keys)
    return f"rule:{primaries[0]}" if len(primaries) == 1 else None


def rule_primaries(keys: Iterable[Any]) -> list[str]:
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


class FrequencyCap(Strict):
    max: Annotated[int, Field(gt=0, le=100)]
    per_days: Days


class Audience(Strict):
    """``include`` rules are ANDed, ``exclude`` rules ORed; ``{any: [...]}`` is an OR group."""

    include: list[Rule] = Field(default_factory=list)
    exclude: list[Rule] = Field(default_factory=list)
    frequency_cap: FrequencyCap | None = None


# ----------------------------------------------------------------------------- schedule


class SendWindow(Strict):
    """Hours (campaign timezone) when bulk mail may go out; may wrap past midnight."""

    from_: Annotated[str, BeforeValidator(check_hhmm)] = Field(alias="from")
    to: Annotated[str, BeforeValidator(check_hhmm)]

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.from_ == self.to:
            raise custom_error("campaign.window_empty")
        return self

    def contains(self, moment: time) -> bool:
        start, end = time.fromisoformat(self.from_), time.fromisoformat(self.to)
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end


class Trigger(Strict):
    event: Literal["order_confirmed", "order_shipped", "order_invoiced"] | None = None
    inactive_days: Days | None = None
    cooldown_days: Days | None = None

    @model_validator(mode="after")
    def _default_cooldown(self) -> Self:
        if self.inactive_days is not None and self.cooldown_days is None:
            self.cooldown_days = DEFAULT_COOLDOWN_DAYS
        return self


class Schedule(Strict):
    start: datetime | None = None
    end: datetime | None = None
    send_window: SendWindow | None = None
    cron: Annotated[str, AfterValidator(check_cron)] | None = None
    trigger: Trigger | None = None

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if end is not None and start is not None:
            a, b = _comparable(start, end)
            if b <= a:
                raise custom_error("campaign.end_before_start", end=str(end), start=str(start))
        return end


def _comparable(a: datetime, b: datetime) -> tuple[datetime, datetime]:
    """Naive and aware mixed: read the naive one in the other's zone (same as the spec)."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        zone = a.tzinfo or b.tzinfo
        a, b = a.replace(tzinfo=a.tzinfo or zone), b.replace(tzinfo=b.tzinfo or zone)
    return a, b


# ----------------------------------------------------------------------------- content


class Products(Strict):
    opt_in: Literal["required", "optional"] = "required"
    category: Category | None = None
    kecamatan: KecamatanCodes | None = None
    max_price: Rupiah | None = None
    per_message: Annotated[int, Field(ge=1, le=12)] = 3
    featured: list[Sku] | None = None


class Offer(Strict):
    kind: Literal["discount", "new_product", "bundle"]
    percent: Annotated[int, Field(ge=1, le=90)] | None = None
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,40}$")] | None = None
    ends: date | None = None
    title: Text | None = None
    bundle_price: Rupiah | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> Self:
        if self.kind == "discount" and self.percent is None:
            raise custom_error("campaign.offer_percent")
        if self.kind == "bundle" and self.bundle_price is None:
            raise custom_error("campaign.offer_bundle")
        return self


class EmailVariant(Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    subject: JinjaText | None = None
    template: EmailTemplate | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.subject is None and self.template is None:
            raise custom_error("campaign.variant_empty")
        return self


class EmailChannel(Strict):
    template: EmailTemplate
    subject: JinjaText
    preheader: JinjaText | None = None
    from_name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    variants: Annotated[list[EmailVariant], Field(max_length=4)] = Field(default_factory=list)
    winner: WinnerRule | None = None  # engine.campaign.winner: test group, then the best


class SocialChannel(Strict):
    """Facebook Page, Instagram, TikTok: posted by the Dinas or the business account."""

    account: Literal["dinas", "business"] = "dinas"
    template: SocialTemplate
    per: Literal["product", "campaign"] = "campaign"


TikTokPrivacy = Literal["PUBLIC_TO_EVERYONE", "FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS",
                        "SELF_ONLY"]


class TikTokChannel(SocialChannel):
    """TikTok's Direct Post rules: an audited app posts at the privacy level the user
    chose for this content (no default) with their explicit consent; an unaudited app
    posts ``SELF_ONLY`` only. ``umkm campaign validate`` checks both against the
    configured app (``TIKTOK_AUDITED``); the adapter checks the level against the
    creator's current options before each post."""

    privacy: TikTokPrivacy | None = None
    consent: bool = False
    video: VideoName | None = None  # an MP4 in MEDIA_DIR/videos/, sent by FILE_UPLOAD


class WhatsAppTemplate(Strict):
    """An approved Cloud API message template; its body takes two parameters, the
    customer's first name ({{1}}) and the tracked product/campaign link ({{2}})."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$")]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")] = "id"


class WhatsAppChannel(Strict):
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
            raise custom_error("campaign.wa_template_needed")
        return self


def plugin_channels() -> frozenset[str]:
    """Channels added by third parties (entry points ``umkm.channels``): post platforms."""
    return frozenset(registry_plugins()) - set(CHANNEL_KEYS)


class Channels(Strict):
    """The built-in channels, plus any plugin channel (``{account, template, per}``) that
    is installed: a third-party adapter works in a campaign without changing the engine."""

    email: EmailChannel | None = None
    facebook: SocialChannel | None = None
    instagram: SocialChannel | None = None
    tiktok: TikTokChannel | None = None
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
            raise custom_error("campaign.no_channel")
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


class Article(Strict):
    title: Text
    summary: Annotated[str, Field(max_length=1000)] | None = None
    url: Annotated[str, Field(pattern=_URL, max_length=500)]


class Training(Strict):
    """A Dinas training session (Pasal 8) announced in a newsletter."""

    title: Text
    date: datetime
    place: Text
    url: Annotated[str, Field(pattern=_URL, max_length=500)] | None = None


class Content(Strict):
    """Editorial content of a newsletter: ``articles`` and ``trainings`` in the render
    context come from here, so the file under review is exactly what goes out."""

    articles: list[Article] = Field(default_factory=list)
    trainings: list[Training] = Field(default_factory=list)


class Utm(Strict):
    source: Text
    medium: Text
    campaign: Text | None = None
    content: Text | None = None


class Tracking(Strict):
    utm: Utm


# ----------------------------------------------------------------------------- the spec


class CampaignSpec(Strict):
    """A validated campaign. Datetimes are timezone-aware (naive ones read in ``timezone``)."""

    version: Annotated[Literal[1], BeforeValidator(check_version)]
    id: Annotated[str, BeforeValidator(check_slug)]
    name: Text
    type: Literal["promotional", "transactional", "newsletter", "retention", "personalized"]
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=60)]],
                    Field(max_length=50)] = Field(default_factory=list)
    timezone: Annotated[str, AfterValidator(check_timezone)] = DEFAULT_TIMEZONE
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
            problems = type_rule_problems(self.to_storage()) + value_rule_problems(
                self.schedule.start, self.offer.ends if self.offer else None)
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
