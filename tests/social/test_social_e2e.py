"""Acceptance of issue 5: social campaigns end to end against fake providers on loopback.

YAML -> launch -> outbox -> engine.social.publish -> real adapters (facebook-sdk / httpx) -> the
fake Meta Graph, TikTok and WhatsApp servers (real HTTP on 127.0.0.1), with
``SOCIAL_MODE=live`` and accounts connected through :mod:`engine.social.accounts`. The clock is
:data:`tests.factories.NOW` (handed to every engine call) except for WhatsApp, whose
24-hour window is measured against the webhook's real timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import engine.cli.accounts  # noqa: F401  (registers `umkm account`)
from engine.campaign.loader import load_campaign
from engine.campaign.schema import CampaignSpec
from engine.cli.app import app as cli_app
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import beat, scheduler
from engine.delivery.context import reset_process_state
from engine.delivery.enqueue import run_in_process, sweep
from engine.delivery.pipeline import BatchResult, process_batch
from engine.models import (
    Consent,
    Customer,
    Delivery,
    DeliveryProduct,
    EngagementEvent,
    Product,
    RunStatus,
    SocialAccount,
    SocialPost,
    Suppression,
    utcnow,
)
from engine.social import accounts, metrics
from tests.factories import (
    NOW,
    make_business,
    make_consent,
    make_customer,
    make_optin,
    make_product,
)
from tests.fake_meta import Canned, FakeMeta, graph_error, usage_header
from tests.fake_meta import fake_meta_fixture as fake_meta_fixture
from tests.fake_tiktok import (
    CLIENT_KEY,
    CLIENT_SECRET,
    CONTENT_INIT,
    CREATOR_INFO,
    OAUTH_TOKEN,
    FakeTikTok,
)
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture
from tests.fake_whatsapp import ACCESS_TOKEN, PHONE_NUMBER_ID, FakeWhatsApp
from tests.fake_whatsapp import fake_whatsapp_fixture as fake_whatsapp_fixture

REPO = Path(__file__).resolve().parents[2]
BASE_URL = "https://umkm.ttskab.go.id"
PAGE, IG_USER, TT_OPEN_ID = "104857600", "17841400000000001", "tt-open-id-dinas"
FB_TOKEN, IG_TOKEN = "EAAB-page-token-dinas", "EAAB-ig-token-dinas"
CAMPAIGN_ID = "promo-sosial-tenun"

SOCIAL_YAML = """\
version: 1
id: {id}
name: Promo Tenun di Media Sosial
type: promotional
schedule:
  start: 2026-11-01 09:00
audience:
  include: [{{consent: marketing}}]
