"""Instagram adapter against the fake Graph server (real HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from channels.base import AccountCredentials, MemorySocialHooks, OutboundMessage, SendStatus
from channels.instagram import InstagramChannel
from channels.metrics import MetricType
from channels.registry import get_adapter_class
from tests.fake_meta import (
    Canned,
    FakeMeta,
    fake_meta_fixture,  # noqa: F401  (the ``fake_meta`` fixture)
    graph_error,
)

IG, IG_OTHER = "17841400000000001", "17841400000000002"
DINAS, BIZ = "instagram:dinas", "instagram:biz-7"
TOKENS = {DINAS: "ig-token-dinas", BIZ: "ig-token-biz"}
IMAGE = "https://cdn.example/produk/41.jpg"


class Sleeps(list[float]):
    """Injected sleep: records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _channel(
    fake: FakeMeta, hooks: MemorySocialHooks | None = None, sleeps: Sleeps | None = None,
    **options: Any,
) -> InstagramChannel:
    accounts = {
        DINAS: AccountCredentials(DINAS, IG, TOKENS[DINAS]),
        BIZ: AccountCredentials(BIZ, IG_OTHER, TOKENS[BIZ]),
    }
    settings: dict[str, Any] = {"timeout": 5, "rate_per_second": None, "poll_interval": 2.0,
                                "max_polls": 5}
    return InstagramChannel(
        accounts, hooks or MemorySocialHooks(), graph_url=fake.base_url,
        sleep=sleeps if sleeps is not None else Sleeps(), **(settings | options),
    )


def _msg(delivery_id: int, caption: str = "Tenun ikat Amanuban #umkmtts",
         account: str = DINAS, **payload: Any) -> OutboundMessage:
    return OutboundMessage(
        delivery_id, recipient=account, account=account,
        payload={"caption": caption, "media_url": IMAGE, "media_type": "image",
                 "product_id": 41, "business_id": 7, **payload},
    )


def _paths(fake: FakeMeta) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.calls()]


# --------------------------------------------------------------------------- publishing


def test_registry_resolves_the_instagram_adapter() -> None:
    assert get_adapter_class("instagram") is InstagramChannel


def test_container_is_polled_until_finished_then_published(fake_meta: FakeMeta) -> None:
    hooks, sleeps = MemorySocialHooks(), Sleeps()
    fake_meta.container_script.append(["IN_PROGRESS", "IN_PROGRESS", "FINISHED"])
    result = _channel(fake_meta, hooks, sleeps).send(_msg(1))
    assert result.status is SendStatus.SENT
    (media,) = fake_meta.media[IG]
    assert result.provider_id == media["id"]
    assert result.raw["product_id"] == 41 and result.raw["business_id"] == 7
    (container,) = fake_meta.containers
    assert _paths(fake_meta) == [
        f"GET {IG}/content_publishing_limit",
        f"POST {IG}/media",
        f"GET {container}", f"GET {container}", f"GET {container}",
        f"POST {IG}/media_publish",
    ]
    assert fake_meta.calls("POST", f"{IG}/media")[0].params["image_url"] == IMAGE
    assert fake_meta.calls("POST", f"{IG}/media_publish")[0].params["creation_id"] == container
    assert fake_meta.calls()[0].version == "v23.0"
    assert sleeps == [2.0, 2.0]
    assert hooks.state[1]["container_id"] == container
    assert hooks.state[1]["media_id"] == media["id"]


def test_video_is_published_as_a_reel(fake_meta: FakeMeta) -> None:
    result = _channel(fake_meta).send(
        _msg(2, media_url="https://cdn.example/v.mp4", media_type="video")
    )
    assert result.ok
    (call,) = fake_meta.calls("POST", f"{IG}/media")
    assert call.params["media_type"] == "REELS"
    assert call.params["video_url"] == "https://cdn.example/v.mp4"
    assert "image_url" not in call.params


