"""Tracking tokens (/t/o, /t/c, /u), UTM tagging and tracked-link registries."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.config import Settings, reset_settings
from engine.db import session_factory
from engine.engagement.tracking import (
    DbLinkRegistry,
    InMemoryLinkRegistry,
    InvalidToken,
    PreviewTracker,
    RunTracker,
    _verified,
    add_utm,
    make_click_token,
    make_open_token,
    make_unsubscribe_token,
    parse_token,
    url_hash,
)
from engine.message.render import compile_email, render_email
from engine.message.templating import sample_context
from engine.models import Business, Campaign, CampaignRun, Product, TrackedLink

BASE = "https://umkm.ttskab.go.id"
UTM = {"source": "dinas-tts", "medium": "email", "campaign": "promo-tenun"}


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SECRET_KEY", "tracking-test-secret-0123456789abcdef")
    reset_settings()
    yield
    reset_settings()


def test_tokens_round_trip(secret: None) -> None:
    click = parse_token(make_click_token(123456789012, 42), "click")
    assert (click.kind, click.delivery_id, click.link_id) == ("click", 123456789012, 42)
    assert parse_token(make_open_token(7), "open").delivery_id == 7
    by_delivery = parse_token(make_unsubscribe_token(99), "unsubscribe")
    assert (by_delivery.delivery_id, by_delivery.customer_id) == (99, None)
    by_customer = parse_token(make_unsubscribe_token(customer_id=5, channel="whatsapp"),
                              "unsubscribe")
    assert (by_customer.customer_id, by_customer.channel, by_customer.delivery_id) == (
        5, "whatsapp", None)


def test_tokens_are_compact_and_url_safe(secret: None) -> None:
    token = make_click_token(2**40, 2**20)
    assert len(token) <= 48
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")


def test_every_single_character_change_is_refused(secret: None) -> None:
    token = make_click_token(1001, 3)
    for position in range(len(token)):
        for replacement in {"A", "b", "-", "_", "9"} - {token[position]}:
            tampered = token[:position] + replacement + token[position + 1:]
            with pytest.raises(InvalidToken):
                parse_token(tampered, "click")


def test_truncated_or_extended_tokens_are_refused(secret: None) -> None:
    token = make_open_token(555)
    for cut in range(len(token)):
        with pytest.raises(InvalidToken):
            parse_token(token[:cut], "open")
    for suffix in ("A", "AA", "=", "==", " ", "\n"):
        with pytest.raises(InvalidToken):
            parse_token(token + suffix, "open")


def test_a_token_of_another_kind_is_refused(secret: None) -> None:
    open_token = make_open_token(555)
    unsubscribe_token = make_unsubscribe_token(555)  # same body bytes, other kind
    with pytest.raises(InvalidToken):
        parse_token(open_token, "unsubscribe")
    with pytest.raises(InvalidToken):
        parse_token(unsubscribe_token, "open")
    with pytest.raises(InvalidToken):
        parse_token(make_click_token(555, 1), "open")
    with pytest.raises(InvalidToken):
        parse_token(open_token, "pixel")  # type: ignore[arg-type]


def test_a_token_signed_with_another_key_is_refused(
    secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_click_token(1, 1)
    monkeypatch.setenv("SECRET_KEY", "another-installation-secret-key-000")
    reset_settings()
    with pytest.raises(InvalidToken):
        parse_token(token, "click")


def test_a_remembered_token_is_refused_once_the_key_changed(
    secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_open_token(77)
    assert parse_token(token, "open").delivery_id == 77  # verified, now remembered
    assert parse_token(token, "open").delivery_id == 77
    monkeypatch.setenv("SECRET_KEY", "another-installation-secret-key-000")
    reset_settings()
    with pytest.raises(InvalidToken):
        parse_token(token, "open")


def test_refused_tokens_are_never_remembered(secret: None) -> None:
    good = make_open_token(78)
    before = _verified.cache_info().currsize
    for index in range(len(good)):
        forged = good[:index] + ("A" if good[index] != "A" else "B") + good[index + 1:]
        with pytest.raises(InvalidToken):
            parse_token(forged, "open")
    with pytest.raises(InvalidToken):
        parse_token(good, "click")  # right signature, wrong kind: refused every time
    with pytest.raises(InvalidToken):
        parse_token(good, "click")
    assert _verified.cache_info().currsize == before


def test_garbage_only_ever_raises_invalid_token(secret: None) -> None:
    rng = random.Random(20261201)
    alphabet = string.printable + "äöü–€😀\x00\udcff"
    samples = ["", "=", "====", "A" * 500, "\x00" * 30, "é" * 44, "t/c/abc", "%2F%2F"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
                for _ in range(300)]
    samples += ["".join(rng.choice(string.ascii_letters + string.digits + "-_")
                        for _ in range(rng.choice([24, 44, 46, 48])))
                for _ in range(300)]
    for sample in samples:
        for kind in ("click", "open", "unsubscribe"):
            with pytest.raises(InvalidToken):
                parse_token(sample, kind)


def test_token_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        make_click_token(-1, 1)
    with pytest.raises(ValueError):
        make_unsubscribe_token()
    with pytest.raises(ValueError):
        make_unsubscribe_token(1, customer_id=2, channel="email")


def test_add_utm_keeps_existing_query_and_fragment() -> None:
    tagged = add_utm("https://umkm.ttskab.go.id/produk/1?warna=merah&ukuran=L#ulasan",
                     {**UTM, "utm_content": "produk-1"})
    parts = urlsplit(tagged)
    query = parse_qs(parts.query)
    assert query == {"warna": ["merah"], "ukuran": ["L"], "utm_source": ["dinas-tts"],
                     "utm_medium": ["email"], "utm_campaign": ["promo-tenun"],
                     "utm_content": ["produk-1"]}
    assert parts.fragment == "ulasan"
    assert tagged.index("warna") < tagged.index("utm_source")  # author's order kept


def test_add_utm_respects_author_values_and_other_schemes() -> None:
    tagged = add_utm("https://x.id/?utm_source=poster", UTM)
    assert parse_qs(urlsplit(tagged).query)["utm_source"] == ["poster"]
    assert add_utm("mailto:pemasaran@umkm.ttskab.go.id", UTM) == (
        "mailto:pemasaran@umkm.ttskab.go.id")
    assert add_utm("https://x.id/a", {"source": "", "medium": None}) == "https://x.id/a"


def test_run_tracker_creates_each_link_once_and_signs_per_delivery(secret: None) -> None:
    registry = InMemoryLinkRegistry()
    run = RunTracker(registry, BASE, UTM)
    product = {"id": 7, "business": {"id": 3}}
    first = run.for_delivery(1).track("https://umkm.ttskab.go.id/produk/7", product=product)
    second = run.for_delivery(2).track("https://umkm.ttskab.go.id/produk/7", product=product)
    assert first != second and first.startswith(f"{BASE}/t/c/")
    assert len(registry.links) == 1
    link_id, target, product_id, business_id, _ = next(iter(registry.links.values()))
    assert (product_id, business_id) == (7, 3)
    assert parse_qs(urlsplit(target).query)["utm_content"] == ["produk-7"]
    token = parse_token(second.rsplit("/", 1)[1], "click")
    assert (token.delivery_id, token.link_id) == (2, link_id)
    # mailto and tel links are left alone
    assert run.for_delivery(1).track("mailto:a@b.id") == "mailto:a@b.id"


def test_preview_tracker_needs_no_key_or_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    tracker = PreviewTracker(UTM)
    url = tracker.track("https://x.id/p/1", product={"id": 1})
    assert parse_qs(urlsplit(url).query)["utm_content"] == ["produk-1"]
    assert tracker.open_pixel() == ""


def _run_with_product(session: Session) -> tuple[int, int, int]:
    from engine.common import crypto

    business = Business(name="Tenun Ikat Ina Lopo", nib="1234567890123", owner_name="Ina",
                        owner_nik_enc=crypto.encrypt("5302014107920001", purpose="nik"),
                        owner_nik_digest=crypto.digest("5302014107920001"),
                        owner_nik_masked="5302**********01", kecamatan_code="53.02.05")
    session.add(business)
    session.flush()
    product = Product(business_id=business.id, name="Selendang", category="kerajinan_tangan",
                      price=350000)
    campaign = Campaign(key="promo-tenun", name="Promo", type="promotional", spec={},
                        spec_hash="0" * 64)
    session.add_all([product, campaign])
    session.flush()
    run = CampaignRun(campaign_id=campaign.id)
    session.add(run)
    session.commit()
    return run.id, product.id, business.id


def test_db_registry_inserts_each_link_once_across_workers(
    settings: Settings, db: Session
) -> None:
    run_id, product_id, business_id = _run_with_product(db)
    sessions = session_factory(settings)
    worker_a = DbLinkRegistry(sessions, run_id)
    worker_b = DbLinkRegistry(sessions, run_id)
    url = "https://umkm.ttskab.go.id/produk/1?utm_source=dinas-tts"
    first = worker_a.link_id(url, product_id, business_id)
    assert worker_a.link_id(url, product_id, business_id) == first
    assert worker_b.link_id(url, product_id, business_id) == first  # reads, no duplicate
    other = worker_b.link_id("https://umkm.ttskab.go.id/pelatihan", None, None, "pelatihan")
    assert other != first
    rows = db.execute(select(TrackedLink).where(TrackedLink.run_id == run_id)).scalars().all()
    assert len(rows) == 2
    row = next(r for r in rows if r.id == first)
    assert (row.url, row.url_hash, row.product_id, row.business_id) == (
        url, url_hash(url), product_id, business_id)
    assert DbLinkRegistry(sessions, run_id).preload() == 2


def test_rendered_email_links_resolve_to_products_in_the_database(
    settings: Settings, db: Session
) -> None:
    run_id, product_id, business_id = _run_with_product(db)
    run = RunTracker(DbLinkRegistry(session_factory(settings), run_id), BASE, UTM)
    context = sample_context("promotional")
    context["products"] = [{**context["products"][0], "id": product_id, "marketplaces": [],
                            "business": {**context["products"][0]["business"],
                                         "id": business_id}}]
    compiled = compile_email("email/promotional.mjml", "Halo {{ customer.first_name }}")
    email = render_email(compiled, context, run.for_delivery(77))
    email_again = render_email(compiled, context, run.for_delivery(78))
    assert email.html != email_again.html  # tokens differ per delivery
    count = db.execute(select(func.count()).select_from(TrackedLink)).scalar_one()
    assert count == 1  # image, title, button and text part share one link row
    token = email.text.split(f"{BASE}/t/c/", 1)[1].split()[0]
    assert f"{BASE}/t/c/{token}" in email.html
    parsed = parse_token(token, "click")
    link = db.get(TrackedLink, parsed.link_id)
    assert parsed.delivery_id == 77 and link is not None
    assert (link.product_id, link.business_id) == (product_id, business_id)
    query = parse_qs(urlsplit(link.url).query)
    assert query["utm_source"] == ["dinas-tts"] and query["utm_campaign"] == ["promo-tenun"]
    assert f"{BASE}/t/o/" in email.html  # open pixel


# Issued by the code of main at 883dfc3 under this key (before the click tokens of a
# recipient shared their packed prefix): mail already sent carries these, and they must
# keep verifying, byte for byte the tokens the tracker makes now.
GOLDEN_KEY = "golden-token-test-secret-key-0123456789"
GOLDEN_CLICK = "AQAAAAAAAeJAAAAAAAAAACrjc1SYlc6IQ_2-MVEZXoo8"  # delivery 123456, link 42
GOLDEN_OPEN = "AgAAAAAAAeJAZlJci1L_gqiEKwmtP4Fe9Q"
GOLDEN_UNSUBSCRIBE = "AwAAAAAAAeJA_coPXndWgDURPKTPAeuV4g"


def test_tokens_issued_before_still_verify_and_are_made_the_same(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_KEY", GOLDEN_KEY)
    reset_settings()
    try:
        click = parse_token(GOLDEN_CLICK, "click")
        assert (click.delivery_id, click.link_id) == (123456, 42)
        assert parse_token(GOLDEN_OPEN, "open").delivery_id == 123456
        assert parse_token(GOLDEN_UNSUBSCRIBE, "unsubscribe").delivery_id == 123456

        class FixedLinks:
            def link_id(self, url: str, product_id: int | None, business_id: int | None,
                        label: str | None = None) -> int:
                return 42

        tracker = RunTracker(FixedLinks(), BASE, UTM).for_delivery(123456)
        assert tracker.track("https://umkm.ttskab.go.id/produk/7") == f"{BASE}/t/c/{GOLDEN_CLICK}"
        assert tracker.unsubscribe_url() == f"{BASE}/u/{GOLDEN_UNSUBSCRIBE}"
        assert GOLDEN_OPEN in tracker.open_pixel()
    finally:
        reset_settings()


def test_each_link_of_a_recipient_gets_its_own_token(secret: None) -> None:
    """The recipient's packed prefix is shared; the link id still goes under the MAC."""
    run = RunTracker(InMemoryLinkRegistry(), BASE, UTM)
    tracker = run.for_delivery(9)
    urls = [f"https://umkm.ttskab.go.id/produk/{n}" for n in range(1, 6)]
    tokens = [str(tracker.track(url, product={"id": n})).rsplit("/", 1)[1]
              for n, url in enumerate(urls, 1)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        data = parse_token(token, "click")
        assert data.delivery_id == 9
        assert token == make_click_token(9, int(data.link_id or 0))
