"""`umkm doctor`, its rates, the launch guard and the admin page (issue 21, acceptance 3).

A default install (after ``umkm init``) prints the Indonesian checklist with at least the
failures every default install has (http BASE_URL, no DNS records) and exits non-zero;
the same install with https, STARTTLS and correct records passes. Bulk launches are
refused in production while an item fails, unless an admin overrides with a note
(audited); sandbox mode only warns.
"""

from __future__ import annotations

import dataclasses
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.campaign.loader import load_campaign
from engine.cli.app import app
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import doctor
from engine.delivery.dns_records import expected_records
from engine.delivery.launch_guard import OVERRIDE_ACTION, DeliverabilityBlocked, check_launch
from engine.models import AuditLog, Customer, Delivery
from tests.factories import NOW, make_campaign, make_customer, make_delivery, make_event, make_run
from tests.fake_dns import Zone
from tests.web_helpers import World, post_form, world_fixture  # noqa: F401 - the "world" fixture

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
PROMO = CAMPAIGNS / "promo-tenun-akhir-tahun-2026.yaml"
INVOICE = CAMPAIGNS / "transactional-invoice.yaml"


@pytest.fixture
def default_install(settings: Settings, dns_zone: Zone,
                    monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`umkm init` on default settings; DNS asked of an empty zone on loopback."""
    monkeypatch.setenv("DNS_RESOLVER", dns_zone.address)
    reset_settings()
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "Kunci DKIM baru (RSA 2048) dibuat di" in result.output
    assert "umkm1._domainkey.umkm.ttskab.go.id. IN TXT" in result.output
    reset_settings()
    return get_settings()


def test_init_generates_a_private_dkim_key_once(default_install: Settings) -> None:
    path = Path(default_install.var_dir) / "dkim" / "umkm1.pem"
    assert default_install.dkim_key_path == str(path)
    assert default_install.dkim_selector == "umkm1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    again = CliRunner().invoke(app, ["init"])
    assert again.exit_code == 0 and "Kunci DKIM sudah ada" in again.output
    assert path.read_bytes() == before


def test_doctor_on_a_default_install_fails_in_indonesian(default_install: Settings) -> None:
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "Daftar periksa keterkiriman email untuk umkm.ttskab.go.id" in out
    assert "BASE_URL http://127.0.0.1:8000 bukan https" in out
    assert "(gagal)" in out
    assert "Tidak ada catatan SPF" in out
    assert "Catatan DKIM tidak ada di umkm1._domainkey.umkm.ttskab.go.id" in out
    assert "Tidak ada catatan DMARC di _dmarc.umkm.ttskab.go.id" in out
    assert "SMTP_HOST kosong" in out  # no relay: a warning, not a failure
    assert "butir gagal" in out
    english = CliRunner().invoke(app, ["--lang", "en", "doctor"])
    assert english.exit_code == 1 and "is not https" in " ".join(english.output.split())


def test_doctor_passes_when_everything_is_in_place(default_install: Settings, dns_zone: Zone,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"BASE_URL": "https://umkm.ttskab.go.id", "SMTP_HOST": "relay.ttskab.go.id",
                       "SMTP_STARTTLS": "true", "SPF_SOURCES": "ip4:192.0.2.10"}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    for record in expected_records(get_settings()):
        dns_zone.txt(record.name, record.value)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "gagal)" not in result.output and "Semua syarat terpenuhi." in result.output


def _sent(session: Session, n: int) -> list[tuple[Customer, Delivery]]:
    run = make_run(session, make_campaign(session))
    deliveries = []
    for i in range(n):
        customer = make_customer(session, email=f"p{i}@contoh.test")
        deliveries.append((customer, make_delivery(session, run, customer, at=NOW)))
    return deliveries


@pytest.mark.parametrize(("complaints", "bounces", "levels"), [
    (0, 0, ("pass", "pass")), (1, 25, ("warn", "warn")), (3, 50, ("fail", "fail")),
])
def test_complaint_and_hard_bounce_rates(settings: Settings, complaints: int, bounces: int,
                                         levels: tuple[str, str]) -> None:
    with session_factory(settings)() as session:
        sent = _sent(session, 1000)
        for customer, delivery in sent[:complaints]:
            make_event(session, customer, type="complaint", channel="email",
                       delivery_id=delivery.id, at=NOW)
        for customer, delivery in sent[len(sent) - bounces:]:
            make_event(session, customer, type="hard_bounce", channel="email",
                       delivery_id=delivery.id, at=NOW)
        # A complaint older than 30 days no longer counts.
        make_event(session, sent[0][0], type="complaint", channel="email",
                   at=NOW - timedelta(days=45))
        session.commit()
        items = doctor.check_rates(session, now=NOW + timedelta(days=1))
    assert tuple(item.level for item in items) == levels
    if complaints == 3:
        assert items[0].message.startswith("3 keluhan dari 1000 email (0,30%), di atas batas 0,3%")


def _production(settings: Settings) -> Settings:
    return dataclasses.replace(settings, social_mode="live",
                               whatsapp_app_secret=settings.secret_key)


def test_bulk_launch_refused_in_production_unless_overridden(default_install: Settings) -> None:
    live = _production(default_install)
    spec = load_campaign(PROMO)
    with session_factory(live)() as session:
        with pytest.raises(DeliverabilityBlocked) as refused:
            check_launch(session, live, spec, actor="cli")
        assert "Kampanye massal ditolak" in str(refused.value)
        assert "BASE_URL https" in str(refused.value)
        verdict = check_launch(session, live, spec, actor="cli", override_note="uji coba")
        assert verdict.overridden and verdict.warnings
        entry = session.scalars(select(AuditLog).where(AuditLog.action == OVERRIDE_ACTION)).one()
        assert entry.entity_id == spec.id and entry.detail["note"] == "uji coba"
        assert "https" in entry.detail["failures"]
        # Transactional mail (invoices) is not bulk: never blocked.
        assert check_launch(session, live, load_campaign(INVOICE), actor="cli").allowed


def test_sandbox_mode_warns_instead_of_blocking(default_install: Settings) -> None:
    with session_factory(default_install)() as session:
        verdict = check_launch(session, default_install, load_campaign(PROMO), actor="cli")
    assert verdict.allowed and not verdict.overridden
    assert "https" in {item.key for item in verdict.warnings}


def test_cli_launch_refused_in_production(default_install: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_MODE", "live")
    reset_settings()
    result = CliRunner().invoke(app, ["campaign", "launch", str(PROMO), "--now"])
    assert result.exit_code == 1
    assert "Kampanye massal ditolak" in " ".join(result.output.split())


def test_admin_page_shows_checklist_and_records_override(world: World, dns_zone: Zone) -> None:
    world.app.state.settings = dataclasses.replace(world.settings,
                                                   dns_resolver=dns_zone.address)
    assert world.client("staf").get("/dinas/keterkiriman").status_code == 403
    admin = world.client("admin")
    page = admin.get("/dinas/keterkiriman")
    assert page.status_code == 200
    assert 'data-key="https"' in page.text and "bukan https" in page.text
    assert "Mode sandbox" in page.text
    refused = post_form(admin, "/dinas/keterkiriman/abaikan", {"note": "  "},
                        form_page="/dinas/keterkiriman")
    assert refused.status_code == 422 and "Catatan wajib diisi" in refused.text
    done = post_form(admin, "/dinas/keterkiriman/abaikan", {"note": "DNS menunggu Diskominfo"},
                     form_page="/dinas/keterkiriman")
    assert done.status_code == 303
    live = _production(world.app.state.settings)
    with world.session() as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == OVERRIDE_ACTION)).one()
        assert entry.actor == "admin" and entry.detail["note"] == "DNS menunggu Diskominfo"
        # The standing override lets a production launch through for the failures it saw.
        entry.detail = {**entry.detail, "failures": [*entry.detail["failures"], "secrets"]}
        session.commit()
        verdict = check_launch(session, live, load_campaign(PROMO), actor="cli")
    assert verdict.allowed and verdict.overridden
