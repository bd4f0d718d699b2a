"""Issue 17 C and E: a missing Meta permission pauses the account; insights per metric."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.models import EngagementEvent
from engine.social import accounts, metrics
from tests.factories import NOW
from tests.fake_meta import FakeMeta, graph_error
from tests.fake_meta import fake_meta_fixture as fake_meta_fixture
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.social.test_social_e2e import (
    IG_USER,
    PAGE,
    World,
    connect_meta,
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
