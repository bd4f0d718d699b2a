"""A channel written outside the project joins a campaign through the entry point alone.

The plugin (``tests/plugins/umkm_kentongan``) is "installed" the way pip would do it: a
``*.dist-info`` directory with ``entry_points.txt`` on ``sys.path`` registers
``kentongan = umkm_kentongan:KentonganChannel`` in the group ``umkm.channels``. Nothing
in the engine names it: the campaign schema accepts the installed channel, the account
is connected like any other, and posts go out through the same outbox.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.registry import available_channels, clear_registry_cache, get_adapter_class
from engine.campaign.loader import CampaignValidationError, load_campaign
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import scheduler
from engine.delivery.context import reset_process_state
from engine.delivery.enqueue import run_in_process
from engine.models import Delivery, SocialPost
from engine.social import accounts
from tests.factories import NOW, make_business, make_optin, make_product
from tests.fake_http import FakeHTTPServer, Recorded, Reply

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
CAMPAIGN = """\
version: 1
id: pengumuman-desa-tenun
name: Tenun TTS di Papan Desa
type: promotional
schedule:
  start: 2026-11-01 09:00
audience: {include: [{all: true}]}
products: {opt_in: required}
offer: {kind: new_product, title: Produk Baru UMKM}
channels:
  kentongan: {template: social/promo.j2, per: product}
"""


class FakeBoard(FakeHTTPServer):
    """The desa notice board the plugin posts to."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def handle(self, request: Recorded) -> Reply:
        if request.method == "POST" and request.path == "/announcements":
            if request.bearer != "token-papan-soe":
                return Reply(401, {"error": "unauthorized"})
            return Reply(201, {"id": f"ann-{next(self._ids)}"})
        return Reply(404, {"error": "not found"})


@pytest.fixture
def board() -> Iterator[FakeBoard]:
    server = FakeBoard()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def install_plugin(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``pip install umkm-kentongan`` leaves behind: code plus its dist-info."""
    dist = site / "umkm_kentongan-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: umkm-kentongan\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[umkm.channels]\nkentongan = umkm_kentongan:KentonganChannel\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGINS))
    clear_registry_cache()


@pytest.fixture
def campaign_file(tmp_path: Path) -> Path:
    path = tmp_path / "pengumuman.yaml"
    path.write_text(CAMPAIGN)
    return path


def test_unknown_channel_is_rejected_until_its_plugin_is_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, campaign_file: Path) -> None:
    with pytest.raises(CampaignValidationError) as refused:
        load_campaign(campaign_file)
    assert "kentongan" in str(refused.value)

    install_plugin(tmp_path / "site", monkeypatch)

    assert "kentongan" in available_channels()
    assert get_adapter_class("kentongan").__module__ == "umkm_kentongan"
    spec = load_campaign(campaign_file).to_storage()
    assert spec["channels"]["kentongan"] == {"account": "dinas", "template": "social/promo.j2",
                                             "per": "product"}
    clear_registry_cache()


def test_plugin_channel_posts_a_campaign_through_the_engine(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        campaign_file: Path, board: FakeBoard) -> None:
    install_plugin(tmp_path / "site", monkeypatch)
    monkeypatch.setenv("SOCIAL_MODE", "live")
    monkeypatch.setenv("BASE_URL", "https://umkm.ttskab.go.id")  # photos must be public
    reset_settings()
    reset_process_state()
    live = get_settings()
    with session_factory(live)() as db:
        shop = make_business(db, name="Tenun Ikat Nunkolo")
        other = make_business(db, name="Madu Hutan Fatumnasi")
        products = [make_product(db, shop, name="Selendang Buna"),
                    make_product(db, other, name="Madu Hutan 500 ml",
                                 category="makanan_olahan")]
        for product in products:
            make_optin(db, product, "pengumuman-desa-tenun")
        accounts.connect(db, platform="kentongan", external_id="papan-soe",
                         name="Papan Desa SoE", access_token="token-papan-soe",
                         meta={"endpoint": board.url})
        db.commit()
        spec = load_campaign(campaign_file)
        run = scheduler.launch(db, spec, None, now=NOW).run
        assert run is not None

        summary = run_in_process(run.id, live, NOW)

        assert summary.sent == 2
        texts = [r.json()["text"] for r in board.calls("/announcements")]
        assert len(texts) == 2
        assert any("Selendang Buna" in t for t in texts)
        assert any("Madu Hutan 500 ml" in t for t in texts)
        rows = db.scalars(select(Delivery).where(Delivery.run_id == run.id)).all()
        assert {(d.channel, d.status.value) for d in rows} == {("kentongan", "sent")}
        posts = db.scalars(select(SocialPost).where(SocialPost.platform == "kentongan")).all()
        assert {(p.product_id, p.business_id) for p in posts} == {
            (p.id, p.business_id) for p in products}
        assert {p.provider_post_id for p in posts} == {"ann-1", "ann-2"}
    reset_process_state()
    clear_registry_cache()
