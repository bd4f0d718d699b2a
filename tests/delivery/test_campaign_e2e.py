"""Acceptance of issue 3: real campaigns of all five email types, end to end.

YAML -> launch / beat tick -> outbox -> render -> MIME -> DKIM -> SMTP on loopback
(aiosmtpd), then every received message is parsed with the standard library and
checked the way a recipient, a mailbox provider and the Dinas would look at it.
The clock is :data:`tests.factories.NOW` (Selasa, 1 Desember 2026, 09.00 WITA) and is
handed to every engine call, so nothing depends on the wall clock.
"""

from __future__ import annotations

import base64
import email
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.campaign.schema import CampaignSpec
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import beat, scheduler
from engine.delivery.context import reset_process_state
from engine.delivery.enqueue import run_in_process
from engine.delivery.pipeline import process_batch
from engine.engagement.tracking import parse_token
from engine.models import (
    CampaignRun,
    Customer,
    Delivery,
    DeliveryProduct,
    OrderEvent,
    OrderStatus,
    Product,
    RunStatus,
)
from tests.factories import (
    NOW,
    make_business,
    make_campaign,
    make_consent,
    make_customer,
    make_delivery,
    make_optin,
    make_order,
    make_product,
    make_run,
    make_suppression,
)
from tests.smtp_server import ReceivedMessage, Rule, ScriptedSMTPServer

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "umkm.ttskab.go.id"
SELECTOR = "umkm2026"
BASE_URL = "https://umkm.ttskab.go.id"
UNSUBSCRIBE = re.compile(r"^<(https?://[^>\s]+/u/([A-Za-z0-9_-]+))>$")
PRODUCT_LINE = re.compile(r"^\* (.+) - (Rp [0-9.]+)$", re.MULTILINE)


