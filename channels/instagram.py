"""Instagram professional accounts: container -> poll ``status_code`` -> publish.

The Instagram Graph API publishes in three steps (Content Publishing guide):

1. ``POST /{ig-user-id}/media`` with ``image_url`` (or ``video_url`` + ``media_type=REELS``)
   and ``caption`` creates a *container*; Meta pulls the media from the public URL;
2. ``GET /{container-id}?fields=status_code`` until ``FINISHED`` (``IN_PROGRESS`` while
   Meta processes it; ``ERROR`` = the media is unusable; ``EXPIRED`` = not published
   within 24 hours);
3. ``POST /{ig-user-id}/media_publish`` with ``creation_id`` publishes it.

Never publishing twice: the container id is checkpointed (``SocialHooks.checkpoint``)
the moment Meta returns it, and the media id as soon as publishing answers.  A worker
killed anywhere in between resumes on the next attempt from the checkpoint: it reuses
the container (publishing it only if it is not ``PUBLISHED`` already, and otherwise
finding the media it became) and never creates a second post.

Accounts may publish ``quota_total`` posts per 24 hours (50 today):
``GET /{ig-user-id}/content_publishing_limit`` is read before a new post, and a full
quota pauses the account (cool-down) instead of failing posts one by one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Unpack

from channels.base import (
    Capabilities,
    ChannelKind,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    SocialHooks,
    TransientChannelError,
)
from channels.graph_errors import OutcomeUnknownError, error_body
from channels.meta_graph import (
    AccountSource,
    GraphOptions,
    MetaChannel,
    MetaGraphClient,
    insight_values,
)
from channels.metrics import EngagementMetric, MetricType

log = logging.getLogger(__name__)

MAX_CAPTION_LENGTH = 2200
MAX_HASHTAGS = 30
# Media insights today (impressions, plays and video_views were removed in 2025).
MEDIA_INSIGHT_METRICS = ("views", "reach", "likes", "comments", "shares", "saved")
DEFAULT_QUOTA_TOTAL = 50
# Publishing answers "media not ready" with code 9007 (subcode 2207027), and "too many
# posts in 24 hours" with code 9 (subcode 2207042).
NOT_READY_CODE = 9007
QUOTA_SUBCODE = 2207042


@dataclass(frozen=True, slots=True)
class InstagramPost:
    """One post: the caption and the public media URL Meta pulls the file from."""

    caption: str
    media_url: str
    media_type: str  # "image" or "video" (published as a Reel)
    attribution: dict[str, Any] = field(default_factory=dict)

    def container_params(self) -> dict[str, str]:
        if self.media_type == "video":
            return {"video_url": self.media_url, "media_type": "REELS", "caption": self.caption}
        return {"image_url": self.media_url, "caption": self.caption}


class InstagramChannel(MetaChannel[InstagramPost]):
    """Publish to Instagram; ``message.account`` names the IG account to publish as."""

    name = "instagram"
    capabilities = Capabilities(
        media_types=frozenset({"image", "video"}),
        max_text_length=MAX_CAPTION_LENGTH,
        max_batch=25,
        rate_per_second=1.0,
        metrics=True,
        kind=ChannelKind.POST,
        label="Instagram",
    )
    option_names = (*MetaChannel.option_names, "poll_interval")

    def __init__(
        self,
        accounts: AccountSource,
        hooks: SocialHooks,
        *,
        rate_per_second: float | None = 1.0,
        poll_interval: float = 3.0,
        max_polls: int = 40,
        quota_retry_after: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
        **graph: Unpack[GraphOptions],
    ) -> None:
        super().__init__(accounts, hooks, rate_per_second=rate_per_second, **graph)
        self.poll_interval = poll_interval
        self.max_polls = max(1, max_polls)
        self.quota_retry_after = quota_retry_after
        self._sleep = sleep

    # -- pipeline steps -------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> InstagramPost:
        data = message.payload
        if not isinstance(data, Mapping):
            raise PermanentChannelError("payload Instagram harus berupa dict")
        media_url = str(data.get("media_url") or "")
        if not media_url.startswith(("https://", "http://")):
            raise PermanentChannelError(
                "Instagram: kiriman wajib punya gambar/video di alamat publik (media_url)"
            )
        media_type = str(data.get("media_type") or "image")
        if media_type not in self.capabilities.media_types:
            raise PermanentChannelError(f"Instagram: jenis media {media_type!r} tidak didukung")
        caption = str(data.get("caption") or data.get("text") or "").strip()
        if len(caption) > MAX_CAPTION_LENGTH:
            raise PermanentChannelError(
                f"Instagram: keterangan {len(caption)} karakter, batasnya {MAX_CAPTION_LENGTH}"
            )
        if caption.count("#") > MAX_HASHTAGS:
            raise PermanentChannelError(f"Instagram: lebih dari {MAX_HASHTAGS} tagar")
        attribution = {k: data[k] for k in ("product_id", "business_id") if k in data}
        return InstagramPost(caption, media_url, media_type, attribution)

    def transmit(self, message: OutboundMessage, payload: InstagramPost) -> dict[str, Any]:
        creds = self.accounts.credentials(message.account)
        client = self.accounts.client(message.account)
        ig_user = creds.external_id
        delivery = message.delivery_id
        state = dict(self.hooks.load_state(delivery))
        if state.get("media_id"):  # published and checkpointed; only the result was lost
            return {"id": state["media_id"], "container_id": state.get("container_id"),
                    "resumed": True}
        container = str(state["container_id"]) if state.get("container_id") else None
        if container is not None:
            status = self._status(client, container)
            if status.get("status_code") == "PUBLISHED":
                return self._recover_published(client, ig_user, delivery, container, payload)
            if status.get("status_code") in ("EXPIRED", "ERROR"):
                container = None  # ERROR of an old attempt: the media URL may be fixed now
        self._check_quota(client, ig_user)
        if container is None:
            container = self._create_container(client, ig_user, delivery, payload)
        container, published = self._wait_until_finished(
            client, ig_user, delivery, container, payload
        )
        if published:  # another attempt published it meanwhile
            return self._recover_published(client, ig_user, delivery, container, payload)
        media_id = self._publish(client, ig_user, container)
        self.hooks.checkpoint(delivery, {"media_id": media_id})
        return {"id": media_id, "container_id": container}

    def parse(self, message: OutboundMessage, response: dict[str, Any]) -> SendResult:
        payload = message.payload if isinstance(message.payload, Mapping) else {}
        media_id = response.get("id")
        raw = {
            "response": response,
            **{k: payload[k] for k in ("product_id", "business_id") if k in payload},
        }
        return SendResult(
            message.delivery_id,
            SendStatus.SENT,
            provider_id=str(media_id) if media_id else None,
            raw=raw,
        )

    # -- steps ----------------------------------------------------------------------
    def _check_quota(self, client: MetaGraphClient, ig_user: str) -> None:
        """Stop before Meta refuses: a full 24-hour quota pauses the whole account."""
        answer = client.get(f"{ig_user}/content_publishing_limit", fields="quota_usage,config")
        rows = answer.get("data") or [{}]
        row = rows[0] if isinstance(rows[0], Mapping) else {}
        usage = int(row.get("quota_usage") or 0)
        config = row.get("config")
        if not isinstance(config, Mapping):
            config = {}
        total = int(config.get("quota_total") or DEFAULT_QUOTA_TOTAL)
        if usage >= total:
            reason = f"kuota publikasi Instagram habis ({usage}/{total} dalam 24 jam)"
            client.cool_down(self.quota_retry_after, reason)
            raise TransientChannelError(
                reason,
                raw={"quota_usage": usage, "quota_total": total, "answer": answer},
                retry_after=self.quota_retry_after,
                affects_account=True,
            )

    def _create_container(
        self, client: MetaGraphClient, ig_user: str, delivery: int, payload: InstagramPost
    ) -> str:
        """Create a container and checkpoint its id before anything else can happen."""
        # A lost answer here leaves at worst an orphan container: it is never published
        # and expires by itself after 24 hours.
        answer = client.post(f"{ig_user}/media", **payload.container_params())
        container = str(answer.get("id") or "")
        if not container:
            raise TransientChannelError("Instagram tidak mengembalikan id container", raw=answer)
        self.hooks.checkpoint(delivery, {
            "container_id": container,
            "container_created": datetime.now(UTC).isoformat(timespec="seconds"),
        })
        return container

    @staticmethod
    def _status(client: MetaGraphClient, container: str) -> dict[str, Any]:
        return client.get(container, fields="status_code,status")

    def _wait_until_finished(
        self,
        client: MetaGraphClient,
        ig_user: str,
        delivery: int,
        container: str,
        payload: InstagramPost,
    ) -> tuple[str, bool]:
        """Poll (bounded) until FINISHED; an EXPIRED container is replaced once.

        Returns the container to publish and whether it is already PUBLISHED (by
        another attempt).  Still IN_PROGRESS after ``max_polls`` is transient: the
        container stays checkpointed and the next attempt goes on polling it.
        """
        recreated = False
        for poll in range(self.max_polls):
            status = self._status(client, container)
            code = status.get("status_code")
            if code in ("FINISHED", "PUBLISHED"):
                return container, code == "PUBLISHED"
            if code == "ERROR":
                raise PermanentChannelError(
                    f"Instagram menolak media: {status.get('status') or 'ERROR'}",
                    raw={"container_id": container, "status": status},
                )
            if code == "EXPIRED":
                if recreated:
                    raise TransientChannelError(
                        "Instagram: container kedaluwarsa lagi",
                        raw={"container_id": container, "status": status},
                    )
                log.info("instagram: container %s expired, creating a new one", container)
                container = self._create_container(client, ig_user, delivery, payload)
                recreated = True
                continue
            if poll + 1 < self.max_polls:
                self._sleep(self.poll_interval)
        raise TransientChannelError(
            "Instagram masih memproses media; dicoba lagi nanti",
            raw={"container_id": container, "status_code": "IN_PROGRESS"},
            retry_after=max(30.0, self.poll_interval * self.max_polls),
        )

    def _publish(self, client: MetaGraphClient, ig_user: str, container: str) -> str:
        try:
            answer = client.post(f"{ig_user}/media_publish", creation_id=container)
        except OutcomeUnknownError as exc:
            exc.raw["container_id"] = container  # the retry resumes from this container
            raise
        except PermanentChannelError as exc:
            raise self._publish_refusal(client, exc, container) from None
        media_id = str(answer.get("id") or "")
        if not media_id:
            raise OutcomeUnknownError(
                "Instagram tidak mengembalikan id media",
                raw={"container_id": container, "answer": answer, "outcome_unknown": True},
            )
        return media_id

    def _publish_refusal(
        self, client: MetaGraphClient, exc: PermanentChannelError, container: str
    ) -> Exception:
        """Publishing errors that are about timing, not about this post."""
        error = error_body(exc.raw)
        code, subcode = error.get("code"), error.get("error_subcode")
        raw = {**exc.raw, "container_id": container}
        if code == NOT_READY_CODE:
            return TransientChannelError(exc.message, raw=raw, retry_after=self.poll_interval * 5)
        if subcode == QUOTA_SUBCODE:
            client.cool_down(self.quota_retry_after, exc.message)
            return TransientChannelError(
                exc.message, raw=raw, retry_after=self.quota_retry_after, affects_account=True
            )
        return exc

    def _recover_published(
        self,
        client: MetaGraphClient,
        ig_user: str,
        delivery: int,
        container: str,
        payload: InstagramPost,
    ) -> dict[str, Any]:
        """The container was published by an earlier attempt: find its media, never republish.

        Containers do not expose the media id, so the account's recent media are matched
        by caption.  Without a match the delivery is still sent (without a media id).
        """
        listing = client.get(f"{ig_user}/media", fields="id,caption,timestamp", limit=25)
        for media in listing.get("data") or []:
            if str(media.get("caption") or "").strip() == payload.caption:
                media_id = str(media["id"])
                self.hooks.checkpoint(delivery, {"media_id": media_id})
                return {"id": media_id, "container_id": container, "recovered": True}
        log.warning("instagram: container %s published but its media was not found", container)
        return {"id": None, "container_id": container, "recovered": True, "media_unknown": True}

    # -- metrics --------------------------------------------------------------------
    def fetch_metrics(
        self, provider_post_ids: Sequence[str], *, account: str | None = None
    ) -> list[EngagementMetric]:
        """Media insights with today's metric names; media without insights are skipped."""
        client = self.accounts.client(self.accounts.key_for(account))
        metrics: list[EngagementMetric] = []
        now = datetime.now(UTC)
        for media_id in provider_post_ids:
            try:
                answer = client.get(
                    f"{media_id}/insights", metric=",".join(MEDIA_INSIGHT_METRICS)
                )
            except PermanentChannelError as exc:  # deleted, too few viewers, album child
                log.info("instagram: no insights for %s: %s", media_id, exc)
                continue
            for name, (count, entry) in insight_values(answer).items():
                kind = MetricType.from_provider(name)
                if kind is not None:
                    metrics.append(EngagementMetric(kind, count, media_id, now, entry))
        return metrics
