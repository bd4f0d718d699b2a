"""TikTok adapter against the fake Content Posting API (a real HTTP server on loopback)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from channels.base import (
    AccountCredentials,
    AuthChannelError,
    MemorySocialHooks,
    OutboundMessage,
    PermanentChannelError,
    SendStatus,
)
from channels.metrics import MetricType
from channels.registry import get_adapter_class
from channels.tiktok import TikTokChannel
from channels.tiktok_posts import choose_privacy_level
from tests.fake_http import Recorded, Reply
from tests.fake_tiktok import (
    CLIENT_KEY,
    CLIENT_SECRET,
    CONTENT_INIT,
    CREATOR_INFO,
    OAUTH_TOKEN,
    STATUS_FETCH,
    VIDEO_INIT,
    VIDEO_QUERY,
    FakeTikTok,
    fake_tiktok_fixture,  # noqa: F401  (provides the ``fake_tiktok`` fixture)
)

ACCOUNT = "tiktok:dinas"
PHOTO = {"caption": "Tenun ikat Amanuban\nHarga Rp 350.000", "media_type": "image",
         "media_url": "https://umkm.example/media/tenun.jpg", "product_id": 7, "business_id": 3}
VIDEO = {"caption": "Madu hutan Mollo #umkmtts", "media_type": "video",
         "media_url": "https://umkm.example/media/madu.mp4", "duration_sec": 45,
         "product_id": 8, "business_id": 4}
# What an audited app posts: the level chosen in the campaign, with explicit consent.
PUBLIC = {**VIDEO, "privacy_level": "PUBLIC_TO_EVERYONE", "consent": True}


class Sleeps(list[float]):
    """Records waits instead of sleeping, so the tests stay fast."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(fake: FakeTikTok, hooks: MemorySocialHooks, *, tokens: tuple[str, str] | None = None,
         expires_at: datetime | None = None, **options: Any) -> tuple[TikTokChannel, Sleeps]:
    access, refresh = tokens or fake.issue_tokens()
    sleeps = Sleeps()
    credentials = AccountCredentials(ACCOUNT, "fake-open-id", access, refresh, expires_at)
    options.setdefault("poll_interval", 2.5)
    channel = TikTokChannel(credentials, hooks=hooks, base_url=fake.url, client_key=CLIENT_KEY,
                            client_secret=CLIENT_SECRET, sleep=sleeps, **options)
    return channel, sleeps


def message(payload: Mapping[str, Any], delivery_id: int = 1) -> OutboundMessage:
    return OutboundMessage(delivery_id, ACCOUNT, dict(payload), account=ACCOUNT)


