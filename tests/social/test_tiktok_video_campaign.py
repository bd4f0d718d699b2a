"""A campaign with ``channels.tiktok.video`` posts that MP4 by FILE_UPLOAD, in chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import get_settings, reset_settings
from tests.fake_tiktok import UPLOAD, VIDEO_INIT, FakeTikTok
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.social.test_social_e2e import World, connect_tiktok, seed_catalog
from tests.social.test_social_e2e import fake_meta_fixture as fake_meta_fixture
from tests.social.test_social_e2e import world as world

MB = 1024 * 1024
HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def test_a_campaign_video_goes_to_tiktok_in_documented_chunks(
        world: World, fake_tiktok: FakeTikTok, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))
    reset_settings()
    world.settings = get_settings()
    video = tmp_path / "media" / "videos" / "madu.mp4"
    video.parent.mkdir(parents=True)
    size = 11 * MB + 77  # under two 10 MB chunks and at most 64 MB: sent whole
    video.write_bytes(HEAD + bytes(size - len(HEAD)))
    catalog = seed_catalog(world.db)
    connect_tiktok(world.db, fake_tiktok)
    spec = world.spec("  tiktok: {template: social/promo.j2, per: product, video: madu.mp4}")
    run_id = world.launch(spec)

    world.run(run_id)

    rows = world.deliveries(run_id, "tiktok")
    assert {d.status.value for d in rows} == {"sent"}, [d.error for d in rows]
    inits = [c.json()["source_info"] for c in fake_tiktok.calls(VIDEO_INIT)]
    assert inits == [{"source": "FILE_UPLOAD", "video_size": size, "chunk_size": size,
                      "total_chunk_count": 1}] * len(catalog.products)
    puts = fake_tiktok.calls(UPLOAD)
    assert len(puts) == len(catalog.products)
    assert {p.headers["content-range"] for p in puts} == {f"bytes 0-{size - 1}/{size}"}
    assert all(p.body == video.read_bytes() for p in puts)
    assert all(p.raw["result"]["status"] == "PUBLISH_COMPLETE" for p in world.posts("tiktok"))