# ----------------------------------------------------------------------------- fixtures
@dataclass(frozen=True)
class DkimKey:
    path: Path
    dns_record: bytes


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    """One RSA-2048 key for the module (generating one costs ~100 ms)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der))


@dataclass
class Mail:
    """The wired-up world of one test: settings, a database session, the SMTP server."""

    settings: Settings
    db: Session
    server: ScriptedSMTPServer
    dkim: DkimKey
    tmp: Path

    def campaign(self, source: str | Path) -> CampaignSpec:
        """A validated campaign (a repo file or YAML text), as `campaign validate` reads it."""
        text = source.read_text() if isinstance(source, Path) else source
        path = self.tmp / f"campaign-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
        path.write_text(text)
        return load_campaign(path)

    def deliveries(self, run_id: int, channel: str = "email") -> dict[str, Delivery]:
        self.db.expire_all()
        rows = self.db.scalars(select(Delivery).where(Delivery.run_id == run_id,
                                                      Delivery.channel == channel))
        return {d.recipient: d for d in rows}

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return self.dkim.dns_record


@pytest.fixture
def mail(settings: Settings, smtp_server: ScriptedSMTPServer, dkim_key: DkimKey,
         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Mail]:
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("DKIM_KEY_PATH", str(dkim_key.path))
    monkeypatch.setenv("DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("DKIM_DOMAIN", DOMAIN)
    monkeypatch.setenv("BASE_URL", BASE_URL)
    reset_settings()
    reset_process_state()
    wired = get_settings()
    session = session_factory(wired)()
    try:
        yield Mail(wired, session, smtp_server, dkim_key, tmp_path)
    finally:
        session.close()
        reset_process_state()


# ----------------------------------------------------------------------------- helpers
def tick(mail: Mail, now: datetime) -> dict[str, int]:
    """Every beat job once at ``now`` and the batches they hand out, processed in this
    process; the count of each job by name."""
    reports = beat.run_all(mail.settings, now)
    for batch in beat.batches_of(reports):
        process_batch(batch.run_id, batch.delivery_ids, mail.settings, now)
    return {name: report.count for name, report in reports.items()}


def parse(received: ReceivedMessage) -> EmailMessage:
    parsed = email.message_from_bytes(received.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    # Received over SMTP the lines end in CRLF, which the parser keeps in the content.
    return (str(text.get_content()).replace("\r\n", "\n"),
            str(html.get_content()).replace("\r\n", "\n"))


def check_dkim(mail: Mail, received: ReceivedMessage) -> None:
    """dkimpy accepts the OpenSSL signature; h= covers both one-click headers and From."""
    assert dkim.verify(received.data, dnsfunc=mail.dns), "DKIM signature does not verify"
    signature = str(parse(received)["DKIM-Signature"])
    tags = dict(t.strip().split("=", 1) for t in re.sub(r"\s+", "", signature).split(";") if t)
    signed = tags["h"].lower().split(":")
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed)
    assert tags["d"] == DOMAIN and tags["s"] == SELECTOR


def check_marketing(mail: Mail, received: ReceivedMessage, delivery: Delivery) -> None:
    """RFC 8058 one-click headers, a visible unsubscribe link and a valid DKIM signature."""
    message = parse(received)
    header = str(message["List-Unsubscribe"])
    found = UNSUBSCRIBE.match(header)
    assert found, header
    url, token = found.groups()
    assert url.startswith(BASE_URL + "/u/")
    assert parse_token(token, "unsubscribe").delivery_id == delivery.id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(message)
    assert f"Berhenti berlangganan: {url}" in text
    assert f'<a href="{url}">Berhenti berlangganan</a>' in html
    assert message["Message-ID"] == delivery.message_id
    check_dkim(mail, received)


def by_recipient(server: ScriptedSMTPServer) -> dict[str, ReceivedMessage]:
    received: dict[str, ReceivedMessage] = {}
    for message in server.messages:
        (rcpt,) = message.rcpt_tos
        assert rcpt not in received, f"{rcpt} received twice"
        received[rcpt] = message
    return received


def products_in(text: str) -> dict[str, str]:
    """``{product name: price}`` of the product list of a text part."""
    return dict(PRODUCT_LINE.findall(text))


def attribution(db: Session, delivery_id: int) -> set[tuple[int, int]]:
    return set(db.execute(select(DeliveryProduct.product_id, DeliveryProduct.business_id)
                          .where(DeliveryProduct.delivery_id == delivery_id)).tuples())


def capped(db: Session, customer: Customer, kind: str, sends: int = 2) -> None:
    """``sends`` sent mails of ``kind`` campaigns to ``customer`` in the last 7 days."""
    for n in range(sends):
        run = make_run(db, make_campaign(db, type=kind))
        make_delivery(db, run, customer, at=NOW - timedelta(days=1 + n))


# ----------------------------------------------------------------------------- promotional
PROMO = REPO / "campaigns" / "promo-tenun-akhir-tahun-2026.yaml"
PROMO_ID = "promo-tenun-akhir-tahun-2026"


def test_promotional_campaign_reaches_exactly_its_audience(mail: Mail) -> None:
    db = mail.db
    shop = make_business(db, name="Tenun Ikat Nunkolo")
    not_eligible = make_business(db, name="Usaha Belum Layak", eligible=False)
    kain = make_product(db, shop, name="Kain Tenun Buna", price=150_000)
    selendang = make_product(db, shop, name="Selendang Futus", price=85_000)
    sarung = make_product(db, shop, name="Sarung Lotis", price=1_250_000)
    tas = make_product(db, shop, name="Tas Anyaman Lontar", price=60_000)  # not opted in
    topi = make_product(db, not_eligible, name="Topi Ti'i Langga", price=75_000)
    keripik = make_product(db, shop, name="Keripik Pisang", category="makanan_olahan",
                           price=20_000)
    for product in (kain, selendang, sarung, topi, keripik):
        make_optin(db, product, PROMO_ID)

    def buyer(name: str, product: Product = tas, *, consent: bool | None = True,
              days_ago: int = 30, **kw: Any) -> Customer:
        customer = make_customer(db, name=name, marketing=consent,
                                 at=NOW - timedelta(days=90), **kw)
        make_order(db, customer, [product], at=NOW - timedelta(days=days_ago))
        return customer

    yohanes = buyer("Yohanes Tefa", kain)
    maria = buyer("Maria Benu")
    zoe = buyer("Zoë Nubatonis", selendang)
    retry = buyer("Agustinus Selan")
    bounce = buyer("Benediktus Liu")
    tx_heavy = buyer("Kornelis Nope")
    capped(db, tx_heavy, "transactional")  # transactional mail never counts for the cap
    withdrawn = buyer("Wilhelmina Boimau")
    make_consent(db, withdrawn, granted=False, at=NOW - timedelta(days=1))
    no_consent = buyer("Natan Sole", consent=None)
    suppressed = buyer("Sefa Tse")
    make_suppression(db, suppressed.email or "")
    heavy = buyer("Frengki Taek")
    capped(db, heavy, "promotional")
    recent = buyer("Ribka Lakapu", days_ago=3)  # excluded: bought within 7 days
    food_only = buyer("Fransiska Oematan", keripik)  # no handicraft purchase
    late = buyer("Lukas Tanesib")  # withdraws after planning, before sending
    db.commit()
    mail.server.script[retry.email or ""] = Rule("451 4.7.1 coba lagi nanti", times=1)
    mail.server.script[bounce.email or ""] = "550 5.1.1 mailbox tidak ada"

    spec = mail.campaign(PROMO)
    result = scheduler.launch(db, spec, str(PROMO), now=NOW)
    assert result.created and result.run is not None
    run_id = result.run.id
    planned = set(mail.deliveries(run_id))
    expected = {c.email for c in (yohanes, maria, zoe, retry, bounce, tx_heavy, late)}
    assert planned == expected
    assert not planned & {c.email for c in (withdrawn, no_consent, suppressed, heavy, recent,
                                            food_only)}
    make_consent(db, late, granted=False, at=NOW)
    db.commit()

    social_posts = db.scalars(select(Delivery).where(Delivery.run_id == run_id,
                                                     Delivery.channel != "email")).all()
    assert {d.channel for d in social_posts} == {"facebook", "instagram", "tiktok", "whatsapp"}
    first = run_in_process(run_id, mail.settings, NOW)
    # every email outcome, plus the social posts written to the sandbox outbox
    assert (first.sent, first.retried, first.failed, first.skipped) == (
        4 + len(social_posts), 1, 1, 1)
    rows = mail.deliveries(run_id)
    waiting = rows[retry.email or ""]
    assert waiting.status.value == "pending" and waiting.next_attempt_at is not None
    assert waiting.error and waiting.error.startswith("451")
    first_message_id = waiting.message_id
    assert first_message_id and first_message_id.startswith("<") and DOMAIN in first_message_id
    failed = rows[bounce.email or ""]
    assert failed.status.value == "failed" and failed.error and "550 5.1.1" in failed.error
    assert rows[late.email or ""].status.value == "skipped"
    assert rows[late.email or ""].error == "consent_withdrawn"
    assert (retry.email, "451 4.7.1 coba lagi nanti") in mail.server.attempts

    # Not due yet: nothing happens; once next_attempt_at has passed, it is delivered.
    assert run_in_process(run_id, mail.settings, NOW).claimed == 0
    later = NOW + timedelta(hours=1)
    second = run_in_process(run_id, mail.settings, later)
    assert (second.sent, second.failed) == (1, 0)
    assert run_in_process(run_id, mail.settings, later).claimed == 0  # sent once

    received = by_recipient(mail.server)
    assert set(received) == {c.email for c in (yohanes, maria, zoe, retry, tx_heavy)}
    assert received[retry.email or ""].message_id == first_message_id
    rows = mail.deliveries(run_id)
    assert {r for r, d in rows.items() if d.status.value == "sent"} == set(received)
    assert db.get(CampaignRun, run_id).status == RunStatus.finished  # type: ignore[union-attr]

    catalog = {kain.name: "Rp 150.000", selendang.name: "Rp 85.000",
               sarung.name: "Rp 1.250.000"}
    bought = {yohanes.email: kain.name, zoe.email: selendang.name}
    for customer in (yohanes, maria, zoe, retry, tx_heavy):
        address = customer.email or ""
        delivery = rows[address]
        message = parse(received[address])
        check_marketing(mail, received[address], delivery)
        first_name = customer.name.split()[0]
        assert message["Subject"] in (f"{first_name}, diskon 15% tenun ikat TTS",
                                      f"Tenun ikat pilihan untuk {first_name}")
        assert delivery.variant == ("A" if "diskon" in message["Subject"] else "B")
        assert message["To"].addresses[0].display_name == customer.name
        assert message["From"].addresses[0].addr_spec == "pemasaran@umkm.ttskab.go.id"
        text, html = parts(message)
        assert f"Halo {first_name}," in text and f"Halo {first_name}," in html
        assert "Berlaku sampai Kamis, 31 Desember 2026" in text
        assert "TENUN15" in text and "TENUN15" in html
        expected_products = {n: p for n, p in catalog.items() if n != bought.get(address)}
        assert products_in(text) == expected_products, text
        for name, price in expected_products.items():
            assert name in html and price in html
        assert attribution(db, delivery.id) == {
            (p.id, shop.id) for p in (kain, selendang, sarung) if p.name in expected_products}
        assert delivery.business_id == shop.id
    assert "=?utf-8?" in received[zoe.email or ""].data.split(b"\r\n\r\n")[0].decode().lower()


# ----------------------------------------------------------------------------- personalized
PERSONALIZED = """\
version: 1
id: pilihan-desember
name: Pilihan Desember Untuk Anda
type: personalized
schedule:
  start: 2026-11-30 08:00
