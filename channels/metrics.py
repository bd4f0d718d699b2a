"""The engagement vocabulary every social channel reports in (Pasal 11 monitoring).

Apart from :mod:`channels.base` because only channels that read metrics need it: the
sending contract stays small, and a provider's own metric names are translated to ours
in one table here instead of in every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class MetricType(StrEnum):
    """The one engagement vocabulary of every social channel (Pasal 11 monitoring)."""

    VIEW = "view"
    REACH = "reach"
    REACTION = "reaction"
    COMMENT = "comment"
    SHARE = "share"
    CLICK = "click"
    SAVE = "save"

    @classmethod
    def from_provider(cls, name: str) -> MetricType | None:
        """Map a provider's metric name (``likes``, ``saved``, ``video_views``) to ours.

        Returns None for metrics we deliberately do not track, so adapters can skip them.
        """
        key = name.strip().lower()
        try:
            return cls(key)
        except ValueError:
            return _METRIC_ALIASES.get(key)


_METRIC_ALIASES: dict[str, MetricType] = {
    "views": MetricType.VIEW,
    "video_views": MetricType.VIEW,
    "plays": MetricType.VIEW,
    "play_count": MetricType.VIEW,
    "view_count": MetricType.VIEW,
    "post_impressions_unique": MetricType.REACH,
    "likes": MetricType.REACTION,
    "like_count": MetricType.REACTION,
    "reactions": MetricType.REACTION,
    "post_reactions_by_type_total": MetricType.REACTION,
    "comments": MetricType.COMMENT,
    "comment_count": MetricType.COMMENT,
    "shares": MetricType.SHARE,
    "share_count": MetricType.SHARE,
    "clicks": MetricType.CLICK,
    "post_clicks": MetricType.CLICK,
    "saved": MetricType.SAVE,
    "saves": MetricType.SAVE,
}


@dataclass(frozen=True, slots=True)
class EngagementMetric:
    """A normalized engagement count read from a provider for one published post."""

    type: MetricType
    count: int
    provider_post_id: str
    observed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
