"""Facebook Page posts through the Graph API (facebook-sdk, via :mod:`channels.meta_graph`).

A post with ``media_url`` becomes a photo post (``POST /{page-id}/photos`` with ``url`` and
``caption``), anything else a feed post (``POST /{page-id}/feed`` with ``message`` and
``link``).  The post id Meta returns is the delivery's ``provider_id``.

Never posting twice: a POST whose answer was lost may still have created the post.
Before the first POST of a delivery the adapter checkpoints an *attempt marker*
(``SocialHooks.checkpoint``) and appends it to the text, encoded as invisible zero-width
characters.  Any later attempt of the same delivery first reads the Page's recent
``published_posts`` and, if a post carries the marker (or, should Meta have stripped it,
the same text published after the attempt began), returns that post as sent instead of
posting again.  A post id already checkpointed short-cuts even that lookup.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import (
    Capabilities,
    ChannelKind,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
)
from channels.meta_graph import (
    MetaChannel,
    MetaGraphClient,
    insight_values,
)
from channels.metrics import EngagementMetric, MetricType

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 63206
# Today's post insights (post_impressions_unique was removed in 2025; its replacement
# is post_total_media_view_unique).  Reactions, comments and shares come from fields.
POST_INSIGHT_METRICS: dict[str, MetricType] = {
    "post_media_view": MetricType.VIEW,
    "post_total_media_view_unique": MetricType.REACH,
    "post_clicks": MetricType.CLICK,
}
ENGAGEMENT_FIELDS = (
    "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares"
)
# How far back a same-text post still counts as "ours" when the marker was stripped.
_CLOCK_SKEW = timedelta(minutes=2)

# Attempt markers travel as zero-width characters: 16 symbols = one hex digit each pair.
_ZW = ("\u200b", "\u200c", "\u200d", "\u2060")
_ZW_START = "\u2063"  # invisible separator: where the marker begins
MARKER_HEX_DIGITS = 12
MARKER_LENGTH = 1 + 2 * MARKER_HEX_DIGITS


def encode_marker(marker: str) -> str:
    """``"3fa9"`` -> an invisible suffix that survives copy/paste and most editors."""
    digits = [int(ch, 16) for ch in marker]
    return _ZW_START + "".join(_ZW[d // 4] + _ZW[d % 4] for d in digits)


def strip_invisible(text: str) -> str:
    return "".join(ch for ch in text if ch not in _ZW and ch != _ZW_START).strip()


@dataclass(frozen=True, slots=True)
class FacebookPost:
    """What goes to the Page: endpoint, text and attachment, plus attribution to echo."""

    endpoint: str  # "feed" or "photos"
    text: str
    link: str | None = None
    media_url: str | None = None
    attribution: dict[str, Any] = field(default_factory=dict)


class FacebookChannel(MetaChannel[FacebookPost]):
    """Post to Facebook Pages; ``message.account`` names the Page account to post as."""

    name = "facebook"
    capabilities = Capabilities(
        media_types=frozenset({"text", "link", "image"}),
        max_text_length=MAX_MESSAGE_LENGTH,
        max_batch=50,
        rate_per_second=1.0,
        metrics=True,
        kind=ChannelKind.POST,
        label="Facebook",
    )

    # How many recent Page posts a retry reads to find one an earlier attempt created.
    lookup_limit = 25

    # -- pipeline steps -------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> FacebookPost:
        data = message.payload
        if not isinstance(data, Mapping):
            raise PermanentChannelError("payload Facebook harus berupa dict")
        text = str(data.get("caption") or data.get("text") or "").strip()
        media_url = data.get("media_url") or None
        media_type = data.get("media_type") or ("image" if media_url else None)
        if media_url and media_type != "image":
            raise PermanentChannelError(
                f"Facebook: jenis media {media_type!r} belum didukung (hanya gambar)"
            )
        if not text and not media_url:
            raise PermanentChannelError("Facebook: kiriman kosong (tanpa teks dan gambar)")
        room = MAX_MESSAGE_LENGTH - MARKER_LENGTH
        if len(text) > room:
            raise PermanentChannelError(
                f"Facebook: teks {len(text)} karakter, batasnya {room} karakter"
            )
        attribution = {k: data[k] for k in ("product_id", "business_id") if k in data}
        return FacebookPost(
            endpoint="photos" if media_url else "feed",
            text=text,
            link=None if media_url else (data.get("link") or None),
            media_url=str(media_url) if media_url else None,
            attribution=attribution,
        )

    def transmit(self, message: OutboundMessage, payload: FacebookPost) -> dict[str, Any]:
        creds = self.accounts.credentials(message.account)
        client = self.accounts.client(message.account)
        page_id = creds.external_id
        state = dict(self.hooks.load_state(message.delivery_id))
        if state.get("post_id"):  # posted and checkpointed; only the result was lost
            return {"id": state["post_id"], "recovered": True}
        marker = state.get("attempt_marker")
        if marker:
            found = self._find_post(client, page_id, str(marker), payload, state)
            if found is not None:
                self.hooks.checkpoint(message.delivery_id, {"post_id": found["id"]})
                return {**found, "recovered": True}
        else:
            marker = secrets.token_hex(MARKER_HEX_DIGITS // 2)
            self.hooks.checkpoint(
                message.delivery_id,
                {"attempt_marker": marker,
                 "attempt_started": datetime.now(UTC).isoformat(timespec="seconds")},
            )
        response = self._post(client, page_id, payload, encode_marker(str(marker)))
        post_id = str(response.get("post_id") or response.get("id") or "")
        if post_id:
            self.hooks.checkpoint(message.delivery_id, {"post_id": post_id})
        return response

    def parse(self, message: OutboundMessage, response: dict[str, Any]) -> SendResult:
        payload = message.payload if isinstance(message.payload, Mapping) else {}
        post_id = response.get("post_id") or response.get("id")
        if not post_id:
            raise PermanentChannelError("Facebook tidak mengembalikan id kiriman", raw=response)
        raw = {
            "response": response,
            "recovered": bool(response.get("recovered")),
            **{k: payload[k] for k in ("product_id", "business_id") if k in payload},
        }
        return SendResult(message.delivery_id, SendStatus.SENT, provider_id=str(post_id), raw=raw)

    # -- steps ----------------------------------------------------------------------
    @staticmethod
    def _post(
        client: MetaGraphClient, page_id: str, payload: FacebookPost, suffix: str
    ) -> dict[str, Any]:
        text = payload.text + suffix
        if payload.endpoint == "photos":
            return client.post(f"{page_id}/photos", url=payload.media_url, caption=text)
        return client.post(f"{page_id}/feed", message=text, link=payload.link)

    def _find_post(
        self,
        client: MetaGraphClient,
        page_id: str,
        marker: str,
        payload: FacebookPost,
        state: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Look for the post an earlier attempt of this delivery may have created."""
        listing = client.get(
            f"{page_id}/published_posts",
            fields="id,message,created_time",
            limit=self.lookup_limit,
        )
        encoded = encode_marker(marker)
        since = _parse_time(state.get("attempt_started"))
        wanted = strip_invisible(payload.text)
        for post in listing.get("data") or []:
            text = str(post.get("message") or "")
            if encoded in text:
                return {"id": str(post["id"]), "matched": "marker"}
            created = _parse_time(post.get("created_time"))
            if (wanted and strip_invisible(text) == wanted and since is not None
                    and created is not None and created >= since - _CLOCK_SKEW):
                return {"id": str(post["id"]), "matched": "text"}
        return None

    # -- metrics --------------------------------------------------------------------
    def fetch_metrics(
        self, provider_post_ids: Sequence[str], *, account: str | None = None
    ) -> list[EngagementMetric]:
        """Reactions, comments and shares (fields) plus views, reach and clicks (insights).

        The Page is ``account``, or found from the ``{page-id}_{post-id}`` form of the id.
        A post that is gone (or whose Page has too few followers for insights) yields
        what is available; auth and throttling errors propagate to the caller.
        """
        metrics: list[EngagementMetric] = []
        now = datetime.now(UTC)
        for post_id in provider_post_ids:
            page_id = post_id.split("_", 1)[0] if "_" in post_id else None
            client = self.accounts.client(self.accounts.key_for(account, page_id))
            try:
                fields = client.get(post_id, fields=ENGAGEMENT_FIELDS)
            except PermanentChannelError as exc:
                log.info("facebook: no metrics for %s: %s", post_id, exc)
                continue
            metrics.extend(_field_metrics(post_id, fields, now))
            metrics.extend(_insight_metrics(client, post_id, now))
        return metrics


