"""Audience segments compiled to SQL (DESIGN §2 "plan", §9).

A campaign's ``audience:`` block (plain dicts, as dumped from the YAML schema) becomes
ONE SQLAlchemy ``SELECT customer.id`` with ``EXISTS`` / ``NOT EXISTS`` subqueries and
bound parameters. Why SQL and not Python: the customer table can hold hundreds of
thousands of rows; the database filters them with its indexes and we only ever hold a
batch of ids (keyset pagination) in memory. Why never string-built SQL: rule values
come from YAML files; every value is a bound parameter, so a tag such as
``x' OR 1=1 --`` matches nothing and breaks nothing.

Shape of the input::

    {"include": [rule, ...],      # ANDed
     "exclude": [rule, ...],      # ORed, then negated
     "frequency_cap": {"max": 2, "per_days": 7} | None}

A rule has exactly one primary key plus the modifiers that key allows; ``{"any": [...]}``
is an OR group (nestable). ``None`` values are dropped first, so a pydantic
``model_dump()`` without ``exclude_none`` works as well.

Gates applied on top of the rules, in this order (the order of the ``campaign plan``
breakdown in :class:`AudienceCount`):

1. the customer has an address for the channel (email / phone), part of "matched";
2. marketing consent: the NEWEST ``Consent`` row for (customer, channel, marketing) is
   granted -- every campaign type except ``transactional`` (UU 27/2022: a withdrawal
   stops processing at once, so an older grant never wins over a newer withdrawal);
3. suppression: a ``Suppression`` row for (channel, address) always excludes;
4. frequency cap: ``sent`` deliveries on the channel within ``per_days`` from runs of
   non-transactional campaigns; transactional mail ignores caps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal

from engine.common.errors import InvalidInput
from engine.models import (
    Campaign,
    CampaignRun,
    CampaignType,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Suppression,
)

AUDIENCE_CHANNELS = ("email", "whatsapp")
ENGAGEMENT_TYPES = ("open", "click")
_PURCHASED = (OrderStatus.confirmed, OrderStatus.shipped, OrderStatus.invoiced)


class AudienceRuleError(InvalidInput, ValueError):
    """A rule the compiler does not understand. The YAML schema rejects these first;
    this is the second line of defence, so a hand-edited spec in the database cannot
    silently widen an audience."""


@dataclass(frozen=True)
class AudienceCount:
    """The ``campaign plan`` breakdown. Gates are applied in order, so each removal is
    counted once: ``matched - without_consent - suppressed - frequency_capped == total``.
    """

    matched: int
    without_consent: int
    suppressed: int
    frequency_capped: int
    total: int


# --------------------------------------------------------------------------- JSON tag


class JsonArrayContains(ColumnElement[bool]):
    """``<json array column> contains <string>`` for SQLite and PostgreSQL.

    Why a construct: ``Customer.tags`` is plain ``JSON`` (portable), which has no
    containment operator in SQLAlchemy; each dialect gets its own native spelling and
    the value stays a bound parameter.
    """

    __visit_name__ = "json_array_contains"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's own (class-level) protocol
        ("column", InternalTraversal.dp_clauseelement),
        ("value", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], value: str) -> None:
        self.column = column
        self.value: BindParameter[str] = bindparam(None, value, type_=String(), unique=True)


@compiles(JsonArrayContains, "sqlite")
def _contains_sqlite(element: JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    value = compiler.process(element.value, **kw)
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}) AS tag_each "
        f"WHERE tag_each.type = 'text' AND tag_each.value = {value})"
    )


@compiles(JsonArrayContains, "postgresql")
def _contains_postgresql(element: JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    value = compiler.process(element.value, **kw)
    return f"(CAST({column} AS JSONB) @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(JsonArrayContains)
def _contains_other(element: JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"tag rules are not supported on {compiler.dialect.name}")


# --------------------------------------------------------------------------- helpers


def _utc(now: datetime) -> datetime:
    """Bind times as UTC: SQLite stores naive UTC and drops any zone we pass."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _bad(key: str, value: object, expected: str) -> AudienceRuleError:
    return AudienceRuleError("audience.bad_value", name=key, value=value, expected=expected)


