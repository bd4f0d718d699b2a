"""Campaign template checks: compile and test-render everything a campaign will send.

Why before launch: subjects, preheaders, UTM values and email templates are compiled and
rendered in the same sandboxed, StrictUndefined Jinja environment that sends the real
mail (:mod:`engine.message.templating`, :mod:`engine.message.render`), with the render
context this campaign will really have (``offer`` is ``None`` when the campaign has
none). A typo in ``{{ offer.percnt }}`` is then a ``file:line:column`` error from
``umkm campaign validate``, not a failed send to thousands of customers.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from channels import ChannelKind, channel_names
from engine.campaign.fields import (
    CAMPAIGN_TYPES,
    CHANNEL_KEYS,
    DEFAULT_TIMEZONE,
    ORDER_EVENTS,
    Loc,
    as_mapping,
)
from engine.campaign.schema import Content, Offer, plugin_channels
from engine.campaign.template_static import static_problems, template_source
from engine.common.i18n import t
from engine.common.validation_text import shown
from engine.message import templating
from engine.message.render import check_email_template


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
    trigger = as_mapping(as_mapping(data.get("schedule")).get("trigger"))
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
class Finding:
    """A template or expression problem at ``path``, already worded for the author."""

    path: Loc
    message: str


def template_problems(data: Mapping[str, Any]) -> list[Finding]:
    """Compile and test-render every template and expression the campaign will use."""
    channels = as_mapping(data.get("channels"))
    problems: list[Finding] = []
    email = as_mapping(channels.get("email"))
    if email:
        ctx = render_context(data, "email")
        here: Loc = ("channels", "email")
        for field in ("subject", "preheader"):
            problems += _expression(email.get(field), (*here, field), ctx)
        problems += _email_template(email.get("template"), (*here, "template"), ctx)
        variants = email.get("variants")
        for i, variant in enumerate(variants if isinstance(variants, list) else []):
            variant = as_mapping(variant)
            problems += _expression(variant.get("subject"), (*here, "variants", i, "subject"), ctx)
            problems += _email_template(variant.get("template"),
                                        (*here, "variants", i, "template"), ctx)
    extra = [k for k in channels if k not in CHANNEL_KEYS]
    plugins = sorted(plugin_channels() & set(extra)) if extra else []
    for name in (*channel_names(ChannelKind.POST, ChannelKind.MESSAGE, plugins=False), *plugins):
        template = as_mapping(channels.get(name)).get("template")
        if isinstance(template, str) and not templating.template_exists(template):
            problems.append(Finding(("channels", name, "template"), _missing_template(template)))
    utm = as_mapping(as_mapping(data.get("tracking")).get("utm"))
    for field, value in utm.items():
        for channel in [n for n in CHANNEL_KEYS if n in channels] or ["email"]:
            found = _expression(value, ("tracking", "utm", field), render_context(data, channel))
            if found:
                problems += found
                break
    return problems


def _expression(source: Any, path: Loc, ctx: dict[str, Any]) -> list[Finding]:
    if not isinstance(source, str) or not source:
        return []  # wrong types and empty text are reported by the schema
    field = ".".join(str(p) for p in path[1:] if p != "channels")
    for static in static_problems(source):  # every branch, not only the sampled one
        return [Finding(path, t("campaign.expression_problem", field=field, problem=t(
            "campaign.static_limit", line=static.lineno, detail=static.message)))]
    try:
        rendered = templating.render_checked(templating.compile_string(source), ctx)
    except templating.TemplateProblem as problem:
        return [Finding(path, t("campaign.expression_problem", field=field,
                                problem=problem.message))]
    except Exception as exc:  # a filter fed the wrong type (e.g. Decimal
        # errors from ``rupiah``) is still the author's mistake, never a traceback
        return [Finding(path, t("campaign.expression_problem", field=field,
                                problem=f"{type(exc).__name__}: {exc}"))]
    if path[-1] == "subject" and (not rendered.strip() or "\n" in rendered.strip()):
        return [Finding(path, t("campaign.subject_blank", field=field, rendered=shown(rendered)))]
    return []


def _email_template(name: Any, path: Loc, ctx: dict[str, Any]) -> list[Finding]:
    if not isinstance(name, str) or not name.endswith(".mjml") or ".." in name.split("/"):
        return []  # the schema reports it
    if not templating.template_exists(name):
        return [Finding(path, _missing_template(name))]
    for static in static_problems(template_source(name) or ""):
        return [Finding(path, t("campaign.template_problem", name=name,
                                where=t("campaign.template_line", line=static.lineno),
                                problem=static.message))]
    try:
        check_email_template(name, ctx)
    except templating.TemplateProblem as problem:
        where = t("campaign.template_line", line=problem.lineno) if problem.lineno else ""
        label = problem.template if problem.template and problem.template != name else name
        return [Finding(path, t("campaign.template_problem", name=label, where=where,
                                problem=problem.message))]
    except Exception as exc:  # as in _expression: report it, never crash
        return [Finding(path, t("campaign.template_problem", name=name, where="",
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
