"""Issue 17 C and E: a missing Meta permission pauses the account; insights per metric."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from engine.cli.app import app as cli_app
from engine.config import get_settings, reset_settings
from engine.delivery import beat
from engine.models import EngagementEvent
from engine.social import accounts, metrics
from tests.factories import NOW
from tests.fake_meta import FakeMeta, graph_error
from tests.fake_meta import fake_meta_fixture as fake_meta_fixture
from tests.fake_tiktok import FakeTikTok
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.social.test_social_e2e import (
    CAMPAIGN_ID,
    IG_USER,
    PAGE,
    PER_PRODUCT,
    SOCIAL_YAML,
    TIKTOK_PUBLIC,
    World,
    connect_meta,
    connect_tiktok,
    seed_catalog,
)
from tests.social.test_social_e2e import world as world


@pytest.mark.parametrize(("platform", "path", "code", "text"), [
    ("facebook", f"{PAGE}/photos", 200, "(#200) Requires pages_manage_posts permission"),
    ("facebook", f"{PAGE}/photos", 10, "(#10) Application does not have permission"),
    ("instagram", f"{IG_USER}/media", 230, "(#230) Requires instagram_content_publish"),
])
def test_missing_permission_pauses_the_account_and_keeps_the_posts_pending(
        world: World, fake_meta: FakeMeta, platform: str, path: str, code: int,
        text: str) -> None:
    seed_catalog(world.db)
    connect_meta(world.db)
    fake_meta.script("POST", path, graph_error(code, message=text, status=403))
    run_id = world.launch(world.spec([platform]))

    summary = world.run(run_id)

    assert summary.failed == 0
    assert fake_meta.count("POST", path) == 1  # the first refusal stopped the account
    account = world.account(f"{platform}:dinas")
    assert account.status == accounts.STATUS_NEEDS_RECONNECT
    assert "izin" in str((account.meta or {}).get("last_error"))
    rows = world.deliveries(run_id, platform)
    assert {d.status.value for d in rows} == {"pending"}
    assert sorted(d.attempts for d in rows) == [0, 0, 1]
    world.run(run_id, NOW + timedelta(minutes=20))  # still not reconnected: no call
    assert fake_meta.count("POST", path) == 1


def test_a_retired_facebook_metric_does_not_void_the_others(
        world: World, fake_meta: FakeMeta) -> None:
    seed_catalog(world.db)
    connect_meta(world.db)
    run_id = world.launch(world.spec(["facebook"]))
    world.run(run_id)
    for post in fake_meta.posts[PAGE]:
        fake_meta.engagement[post["id"]] = {"reactions": 3}
        fake_meta.insights[post["id"]] = {"post_media_view": 100,
                                          "post_total_media_view_unique": 80,
                                          "post_clicks": 7}
    fake_meta.retired_metrics.add("post_clicks")  # Meta retires one metric

    metrics.poll_metrics(world.settings, NOW + timedelta(hours=1))

    kinds = Counter(e.type for e in world.db.scalars(select(EngagementEvent)))
    assert kinds["view"] == kinds["reach"] == 3  # still read, one call per metric
    assert kinds["click"] == 0
    assert kinds["reaction"] == 3


# ----------------------------------------------------------------------------- TikTok
def test_public_tiktok_post_in_moderation_is_polled_until_its_id_then_metrics(
        world: World, fake_tiktok: FakeTikTok, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOK_AUDITED", "true")
    reset_settings()
    world.settings = get_settings()
    fake_tiktok.audited = True
    fake_tiktok.moderation_polls = 3  # complete, but no public id for three answers
    seed_catalog(world.db)
    connect_tiktok(world.db, fake_tiktok)
    run_id = world.launch(world.spec(TIKTOK_PUBLIC))
    assert world.run(run_id).sent == 3
    assert {p.privacy_level for p in fake_tiktok.publishes.values()} == {"PUBLIC_TO_EVERYONE"}
    assert not any(str(p.provider_post_id).isdigit() for p in world.posts("tiktok"))

    for minutes in (1, 2):  # still in moderation: nothing to read yet
        report = beat.poll_social_metrics(world.settings, NOW + timedelta(minutes=minutes))
        assert report.count == 0
        assert not any(str(p.provider_post_id).isdigit() for p in world.posts("tiktok"))
    for video in fake_tiktok.videos.values():
        video.update(view_count=500, like_count=42, comment_count=5, share_count=6)
    report = beat.poll_social_metrics(world.settings, NOW + timedelta(minutes=3))

    posts = world.posts("tiktok")
    assert all(str(p.provider_post_id).isdigit() for p in posts)
    assert all(p.raw["publish_id"].startswith("p_pub") for p in posts)
    assert {p.provider_post_id for p in posts} == set(fake_tiktok.videos)
    assert report.count == 3 * 4  # views, reactions, comments, shares of each post


def test_tiktok_privacy_and_consent_are_checked_by_validate(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_file = world.tmp / "tiktok.yaml"

    def validate(channels: str, audited: bool) -> str:
        monkeypatch.setenv("TIKTOK_AUDITED", "true" if audited else "false")
        reset_settings()
        spec_file.write_text(SOCIAL_YAML.format(id=CAMPAIGN_ID, channels=channels))
        result = CliRunner().invoke(cli_app, ["campaign", "validate", str(spec_file)])
        return f"{result.exit_code} {result.output}"

    plain = PER_PRODUCT.format(name="tiktok")
    assert validate(plain, audited=False).startswith("0 ")
    assert "tidak mengizinkan pilihan bawaan" in validate(plain, audited=True)
    no_consent = plain.replace("}", ", privacy: PUBLIC_TO_EVERYONE}")
    assert "consent" in validate(no_consent, audited=True)
    assert "belum diaudit" in validate(no_consent, audited=False)
    assert validate(TIKTOK_PUBLIC, audited=True).startswith("0 ")
