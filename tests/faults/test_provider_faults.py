"""Provider faults against the fake Meta Graph and TikTok servers (real HTTP on loopback).

Each test drives a small campaign of posts the way the engine does: pass after pass,
each pass a fresh adapter (another worker) sharing the durable hooks (checkpoints,
tokens, cool-downs), re-sending only what is not yet published. The promises: storms
and bursts never multiply posts (each product is published exactly once in the end),
a throttled or expired account stops calling the provider at once while other
accounts go on, and slow answers cost at most the configured timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from channels.base import (
    AccountCredentials,
    MemorySocialHooks,
    OutboundMessage,
    SendResult,
    SendStatus,
)
from channels.facebook import FacebookChannel, strip_invisible
from channels.tiktok import TikTokChannel
from tests.fake_http import Recorded, Reply
from tests.fake_meta import (
    Canned,
    FakeMeta,
    fake_meta_fixture,  # noqa: F401  (the ``fake_meta`` fixture)
    graph_error,
)
from tests.fake_tiktok import (
    CLIENT_KEY,
    CLIENT_SECRET,
    CONTENT_INIT,
    OAUTH_TOKEN,
    FakeTikTok,
    fake_tiktok_fixture,  # noqa: F401  (the ``fake_tiktok`` fixture)
)

PAGE, OTHER_PAGE = "5550001", "5550002"
DINAS, BIZ = "facebook:dinas", "facebook:biz-7"


# ----------------------------------------------------------------------------- driving
class Campaign:
    """Posts of one campaign and their fate over several passes (what the outbox tracks)."""

    def __init__(self, messages: list[OutboundMessage]) -> None:
        self.messages = {m.delivery_id: m for m in messages}
        self.results: dict[int, SendResult] = {}
        self.passes: list[list[SendResult]] = []

    def pending(self) -> list[OutboundMessage]:
        return [m for i, m in self.messages.items()
                if i not in self.results or not self.results[i].ok]

    def run_pass(self, adapter: Any) -> list[SendResult]:
        with adapter:
            results: list[SendResult] = adapter.send_batch(self.pending())
        for result in results:
            self.results[result.delivery_id] = result
        self.passes.append(results)
        return results

    def published(self) -> bool:
        return all(r.ok for r in self.results.values()) and len(self.results) == len(
            self.messages)


def post(delivery_id: int, account: str = DINAS, **payload: Any) -> OutboundMessage:
    caption = f"Produk UMKM TTS nomor {delivery_id}: tenun ikat dan madu hutan"
    return OutboundMessage(delivery_id, recipient=account, account=account,
                           payload={"caption": caption, "product_id": delivery_id,
                                    "business_id": 7, **payload})


def facebook(fake: FakeMeta, hooks: MemorySocialHooks, *, dinas_token: str = "token-dinas",
             timeout: float = 5) -> FacebookChannel:
    accounts = {DINAS: AccountCredentials(DINAS, PAGE, dinas_token),
                BIZ: AccountCredentials(BIZ, OTHER_PAGE, "token-biz")}
    return FacebookChannel(accounts, hooks, graph_url=fake.base_url, graph_version="23.0",
                           timeout=timeout, rate_per_second=None)


def assert_each_post_exactly_once(fake: FakeMeta, campaign: Campaign) -> None:
    """Meta holds one post per delivery (no duplicate, none lost), ids as recorded."""
    posts = [p for page in (PAGE, OTHER_PAGE) for p in fake.posts.get(page, [])]
    texts = [strip_invisible(p["message"]) for p in posts]
    expected = [m.payload["caption"] for m in campaign.messages.values()
                if isinstance(m.payload, Mapping)]
    assert sorted(texts) == sorted(expected), "a post is missing or duplicated"
    assert {r.provider_id for r in campaign.results.values()} == {p["id"] for p in posts}


def feed_posts(fake: FakeMeta, page: str = PAGE) -> int:
    return fake.count("POST", f"{page}/feed")


# ----------------------------------------------------------------------------- Meta
def test_throttling_storm_costs_one_call_per_pass_and_publishes_each_post_once(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    campaign = Campaign([post(i) for i in range(1, 21)] + [post(i, BIZ) for i in range(21, 26)])
    storm = [graph_error(code, message=f"(#{code}) request limit reached")
             for code in (4, 17, 32, 613, 4, 32)]
    fake_meta.script("POST", f"{PAGE}/feed", *storm)

    for n in range(len(storm)):
        before = feed_posts(fake_meta)
        results = campaign.run_pass(facebook(fake_meta, hooks))
        # the throttled page is called once, then left alone for the rest of the pass
        assert feed_posts(fake_meta) - before == 1, f"pass {n + 1} hammered a throttled page"
        dinas = [r for r in results if r.delivery_id <= 20]
        assert all(r.status is SendStatus.TRANSIENT and r.affects_account for r in dinas)
        assert all(r.retry_after and r.retry_after >= 300 for r in dinas)
    assert hooks.cooldowns[DINAS][0] >= 300
    assert all(campaign.results[i].ok for i in range(21, 26))  # the other page went on

    campaign.run_pass(facebook(fake_meta, hooks))  # the storm is over

    assert campaign.published()
    assert_each_post_exactly_once(fake_meta, campaign)
    assert feed_posts(fake_meta) == len(storm) + 20  # sent: 25, duplicates: 0, lost: 0


def test_token_expiry_mid_campaign_stops_that_account_until_reconnected(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    campaign = Campaign([post(i) for i in range(1, 13)] + [post(i, BIZ) for i in range(13, 16)])
    # Meta accepts four posts, then the Page token expires (190 / 463) for good.
    fake_meta.script("POST", f"{PAGE}/feed", *[Canned()] * 4,
                     graph_error(190, 463, "Error validating access token: Session has expired"))

    first = campaign.run_pass(facebook(fake_meta, hooks))
    fake_meta.expired_tokens.add("token-dinas")

    statuses = [r.status for r in first if r.delivery_id <= 12]
    assert statuses == [SendStatus.SENT] * 4 + [SendStatus.AUTH] * 8
    assert feed_posts(fake_meta) == 5  # the sixth and later posts were never attempted
    assert all(r.ok for r in first if r.delivery_id > 12)  # the business page went on
    assert not any(r.retry_after for r in first if r.status is SendStatus.AUTH)

    calls = len(fake_meta.calls())
    second = campaign.run_pass(facebook(fake_meta, hooks))  # still the old token
    assert all(r.status is SendStatus.AUTH for r in second if r.delivery_id <= 12)
    assert feed_posts(fake_meta) == 5 and len(fake_meta.calls()) - calls <= 1

    campaign.run_pass(facebook(fake_meta, hooks, dinas_token="token-dinas-baru"))  # reconnected

    assert campaign.published()
    assert_each_post_exactly_once(fake_meta, campaign)


def test_5xx_burst_is_retried_and_every_post_is_published_once(fake_meta: FakeMeta) -> None:
    hooks = MemorySocialHooks()
    campaign = Campaign([post(i) for i in range(1, 11)])
    unavailable = Canned(status=500, body={"error": {
        "message": "An unexpected error has occurred. Please retry your request later.",
        "type": "OAuthException", "code": 2, "is_transient": True}})
    gateway = Canned(status=502, body="<html><body>502 Bad Gateway</body></html>")
    fake_meta.script("POST", f"{PAGE}/feed", unavailable, unavailable, gateway, unavailable,
                     gateway)

    for _ in range(4):
        campaign.run_pass(facebook(fake_meta, hooks))
        if campaign.published():
            break

    assert campaign.published(), {i: r.error for i, r in campaign.results.items() if not r.ok}
    first = campaign.passes[0]
    assert not any(r.status is SendStatus.PERMANENT for p in campaign.passes for r in p)
    assert any(r.status is SendStatus.TRANSIENT for r in first)
    assert_each_post_exactly_once(fake_meta, campaign)


def test_slow_answers_hit_the_timeout_and_are_recovered_without_a_second_post(
    fake_meta: FakeMeta,
) -> None:
    hooks = MemorySocialHooks()
    campaign = Campaign([post(i) for i in range(1, 9)])
    slow = Canned(delay=2.0)  # Meta creates the post, then answers after 2 s
    fake_meta.script("POST", f"{PAGE}/feed", Canned(), slow, Canned(), slow, slow)
    timeout = 0.5

    started = time.monotonic()
    first = campaign.run_pass(facebook(fake_meta, hooks, timeout=timeout))
    elapsed = time.monotonic() - started

    assert elapsed < 8 * timeout + 2.0, f"a slow Graph held the batch {elapsed:.1f} s"
    unknown = [r for r in first if r.raw.get("outcome_unknown")]
    assert unknown, [r.status for r in first]
    assert all(r.status is SendStatus.TRANSIENT for r in unknown)

    for _ in range(3):
        campaign.run_pass(facebook(fake_meta, hooks, timeout=timeout))
        if campaign.published():
            break

    assert campaign.published()
    recovered = [r for p in campaign.passes[1:] for r in p if r.raw.get("recovered")]
    assert recovered, "the timed-out posts were not looked up before posting again"
    assert_each_post_exactly_once(fake_meta, campaign)


# ----------------------------------------------------------------------------- TikTok
TIKTOK = "tiktok:dinas"


def tiktok(fake: FakeTikTok, hooks: MemorySocialHooks, tokens: tuple[str, str]) -> TikTokChannel:
    stored = hooks.tokens.get(TIKTOK)
    access, refresh = (stored[0], stored[1] or tokens[1]) if stored else tokens
    credentials = AccountCredentials(TIKTOK, "fake-open-id", access, refresh, None)
    return TikTokChannel(credentials, hooks=hooks, base_url=fake.url, client_key=CLIENT_KEY,
                         client_secret=CLIENT_SECRET, sleep=lambda _s: None,
                         poll_interval=0.01)


def photo(delivery_id: int) -> OutboundMessage:
    return OutboundMessage(delivery_id, TIKTOK, {
        "caption": f"Produk UMKM TTS nomor {delivery_id}", "media_type": "image",
        "media_url": f"https://umkm.example/media/{delivery_id}.jpg",
        "product_id": delivery_id, "business_id": 3}, account=TIKTOK)


def passthrough(fake: FakeTikTok, before: Callable[[], None] | None = None,
                ) -> Callable[[Recorded], Reply]:
    def answer(request: Recorded) -> Reply:
        if before is not None:
            before()
        return fake.handle(request)
    return answer


def test_tiktok_token_expiring_mid_batch_is_refreshed_once_and_nothing_is_posted_twice(
    fake_tiktok: FakeTikTok,
) -> None:
    hooks = MemorySocialHooks()
    tokens = fake_tiktok.issue_tokens()
    # The access token expires just before the third post's init.
    fake_tiktok.enqueue(CONTENT_INIT, passthrough(fake_tiktok), passthrough(fake_tiktok),
                        passthrough(fake_tiktok, lambda: fake_tiktok.expire(tokens[0])))
    campaign = Campaign([photo(i) for i in range(1, 7)])

    campaign.run_pass(tiktok(fake_tiktok, hooks, tokens))

    assert campaign.published(), {i: r.error for i, r in campaign.results.items()}
    assert fake_tiktok.count(OAUTH_TOKEN) == 1
    assert fake_tiktok.used_refresh_tokens == [tokens[1]]  # rotated: the old one is spent
    new_access, new_refresh, _ = hooks.tokens[TIKTOK]
    assert new_access in fake_tiktok.access_tokens and new_refresh in fake_tiktok.refresh_tokens
    assert len(fake_tiktok.publishes) == 6  # sent: 6, duplicates: 0, lost: 0
    assert len({r.provider_id for r in campaign.results.values()}) == 6


def test_tiktok_throttling_and_5xx_storm_never_multiplies_posts(fake_tiktok: FakeTikTok) -> None:
    hooks = MemorySocialHooks()
    tokens = fake_tiktok.issue_tokens()
    storm = [FakeTikTok.error("rate_limit_exceeded", headers={"Retry-After": "30"}),
             FakeTikTok.error("internal_error"), Reply(503, {"error": "upstream"}),
             FakeTikTok.error("rate_limit_exceeded")]
    fake_tiktok.enqueue(CONTENT_INIT, *storm)
    campaign = Campaign([photo(i) for i in range(1, 6)])

    for _ in range(len(storm) + 3):
        results = campaign.run_pass(tiktok(fake_tiktok, hooks, tokens))
        if campaign.published():
            break
        assert all(r.status is SendStatus.TRANSIENT for r in results if not r.ok)
        throttled = [i for i, r in enumerate(results) if r.retry_after and not
                     r.raw.get("not_attempted")]
        if throttled:  # the account stops at the first throttle answer of the pass
            assert all(r.raw.get("not_attempted") for r in results[throttled[0] + 1:])

    assert campaign.published()
    assert TIKTOK in hooks.cooldowns
    assert len(fake_tiktok.publishes) == 5  # each photo published exactly once
    assert len({r.provider_id for r in campaign.results.values()}) == 5