def init_body(fake: FakeTikTok, path: str, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = fake.calls(path)[index].json()
    return body


# --------------------------------------------------------------------------- posting


def test_photo_post_unaudited_is_private_and_follows_the_documented_flow(
    fake_tiktok: FakeTikTok,
) -> None:
    hooks = MemorySocialHooks()
    channel, sleeps = make(fake_tiktok, hooks)
    with channel:
        result = channel.send(message(PHOTO))

    assert result.status is SendStatus.SENT, result.error
    paths = [r.path for r in fake_tiktok.requests]
    assert paths == [CREATOR_INFO, CONTENT_INIT, STATUS_FETCH, STATUS_FETCH]
    body = init_body(fake_tiktok, CONTENT_INIT)
    # PUBLIC_TO_EVERYONE is offered, but an unaudited app must post SELF_ONLY
    assert body["post_info"]["privacy_level"] == "SELF_ONLY"
    assert body["media_type"] == "PHOTO" and body["post_mode"] == "DIRECT_POST"
    assert body["source_info"] == {"source": "PULL_FROM_URL",
                                   "photo_images": [PHOTO["media_url"]], "photo_cover_index": 0}
    assert body["post_info"]["title"] == "Tenun ikat Amanuban"
    assert body["post_info"]["description"] == PHOTO["caption"]
    publish_id = fake_tiktok.calls(STATUS_FETCH)[0].json()["publish_id"]
    assert hooks.load_state(1) == {"publish_id": publish_id}
    # a private post has no public id: the publish_id is what we keep
    assert result.provider_id == publish_id
    assert result.raw["privacy_level"] == "SELF_ONLY"
    assert (result.raw["product_id"], result.raw["business_id"]) == (7, 3)
    assert sleeps == [2.5]  # one wait between the two polls
    assert all(r.bearer == channel.credentials.access_token for r in fake_tiktok.requests)


def test_video_post_audited_is_public_and_returns_the_public_post_id(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.audited = True
    channel, _ = make(fake_tiktok, MemorySocialHooks(), audited=True)
    with channel:
        first = channel.send(message(PUBLIC, 1))
        second = channel.send(message(PUBLIC, 2))

    assert first.ok and second.ok
    body = init_body(fake_tiktok, VIDEO_INIT, 0)
    assert body["post_info"]["privacy_level"] == "PUBLIC_TO_EVERYONE"
    assert body["post_info"]["title"] == VIDEO["caption"]
    assert body["source_info"] == {"source": "PULL_FROM_URL", "video_url": VIDEO["media_url"]}
    assert first.provider_id is not None and first.provider_id.isdigit()
    assert first.provider_id in fake_tiktok.videos
    # creator_info before EVERY post, not once per adapter
    assert fake_tiktok.count(CREATOR_INFO) == 2
    assert fake_tiktok.count(CONTENT_INIT) == 0


def test_audited_app_posts_only_the_campaigns_level_if_the_creator_offers_it(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.audited = True
    fake_tiktok.creator["privacy_level_options"] = [
        "FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    channel, _ = make(fake_tiktok, MemorySocialHooks(), audited=True)
    refused = channel.send(message(PUBLIC))
    assert refused.status is SendStatus.PERMANENT and "tidak ditawarkan" in (refused.error or "")
    assert fake_tiktok.count(VIDEO_INIT) == 0
    chosen = {**PUBLIC, "privacy_level": "FOLLOWER_OF_CREATOR"}
    assert channel.send(message(chosen, 2)).ok
    assert init_body(fake_tiktok, VIDEO_INIT)["post_info"]["privacy_level"] == "FOLLOWER_OF_CREATOR"


def test_choose_privacy_level_only_from_options() -> None:
    options = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    assert choose_privacy_level(options, audited=False) == "SELF_ONLY"
    with pytest.raises(PermanentChannelError, match="tidak ada pilihan bawaan"):
        choose_privacy_level(options, audited=True)  # no default for audited apps
    with pytest.raises(PermanentChannelError, match="persetujuan"):
        choose_privacy_level(options, audited=True, requested="PUBLIC_TO_EVERYONE")
    assert choose_privacy_level(options, audited=True, requested="MUTUAL_FOLLOW_FRIENDS",
                                consent=True) == "MUTUAL_FOLLOW_FRIENDS"
    with pytest.raises(PermanentChannelError, match="belum lolos audit"):
        choose_privacy_level(options, audited=False, requested="PUBLIC_TO_EVERYONE")
    with pytest.raises(PermanentChannelError, match="belum lolos audit"):
        choose_privacy_level(["PUBLIC_TO_EVERYONE"], audited=False)


def test_disabled_interactions_from_creator_info_are_respected(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.creator.update(comment_disabled=True, duet_disabled=True, stitch_disabled=True)
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    assert channel.send(message(VIDEO)).ok  # the fake rejects a post that re-enables them
    info = init_body(fake_tiktok, VIDEO_INIT)["post_info"]
    assert (info["disable_comment"], info["disable_duet"], info["disable_stitch"]) == (
        True, True, True)


def test_video_longer_than_the_creator_limit_fails_before_init(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.creator["max_video_post_duration_sec"] = 30
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    result = channel.send(message(VIDEO))
    assert result.status is SendStatus.PERMANENT
    assert "30 detik" in (result.error or "")
    assert fake_tiktok.count(VIDEO_INIT) == 0


def test_failed_publish_is_permanent_with_the_fail_reason(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.next_publish(["PROCESSING_DOWNLOAD", "FAILED"], fail_reason="video_pull_failed")
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    result = channel.send(message(VIDEO))
    assert result.status is SendStatus.PERMANENT
    assert "video_pull_failed" in (result.error or "")
    assert not result.affects_account


@pytest.mark.parametrize("payload, fragment", [
    ({"caption": "hanya teks", "media_type": None, "media_url": None}, "foto atau video"),
    ({"caption": "tautan", "media_type": "link", "media_url": "https://x.example/a"}, "'link'"),
    ({"caption": "x" * 2201, "media_type": "image", "media_url": "https://x.example/a.jpg"},
     "2200"),
])
def test_unusable_payload_fails_without_calling_tiktok(
    fake_tiktok: FakeTikTok, payload: dict[str, Any], fragment: str
) -> None:
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    result = channel.send(message(payload))
    assert result.status is SendStatus.PERMANENT
    assert fragment in (result.error or "")
    assert fake_tiktok.requests == []


# --------------------------------------------------------------------------- crash safety


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after the checkpoint runs in this worker."""


class KilledAfterCheckpoint(MemorySocialHooks):
    def checkpoint(self, delivery_id: int, state: Mapping[str, Any]) -> None:
        super().checkpoint(delivery_id, state)
        raise WorkerKilled


def test_worker_killed_after_init_resumes_by_polling_without_a_second_post(
    fake_tiktok: FakeTikTok,
) -> None:
    dying = KilledAfterCheckpoint()
    channel, _ = make(fake_tiktok, dying)
    with pytest.raises(WorkerKilled):
        channel.send(message(PHOTO, 42))
    assert fake_tiktok.count(CONTENT_INIT) == 1
    assert fake_tiktok.count(STATUS_FETCH) == 0

    # the engine's transaction kept the checkpoint; a new worker retries the delivery
    hooks = MemorySocialHooks()
    hooks.state = dying.state
    retry, _ = make(fake_tiktok, hooks, tokens=(channel.credentials.access_token, "unused"))
    result = retry.send(message(PHOTO, 42))

    assert result.ok, result.error
    assert fake_tiktok.count(CONTENT_INIT) == 1  # no second post
    assert fake_tiktok.count(CREATOR_INFO) == 1
    assert result.provider_id == hooks.state[42]["publish_id"]
    assert result.raw["resumed"] is True


def test_still_processing_after_max_polls_is_transient_and_the_retry_polls(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.next_publish(["PROCESSING_DOWNLOAD"] * 3 + ["PUBLISH_COMPLETE"])
    hooks = MemorySocialHooks()
    channel, sleeps = make(fake_tiktok, hooks, max_polls=2, poll_interval=5)
    first = channel.send(message(VIDEO, 9))
    assert first.status is SendStatus.TRANSIENT
    assert first.retry_after == 10 and not first.affects_account
    assert fake_tiktok.count(STATUS_FETCH) == 2 and sleeps == [5]

    second = channel.send(message(VIDEO, 9))
    assert second.ok
    assert fake_tiktok.count(VIDEO_INIT) == 1
    assert fake_tiktok.count(STATUS_FETCH) == 4


def test_init_cut_off_mid_request_is_not_retried_blindly(fake_tiktok: FakeTikTok) -> None:
    def slow(request: Recorded) -> Reply:
        time.sleep(0.5)
        return FakeTikTok.error("internal_error")

    fake_tiktok.enqueue(VIDEO_INIT, slow)
    channel, _ = make(fake_tiktok, MemorySocialHooks(), timeout=0.2)
    result = channel.send(message(VIDEO))
    assert result.status is SendStatus.PERMANENT
    assert result.raw["outcome_unknown"] is True
    assert "tidak pasti" in (result.error or "")


# --------------------------------------------------------------------------- error mapping


def test_rate_limit_exceeded_cools_the_account_down(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.enqueue(VIDEO_INIT, FakeTikTok.error("rate_limit_exceeded",
                                                     headers={"Retry-After": "42"}))
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks)
    result = channel.send(message(VIDEO))
    assert result.status is SendStatus.TRANSIENT
    assert result.affects_account and result.retry_after == 42
    assert hooks.cooldowns[ACCOUNT][0] == 42
    assert hooks.load_state(1) == {}  # nothing was created, nothing to resume


def test_rate_limit_without_retry_after_uses_a_default_cool_down(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.enqueue(CREATOR_INFO, FakeTikTok.error("rate_limit_exceeded"))
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks)
    result = channel.send(message(PHOTO))
    assert result.status is SendStatus.TRANSIENT and result.retry_after == 60
    assert ACCOUNT in hooks.cooldowns
    assert fake_tiktok.count(CONTENT_INIT) == 0


@pytest.mark.parametrize("code", ["spam_risk_too_many_posts", "spam_risk_user_banned_from_posting",
                                  "reached_active_user_cap"])
def test_spam_risk_is_transient_with_a_long_cool_down(fake_tiktok: FakeTikTok, code: str) -> None:
    fake_tiktok.enqueue(CONTENT_INIT, FakeTikTok.error(code))
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks)
    result = channel.send(message(PHOTO))
    assert result.status is SendStatus.TRANSIENT and result.affects_account
    assert result.retry_after == 24 * 3600
    assert hooks.cooldowns[ACCOUNT][0] == 24 * 3600
    assert code in hooks.cooldowns[ACCOUNT][1]


def test_unaudited_rejection_falls_back_to_self_only_once(fake_tiktok: FakeTikTok) -> None:
    # configured as audited, but TikTok has not audited the app (yet)
    channel, _ = make(fake_tiktok, MemorySocialHooks(), audited=True)
    result = channel.send(message(PUBLIC))
    assert result.ok, result.error
    levels = [r.json()["post_info"]["privacy_level"] for r in fake_tiktok.calls(VIDEO_INIT)]
    assert levels == ["PUBLIC_TO_EVERYONE", "SELF_ONLY"]
    assert result.raw["privacy_level"] == "SELF_ONLY"


def test_unaudited_rejection_without_a_private_option_is_permanent_in_indonesian(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.creator["privacy_level_options"] = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS"]
    channel, _ = make(fake_tiktok, MemorySocialHooks(), audited=True)
    result = channel.send(message(PUBLIC))
    assert result.status is SendStatus.PERMANENT
    assert "belum lolos audit" in (result.error or "")
    assert fake_tiktok.count(VIDEO_INIT) == 1


def test_unaudited_rejection_of_a_private_post_is_permanent(fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.enqueue(VIDEO_INIT, FakeTikTok.error(
        "unaudited_client_can_only_post_to_private_accounts"))
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    result = channel.send(message(VIDEO))
    assert result.status is SendStatus.PERMANENT
    assert "akun TikTok ini privat" in (result.error or "")
    assert fake_tiktok.count(VIDEO_INIT) == 1  # SELF_ONLY already: no second try


@pytest.mark.parametrize("reply, status, account_wide", [
    (FakeTikTok.error("internal_error"), SendStatus.TRANSIENT, False),
    (FakeTikTok.error("privacy_level_option_mismatch"), SendStatus.TRANSIENT, False),
    (FakeTikTok.error("url_ownership_unverified"), SendStatus.PERMANENT, False),
    (FakeTikTok.error("invalid_params"), SendStatus.PERMANENT, False),
    (FakeTikTok.error("scope_not_authorized"), SendStatus.AUTH, True),
    (Reply(502, b"<html>bad gateway</html>"), SendStatus.TRANSIENT, False),
])
def test_error_codes_map_to_the_channel_error_tree(
    fake_tiktok: FakeTikTok, reply: Reply, status: SendStatus, account_wide: bool
) -> None:
    fake_tiktok.enqueue(VIDEO_INIT, reply)
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    result = channel.send(message(VIDEO))
    assert result.status is status
    assert result.affects_account is account_wide
    assert result.raw["http_status"] == reply.status


def test_unreachable_server_is_transient_for_the_whole_account(fake_tiktok: FakeTikTok) -> None:
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    fake_tiktok.stop()
    result = channel.send(message(VIDEO))
    assert result.status is SendStatus.TRANSIENT and result.affects_account


# --------------------------------------------------------------------------- tokens


def test_invalid_access_token_is_refreshed_once_and_the_rotated_pair_is_stored(
    fake_tiktok: FakeTikTok,
) -> None:
    old_access, old_refresh = fake_tiktok.issue_tokens()
    fake_tiktok.expire(old_access)
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks, tokens=(old_access, old_refresh))
    result = channel.send(message(PHOTO))

    assert result.ok, result.error
    assert fake_tiktok.count(OAUTH_TOKEN) == 1
    form = fake_tiktok.calls(OAUTH_TOKEN)[0].form()
    assert form == {"client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET,
                    "grant_type": "refresh_token", "refresh_token": old_refresh}
    new_access, new_refresh, expires_at = hooks.tokens[ACCOUNT]
    assert new_access != old_access and new_refresh != old_refresh
    assert new_access in fake_tiktok.access_tokens and new_refresh in fake_tiktok.refresh_tokens
    assert expires_at is not None and expires_at > datetime.now(UTC) + timedelta(hours=23)
    # the calls after the refresh carry the new token
    assert fake_tiktok.calls(CONTENT_INIT)[0].bearer == new_access
    # rotation: the old refresh token is dead, only the stored one works
    old = httpx.post(fake_tiktok.url + OAUTH_TOKEN, data={
        "client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET,
        "grant_type": "refresh_token", "refresh_token": old_refresh})
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"


def test_second_refresh_uses_the_rotated_refresh_token(fake_tiktok: FakeTikTok) -> None:
    access, refresh = fake_tiktok.issue_tokens()
    fake_tiktok.expire(access)
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks, tokens=(access, refresh))
    assert channel.send(message(PHOTO, 1)).ok
    stored_access, stored_refresh, _ = hooks.tokens[ACCOUNT]
    fake_tiktok.expire(stored_access)
    assert channel.send(message(PHOTO, 2)).ok
    assert fake_tiktok.calls(OAUTH_TOKEN)[1].form()["refresh_token"] == stored_refresh
    assert hooks.tokens[ACCOUNT][1] != stored_refresh


def test_expired_access_token_is_refreshed_before_the_call(fake_tiktok: FakeTikTok) -> None:
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks, expires_at=datetime.now(UTC) - timedelta(minutes=5))
    assert channel.send(message(PHOTO)).ok
    assert fake_tiktok.requests[0].path == OAUTH_TOKEN
    assert ACCOUNT in hooks.tokens
    assert not any(r.bearer == channel.credentials.access_token
                   for r in fake_tiktok.requests[1:])


def test_refresh_token_already_rotated_by_another_worker_is_not_spent_again(
    fake_tiktok: FakeTikTok,
) -> None:
    old_access, old_refresh = fake_tiktok.issue_tokens()
    fake_tiktok.expire(old_access)
    hooks = MemorySocialHooks()
    other = TikTokChannel(AccountCredentials(ACCOUNT, "fake-open-id", old_access, old_refresh),
                          hooks=hooks, base_url=fake_tiktok.url, client_key=CLIENT_KEY,
                          client_secret=CLIENT_SECRET, sleep=Sleeps())
    other.creator_info()  # the other worker refreshes first and stores the rotated set
    assert fake_tiktok.count(OAUTH_TOKEN) == 1
    channel, _ = make(fake_tiktok, hooks, tokens=(old_access, old_refresh))
    assert channel.send(message(PHOTO)).ok
    assert fake_tiktok.count(OAUTH_TOKEN) == 1  # took the stored set, no invalid_grant
    assert fake_tiktok.calls(CONTENT_INIT)[0].bearer == hooks.tokens[ACCOUNT][0]


def test_stored_set_that_expired_too_is_refreshed_from_the_newest_refresh_token(
    fake_tiktok: FakeTikTok,
) -> None:
    old_access, old_refresh = fake_tiktok.issue_tokens()
    newer_access, newer_refresh = fake_tiktok.issue_tokens()
    fake_tiktok.refresh_tokens.discard(old_refresh)
    fake_tiktok.expire(old_access)
    fake_tiktok.expire(newer_access)
    hooks = MemorySocialHooks()
    hooks.store_tokens(ACCOUNT, newer_access, newer_refresh,
                       datetime.now(UTC) - timedelta(minutes=1))
    channel, _ = make(fake_tiktok, hooks, tokens=(old_access, old_refresh))
    assert channel.send(message(PHOTO)).ok
    assert fake_tiktok.used_refresh_tokens == [newer_refresh]
    assert hooks.tokens[ACCOUNT][1] in fake_tiktok.refresh_tokens


def test_failing_refresh_needs_a_reconnect(fake_tiktok: FakeTikTok) -> None:
    access, refresh = fake_tiktok.issue_tokens()
    fake_tiktok.expire(access)
    fake_tiktok.refresh_tokens.discard(refresh)  # e.g. revoked by the user
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks, tokens=(access, refresh))
    result = channel.send(message(PHOTO))
    assert result.status is SendStatus.AUTH and result.affects_account
    assert "hubungkan ulang" in (result.error or "")
    assert hooks.tokens == {}
    assert fake_tiktok.count(CONTENT_INIT) == 0


def test_token_rejected_again_after_refresh_is_auth_without_a_second_refresh(
    fake_tiktok: FakeTikTok,
) -> None:
    rejected = FakeTikTok.error("access_token_invalid")
    fake_tiktok.enqueue(CREATOR_INFO, rejected, rejected)
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    result = channel.send(message(PHOTO))
    assert result.status is SendStatus.AUTH
    assert fake_tiktok.count(OAUTH_TOKEN) == 1


def test_missing_app_credentials_cannot_refresh(fake_tiktok: FakeTikTok) -> None:
    access, refresh = fake_tiktok.issue_tokens()
    fake_tiktok.expire(access)
    credentials = AccountCredentials(ACCOUNT, "fake-open-id", access, refresh)
    channel = TikTokChannel(credentials, hooks=MemorySocialHooks(), base_url=fake_tiktok.url,
                            sleep=Sleeps())
    with pytest.raises(AuthChannelError):
        channel.creator_info()
    assert fake_tiktok.count(OAUTH_TOKEN) == 0


# --------------------------------------------------------------------------- limits, metrics


def test_init_calls_are_paced_to_six_per_minute(fake_tiktok: FakeTikTok) -> None:
    channel, sleeps = make(fake_tiktok, MemorySocialHooks(), poll_interval=0.01)
    results = [channel.send(message(PHOTO, n)) for n in range(7)]
    assert all(r.ok for r in results)
    assert fake_tiktok.count(CONTENT_INIT) == 7
    long_waits = [s for s in sleeps if s > 1]
    assert len(long_waits) == 1 and 50 < long_waits[0] <= 60


def test_fetch_metrics_maps_video_counts_to_the_engagement_vocabulary(
    fake_tiktok: FakeTikTok,
) -> None:
    fake_tiktok.audited = True
    channel, _ = make(fake_tiktok, MemorySocialHooks(), audited=True)
    posted = channel.send(message(PUBLIC))
    assert posted.provider_id is not None
    fake_tiktok.videos[posted.provider_id].update(
        view_count=1200, like_count=85, comment_count=9, share_count=4)

    metrics = channel.fetch_metrics([posted.provider_id, "p_pub_url~v2-1.99"])

    counts = {m.type: m.count for m in metrics}
    assert counts == {MetricType.VIEW: 1200, MetricType.REACTION: 85,
                      MetricType.COMMENT: 9, MetricType.SHARE: 4}
    assert {m.provider_post_id for m in metrics} == {posted.provider_id}
    query = fake_tiktok.calls(VIDEO_QUERY)[0]
    assert query.query["fields"] == ["id,view_count,like_count,comment_count,share_count"]
    assert query.json() == {"filters": {"video_ids": [posted.provider_id]}}


def test_fetch_metrics_batches_twenty_ids_per_request(fake_tiktok: FakeTikTok) -> None:
    ids = [str(7_000_000_000_000_000_000 + n) for n in range(25)]
    for video_id in ids:
        fake_tiktok.videos[video_id] = {"id": video_id, "view_count": 1, "like_count": 0,
                                        "comment_count": 0, "share_count": 0}
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    metrics = channel.fetch_metrics(ids)
    assert [len(r.json()["filters"]["video_ids"]) for r in fake_tiktok.calls(VIDEO_QUERY)] \
        == [20, 5]
    assert len([m for m in metrics if m.type is MetricType.VIEW]) == 25


def test_registry_resolves_tiktok() -> None:
    assert get_adapter_class("tiktok") is TikTokChannel
