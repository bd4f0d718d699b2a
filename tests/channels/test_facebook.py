"""Facebook Page adapter against the fake Graph server (real HTTP on loopback)."""

from __future__ import annotations

import socket
from typing import Any

import facebook
import pytest

from channels.base import (
    AccountCredentials,
    ConfigurationError,
    MemorySocialHooks,
    OutboundMessage,
    SendStatus,
)
from channels.facebook import FacebookChannel, encode_marker, strip_invisible
from channels.meta_graph import normalize_graph_version, parse_usage_headers
from channels.metrics import MetricType
from channels.registry import get_adapter_class
from tests.fake_meta import (
    Canned,
    FakeMeta,
    fake_meta_fixture,  # noqa: F401  (the ``fake_meta`` fixture)
    graph_error,
    usage_header,
)

PAGE, OTHER_PAGE = "5550001", "5550002"
DINAS, BIZ = "facebook:dinas", "facebook:biz-7"
TOKENS = {DINAS: "page-token-dinas", BIZ: "page-token-biz"}


def _accounts() -> dict[str, AccountCredentials]:
    return {
        DINAS: AccountCredentials(DINAS, PAGE, TOKENS[DINAS]),
        BIZ: AccountCredentials(BIZ, OTHER_PAGE, TOKENS[BIZ]),
    }


def _channel(
    fake: FakeMeta, hooks: MemorySocialHooks | None = None, **options: Any
) -> FacebookChannel:
    settings: dict[str, Any] = {"graph_version": "23.0", "timeout": 5, "rate_per_second": None}
    return FacebookChannel(
        _accounts(), hooks or MemorySocialHooks(), graph_url=fake.base_url,
        **(settings | options),
    )


def _msg(delivery_id: int, caption: str, account: str = DINAS, **payload: Any) -> OutboundMessage:
    return OutboundMessage(
        delivery_id, recipient=account, account=account,
        payload={"caption": caption, "product_id": 40 + delivery_id, "business_id": 7, **payload},
    )


# --------------------------------------------------------------------------- posting


def test_registry_resolves_the_facebook_adapter() -> None:
    assert get_adapter_class("facebook") is FacebookChannel


def test_sdk_version_gate_is_worked_around_with_a_configurable_version(
    fake_meta: FakeMeta,
) -> None:
    with pytest.raises(facebook.GraphAPIError):  # the gate this adapter has to avoid
        facebook.GraphAPI(access_token="x", version="23.0")
    channel = _channel(fake_meta, graph_version="v24.0")
    result = channel.send(_msg(1, "Kopi Mollo panen baru", link="https://umkm.example/p/41"))
    assert result.ok
    (call,) = fake_meta.calls("POST", f"{PAGE}/feed")
    assert call.version == "v24.0"
    assert normalize_graph_version("23.0") == "v23.0"
    with pytest.raises(ConfigurationError):
        normalize_graph_version("latest")


def test_feed_post_returns_the_post_id_and_keeps_the_text_clean(fake_meta: FakeMeta) -> None:
    result = _channel(fake_meta).send(
        _msg(1, "Tenun ikat Amanuban, Rp 350.000", link="https://umkm.example/p/41")
    )
    assert result.status is SendStatus.SENT
    (post,) = fake_meta.posts[PAGE]
    assert result.provider_id == post["id"]
    assert result.raw["product_id"] == 41 and result.raw["business_id"] == 7
    (call,) = fake_meta.calls("POST", f"{PAGE}/feed")
    assert call.params["link"] == "https://umkm.example/p/41"
    assert call.params["access_token"] == TOKENS[DINAS]
    # readers see exactly the caption: the attempt marker is invisible
    assert strip_invisible(post["message"]) == "Tenun ikat Amanuban, Rp 350.000"