audience:
  include: [{consent: marketing}, {purchased_within_days: 365}]
  frequency_cap: {max: 2, per_days: 7}
products: {opt_in: required, per_message: 4}
channels:
  email:
    template: email/personalized.mjml
    subject: "{{ customer.first_name }}, {{ products[0].name }} dan pilihan lain untuk Anda"
tracking: {utm: {source: dinas-tts, medium: email, campaign: "{{ campaign.id }}"}}
"""


def test_personalized_recommendations_respect_history_opt_in_and_eligibility(
    mail: Mail,
) -> None:
    db = mail.db
    tenun = make_business(db, name="Tenun Ina Lopo", kecamatan_code="53.02.17")
    pangan = make_business(db, name="Dapur Mollo", kecamatan_code="53.02.03")
    closed = make_business(db, name="Usaha Tidak Layak", eligible=False)
    kain = make_product(db, tenun, name="Kain Buna", price=150_000)
    selendang = make_product(db, tenun, name="Selendang Amanuban", price=350_000)
    madu = make_product(db, pangan, name="Madu Hutan Mollo", category="makanan_olahan",
                        price=120_000)
    sei = make_product(db, pangan, name="Se'i Sapi Asap", category="makanan_olahan",
                       price=95_000)
    habis = make_product(db, pangan, name="Jagung Bose", category="makanan_olahan",
                         in_stock=False)
    ditarik = make_product(db, pangan, name="Kopi Fatumnasi", category="makanan_olahan")
    tanpa_optin = make_product(db, tenun, name="Tas Lontar")
    dari_tidak_layak = make_product(db, closed, name="Topi Ti'i Langga")
    for product in (kain, selendang, madu, sei, habis, dari_tidak_layak):
        make_optin(db, product, "pilihan-desember")
    make_optin(db, ditarik, "pilihan-desember", withdrawn_at=NOW - timedelta(days=1))

    loyal = make_customer(db, name="Yakobus Nenobais", marketing=True,
                          preferences={"categories": ["makanan_olahan"]})
    make_order(db, loyal, [madu, tanpa_optin], at=NOW - timedelta(days=40))
    make_order(db, loyal, [kain], at=NOW - timedelta(days=20))
    newcomer = make_customer(db, name="Debora Missa", marketing=True)
    make_order(db, newcomer, [tanpa_optin], at=NOW - timedelta(days=10))
    heavy = make_customer(db, name="Piter Nomleni", marketing=True)
    make_order(db, heavy, [tanpa_optin], at=NOW - timedelta(days=10))
    capped(db, heavy, "newsletter")
    db.commit()

    spec = mail.campaign(PERSONALIZED)
    result = scheduler.launch(db, spec, None, now=NOW)
    assert result.run is not None
    summary = run_in_process(result.run.id, mail.settings, NOW)
    assert (summary.sent, summary.failed, summary.skipped) == (2, 0, 0)

    received = by_recipient(mail.server)
    assert set(received) == {loyal.email, newcomer.email}
    rows = mail.deliveries(result.run.id)
    offered = {selendang.name: "Rp 350.000", sei.name: "Rp 95.000",
               kain.name: "Rp 150.000", madu.name: "Rp 120.000"}
    expectations = {
        # bought Kain and Madu: only the two other eligible, opted-in, in-stock products;
        # the stated preference (food) puts Se'i first.
        loyal: [sei.name, selendang.name],
        newcomer: None,  # no history in the catalog: the whole catalog, any order
    }
    for customer, first_picks in expectations.items():
        address = customer.email or ""
        delivery = rows[address]
        check_marketing(mail, received[address], delivery)
        message = parse(received[address])
        text, html = parts(message)
        shown = products_in(text)
        first_name = customer.name.split()[0]
        assert f"Pilihan untuk {first_name}" in text
        if first_picks is None:
            assert shown == offered
        else:
            assert list(shown) == first_picks
            assert shown == {n: offered[n] for n in first_picks}
        top = next(iter(shown))
        assert message["Subject"] == f"{first_name}, {top} dan pilihan lain untuk Anda"
        for leaked in (habis, ditarik, tanpa_optin, dari_tidak_layak):
            assert leaked.name not in text and leaked.name not in html
        product_ids = {p.id: p for p in (kain, selendang, madu, sei)}
        attributed = attribution(db, delivery.id)
        assert {product_ids[pid].name for pid, _ in attributed} == set(shown)
        assert {bid for _, bid in attributed} == {
            product_ids[pid].business_id for pid, _ in attributed}
    assert {bid for _, bid in attribution(db, rows[newcomer.email or ""].id)} == {
        tenun.id, pangan.id}


# ----------------------------------------------------------------------------- newsletter
NEWSLETTER = """\
version: 1
id: kabar-harian-uji
name: Kabar UMKM TTS
type: newsletter
schedule:
  start: 2026-11-01 00:00
  cron: "0 9 * * *"
