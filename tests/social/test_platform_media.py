"""Issue 17 A/B: the photos sent to the platforms are ones the platforms accept.

The fake Meta and TikTok servers fetch every photo URL from the loopback media server
the test declares for the public host ``umkm.ttskab.go.id`` and refuse what the real
platforms refuse (relative or private URLs, unverified domains, PNG, Instagram's aspect
ratio outside 4:5 .. 1.91:1).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli.app import app as cli_app
from engine.config import Settings, get_settings, reset_settings
from engine.social.media import platform_media_url
from tests.factories import make_business, make_optin, make_product
from tests.fake_media import FakeMedia, picture
from tests.fake_media import fake_media_fixture as fake_media_fixture
from tests.fake_meta import FakeMeta
from tests.fake_meta import fake_meta_fixture as fake_meta_fixture
from tests.fake_tiktok import CONTENT_INIT, STATUS_FETCH, FakeTikTok
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.social.test_social_e2e import (
    BASE_URL,
    CAMPAIGN_ID,
    IG_USER,
    PAGE,
    PER_PRODUCT,
    SOCIAL_YAML,
    World,
    connect_meta,
    connect_tiktok,
    fb_posts,
    seed_catalog,
)
from tests.social.test_social_e2e import world as world

HOST = "umkm.ttskab.go.id"


def serve_variants(fake_media: FakeMedia, image_url: str) -> None:
    """The JPEG variants engine.media keeps for a stored photo."""
    digest = image_url.split("/")[2]
    fake_media.files[f"/media/{digest}/square.jpg"] = picture(1080, 1080)
    fake_media.files[f"/media/{digest}/portrait.jpg"] = picture(1080, 1350)


@pytest.fixture
def media_world(world: World, fake_media: FakeMedia, fake_meta: FakeMeta,
                fake_tiktok: FakeTikTok) -> World:
    for fake in (fake_meta, fake_tiktok):
        fake.media_hosts = {HOST: fake_media.url}
    return world


def test_each_platform_gets_our_own_https_jpeg_and_instagram_the_portrait(
        media_world: World, fake_media: FakeMedia, fake_meta: FakeMeta,
        fake_tiktok: FakeTikTok) -> None:
    catalog = seed_catalog(media_world.db)
    for product in catalog.products:
        serve_variants(fake_media, product.image_url or "")
    connect_meta(media_world.db)
    connect_tiktok(media_world.db, fake_tiktok)
    run_id = media_world.launch(media_world.spec(["facebook", "instagram", "tiktok"]))

    summary = media_world.run(run_id)

    assert (summary.sent, summary.failed) == (9, 0)
    ig_urls = [c["params"]["image_url"] for c in fake_meta.containers.values()]
    assert len(ig_urls) == 3 and all(u.startswith(f"{BASE_URL}/media/") for u in ig_urls)
    assert all(u.endswith("/portrait.jpg") for u in ig_urls)  # 4:5, never a 3:4 original
    assert all(p["photo_url"].startswith(f"{BASE_URL}/media/") for p in fb_posts(fake_meta))
    tiktok = [u for p in fake_tiktok.publishes.values()
              for u in p.body["source_info"]["photo_images"]]
    assert len(tiktok) == 3 and all(u.startswith(f"{BASE_URL}/media/") for u in tiktok)


def test_a_photo_the_platforms_would_refuse_is_never_sent(
        media_world: World, fake_meta: FakeMeta) -> None:
    db = media_world.db
    shop = make_business(db, name="Tenun Ikat Mollo")
    for name, url in (("Kain PNG", "https://cdn.example/kain.png"),
                      ("Kain Lokal", "/uploads/kain.jpg")):
        make_optin(db, make_product(db, shop, name=name, image_url=url), CAMPAIGN_ID)
    db.commit()
    connect_meta(db)
    run_id = media_world.launch(media_world.spec(["facebook", "instagram"]))

    summary = media_world.run(run_id)

    assert (summary.sent, summary.failed) == (0, 4)
    assert fake_meta.count("POST", f"{IG_USER}/media") == 0
    assert fake_meta.count("POST", f"{PAGE}/photos") == 0
    errors = {d.error for c in ("facebook", "instagram") for d in media_world.deliveries(run_id, c)}
    assert all(e and "JPEG" in e for e in errors)


def test_http_base_url_is_refused_in_production_but_fine_in_the_sandbox(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    path = "/media/" + "ab" * 32 + "/square.jpg"
    monkeypatch.setenv("BASE_URL", "http://umkm.ttskab.go.id")
    monkeypatch.setenv("SOCIAL_MODE", "live")
    reset_settings()
    assert platform_media_url(path, "facebook", get_settings()) is None
    monkeypatch.setenv("BASE_URL", "https://127.0.0.1:8000")
    reset_settings()
    assert platform_media_url(path, "facebook", get_settings()) is None  # not public
    monkeypatch.setenv("BASE_URL", BASE_URL)
    reset_settings()
    assert platform_media_url(path, "instagram", get_settings()) == \
        f"{BASE_URL}/media/{'ab' * 32}/portrait.jpg"
    assert platform_media_url("https://cdn.example" + path, "tiktok", get_settings()) is None
    monkeypatch.setenv("SOCIAL_MODE", "sandbox")
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:8000")
    reset_settings()
    assert platform_media_url(path, "tiktok", get_settings()) == "http://127.0.0.1:8000" + path


def test_validate_names_the_products_without_an_acceptable_photo(
        media_world: World, tmp_path: Path) -> None:
    db = media_world.db
    shop = make_business(db, name="Tenun Ikat Mollo")
    make_optin(db, make_product(db, shop, name="Selendang Foto Lama",
                                image_url="https://cdn.example/lama.png"), CAMPAIGN_ID)
    make_optin(db, make_product(db, shop, name="Sarung Foto Baru"), CAMPAIGN_ID)
    db.commit()
    path = tmp_path / "sosial.yaml"
    path.write_text(SOCIAL_YAML.format(id=CAMPAIGN_ID,
                                       channels=PER_PRODUCT.format(name="instagram")))

    result = CliRunner().invoke(cli_app, ["campaign", "validate", str(path)])

    assert result.exit_code == 1, result.output
    assert "channels.instagram" in result.output
    assert "Selendang Foto Lama" in result.output
    assert "Sarung Foto Baru" not in result.output


# ----------------------------------------------------------------------------- the fakes
def test_fake_meta_refuses_what_instagram_refuses(
        fake_meta: FakeMeta, fake_media: FakeMedia) -> None:
    fake_meta.media_hosts = {HOST: fake_media.url}
    fake_media.files["/phone.jpg"] = picture(1080, 1440)  # 3:4
    fake_media.files["/logo.png"] = picture(1080, 1080, "PNG")
    fake_media.files["/ok.jpg"] = picture(1080, 1350)

    def create(url: str) -> dict[str, object]:
        answer = httpx.post(f"{fake_meta.base_url}v21.0/{IG_USER}/media",
                            data={"image_url": url, "access_token": "t"})
        return dict(answer.json().get("error") or {"ok": True})

    assert create(f"https://{HOST}/phone.jpg")["code"] == 36003
    assert create(f"https://{HOST}/phone.jpg")["error_subcode"] == 2207009
    assert create(f"https://{HOST}/logo.png")["code"] == 36001
    assert create("/media/x/square.jpg")["code"] == 9004
    assert create("http://127.0.0.1:9/ok.jpg")["code"] == 9004
    assert create("https://cdn.example/ok.jpg")["code"] == 9004  # not declared: unreachable
    assert create(f"https://{HOST}/ok.jpg") == {"ok": True}


def test_fake_tiktok_refuses_unverified_domains_and_png(
        fake_tiktok: FakeTikTok, fake_media: FakeMedia) -> None:
    fake_tiktok.media_hosts = {HOST: fake_media.url}
    fake_media.files["/logo.png"] = picture(1080, 1080, "PNG")
    access, _refresh = fake_tiktok.issue_tokens()

    def init(url: str) -> dict[str, object]:
        body = {"media_type": "PHOTO", "post_mode": "DIRECT_POST",
                "post_info": {"title": "x", "privacy_level": "SELF_ONLY"},
                "source_info": {"source": "PULL_FROM_URL", "photo_images": [url],
                                "photo_cover_index": 0}}
        return dict(httpx.post(fake_tiktok.url + CONTENT_INIT, json=body,
                               headers={"Authorization": f"Bearer {access}"}).json())

    assert init("https://cdn.example/a.jpg")["error"]["code"] == "url_ownership_unverified"  # type: ignore[index]
    assert init("/media/a.jpg")["error"]["code"] == "invalid_params"  # type: ignore[index]
    publish_id = init(f"https://{HOST}/logo.png")["data"]["publish_id"]  # type: ignore[index]
    status = httpx.post(fake_tiktok.url + STATUS_FETCH, json={"publish_id": publish_id},
                        headers={"Authorization": f"Bearer {access}"}).json()["data"]
    assert (status["status"], status["fail_reason"]) == ("FAILED", "file_format_check_failed")