def test_container_error_fails_the_post_without_publishing(fake_meta: FakeMeta) -> None:
    fake_meta.container_script.append(["IN_PROGRESS", "ERROR"])
    result = _channel(fake_meta).send(_msg(3))
    assert result.status is SendStatus.PERMANENT
    assert "2207026" in (result.error or "")
    assert fake_meta.count("POST", f"{IG}/media_publish") == 0


def test_expired_container_is_recreated_and_only_the_new_one_published(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    fake_meta.container_script.extend([["EXPIRED"], ["IN_PROGRESS", "FINISHED"]])
    result = _channel(fake_meta, hooks).send(_msg(4))
    assert result.ok
    _old, new = fake_meta.containers
    assert fake_meta.count("POST", f"{IG}/media") == 2
    (publish,) = fake_meta.calls("POST", f"{IG}/media_publish")
    assert publish.params["creation_id"] == new
    assert hooks.state[4]["container_id"] == new
    assert len(fake_meta.media[IG]) == 1


def test_still_processing_is_transient_and_the_retry_keeps_the_container(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    fake_meta.container_script.append(["IN_PROGRESS"] * 7 + ["FINISHED"])
    first = _channel(fake_meta, hooks, max_polls=3).send(_msg(5))
    assert first.status is SendStatus.TRANSIENT
    (container,) = fake_meta.containers
    assert first.raw["container_id"] == container
    second = _channel(fake_meta, hooks, max_polls=10).send(_msg(5))
    assert second.ok
    assert fake_meta.count("POST", f"{IG}/media") == 1
    assert len(fake_meta.media[IG]) == 1


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"media_url": None}, "alamat publik"),
        ({"caption": "x" * 2201}, "2200"),
        ({"caption": " ".join(f"#t{i}" for i in range(31))}, "tagar"),
        ({"media_type": "carousel"}, "tidak didukung"),
    ],
)
def test_unusable_posts_fail_alone_without_a_call(
    fake_meta: FakeMeta, payload: dict[str, Any], why: str
) -> None:
    result = _channel(fake_meta).send(_msg(6, **payload))
    assert result.status is SendStatus.PERMANENT and why in (result.error or "")
    assert fake_meta.requests == []


# --------------------------------------------------------------------------- quota, auth