def _days(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(key, value, "bilangan bulat >= 1")
    return value


def _amount(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(key, value, "rupiah bulat >= 0")
    return value


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(key, value, "teks tidak kosong")
    return value


def _texts(key: str, value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise _bad(key, value, "teks atau daftar teks")
    return [_text(key, item) for item in items]


def _purchase_exists(*conditions: ColumnElement[bool], items: bool = False) -> ColumnElement[bool]:
    """EXISTS an order (not cancelled) of this customer matching ``conditions``."""
    query = select(Order.id).where(Order.customer_id == Customer.id, Order.status.in_(_PURCHASED))
    if items:
        query = query.join(OrderItem, OrderItem.order_id == Order.id).join(
            Product, Product.id == OrderItem.product_id
        )
    return exists(query.where(*conditions))


@dataclass(frozen=True)
class _Ctx:
    channel: str
    now: datetime

    def since(self, days: int) -> datetime:
        return self.now - timedelta(days=days)


# --------------------------------------------------------------------------- rules


def newest_consent_granted(channel: str, purpose: ConsentPurpose) -> ColumnElement[bool]:
    """The newest Consent row for (customer, channel, purpose) exists and is granted.

    Ties on ``recorded_at`` go to the higher id (inserted later). Served by the
    ``ix_consent_lookup`` index.
    """
    newer = aliased(Consent)
    newer_exists = exists(
        select(newer.id).where(
            newer.customer_id == Consent.customer_id,
            newer.channel == Consent.channel,
            newer.purpose == Consent.purpose,
            or_(
                newer.recorded_at > Consent.recorded_at,
                and_(newer.recorded_at == Consent.recorded_at, newer.id > Consent.id),
            ),
        )
    )
    return exists(
        select(Consent.id).where(
            Consent.customer_id == Customer.id,
            Consent.channel == ConsentChannel(channel),
            Consent.purpose == purpose,
            Consent.granted.is_(True),
            ~newer_exists,
        )
    )


def _rule_consent(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    purpose = rule["consent"]
    if purpose not in {p.value for p in ConsentPurpose}:
        raise _bad("consent", purpose, "marketing | transactional")
    channel = rule.get("channel", ctx.channel)
    if channel not in {c.value for c in ConsentChannel}:
        raise _bad("channel", channel, "email | whatsapp | sms")
    return newest_consent_granted(channel, ConsentPurpose(purpose))


def _rule_kecamatan(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    return Customer.kecamatan_code.in_(_texts("kecamatan", rule["kecamatan"]))


def _window(rule: Mapping[str, Any], ctx: _Ctx) -> list[ColumnElement[bool]]:
    if "within_days" not in rule:
        return []
    return [Order.ordered_at >= ctx.since(_days("within_days", rule["within_days"]))]


def _rule_purchased_category(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    category = _text("purchased_category", rule["purchased_category"])
    return _purchase_exists(Product.category == category, *_window(rule, ctx), items=True)


def _rule_purchased_product(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    raw = rule["purchased_product"]
    if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
        raise _bad("purchased_product", raw, "SKU atau id produk")
    matches: list[ColumnElement[bool]] = [Product.sku == str(raw)]
    if isinstance(raw, int) or raw.isdigit():
        matches.append(Product.id == int(raw))
    return _purchase_exists(or_(*matches), *_window(rule, ctx), items=True)


def _rule_purchased_within(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    days = _days("purchased_within_days", rule["purchased_within_days"])
    return _purchase_exists(Order.ordered_at >= ctx.since(days))


def _rule_no_purchase(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    """Has bought before, but not in the last N days (the win-back segment)."""
    days = _days("no_purchase_days", rule["no_purchase_days"])
    return and_(_purchase_exists(), ~_purchase_exists(Order.ordered_at >= ctx.since(days)))


def _rule_spend(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    spend = (
        select(func.coalesce(func.sum(Order.total), 0))
        .where(Order.customer_id == Customer.id, Order.status.in_(_PURCHASED), *_window(rule, ctx))
        .scalar_subquery()
    )
    bounds: list[ColumnElement[bool]] = []
    if "total_spend_min" in rule:
        bounds.append(spend >= _amount("total_spend_min", rule["total_spend_min"]))
    if "total_spend_max" in rule:
        bounds.append(spend <= _amount("total_spend_max", rule["total_spend_max"]))
    return and_(*bounds)


def _rule_engaged(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    """An open or click in the window; events flagged as bots (link scanners) don't count."""
    days = _days("engaged_within_days", rule["engaged_within_days"])
    return exists(
        select(EngagementEvent.id).where(
            EngagementEvent.customer_id == Customer.id,
            EngagementEvent.type.in_(ENGAGEMENT_TYPES),
            EngagementEvent.suspected_bot.is_(False),
            EngagementEvent.occurred_at >= ctx.since(days),
        )
    )


def _rule_tag(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    return JsonArrayContains(Customer.tags.expression, _text("tag", rule["tag"]))


def _rule_all(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    if rule["all"] is not True:
        raise _bad("all", rule["all"], "true")
    return true()


def _rule_any(rule: Mapping[str, Any], ctx: _Ctx) -> ColumnElement[bool]:
    rules = rule["any"]
    if not isinstance(rules, list | tuple) or not rules:
        raise _bad("any", rules, "daftar aturan yang tidak kosong")
    return or_(*(compile_rule(r, ctx) for r in rules))


_Compiler = Callable[[Mapping[str, Any], _Ctx], ColumnElement[bool]]

# primary key -> (compiler, allowed modifiers)
RULES: dict[str, tuple[_Compiler, frozenset[str]]] = {
    "consent": (_rule_consent, frozenset({"channel"})),
    "kecamatan": (_rule_kecamatan, frozenset()),
    "purchased_category": (_rule_purchased_category, frozenset({"within_days"})),
    "purchased_product": (_rule_purchased_product, frozenset({"within_days"})),
    "purchased_within_days": (_rule_purchased_within, frozenset()),
    "no_purchase_days": (_rule_no_purchase, frozenset()),
    "total_spend_min": (_rule_spend, frozenset({"within_days", "total_spend_max"})),
    "total_spend_max": (_rule_spend, frozenset({"within_days"})),
    "engaged_within_days": (_rule_engaged, frozenset()),
    "tag": (_rule_tag, frozenset()),
    "all": (_rule_all, frozenset()),
    "any": (_rule_any, frozenset()),
}
MODIFIERS = frozenset({"channel", "within_days"})


def _primary_key(rule: Mapping[str, Any]) -> str:
    keys = set(rule)
    unknown = keys - set(RULES) - MODIFIERS
    if unknown:
        raise AudienceRuleError(
            "audience.unknown_rule", keys=", ".join(sorted(unknown)), known=", ".join(RULES)
        )
    primaries = keys & set(RULES)
    if {"total_spend_min", "total_spend_max"} <= primaries:  # a spend range is one rule
        primaries.discard("total_spend_max")
    if not primaries:
        raise AudienceRuleError("audience.no_primary", rule=dict(rule))
    if len(primaries) > 1:
        raise AudienceRuleError("audience.many_primary", keys=", ".join(sorted(primaries)))
    return primaries.pop()


def compile_rule(rule: object, ctx: _Ctx) -> ColumnElement[bool]:
    """One rule dict -> a boolean SQL expression correlated to ``customer``."""
    if not isinstance(rule, Mapping):
        raise AudienceRuleError("audience.no_primary", rule=rule)
    cleaned = {k: v for k, v in rule.items() if v is not None}
    key = _primary_key(cleaned)
    compiler, allowed = RULES[key]
    for modifier in set(cleaned) - {key} - allowed:
        raise AudienceRuleError("audience.bad_modifier", modifier=modifier, name=key)
    return compiler(cleaned, ctx)


# --------------------------------------------------------------------------- gates


def _address(channel: str) -> InstrumentedAttribute[str | None]:
    return Customer.email if channel == "email" else Customer.phone


def _has_address(channel: str) -> ColumnElement[bool]:
    column = _address(channel)
    return and_(column.is_not(None), column != "")


def _suppressed(channel: str) -> ColumnElement[bool]:
    """Suppression by (channel, address). Emails are compared as stored and lower-cased,
    so a suppression written normalised still hits a mixed-case customer row while the
    unique (channel, address) index keeps serving the lookup."""
    address = _address(channel)
    candidates = [address, func.lower(address)] if channel == "email" else [address]
    return exists(
        select(Suppression.id).where(
            Suppression.channel == channel, Suppression.address.in_(candidates)
        )
    )


def _capped(channel: str, cap: Mapping[str, Any], now: datetime) -> ColumnElement[bool]:
    """Customers with >= max sent non-transactional deliveries on the channel in the window.

    An uncorrelated ``IN (SELECT ... GROUP BY ... HAVING)``: the window's deliveries are
    grouped once instead of counted again for every customer.
    """
    limit = _days("frequency_cap.max", cap.get("max"))
    per_days = _days("frequency_cap.per_days", cap.get("per_days"))
    since = now - timedelta(days=per_days)
    heavy = (
        select(Delivery.customer_id)
        .join(CampaignRun, CampaignRun.id == Delivery.run_id)
        .join(Campaign, Campaign.id == CampaignRun.campaign_id)
        .where(
            Delivery.customer_id.is_not(None),
            Delivery.channel == channel,
            Delivery.status == DeliveryStatus.sent,
            func.coalesce(Delivery.sent_at, Delivery.created_at) >= since,
            Campaign.type != CampaignType.transactional,
        )
        .group_by(Delivery.customer_id)
        .having(func.count() >= limit)
    )
    return Customer.id.in_(heavy)


@dataclass(frozen=True)
class _Compiled:
    matched: ColumnElement[bool]
    gates: list[tuple[str, ColumnElement[bool]]]  # (name, condition to KEEP a customer)


def _gate_repeats(rule: Mapping[str, Any], channel: str) -> bool:
    """The rule is ``consent: marketing`` on the campaign's own channel: exactly the
    consent gate's condition, which every non-transactional audience gets anyway."""
    return (set(rule) <= {"consent", "channel"} and rule.get("consent") == "marketing"
            and rule.get("channel", channel) == channel)


def _compile(
    audience: Mapping[str, Any], campaign_type: str, channel: str, now: datetime, *,
    recipients_only: bool = False,
) -> _Compiled:
    """The rules and the gates as SQL conditions.

    ``recipients_only`` (the recipients' query, not the plan's counts): an include rule
    that repeats the consent gate is left out, as the gate stands for it; PostgreSQL
    evaluates two identical ``EXISTS`` twice (~2 s per million customers here).
    """
    if channel not in AUDIENCE_CHANNELS:
        raise AudienceRuleError("audience.bad_channel", channel=channel)
    if campaign_type not in {c.value for c in CampaignType}:
        raise AudienceRuleError("audience.bad_type", type=campaign_type)
    unknown = set(audience) - {"include", "exclude", "frequency_cap"}
    if unknown:
        raise AudienceRuleError(
            "audience.unknown_rule", keys=", ".join(sorted(unknown)),
            known="include, exclude, frequency_cap"
        )
    ctx = _Ctx(channel=channel, now=_utc(now))
    transactional = campaign_type == CampaignType.transactional.value
    rules = [r for r in audience.get("include") or []
             if not (recipients_only and not transactional and _gate_repeats(r, channel))]
    include = [compile_rule(r, ctx) for r in rules]
    exclude = [compile_rule(r, ctx) for r in audience.get("exclude") or []]
    matched = and_(_has_address(channel), *include, not_(or_(false(), *exclude)))
    gates: list[tuple[str, ColumnElement[bool]]] = []
    if not transactional:
        gates.append(("consent", newest_consent_granted(channel, ConsentPurpose.marketing)))
    gates.append(("suppression", ~_suppressed(channel)))
    cap = audience.get("frequency_cap")
    if cap and not transactional:
        gates.append(("frequency_cap", ~_capped(channel, cap, ctx.now)))
    return _Compiled(matched=matched, gates=gates)


# --------------------------------------------------------------------------- API


def build_audience_query(
    audience: Mapping[str, Any], *, campaign_type: str, channel: str = "email", now: datetime
) -> Select[tuple[int]]:
    """``SELECT customer.id`` of every recipient, ordered by id (ready for keyset paging)."""
    compiled = _compile(audience, campaign_type, channel, now, recipients_only=True)
    return (
        select(Customer.id)
        .where(compiled.matched, *(cond for _, cond in compiled.gates))
        .order_by(Customer.id)
    )


def count_audience(
    session: Session,
    audience: Mapping[str, Any],
    *,
    campaign_type: str,
    channel: str = "email",
    now: datetime,
) -> AudienceCount:
    """Totals for ``campaign plan`` in one scan: matched by the rules, then removed by
    each gate in turn (consent, suppression, frequency cap)."""
    compiled = _compile(audience, campaign_type, channel, now)
    columns: list[ColumnElement[Any]] = [func.count()]
    passed: list[ColumnElement[bool]] = []
    for _name, keep in compiled.gates:
        columns.append(func.coalesce(func.sum(case((and_(*passed, ~keep), 1), else_=0)), 0))
        passed.append(keep)
    columns.append(func.coalesce(func.sum(case((and_(true(), *passed), 1), else_=0)), 0))
    row = session.execute(select(*columns).select_from(Customer).where(compiled.matched)).one()
    removed = dict(zip((name for name, _ in compiled.gates), row[1:-1], strict=True))
    return AudienceCount(
        matched=int(row[0]),
        without_consent=int(removed.get("consent", 0)),
        suppressed=int(removed.get("suppression", 0)),
        frequency_capped=int(removed.get("frequency_cap", 0)),
        total=int(row[-1]),
    )


def iter_audience_ids(
    session: Session,
    audience: Mapping[str, Any],
    *,
    campaign_type: str,
    channel: str = "email",
    now: datetime,
    batch_size: int = 1000,
) -> Iterator[list[int]]:
    """Recipient ids in batches, keyset-paginated (``WHERE id > last ORDER BY id LIMIT n``).

    Why keyset and not OFFSET: each page costs the same however deep we are, and rows
    inserted meanwhile never shift a page (no id is returned twice).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    base = build_audience_query(audience, campaign_type=campaign_type, channel=channel, now=now)
    last = 0
    while True:
        ids: Sequence[int] = session.execute(
            base.where(Customer.id > last).limit(batch_size)
        ).scalars().all()
        if not ids:
            return
        yield list(ids)
        if len(ids) < batch_size:
            return
        last = ids[-1]
