"""Social sandbox: every post is written as JSON instead of being published.

The embedded default (``SOCIAL_MODE=sandbox``) for Facebook, Instagram, TikTok and
WhatsApp: the whole campaign pipeline runs unchanged, and staff can read what would
have been posted in ``<root>/<channel>/<delivery_id>.json``.  Metrics are deterministic
fakes derived from the post id, so dashboards and reports have something real to show.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from channels.base import (
    AccountCredentials,
    Capabilities,
    ConfigurationError,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    SocialHooks,
    pick,
)
from channels.files import FileChannel
from channels.metrics import EngagementMetric, MetricType

_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
# Ranges of the fake counts per metric: plausible for a kabupaten-level page.
_FAKE_RANGES: dict[MetricType, tuple[int, int]] = {
    MetricType.VIEW: (40, 600),
    MetricType.REACH: (30, 400),
    MetricType.REACTION: (2, 60),
    MetricType.COMMENT: (0, 12),
    MetricType.SHARE: (0, 15),
    MetricType.CLICK: (0, 40),
    MetricType.SAVE: (0, 10),
}


class SandboxChannel(FileChannel):
    """Write each social payload to ``<root>/<channel>/<delivery_id>.json``."""

    name = "sandbox"
    capabilities = Capabilities(
        media_types=frozenset({"text", "image", "video", "link"}), max_batch=100, metrics=True,
        kind=None, label="Sandbox",
    )

    def __init__(
        self,
        root: str | os.PathLike[str],
        channel: str = "sandbox",
        *,
        capabilities: Capabilities | None = None,
    ) -> None:
        super().__init__()
        if not _CHANNEL_NAME.match(channel):
            raise ConfigurationError(
                "channel.bad_option", name=self.name, detail=f"nama kanal {channel!r} tidak valid"
            )
        self.channel = channel
        self.directory = Path(root) / channel
        if capabilities is not None:  # mimic the real channel's limits in the sandbox
            self.capabilities = capabilities

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     credentials: AccountCredentials | None = None,
                     hooks: SocialHooks | None = None) -> Self:
        """The outbox directory and the channel it stands in for; no account is used."""
        return cls(options["root"], **pick(options, "channel", "capabilities"))

    def provider_id(self, delivery_id: int) -> str:
        return f"sandbox-{self.channel}-{delivery_id}"

    def build_payload(self, message: OutboundMessage) -> bytes:
        if not isinstance(message.payload, Mapping):
            raise PermanentChannelError("payload sandbox harus berupa dict")
        document: dict[str, Any] = {
            "channel": self.channel,
            "delivery_id": message.delivery_id,
            "recipient": message.recipient,
            "account": message.account,
            "message_id": message.message_id,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "payload": dict(message.payload),
        }
        return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")

    def file_for(self, message: OutboundMessage) -> Path:
        return self.directory / f"{message.delivery_id}.json"

    def parse(self, message: OutboundMessage, response: Path) -> SendResult:
        return SendResult(
            message.delivery_id,
            SendStatus.SENT,
            provider_id=self.provider_id(message.delivery_id),
            raw={"path": str(response)},
        )

    def fetch_metrics(self, provider_post_ids: Sequence[str]) -> list[EngagementMetric]:
        """Deterministic fake counts for posts this sandbox wrote; unknown ids are skipped."""
        prefix = f"sandbox-{self.channel}-"
        metrics: list[EngagementMetric] = []
        now = datetime.now(UTC)
        for post_id in provider_post_ids:
            delivery = post_id.removeprefix(prefix)
            if delivery == post_id or not (self.directory / f"{delivery}.json").is_file():
                continue
            metrics += [EngagementMetric(kind, count, post_id, observed_at=now,
                                         raw={"sandbox": True, "simulated": True})
                        for kind, count in fake_counts(post_id).items()]
        return metrics


def fake_counts(post_id: str) -> dict[MetricType, int]:
    """Deterministic invented counts that hang together: reach (people) never exceeds
    views (impressions), as on every platform (issue 17: TikTok showed reach > views)."""
    digest = hashlib.sha256(post_id.encode()).digest()
    counts: dict[MetricType, int] = {}
    for index, (kind, (low, high)) in enumerate(_FAKE_RANGES.items()):
        counts[kind] = low + int.from_bytes(digest[2 * index : 2 * index + 2]) % (high - low + 1)
    counts[MetricType.REACH] = min(counts[MetricType.REACH], counts[MetricType.VIEW])
    return counts