def test_post_with_media_is_a_photo_post_with_caption(fake_meta: FakeMeta) -> None:
    result = _channel(fake_meta).send(
        _msg(2, "Madu hutan Fatumnasi", media_url="https://cdn.example/madu.jpg",
             media_type="image", link="https://umkm.example/p/42")
    )
    assert result.ok
    (call,) = fake_meta.calls("POST", f"{PAGE}/photos")
    assert call.params["url"] == "https://cdn.example/madu.jpg"
    assert strip_invisible(call.params["caption"]) == "Madu hutan Fatumnasi"
    assert fake_meta.count("POST", f"{PAGE}/feed") == 0
    assert result.provider_id == fake_meta.posts[PAGE][0]["id"]  # the post, not the photo


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"caption": "x", "media_url": "https://cdn.example/v.mp4", "media_type": "video"},
         "video"),
        ({"caption": ""}, "kosong"),
        ({"caption": "a" * 63206}, "batasnya"),
    ],
)
def test_unusable_payloads_fail_alone_without_a_call(
    fake_meta: FakeMeta, payload: dict[str, Any], why: str
) -> None:
    result = _channel(fake_meta).send(OutboundMessage(3, DINAS, payload, account=DINAS))
    assert result.status is SendStatus.PERMANENT
    assert why in (result.error or "")
    assert fake_meta.requests == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("answer", "status", "affects_account", "cools"),
    [
        (graph_error(190, 463, "Session has expired"), SendStatus.AUTH, True, False),
        (graph_error(190), SendStatus.AUTH, True, False),
        (graph_error(10, 460, "password changed"), SendStatus.AUTH, True, False),
        (graph_error(200, 492), SendStatus.AUTH, True, False),
        (graph_error(4, message="(#4) Application request limit reached"),
         SendStatus.TRANSIENT, True, True),
        (graph_error(17), SendStatus.TRANSIENT, True, True),
        (graph_error(32), SendStatus.TRANSIENT, True, True),
        (graph_error(613), SendStatus.TRANSIENT, True, True),
        (graph_error(368), SendStatus.TRANSIENT, True, False),
        (graph_error(1, status=500), SendStatus.TRANSIENT, False, False),
        (graph_error(2, status=503), SendStatus.TRANSIENT, False, False),
        (Canned(status=502, body="<html>Bad Gateway</html>"), SendStatus.TRANSIENT, False, False),
        (Canned(status=500, body={}), SendStatus.TRANSIENT, False, False),
        (graph_error(100, message="(#100) Invalid parameter"), SendStatus.PERMANENT, False, False),
        (graph_error(200, message="(#200) Permissions error"), SendStatus.AUTH, True, False),
        (graph_error(10, message="(#10) Permission denied"), SendStatus.AUTH, True, False),
        (graph_error(230, message="(#230) Requires pages_read_engagement permission"),
         SendStatus.AUTH, True, False),
        (graph_error(506, message="(#506) Duplicate status message"),
         SendStatus.PERMANENT, False, False),
    ],
)
def test_graph_errors_are_mapped_by_code_and_subcode(
    fake_meta: FakeMeta, answer: Canned, status: SendStatus, affects_account: bool, cools: bool
) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{PAGE}/feed", answer)
    result = _channel(fake_meta, hooks).send(_msg(5, "Sambal lu'at Soe"))
    assert result.status is status
    assert result.affects_account is affects_account
    assert (DINAS in hooks.cooldowns) is cools
    if isinstance(answer.body, dict) and "error" in answer.body:
        assert result.raw["error"]["code"] == answer.body["error"]["code"]


def test_expired_token_pauses_only_that_account(fake_meta: FakeMeta) -> None:
    fake_meta.expired_tokens.add(TOKENS[DINAS])
    results = _channel(fake_meta).send_batch([
        _msg(1, "Satu"), _msg(2, "Dua", account=BIZ), _msg(3, "Tiga"),
    ])
    assert [r.status for r in results] == [SendStatus.AUTH, SendStatus.SENT, SendStatus.AUTH]
    assert results[0].affects_account
    assert results[2].raw.get("not_attempted") is True
    assert fake_meta.count("POST", f"{PAGE}/feed") == 1
    assert fake_meta.count("POST", f"{OTHER_PAGE}/feed") == 1
    assert "dihubungkan ulang" in (results[0].error or "")