def test_full_publishing_quota_pauses_the_account_before_any_container(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    fake_meta.quota_usage[IG] = 50
    results = _channel(fake_meta, hooks, quota_retry_after=1800).send_batch(
        [_msg(7), _msg(8), _msg(9, account=BIZ)]
    )
    assert [r.status for r in results] == [
        SendStatus.TRANSIENT, SendStatus.TRANSIENT, SendStatus.SENT]
    assert results[0].affects_account and results[0].retry_after == 1800
    assert results[0].raw["quota_total"] == 50
    assert results[1].raw["not_attempted"] is True
    assert fake_meta.count("POST", f"{IG}/media") == 0
    assert fake_meta.count("GET", f"{IG}/content_publishing_limit") == 1
    assert hooks.cooldowns[DINAS][0] == 1800


def test_quota_refusal_at_publish_pauses_the_account(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{IG}/media_publish",
                     graph_error(9, 2207042, "(#9) Application request limit reached"))
    result = _channel(fake_meta, hooks).send(_msg(10))
    assert result.status is SendStatus.TRANSIENT and result.affects_account
    assert DINAS in hooks.cooldowns
    assert hooks.state[10]["container_id"] in fake_meta.containers


def test_not_ready_at_publish_is_transient(fake_meta: FakeMeta) -> None:
    fake_meta.script("POST", f"{IG}/media_publish",
                     graph_error(9007, 2207027, "(#9007) Media ID is not available"))
    result = _channel(fake_meta).send(_msg(11))
    assert result.status is SendStatus.TRANSIENT and not result.affects_account


def test_expired_token_is_an_auth_error_for_that_account(fake_meta: FakeMeta) -> None:
    fake_meta.expired_tokens.add(TOKENS[DINAS])
    results = _channel(fake_meta).send_batch([_msg(12), _msg(13, account=BIZ)])
    assert results[0].status is SendStatus.AUTH and results[0].affects_account
    assert results[0].raw["error"]["error_subcode"] == 463
    assert results[1].ok


def test_throttled_account_makes_no_more_calls(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{IG}/media", graph_error(4, message="(#4) limit reached"))
    channel = _channel(fake_meta, hooks)
    results = channel.send_batch([_msg(14), _msg(15)])
    assert [r.status for r in results] == [SendStatus.TRANSIENT, SendStatus.TRANSIENT]
    assert DINAS in hooks.cooldowns
    before = len(fake_meta.calls())
    assert channel.send(_msg(16)).raw["cooling_down"] is True
    assert len(fake_meta.calls()) == before


# --------------------------------------------------------------------------- crash safety


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: nothing in the adapter may catch it."""


class DiesAfterContainerCheckpoint(MemorySocialHooks):
    def checkpoint(self, delivery_id: int, state: Mapping[str, Any]) -> None:
        super().checkpoint(delivery_id, state)
        if "container_id" in state:
            raise WorkerKilled


def test_worker_killed_between_container_and_publish_publishes_once(
    fake_meta: FakeMeta,
) -> None:
    dying = DiesAfterContainerCheckpoint()
    with pytest.raises(WorkerKilled):
        _channel(fake_meta, dying).send(_msg(20))
    assert fake_meta.count("POST", f"{IG}/media_publish") == 0
    hooks = MemorySocialHooks()  # the engine's stored state, read by the next worker
    hooks.state = dying.state
    result = _channel(fake_meta, hooks).send(_msg(20))
    assert result.ok
    assert fake_meta.count("POST", f"{IG}/media") == 1  # the container was reused
    assert fake_meta.count("POST", f"{IG}/media_publish") == 1
    assert len(fake_meta.media[IG]) == 1


def test_publish_answer_lost_is_recovered_without_publishing_again(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{IG}/media_publish", Canned(drop_after=True))
    first = _channel(fake_meta, hooks).send(_msg(21, caption="Madu Fatumnasi"))
    assert first.status is SendStatus.TRANSIENT and first.raw["outcome_unknown"] is True
    (media,) = fake_meta.media[IG]  # Meta did publish
    second = _channel(fake_meta, hooks).send(_msg(21, caption="Madu Fatumnasi"))
    assert second.ok and second.provider_id == media["id"]
    assert second.raw["response"]["recovered"] is True
    assert fake_meta.count("POST", f"{IG}/media_publish") == 1
    assert fake_meta.count("POST", f"{IG}/media") == 1
    assert len(fake_meta.media[IG]) == 1


def test_publish_dropped_before_meta_acted_is_published_on_retry(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{IG}/media_publish", Canned(drop=True))
    assert _channel(fake_meta, hooks).send(_msg(22)).status is SendStatus.TRANSIENT
    assert IG not in fake_meta.media
    assert _channel(fake_meta, hooks).send(_msg(22)).ok
    assert fake_meta.count("POST", f"{IG}/media") == 1
    assert len(fake_meta.media[IG]) == 1


# --------------------------------------------------------------------------- metrics


def test_media_insights_use_todays_metric_names(fake_meta: FakeMeta) -> None:
    channel = _channel(fake_meta)
    media_id = channel.send(_msg(30)).provider_id
    assert media_id
    fake_meta.insights[media_id] = {
        "views": 500, "reach": 320, "likes": 41, "comments": 6, "shares": 9, "saved": 12}
    metrics = channel.fetch_metrics([media_id, "m-unknown"], account=DINAS)
    counts = {m.type: m.count for m in metrics}
    assert counts == {
        MetricType.VIEW: 500, MetricType.REACH: 320, MetricType.REACTION: 41,
        MetricType.COMMENT: 6, MetricType.SHARE: 9, MetricType.SAVE: 12,
    }
    saved = next(m for m in metrics if m.type is MetricType.SAVE)
    assert saved.raw["name"] == "saved" and saved.provider_post_id == media_id
    requested = fake_meta.calls("GET", f"{media_id}/insights")[0].params["metric"].split(",")
    assert "impressions" not in requested and "plays" not in requested