audience:
  include: [{consent: marketing}]
  frequency_cap: {max: 4, per_days: 7}
products: {opt_in: required, per_message: 2}
content:
  articles:
    - title: Cara memotret produk dengan ponsel
      summary: Lima langkah foto produk yang menjual.
      url: https://umkm.ttskab.go.id/edukasi/foto-produk
  trainings:
    - title: Pelatihan pemasaran digital
      date: 2026-12-10 09:00
      place: Aula Dinas, SoE
      url: https://umkm.ttskab.go.id/pelatihan/pemasaran-digital
channels:
  email:
    template: email/newsletter.mjml
    subject: "Kabar UMKM TTS: {{ articles[0].title }}"
    variants: [{name: B, subject: "{{ customer.first_name }}, agenda pelatihan Dinas"}]
tracking: {utm: {source: dinas-tts, medium: email, campaign: "{{ campaign.id }}"}}
"""


def test_recurring_newsletter_sends_each_occurrence_with_stable_ab_split(mail: Mail) -> None:
    db = mail.db
    shop = make_business(db, name="Tenun Ikat Nunkolo")
    kain = make_product(db, shop, name="Kain Tenun Buna", price=150_000)
    make_optin(db, kain, "kabar-harian-uji")
    readers = [make_customer(db, name=f"Pembaca{n} Manu", marketing=True) for n in range(40)]
    make_customer(db, name="Tanpa Izin")  # no consent: never mailed
    db.commit()

    spec = mail.campaign(NEWSLETTER)
    assert scheduler.launch(db, spec, None, now=NOW).activated_only

    before = tick(mail, NOW - timedelta(hours=1))  # 08.00 WITA: no occurrence yet today
    assert before["recurring_runs"] == 0 and not mail.server.messages
    first = tick(mail, NOW + timedelta(minutes=5))
    assert first["recurring_runs"] == 1
    assert tick(mail, NOW + timedelta(minutes=10))["recurring_runs"] == 0  # same occurrence
    second = tick(mail, NOW + timedelta(days=1, minutes=5))
    assert second["recurring_runs"] == 1

    runs = list(db.scalars(select(CampaignRun).order_by(CampaignRun.id)))
    assert [r.trigger_key for r in runs] == ["cron:2026-12-01T01:00", "cron:2026-12-02T01:00"]
    addresses = {c.email for c in readers}
    counts = Counter(m.rcpt_tos[0] for m in mail.server.messages)
    assert set(counts) == addresses and set(counts.values()) == {2}

    variants: list[dict[str, str | None]] = []
    for run in runs:
        rows = mail.deliveries(run.id)
        assert set(rows) == addresses
        variants.append({r: d.variant for r, d in rows.items()})
    assert variants[0] == variants[1]  # same recipient -> same variant, every run
    assert set(Counter(variants[0].values())) == {"A", "B"}

    first_run = mail.deliveries(runs[0].id)
    for received in mail.server.messages[:40]:
        address = received.rcpt_tos[0]
        delivery = first_run[address]
        check_marketing(mail, received, delivery)
        message = parse(received)
        first_name = next(c.name.split()[0] for c in readers if c.email == address)
        expected = ("Kabar UMKM TTS: Cara memotret produk dengan ponsel"
                    if delivery.variant == "A" else f"{first_name}, agenda pelatihan Dinas")
        assert message["Subject"] == expected
        text, html = parts(message)
        assert "Kamis, 10 Desember 2026, pukul 09.00 WITA" in text
        assert "Cara memotret produk dengan ponsel" in html
        assert products_in(text) == {"Kain Tenun Buna": "Rp 150.000"}
        assert f"{BASE_URL}/t/c/" in html and f"{BASE_URL}/t/o/" in html


# ----------------------------------------------------------------------------- retention
RETENTION = REPO / "campaigns" / "retention-winback-90.yaml"


def test_retention_wins_back_once_per_cooldown_and_never_after_a_new_order(
    mail: Mail,
) -> None:
    db = mail.db
    shop = make_business(db, name="Tenun Ikat Nunkolo")
    kain = make_product(db, shop, name="Kain Tenun Buna", price=150_000)
    make_optin(db, kain, "retensi-winback-90")

    def customer(name: str, days_since_order: int | None, consent: bool = True) -> Customer:
        c = make_customer(db, name=name, marketing=consent, at=NOW - timedelta(days=200))
        if days_since_order is not None:
            make_order(db, c, [kain], at=NOW - timedelta(days=days_since_order))
        return c

    returns = customer("Ana Tanone", 91)  # N + 1 days: won back, then orders again
    stays = customer("Benyamin Tahun", 91)  # stays away: one mail per cooldown
    active = customer("Citra Nubatonis", 89)  # still active (N - 1 days)
    customer("Daniel Baun", None)  # never bought: nothing to win back
    customer("Elisabet Kase", 120, consent=False)
    db.commit()
    spec = mail.campaign(RETENTION)
    assert scheduler.launch(db, spec, str(RETENTION), now=NOW).activated_only

    tick(mail, NOW)
    received = by_recipient(mail.server)
    assert set(received) == {returns.email, stays.email}
    run = db.scalars(select(CampaignRun)).one()
    rows = mail.deliveries(run.id)
    for address, message in received.items():
        check_marketing(mail, message, rows[address])
        first_name = next(c.name.split()[0] for c in (returns, stays) if c.email == address)
        parsed = parse(message)
        assert parsed["Subject"] == (
            f"{first_name}, sudah 90 hari, ada yang baru dari UMKM TTS")
        text, _html = parts(parsed)
        assert "KEMBALI10" in text and "diskon 10%" in text
    assert active.email not in rows

    tick(mail, NOW + timedelta(days=1))  # inside the 60-day cooldown: nothing more
    assert len(mail.server.messages) == 2
    make_order(db, returns, [kain], at=NOW + timedelta(days=2))
    db.commit()
    # Cooldown over: Benyamin gets his second mail, Citra (now 150 days away) her
    # first; Ana bought again 59 days ago and gets nothing.
    tick(mail, NOW + timedelta(days=61))
    assert sorted(m.rcpt_tos[0] for m in mail.server.messages[2:]) == sorted(
        cast(list[str], [stays.email, active.email]))
    keys = [r.trigger_key for r in db.scalars(select(CampaignRun).order_by(CampaignRun.id))]
    assert keys == ["retention:2026-12-01", "retention:2026-12-02", "retention:2027-01-31"]


# ----------------------------------------------------------------------------- transactional
CONFIRMED = REPO / "campaigns" / "transactional-order-confirmed.yaml"


def test_order_event_sends_one_order_confirmation_with_lines_in_rupiah(mail: Mail) -> None:
    db = mail.db
    shop = make_business(db, name="Tenun Ikat Nunkolo", whatsapp="6281237001234")
    kain = make_product(db, shop, name="Kain Tenun Buna", price=150_000)
    selendang = make_product(db, shop, name="Selendang Futus", price=85_000)
    # No marketing consent and frequency-capped: order mail still goes out.
    buyer = make_customer(db, name="Maria Goreti Benu", marketing=False)
    capped(db, buyer, "promotional")
    order = make_order(db, buyer, [(kain, 2), selendang], at=NOW - timedelta(minutes=5))
    bounced = make_customer(db, name="Alamat Mati")
    make_suppression(db, bounced.email or "", reason="bounced")
    dead_order = make_order(db, bounced, [kain], at=NOW - timedelta(minutes=5))
    old_order = make_order(db, buyer, [selendang], at=NOW - timedelta(days=30))
    for o, kind, at in ((order, OrderStatus.confirmed, NOW),
                        (order, OrderStatus.shipped, NOW),  # no active shipping campaign
                        (dead_order, OrderStatus.confirmed, NOW),
                        (old_order, OrderStatus.confirmed, NOW - timedelta(days=30))):
        db.add(OrderEvent(order_id=o.id, kind=kind, occurred_at=at, source="api"))
    db.commit()
    spec = mail.campaign(CONFIRMED)
    assert scheduler.launch(db, spec, str(CONFIRMED), now=NOW).activated_only

    summary = tick(mail, NOW + timedelta(minutes=1))
    assert summary["order_triggers"] == 2  # the fresh confirmations; the old one is history
    assert tick(mail, NOW + timedelta(minutes=2))["order_triggers"] == 0  # processed once
    assert all(e.processed_at is not None for e in db.scalars(select(OrderEvent)))

    (received,) = mail.server.messages
    assert received.rcpt_tos == [buyer.email]
    skipped = db.scalars(select(Delivery).where(Delivery.recipient == bounced.email)).one()
    assert skipped.status.value == "skipped" and skipped.error == "suppressed"
    message = parse(received)
    assert message["Subject"] == f"Pesanan {order.external_ref} diterima Tenun Ikat Nunkolo"
    assert message["List-Unsubscribe"] is None  # order mail is not marketing
    check_dkim(mail, received)
    text, html = parts(message)
    assert "Halo Maria, pesanan" in text
    assert "Selasa, 1 Desember 2026 pukul 08.55 WITA" in text
    assert "- Kain Tenun Buna\n  2 x Rp 150.000 = Rp 300.000" in text
    assert "- Selendang Futus\n  1 x Rp 85.000 = Rp 85.000" in text
    assert "Total: Rp 385.000" in text
    for fragment in ("Kain Tenun Buna", "Rp 300.000", "Rp 385.000", order.external_ref):
        assert fragment in html
    assert "https://wa.me/6281237001234" in text
    delivery = db.scalars(select(Delivery).join(CampaignRun).where(
        Delivery.recipient == buyer.email,
        CampaignRun.trigger_key.startswith("order-event:"))).one()
    assert delivery.status.value == "sent" and delivery.business_id == shop.id
    assert message["Message-ID"] == delivery.message_id