def _insight_metrics(client: MetaGraphClient, post_id: str,
                     now: datetime) -> list[EngagementMetric]:
    """One ``/insights`` call per metric: Graph refuses a whole call (error 100, invalid
    metric) when Meta retires one of its metrics, which would void the others too."""
    metrics: list[EngagementMetric] = []
    for metric in POST_INSIGHT_METRICS:
        try:
            insights = client.get(f"{post_id}/insights", metric=metric)
        except PermanentChannelError as exc:
            log.info("facebook: no %s for %s: %s", metric, post_id, exc)
            continue
        for name, (count, entry) in insight_values(insights).items():
            kind = POST_INSIGHT_METRICS.get(name) or MetricType.from_provider(name)
            if kind is not None:
                metrics.append(EngagementMetric(kind, count, post_id, now, entry))
    return metrics


def _field_metrics(
    post_id: str, fields: Mapping[str, Any], now: datetime
) -> list[EngagementMetric]:
    found: list[EngagementMetric] = []
    for name, kind in (("reactions", MetricType.REACTION), ("comments", MetricType.COMMENT)):
        block = fields.get(name)
        summary = block.get("summary") if isinstance(block, Mapping) else None
        if isinstance(summary, Mapping) and isinstance(summary.get("total_count"), int):
            found.append(EngagementMetric(
                kind, summary["total_count"], post_id, now, {"field": name, "summary": summary}
            ))
    shares = fields.get("shares")
    # Meta omits ``shares`` entirely for a post nobody shared yet.
    count = shares.get("count", 0) if isinstance(shares, Mapping) else 0
    found.append(EngagementMetric(
        MetricType.SHARE, int(count), post_id, now, {"field": "shares", "value": shares}
    ))
    return found


def _parse_time(value: Any) -> datetime | None:
    """Graph (``2026-05-01T10:00:00+0000``) and ISO 8601 timestamps."""
    if not value:
        return None
    text = str(value)
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%S%z")):
        try:
            parsed = parse(text)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