def test_throttling_cools_the_page_down_and_stops_its_calls(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script(
        "POST", f"{PAGE}/feed",
        graph_error(32, message="(#32) Page request limit reached",
                    headers=usage_header(100, regain_minutes=12, buc=True)),
    )
    channel = _channel(fake_meta, hooks)
    results = channel.send_batch([_msg(1, "A"), _msg(2, "B"), _msg(3, "C", account=BIZ)])
    assert [r.status for r in results] == [
        SendStatus.TRANSIENT, SendStatus.TRANSIENT, SendStatus.SENT]
    assert results[0].retry_after == pytest.approx(720)
    assert hooks.cooldowns[DINAS][0] == pytest.approx(720)
    assert fake_meta.count("POST", f"{PAGE}/feed") == 1
    # a later batch in the same worker does not call Meta for that page at all
    before = len(fake_meta.calls())
    later = channel.send_batch([_msg(1, "A"), _msg(4, "D")])
    assert all(r.status is SendStatus.TRANSIENT and r.affects_account for r in later)
    assert later[0].raw["cooling_down"] is True
    assert len(fake_meta.calls()) == before


def test_high_usage_header_cools_down_after_a_successful_post(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{PAGE}/feed", Canned(headers=usage_header(95)))
    results = _channel(fake_meta, hooks).send_batch([_msg(1, "A"), _msg(2, "B")])
    assert results[0].ok
    assert results[1].status is SendStatus.TRANSIENT and results[1].affects_account
    assert fake_meta.count("POST", f"{PAGE}/feed") == 1
    seconds, reason = hooks.cooldowns[DINAS]
    assert seconds == 300 and "x-app-usage" in reason and "95%" in reason


def test_moderate_usage_does_not_cool_down(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.usage_headers = usage_header(60)
    results = _channel(fake_meta, hooks).send_batch([_msg(1, "A"), _msg(2, "B")])
    assert all(r.ok for r in results)
    assert hooks.cooldowns == {}


def test_usage_headers_are_parsed_in_both_shapes() -> None:
    (app,) = parse_usage_headers(usage_header(91))
    assert app.peak == 91 and app.regain_seconds == 0
    (buc,) = parse_usage_headers(usage_header(40, regain_minutes=3, buc=True))
    assert buc.regain_seconds == 180
    assert parse_usage_headers({"X-App-Usage": "not json"}) == []


# --------------------------------------------------------------------------- no double posts


def test_lost_answer_is_checked_and_the_post_is_never_repeated(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{PAGE}/feed", Canned(drop_after=True))
    channel = _channel(fake_meta, hooks)
    first = channel.send(_msg(9, "Kain tenun Boti"))
    assert first.status is SendStatus.TRANSIENT
    assert first.raw["outcome_unknown"] is True
    assert len(fake_meta.posts[PAGE]) == 1  # Meta did create it
    retry = _channel(fake_meta, hooks).send(_msg(9, "Kain tenun Boti"))  # another worker
    assert retry.ok and retry.raw["recovered"] is True
    assert retry.provider_id == fake_meta.posts[PAGE][0]["id"]
    assert fake_meta.count("POST", f"{PAGE}/feed") == 1
    assert fake_meta.count("GET", f"{PAGE}/published_posts") == 1
    # and once known, later retries need no call at all
    before = len(fake_meta.calls())
    assert channel.send(_msg(9, "Kain tenun Boti")).provider_id == retry.provider_id
    assert len(fake_meta.calls()) == before


def test_lost_answer_is_found_by_text_when_the_marker_was_stripped(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{PAGE}/photos", Canned(drop_after=True))
    msg = _msg(10, "Kopi arabika Mollo", media_url="https://cdn.example/kopi.jpg")
    assert _channel(fake_meta, hooks).send(msg).status is SendStatus.TRANSIENT
    post = fake_meta.posts[PAGE][0]
    post["message"] = strip_invisible(post["message"])
    retry = _channel(fake_meta, hooks).send(msg)
    assert retry.ok and retry.provider_id == post["id"]
    assert fake_meta.count("POST", f"{PAGE}/photos") == 1


def test_refused_post_is_posted_once_on_retry(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    fake_meta.script("POST", f"{PAGE}/feed", graph_error(2, status=503))
    channel = _channel(fake_meta, hooks)
    assert channel.send(_msg(11, "Ubi ungu Kolbano")).status is SendStatus.TRANSIENT
    retry = channel.send(_msg(11, "Ubi ungu Kolbano"))
    assert retry.ok and retry.raw["recovered"] is False
    assert len(fake_meta.posts[PAGE]) == 1
    marker = hooks.state[11]["attempt_marker"]
    assert encode_marker(marker) in fake_meta.posts[PAGE][0]["message"]


def test_unreachable_graph_is_transient_and_never_leaks_the_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = FacebookChannel(
        _accounts(), MemorySocialHooks(), graph_url=f"http://127.0.0.1:{port}",
        timeout=2, rate_per_second=None,
    )
    result = channel.send(_msg(12, "Garam Oebelo"))
    assert result.status is SendStatus.TRANSIENT and result.affects_account
    assert "outcome_unknown" not in result.raw  # nothing reached Meta: safe to repeat
    assert TOKENS[DINAS] not in f"{result.error} {result.raw}"


def test_unknown_account_needs_connecting(fake_meta: FakeMeta) -> None:
    result = _channel(fake_meta).send(_msg(13, "x", account="facebook:biz-99"))
    assert result.status is SendStatus.AUTH and result.affects_account
    assert "umkm account connect facebook" in (result.error or "")
    assert fake_meta.requests == []


# --------------------------------------------------------------------------- metrics


def test_metrics_use_todays_names_and_keep_the_raw_payload(fake_meta: FakeMeta) -> None:
    channel = _channel(fake_meta)
    post_id = channel.send(_msg(20, "Keripik pisang Niki-Niki")).provider_id
    assert post_id
    fake_meta.engagement[post_id] = {"reactions": 12, "comments": 3, "shares": 2}
    fake_meta.insights[post_id] = {
        "post_media_view": 150, "post_total_media_view_unique": 90, "post_clicks": 7}
    metrics = channel.fetch_metrics([post_id, f"{PAGE}_404"])
    counts = {m.type: m.count for m in metrics}
    assert counts == {
        MetricType.REACTION: 12, MetricType.COMMENT: 3, MetricType.SHARE: 2,
        MetricType.VIEW: 150, MetricType.REACH: 90, MetricType.CLICK: 7,
    }
    assert {m.provider_post_id for m in metrics} == {post_id}
    view = next(m for m in metrics if m.type is MetricType.VIEW)
    assert view.raw["name"] == "post_media_view" and view.observed_at is not None
    calls = fake_meta.calls("GET", f"{post_id}/insights")
    asked = [c.params["metric"] for c in calls]  # one metric per call (issue 17)
    assert sorted(asked) == sorted(["post_media_view", "post_total_media_view_unique",
                                    "post_clicks"])
    assert not any("impressions" in m for m in asked)


def test_metrics_without_insights_still_report_engagement(fake_meta: FakeMeta) -> None:
    channel = _channel(fake_meta)
    post_id = channel.send(_msg(21, "Jeruk keprok Soe")).provider_id
    assert post_id
    fake_meta.engagement[post_id] = {"reactions": 4}
    counts = {m.type: m.count for m in channel.fetch_metrics([post_id])}
    assert counts == {MetricType.REACTION: 4, MetricType.COMMENT: 0, MetricType.SHARE: 0}


def test_metrics_auth_error_propagates(fake_meta: FakeMeta) -> None:
    from channels.base import AuthChannelError

    fake_meta.expired_tokens.add(TOKENS[BIZ])
    with pytest.raises(AuthChannelError):
        _channel(fake_meta).fetch_metrics([f"{OTHER_PAGE}_5"])
