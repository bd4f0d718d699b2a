"""``umkm campaign validate``: media problems of a social channel at the channel's line.

A channel whose products lack a photo the platform accepts is refused with the products
named and ``file:line:column`` of that channel's entry (not 1:1); a TikTok channel with
a video (``channels.tiktok.video``) is checked for that MP4 instead of the photos.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.app import app as cli_app
from engine.config import reset_settings
from tests.factories import make_business, make_optin, make_product
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.social.test_social_e2e import CAMPAIGN_ID, PER_PRODUCT, SOCIAL_YAML, World
from tests.social.test_social_e2e import fake_meta_fixture as fake_meta_fixture
from tests.social.test_social_e2e import world as world

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2000)


def seed(world: World) -> None:
    shop = make_business(world.db, name="Tenun Ikat Mollo")
    make_optin(world.db, make_product(world.db, shop, name="Selendang Foto Lama",
                                      image_url="https://cdn.example/lama.png"), CAMPAIGN_ID)
    make_optin(world.db, make_product(world.db, shop, name="Kain Foto Png",
                                      image_url="/media/kain.png"), CAMPAIGN_ID)
    make_optin(world.db, make_product(world.db, shop, name="Sarung Foto Baru",
                                      image_url=f"/media/{'b2' * 32}/square.jpg"), CAMPAIGN_ID)
    world.db.commit()


def validate(path: Path, channels: str) -> tuple[int, list[str]]:
    path.write_text(SOCIAL_YAML.format(id=CAMPAIGN_ID, channels=channels))
    result = CliRunner().invoke(cli_app, ["campaign", "validate", str(path)])
    return result.exit_code, [line for line in result.output.splitlines()
                              if line.startswith(str(path) + ":")]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_error_names_the_products_at_the_line_of_each_channel(
        world: World, tmp_path: Path) -> None:
    seed(world)
    path = tmp_path / "sosial.yaml"
    channels = "\n".join(PER_PRODUCT.format(name=n) for n in ("facebook", "instagram"))

    code, errors = validate(path, channels)

    assert code == 1
    assert len(errors) == 2, errors
    for channel, error in zip(("facebook", "instagram"), errors, strict=True):
        assert error.startswith(f"{path}:{line_of(path, f'  {channel}:')}:3: "), error
        assert f"channels.{channel}" in error
        assert "Selendang Foto Lama" in error and "Kain Foto Png" in error
        assert "Sarung Foto Baru" not in error


def test_tiktok_privacy_problems_point_at_the_tiktok_entry(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOK_AUDITED", "false")
    reset_settings()
    path = tmp_path / "tiktok.yaml"
    channels = ("  facebook: {template: social/promo.j2}\n"
                "  tiktok: {template: social/promo.j2, privacy: PUBLIC_TO_EVERYONE}")
    code, errors = validate(path, channels)
    assert code == 1
    assert [e.split(": ")[0] for e in errors] == [f"{path}:{line_of(path, '  tiktok:')}:3"]
    assert "belum diaudit" in errors[0]


@pytest.fixture
def videos(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))
    reset_settings()
    folder = tmp_path / "media" / "videos"
    folder.mkdir(parents=True)
    return folder


def test_a_tiktok_video_replaces_the_photo_check_and_is_checked_itself(
        world: World, tmp_path: Path, videos: Path) -> None:
    seed(world)
    (videos / "promo-tenun.mp4").write_bytes(MP4)
    (videos / "promo.mp4").write_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(100))  # QuickTime
    path = tmp_path / "video.yaml"
    tiktok = "  tiktok:\n    template: social/promo.j2\n    per: product\n    video: {video}"

    assert validate(path, tiktok.format(video="promo-tenun.mp4")) == (0, [])
    code, errors = validate(path, tiktok.format(video="hilang.mp4"))
    assert code == 1 and len(errors) == 1
    assert errors[0].startswith(f"{path}:{line_of(path, 'video:')}:5: ")
    assert "hilang.mp4" in errors[0] and "tidak ditemukan" in errors[0]
    code, errors = validate(path, tiktok.format(video="promo.mp4"))
    assert code == 1 and "bukan video MP4" in errors[0]
    code, errors = validate(path, tiktok.format(video="../../etc/passwd.mp4"))
    assert code == 1 and re.match(rf"{re.escape(str(path))}:{line_of(path, 'video:')}:", errors[0])
