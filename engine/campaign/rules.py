"""Cross-field rules of a campaign file: what its ``type`` demands, and dates that must agree.

Why apart from the schema models: these rules run on the *raw* document, so every one of
them is reported next to the schema's own problems (each at its own key), even when other
parts of the file do not parse. The schema runs them again on a spec built in code
(``skip_rules`` off), so a spec that bypasses the loader cannot break them either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from engine.campaign.fields import CAMPAIGN_TYPES, ORDER_EVENTS, Loc, as_mapping
from engine.campaign.winner import winner_rule_problems


@dataclass(frozen=True)
class RuleProblem:
    """A cross-field problem at ``path`` (a key of the document)."""

    path: Loc
    key: str
    params: dict[str, Any]


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
    problems += [RuleProblem(path, key, {}) for path, key in winner_rule_problems(kind, data)]
    return problems


def _schedule_rules(kind: str, schedule: Mapping[str, Any]) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    here: Loc = ("schedule",)
    trigger = as_mapping(schedule.get("trigger"))
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


def value_rule_problems(start: datetime | None, offer_ends: date | None) -> list[RuleProblem]:
    """Rules that need parsed values (dates), checked once the schema passed: the schema
    passes the parsed ``schedule.start`` and ``offer.ends`` (this module sits below it)."""
    if offer_ends and start and offer_ends < start.date():
        return [RuleProblem(("offer", "ends"), "campaign.offer_ends_before_start",
                            {"ends": str(offer_ends), "start": str(start.date())})]
    return []
