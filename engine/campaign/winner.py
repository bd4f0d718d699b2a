"""The A/B winner rule of a campaign file: ``channels.email.winner`` (issue 19).

Why a rule and not a manual step: a Dinas officer launches a campaign and leaves it; the
beat sends the variants to a test group (``test_share`` percent of the audience), and
``after_hours`` later sends the better variant (by ``metric``) to everyone else. When the
difference is not significant (two-proportion z-test, p < 0.05) ``if_not_significant``
says what goes out: ``best`` (the better point estimate, the default) or ``control``
(variant A, the ``email`` block itself).

The rule's raw-document checks (it needs variants, transactional mail has no test group)
are :func:`winner_rule_problems`, run with the other type rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from engine.campaign.fields import Loc, Strict, as_mapping

WINNER_METRICS = ("click_rate", "open_rate")


class WinnerRule(Strict):
    """``{after_hours: 4, metric: click_rate, test_share: 20}``."""

    after_hours: Annotated[int, Field(ge=1, le=168)]
    metric: Literal["click_rate", "open_rate"] = "click_rate"
    test_share: Annotated[int, Field(ge=1, le=90)] = 20
    if_not_significant: Literal["best", "control"] = "best"


def winner_rule_problems(kind: Any, data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """(path, i18n key) of each misuse of the rule in the raw document."""
    email = as_mapping(as_mapping(data.get("channels")).get("email"))
    if "winner" not in email:
        return []
    here: Loc = ("channels", "email", "winner")
    if kind == "transactional":
        return [(here, "campaign.winner_transactional")]
    variants = email.get("variants")
    if not isinstance(variants, list) or not variants:
        return [(here, "campaign.winner_needs_variants")]
    return []