products: {{opt_in: required, category: kerajinan_tangan}}
offer: {{kind: discount, percent: 15, code: TENUN15}}
channels:
{channels}
"""
PER_PRODUCT = "  {name}: {{template: social/promo.j2, per: product}}"
TIKTOK_PUBLIC = ("  tiktok: {template: social/promo.j2, per: product, privacy: PUBLIC_TO_EVERYONE,"
                 " consent: true}")


# ----------------------------------------------------------------------------- the world
@dataclass
class Catalog:
    products: list[Product]
    business_of: dict[int, int]  # product id -> business id
    names: dict[int, str]


@dataclass
class World:
    settings: Settings
    db: Session
    tmp: Path

    def spec(self, channels: list[str] | str, campaign_id: str = CAMPAIGN_ID) -> CampaignSpec:
        lines = channels if isinstance(channels, str) else "\n".join(
            PER_PRODUCT.format(name=n) for n in channels)
        text = SOCIAL_YAML.format(id=campaign_id, channels=lines)
        path = self.tmp / f"{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
        path.write_text(text)
        return load_campaign(path)

    def launch(self, spec: CampaignSpec, now: datetime = NOW) -> int:
        result = scheduler.launch(self.db, spec, None, now=now)
        assert result.run is not None and result.created
        return result.run.id

    def run(self, run_id: int, now: datetime = NOW) -> BatchResult:
        return run_in_process(run_id, self.settings, now)

    def deliveries(self, run_id: int, channel: str) -> list[Delivery]:
        self.db.expire_all()
        return list(self.db.scalars(select(Delivery).where(
            Delivery.run_id == run_id, Delivery.channel == channel).order_by(Delivery.id)))

    def posts(self, platform: str) -> list[SocialPost]:
        self.db.expire_all()
        return list(self.db.scalars(select(SocialPost).where(SocialPost.platform == platform)
                                    .order_by(SocialPost.id)))

    def account(self, key: str) -> SocialAccount:
        self.db.expire_all()
        return accounts.by_key(self.db, key)


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
          fake_meta: FakeMeta, fake_tiktok: FakeTikTok) -> Iterator[World]:
    for key, value in {
        "SOCIAL_MODE": "live", "GRAPH_URL": fake_meta.base_url, "TIKTOK_URL": fake_tiktok.url,
        "TIKTOK_CLIENT_KEY": CLIENT_KEY, "TIKTOK_CLIENT_SECRET": CLIENT_SECRET,
        "SOCIAL_POLL_SECONDS": "0.01", "SOCIAL_RATE": "0", "BASE_URL": BASE_URL,
    }.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_process_state()
    session = session_factory(get_settings())()
    try:
        yield World(get_settings(), session, tmp_path)
    finally:
        session.close()
        reset_process_state()


def seed_catalog(db: Session) -> Catalog:
    """3 opted-in products of 2 eligible UMKM, plus two that must never be posted."""
    tenun = make_business(db, name="Tenun Ikat Mollo")
    anyaman = make_business(db, name="Anyaman Lontar Boking", kecamatan_code="53.02.15")
    ineligible = make_business(db, name="Usaha Belum Terverifikasi", eligible=False)
    products = [
        make_product(db, tenun, name="Selendang Tenun Buna", price=350_000,
                     image_url=f"/media/{'a1' * 32}/square.jpg"),
        make_product(db, tenun, name="Sarung Tenun Ikat", price=750_000,
                     image_url=f"/media/{'b2' * 32}/square.jpg"),
        make_product(db, anyaman, name="Tas Anyaman Lontar", price=125_000,
                     image_url=f"/media/{'c3' * 32}/square.jpg"),
    ]
    for product in products:
        make_optin(db, product, CAMPAIGN_ID)
    make_product(db, tenun, name="Kain Tanpa Opt-in")  # not opted in
    make_optin(db, make_product(db, ineligible, name="Produk Tidak Layak"), CAMPAIGN_ID)
    db.commit()
    return Catalog(products, {p.id: p.business_id for p in products},
                   {p.id: p.name for p in products})


def connect_meta(db: Session) -> None:
    accounts.connect(db, platform="facebook", external_id=PAGE, name="Dinas UMKM TTS",
                     access_token=FB_TOKEN)
    accounts.connect(db, platform="instagram", external_id=IG_USER, name="@umkm.tts",
                     access_token=IG_TOKEN)
    db.commit()


def connect_tiktok(db: Session, fake: FakeTikTok) -> tuple[str, str]:
    access, refresh = fake.issue_tokens()
    accounts.connect(db, platform="tiktok", external_id=TT_OPEN_ID, name="umkm_tts",
                     access_token=access, refresh_token=refresh)
    db.commit()
    return access, refresh


def catalog_products(db: Session, catalog: Catalog) -> list[Product]:
    return [db.get(Product, pid) for pid in catalog.names]  # type: ignore[misc]


def fb_posts(fake: FakeMeta) -> list[dict[str, Any]]:
    return fake.posts.get(PAGE, [])


def featured(text: str, catalog: Catalog) -> int:
    """Which product a caption is about (exactly one of the catalog's names)."""
    found = [pid for pid, name in catalog.names.items() if name in text]
    assert len(found) == 1, text
    return found[0]


# ----------------------------------------------------------------------------- campaigns
def test_one_post_per_product_per_platform_attributed_to_its_business(
        world: World, fake_meta: FakeMeta, fake_tiktok: FakeTikTok) -> None:
    catalog = seed_catalog(world.db)
    connect_meta(world.db)
    connect_tiktok(world.db, fake_tiktok)
    run_id = world.launch(world.spec(["facebook", "instagram", "tiktok"]))

    summary = world.run(run_id)

    assert (summary.sent, summary.failed, summary.retried) == (9, 0, 0)
    # exactly one post per opted-in product on each platform, nothing else
    assert Counter(featured(p["message"], catalog) for p in fb_posts(fake_meta)) == \
        Counter(list(catalog.names))
    assert Counter(featured(m["caption"], catalog) for m in fake_meta.media[IG_USER]) == \
        Counter(list(catalog.names))
    tiktok_titles = [p.body["post_info"]["description"] for p in fake_tiktok.publishes.values()]
    assert Counter(featured(t, catalog) for t in tiktok_titles) == Counter(list(catalog.names))
    assert fake_tiktok.count(CREATOR_INFO) == 3  # asked before every post
    assert {p.privacy_level for p in fake_tiktok.publishes.values()} == {"SELF_ONLY"}
    for platform in ("facebook", "instagram", "tiktok"):
        rows = world.deliveries(run_id, platform)
        assert {d.status.value for d in rows} == {"sent"}
        assert all(d.provider_id and d.attempts == 1 for d in rows)
        posts = world.posts(platform)
        assert len(posts) == 3 and all(p.provider_post_id for p in posts)
        by_delivery = {d.id: d for d in rows}
        for post in posts:
            delivery = by_delivery[post.delivery_id]  # type: ignore[index]
            assert post.provider_post_id == delivery.provider_id
            assert post.business_id == catalog.business_of[post.product_id]  # type: ignore[index]
            assert delivery.business_id == post.business_id
            assert featured(post.raw["caption"], catalog) == post.product_id
    attributed = world.db.execute(select(DeliveryProduct.product_id, DeliveryProduct.business_id)
                                  ).tuples().all()
    assert Counter(attributed) == Counter({pair: 3 for pair in catalog.business_of.items()})
    # the caption links to the product through a tracked link of this run
    assert all(f"{BASE_URL}/t/c/" in p["message"] for p in fb_posts(fake_meta))
    assert world.run(run_id).claimed == 0  # nothing is posted twice


def test_social_timeout_setting_bounds_a_slow_post_which_is_found_not_reposted(
        world: World, fake_meta: FakeMeta, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_TIMEOUT", "0.5")
    reset_settings()
    world.settings = get_settings()
    catalog = seed_catalog(world.db)
    connect_meta(world.db)
    # Meta creates the first post but answers after 3 s: longer than SOCIAL_TIMEOUT.
    fake_meta.script("POST", f"{PAGE}/photos", Canned(delay=3.0))
    run_id = world.launch(world.spec(["facebook"]))

    started = time.monotonic()
    first = world.run(run_id)
    elapsed = time.monotonic() - started

    assert elapsed < 3.0, f"the batch waited {elapsed:.1f} s: the slow answer itself"
    assert (first.sent, first.retried) == (2, 1)
    world.run(run_id, NOW + timedelta(hours=1))  # the retry looks the post up first
    assert {d.status.value for d in world.deliveries(run_id, "facebook")} == {"sent"}
    products = [featured(p["message"], catalog) for p in fb_posts(fake_meta)]
    assert sorted(products) == sorted(catalog.names)  # each product posted once


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_throttled_page_cools_down_and_posts_only_after_the_cool_down(
        world: World, fake_meta: FakeMeta, code: int) -> None:
    catalog = seed_catalog(world.db)
    connect_meta(world.db)
    fake_meta.script("POST", f"{PAGE}/photos", graph_error(
        code, message=f"({code}) Application request limit reached",
        headers=usage_header(100, regain_minutes=10, buc=True)))
    run_id = world.launch(world.spec(["facebook", "instagram"]))

    world.run(run_id)

    page_calls = lambda: len([r for r in fake_meta.requests if r.path.startswith(PAGE)])  # noqa: E731
    assert fake_meta.count("POST", f"{PAGE}/photos") == 1  # the first refusal stopped the page
    assert {d.status.value for d in world.deliveries(run_id, "instagram")} == {"sent"}
    cooled = world.account("facebook:dinas")
    cooldown_until = cast(datetime, cooled.cooldown_until)
    until = cooldown_until if cooldown_until.tzinfo else cooldown_until.replace(tzinfo=NOW.tzinfo)
    assert until == NOW + timedelta(minutes=10)  # Meta's estimated_time_to_regain_access
    rows = world.deliveries(run_id, "facebook")
    assert all(d.status.value == "pending" for d in rows)
    assert sorted(d.attempts for d in rows) == [0, 0, 1]  # held-back posts spent nothing
    assert all(d.next_attempt_at is not None for d in rows)

    # while cooling: neither the retries nor another campaign's post reach Meta
    calls = page_calls()
    world.run(run_id, NOW + timedelta(minutes=5))
    for product in catalog_products(world.db, catalog):
        make_optin(world.db, product, "promo-sosial-kedua")
    world.db.commit()
    second = world.launch(world.spec("  facebook: {template: social/promo.j2, per: campaign}",
                                     "promo-sosial-kedua"), NOW + timedelta(minutes=5))
    world.run(second, NOW + timedelta(minutes=5))
    assert page_calls() == calls
    waiting = world.deliveries(second, "facebook")[0]
    assert (waiting.status.value, waiting.attempts) == ("pending", 0)

    later = NOW + timedelta(minutes=11)
    world.run(run_id, later)
    world.run(second, later)
    assert {d.status.value for d in world.deliveries(run_id, "facebook")} == {"sent"}
    assert world.deliveries(second, "facebook")[0].status.value == "sent"
    products = [featured(p["message"], catalog) for p in fb_posts(fake_meta)[:3]]
    assert sorted(products) == sorted(catalog.names)  # each product once, never twice
    assert len(fb_posts(fake_meta)) == 4  # plus the second campaign's round-up


def test_expired_token_pauses_only_that_account_until_it_is_reconnected(
        world: World, fake_meta: FakeMeta, fake_tiktok: FakeTikTok) -> None:
    catalog = seed_catalog(world.db)
    connect_meta(world.db)
    connect_tiktok(world.db, fake_tiktok)
    fake_meta.script("POST", f"{PAGE}/photos", Canned(), graph_error(
        190, 463, "Error validating access token: Session has expired on Monday."))
    run_id = world.launch(world.spec(["facebook", "instagram", "tiktok"]))

    world.run(run_id)
    fake_meta.expired_tokens.add(FB_TOKEN)  # the old token stays dead

    assert world.account("facebook:dinas").status == accounts.STATUS_NEEDS_RECONNECT
    for other in ("instagram", "tiktok"):  # other platforms go on
        assert {d.status.value for d in world.deliveries(run_id, other)} == {"sent"}
    facebook = world.deliveries(run_id, "facebook")
    assert [d.status.value for d in facebook] == ["sent", "pending", "pending"]
    assert [d.attempts for d in facebook] == [1, 1, 0]

    calls = fake_meta.count("POST", f"{PAGE}/photos")
    world.run(run_id, NOW + timedelta(minutes=20))  # still disconnected: no call at all
    assert fake_meta.count("POST", f"{PAGE}/photos") == calls
    assert [d.attempts for d in world.deliveries(run_id, "facebook")] == [1, 1, 0]

    listing = CliRunner().invoke(cli_app, ["account", "list"], env={"COLUMNS": "200"})
    assert "perlu disambung ulang" in listing.output and FB_TOKEN not in listing.output
    reconnect = CliRunner().invoke(cli_app, [
        "account", "connect", "facebook", "--id", PAGE, "--name", "Dinas UMKM TTS",
        "--token-file", "-"], input="EAAB-page-token-baru\n")
    assert reconnect.exit_code == 0, reconnect.output
    assert world.account("facebook:dinas").status == accounts.STATUS_OK

    world.run(run_id, NOW + timedelta(minutes=21))  # due at once after the reconnect
    assert {d.status.value for d in world.deliveries(run_id, "facebook")} == {"sent"}
    assert sorted(featured(p["message"], catalog) for p in fb_posts(fake_meta)) == \
        sorted(catalog.names)
    tokens = {c.params.get("access_token") for c in fake_meta.calls("POST", f"{PAGE}/photos")}
    assert "EAAB-page-token-baru" in tokens


def test_worker_killed_between_container_and_publish_publishes_once(
        world: World, fake_meta: FakeMeta, tmp_path: Path) -> None:
    seed_catalog(world.db)
    connect_meta(world.db)
    fake_meta.container_script.append(["IN_PROGRESS"])  # Meta is still processing
    spec = world.spec("  instagram: {template: social/promo.j2, per: campaign}")
    run_id = world.launch(spec)
    ids = [d.id for d in world.deliveries(run_id, "instagram")]
    code = ("from datetime import datetime\nfrom engine.delivery.pipeline import process_batch\n"
            f"process_batch({run_id}, {ids}, now=datetime.fromisoformat('{NOW.isoformat()}'))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SOCIAL_POLL_SECONDS": "1.0"}
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        container = _wait_for_checkpoint(world, ids[0], worker)
    finally:
        worker.kill()  # SIGKILL: no cleanup, the row stays "sending"
        worker.wait()
    assert fake_meta.count("POST", f"{IG_USER}/media_publish") == 0
    assert world.deliveries(run_id, "instagram")[0].status.value == "sending"
    fake_meta.containers[container]["statuses"] = ["FINISHED"]

    later = NOW + timedelta(minutes=11)  # the sweeper gives the dead worker's row back
    for batch in sweep(world.settings, later):
        process_batch(batch.run_id, batch.delivery_ids, world.settings, later)

    assert fake_meta.count("POST", f"{IG_USER}/media") == 1  # the container was reused
    assert fake_meta.count("POST", f"{IG_USER}/media_publish") == 1
    delivery = world.deliveries(run_id, "instagram")[0]
    assert delivery.status.value == "sent"
    assert delivery.provider_id == fake_meta.media[IG_USER][0]["id"]
    assert world.posts("instagram")[0].container_id == container
    assert sweep(world.settings, later + timedelta(minutes=11)) == []


def _wait_for_checkpoint(world: World, delivery_id: int, worker: subprocess.Popen[bytes]
                         ) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with session_factory(world.settings)() as s:
            container = s.scalars(select(SocialPost.container_id).where(
                SocialPost.delivery_id == delivery_id)).first()
        if container:
            return container
        assert worker.poll() is None, "the worker ended before the container checkpoint"
        time.sleep(0.02)
    raise AssertionError("no container checkpoint within 30 s")


def test_tiktok_token_refresh_rotates_and_stores_both_tokens(
        world: World, fake_tiktok: FakeTikTok) -> None:
    seed_catalog(world.db)
    access, refresh = connect_tiktok(world.db, fake_tiktok)

    def expire_mid_run(request: Any) -> Any:
        fake_tiktok.expire(access)
        return fake_tiktok.error("access_token_invalid", "The access token is invalid.")

    fake_tiktok.enqueue(CREATOR_INFO, fake_tiktok.handle, expire_mid_run)
    run_id = world.launch(world.spec(["tiktok"]))

    world.run(run_id)

    assert {d.status.value for d in world.deliveries(run_id, "tiktok")} == {"sent"}
    assert fake_tiktok.count(CONTENT_INIT) == 3 and fake_tiktok.count(OAUTH_TOKEN) == 1
    assert fake_tiktok.used_refresh_tokens == [refresh]
    stored = accounts.credentials(world.account("tiktok:dinas"))
    assert stored.access_token in fake_tiktok.access_tokens and stored.access_token != access
    assert stored.refresh_token in fake_tiktok.refresh_tokens and stored.refresh_token != refresh
    replay = httpx.post(fake_tiktok.url + OAUTH_TOKEN, data={
        "client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET,
        "grant_type": "refresh_token", "refresh_token": refresh})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    inits = fake_tiktok.calls(CONTENT_INIT)
    assert {r.bearer for r in inits[1:]} == {stored.access_token}


def test_metrics_are_stored_per_business_and_polled_by_the_beat(
        world: World, fake_meta: FakeMeta, fake_tiktok: FakeTikTok,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOK_AUDITED", "true")
    reset_settings()
    world.settings = get_settings()
    fake_tiktok.audited = True
    catalog = seed_catalog(world.db)
    connect_meta(world.db)
    connect_tiktok(world.db, fake_tiktok)
    run_id = world.launch(world.spec("\n".join([
        PER_PRODUCT.format(name="facebook"), PER_PRODUCT.format(name="instagram"),
        TIKTOK_PUBLIC])))
    world.run(run_id)
    for n, post in enumerate(fb_posts(fake_meta), start=1):
        fake_meta.engagement[post["id"]] = {"reactions": 10 * n, "comments": n, "shares": 2}
        fake_meta.insights[post["id"]] = {"post_media_view": 100 * n,
                                          "post_total_media_view_unique": 80 * n,
                                          "post_clicks": 7}
    for n, media in enumerate(fake_meta.media[IG_USER], start=1):
        fake_meta.insights[media["id"]] = {"views": 50 * n, "reach": 40, "likes": 9,
                                           "comments": 3, "shares": 1, "saved": 4}
    for video in fake_tiktok.videos.values():
        video.update(view_count=500, like_count=42, comment_count=5, share_count=6)

    stored = metrics.poll_metrics(world.settings, NOW + timedelta(hours=1))

    events = list(world.db.scalars(select(EngagementEvent)))
    assert stored == len(events) == 3 * 6 + 3 * 6 + 3 * 4
    posts = {p.id: p for p in world.db.scalars(select(SocialPost))}
    for event in events:
        stored_post = posts[event.post_id]  # type: ignore[index]
        assert event.business_id == catalog.business_of[stored_post.product_id]  # type: ignore[index]
        assert (event.product_id, event.run_id) == (stored_post.product_id, run_id)
    kinds = {(e.channel, e.type) for e in events}
    for kind in ("view", "reach", "reaction", "comment", "share", "click"):
        assert ("facebook", kind) in kinds
    for kind in ("view", "reach", "reaction", "comment", "share", "save"):
        assert ("instagram", kind) in kinds
    assert {t for c, t in kinds if c == "tiktok"} == {"view", "reaction", "comment", "share"}
    first_page_post = next(p for p in posts.values() if p.provider_post_id ==
                           fb_posts(fake_meta)[0]["id"])
    views = [e.value for e in events if e.post_id == first_page_post.id and e.type == "view"]
    assert views == [100.0]

    # the beat reads each post at most every METRICS_INTERVAL_MINUTES (60 by default)
    soon = beat.poll_social_metrics(world.settings, NOW + timedelta(hours=1, minutes=30))
    assert soon.count == 0
    after = beat.poll_social_metrics(world.settings, NOW + timedelta(hours=2, minutes=1))
    assert after.count == stored


# ----------------------------------------------------------------------------- WhatsApp
def test_share_kit_is_written_once_per_campaign_and_kept_on_its_post(world: World) -> None:
    catalog = seed_catalog(world.db)  # no WhatsApp account needed for the shared group
    run_id = world.launch(world.spec("  whatsapp: {mode: share_kit}"))

    world.run(run_id)

    [delivery] = world.deliveries(run_id, "whatsapp")
    assert delivery.status.value == "sent"
    [post] = world.posts("whatsapp")
    kit = post.raw["share_kit"]
    for name in catalog.names.values():
        assert name in kit["text"]
    assert kit["share_link"].startswith("https://wa.me/?text=")
    assert {link["product_id"] for link in kit["wa_links"] if link["kind"] == "order"} == \
        set(catalog.names)
    written = json.loads((Path(world.settings.var_dir) / "outbox" / "whatsapp" /
                          f"{delivery.id}.json").read_text())
    assert written["payload"]["share_kit"] == kit
    assert sorted(world.db.scalars(select(DeliveryProduct.product_id))) == sorted(catalog.names)


@dataclass
class WhatsAppWorld:
    world: World
    fake: FakeWhatsApp
    client: TestClient
    secret: str

    def webhook(self, phone: str, text: str, at: datetime, *, secret: str | None = None
                ) -> Any:
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{
            "id": "WABA-1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                "contacts": [{"wa_id": phone, "profile": {"name": "Pelanggan"}}],
                "messages": [{"from": phone, "id": f"wamid.IN{phone}{int(at.timestamp())}",
                              "timestamp": str(int(at.timestamp())), "type": "text",
                              "text": {"body": text}}]}}]}]}).encode()
        signature = hmac.new((secret or self.secret).encode(), body, hashlib.sha256).hexdigest()
        return self.client.post("/webhooks/whatsapp", content=body, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"})


@pytest.fixture
def wa(world: World, fake_whatsapp: FakeWhatsApp, monkeypatch: pytest.MonkeyPatch
       ) -> Iterator[WhatsAppWorld]:
    from web.app import create_app

    monkeypatch.setenv("GRAPH_URL", fake_whatsapp.url)
    monkeypatch.setenv("UMKM_WA_APP_SECRET", "rahasia-aplikasi-meta")
    monkeypatch.setenv("UMKM_WA_VERIFY_TOKEN", "token-verifikasi")
    reset_settings()
    world.settings = get_settings()
    accounts.connect(world.db, platform="whatsapp", external_id=PHONE_NUMBER_ID,
                     name="WA Dinas UMKM TTS", access_token=ACCESS_TOKEN)
    world.db.commit()
    with TestClient(create_app(world.settings)) as client:
        yield WhatsAppWorld(world, fake_whatsapp, client, "rahasia-aplikasi-meta")


def _wa_customer(db: Session, phone: str, name: str, *, whatsapp: bool | None,
                 at: datetime) -> Customer:
    customer = make_customer(db, phone=phone, name=name, marketing=True, at=at)
    if whatsapp is not None:
        make_consent(db, customer, channel="whatsapp", granted=whatsapp, at=at)
    return customer


def test_cloud_api_templates_go_only_to_consenting_customers_until_they_opt_out(
        wa: WhatsAppWorld) -> None:
    world, now = wa.world, utcnow()
    seed_catalog(world.db)
    past = now - timedelta(days=3)
    _wa_customer(world.db, "6281100000001", "Maria Bana", whatsapp=True, at=past)
    _wa_customer(world.db, "6281100000002", "Yohanes Tefa", whatsapp=None, at=past)
    _wa_customer(world.db, "6281100000003", "Sefnat Nenobais", whatsapp=False, at=past)
    _wa_customer(world.db, "6281100000004", "Ance Boimau", whatsapp=True, at=past)
    world.db.commit()
    spec = world.spec("  whatsapp: {mode: cloud_api, template: {name: promo_umkm, "
                      "language: id}}")
    run_id = world.launch(spec, now)
    planned = {d.recipient for d in world.deliveries(run_id, "whatsapp")}
    assert planned == {"6281100000001", "6281100000004"}  # WhatsApp consent only

    forged = wa.webhook("6281100000004", "BERHENTI", now, secret="bukan-rahasia")
    assert forged.status_code == 403
    assert wa.webhook("6281100000004", "Berhenti ya kak", now).json() == {
        "messages": 1, "opt_outs": 1}
    world.run(run_id, now)

    [message] = wa.fake.sent
    assert message["to"] == "6281100000001" and message["type"] == "template"
    template = message["template"]
    assert (template["name"], template["language"]["code"]) == ("promo_umkm", "id")
    first_name, link = [p["text"] for p in template["components"][0]["parameters"]]
    assert first_name == "Maria" and link.startswith(f"{BASE_URL}/t/c/")
    rows = {d.recipient: d for d in world.deliveries(run_id, "whatsapp")}
    assert rows["6281100000001"].status.value == "sent"
    assert rows["6281100000001"].provider_id.startswith("wamid.")  # type: ignore[union-attr]
    assert rows["6281100000001"].business_id is not None  # attributed to the featured UMKM
    assert (rows["6281100000004"].status.value, rows["6281100000004"].error) == (
        "skipped", "suppressed:unsubscribed")
    withdrawn = world.db.scalars(select(Consent).where(
        Consent.source == "whatsapp:opt-out")).one()
    assert (withdrawn.channel.value, withdrawn.granted) == ("whatsapp", False)
    assert world.db.scalars(select(Suppression.address).where(
        Suppression.channel == "whatsapp")).all() == ["6281100000004"]

    again = world.launch(world.spec("  whatsapp: {mode: cloud_api, template: "
                                    "{name: promo_umkm}}", "promo-sosial-kedua"), now)
    assert {d.recipient for d in world.deliveries(again, "whatsapp")} == {"6281100000001"}


def test_free_form_text_only_inside_the_24_hour_window(wa: WhatsAppWorld) -> None:
    world, now = wa.world, utcnow()
    seed_catalog(world.db)
    past = now - timedelta(days=3)
    _wa_customer(world.db, "6281200000001", "Maria Bana", whatsapp=True, at=past)
    _wa_customer(world.db, "6281200000002", "Dominggus Tse", whatsapp=True, at=past)
    world.db.commit()
    assert wa.webhook("6281200000001", "Halo, selendang tenun masih ada?",
                      now - timedelta(hours=2)).json() == {"messages": 1, "opt_outs": 0}
    assert wa.webhook("6281200000002", "Terima kasih", now - timedelta(hours=30)).status_code \
        == 200
    # Meta's own view of the windows (the fake refuses free-form text outside them)
    wa.fake.inbound.update({"6281200000001": now - timedelta(hours=2),
                            "6281200000002": now - timedelta(hours=30)})
    run_id = world.launch(world.spec(
        "  whatsapp: {mode: cloud_api, template: social/whatsapp_reply.j2}"), now)

    world.run(run_id, now)

    [message] = wa.fake.sent
    assert message["to"] == "6281200000001" and message["type"] == "text"
    assert message["text"]["body"].startswith("Halo Maria")
    assert wa.fake.count(wa.fake.messages_path) == 1  # no free-form call outside the window
    rows = {d.recipient: d for d in world.deliveries(run_id, "whatsapp")}
    assert rows["6281200000001"].status.value == "sent"
    assert (rows["6281200000002"].status.value, rows["6281200000002"].error) == (
        "skipped", "outside_24h_window")


def test_webhook_subscription_check_needs_the_verify_token(wa: WhatsAppWorld) -> None:
    ok = wa.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "token-verifikasi",
        "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    wrong = wa.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "salah", "hub.challenge": "1"})
    assert wrong.status_code == 403 and wrong.text != "1"


def test_run_finishes_when_every_post_is_out(world: World, fake_meta: FakeMeta) -> None:
    seed_catalog(world.db)
    connect_meta(world.db)
    run_id = world.launch(world.spec(["facebook"]))
    world.run(run_id)
    world.db.expire_all()
    from engine.models import CampaignRun

    assert world.db.get(CampaignRun, run_id).status == RunStatus.finished  # type: ignore[union-attr]
