"""`umkm dns --check` against a real DNS server on loopback (dnslib) serving our own zones.

Correct records pass; a missing DKIM record, an SPF without the relay, a DMARC on the
wrong name and a From misaligned with DKIM and the return path each fail with the
sentence that says what to fix (issue 21, acceptance 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.config import Settings, reset_settings
from engine.delivery import dns_check
from engine.delivery.dns_records import expected_records, load_signer
from engine.message.dkim import generate_key_file
from tests.fake_dns import Zone

RELAY = "ip4:192.0.2.10"
SELECTOR = "s1"


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    generate_key_file(path)
    return path


def make_settings(zone: Zone, key: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": str(key.parent), "mail_from": "Dinas <pemasaran@umkm.test>",
        "dkim_domain": "umkm.test", "dkim_selector": SELECTOR, "dkim_key_path": str(key),
        "spf_sources": RELAY, "bounce_domain": "bounce.umkm.test",
        "bounce_mx": "mx.umkm.test", "dns_resolver": zone.address, "dns_timeout": 2.0,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def publish_all(zone: Zone, settings: Settings, skip: str = "") -> None:
    """Publish exactly what ``umkm dns`` prints, except the kind named by ``skip``."""
    for record in expected_records(settings):
        if record.kind == skip:
            continue
        if record.rtype == "TXT":
            zone.txt(record.name, record.value)
        else:
            zone.mx(record.name, record.value.split()[1])


def by_kind(results: list[dns_check.RecordCheck]) -> dict[str, dns_check.RecordCheck]:
    return {r.kind: r for r in results if r.kind != "spf"} | {
        f"spf:{r.name}": r for r in results if r.kind == "spf"}


def test_expected_records_name_what_we_send_with(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    records = {(r.kind, r.name): r for r in expected_records(settings)}
    signer = load_signer(settings)
    assert signer is not None
    assert records["dkim", "s1._domainkey.umkm.test"].value == signer.dns_txt_record()
    assert records["spf", "umkm.test"].value == f"v=spf1 {RELAY} ~all"
    assert records["spf", "bounce.umkm.test"].value == f"v=spf1 {RELAY} ~all"
    assert records["dmarc", "_dmarc.umkm.test"].value.startswith(
        "v=DMARC1; p=none; rua=mailto:dmarc@umkm.test")
    assert records["mx", "bounce.umkm.test"].value == "10 mx.umkm.test."
    # The 2048-bit key needs more than one 255-byte TXT string in the zone file.
    assert records["dkim", "s1._domainkey.umkm.test"].zone_line().count('" "') >= 1


def test_correct_records_pass(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, settings)
    results = dns_check.check_records(settings)
    assert [(r.kind, r.state) for r in results if r.state != "ok"] == []
    assert {r.kind for r in results} == {"spf", "dkim", "dmarc", "mx", "align"}
    assert ("s1._domainkey.umkm.test", "TXT") in dns_zone.queries  # really asked


def test_missing_dkim_record_fails(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, settings, skip="dkim")
    result = by_kind(dns_check.check_records(settings))["dkim"]
    assert result.state == "missing"
    assert result.message == ("Catatan DKIM tidak ada di s1._domainkey.umkm.test: pasang "
                              "TXT kunci publik yang ditampilkan di atas.")


def test_dkim_record_of_another_key_is_wrong(dns_zone: Zone, dkim_key: Path,
                                             tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    generate_key_file(other)
    publish_all(dns_zone, make_settings(dns_zone, other))  # the old key's record
    result = by_kind(dns_check.check_records(make_settings(dns_zone, dkim_key)))["dkim"]
    assert result.state == "wrong"
    assert "tidak cocok dengan kunci privat" in result.message


def test_spf_without_the_relay_fails(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, settings, skip="spf")
    dns_zone.txt("umkm.test", "v=spf1 mx ~all")
    dns_zone.txt("bounce.umkm.test", f"v=spf1 {RELAY} -all")
    results = by_kind(dns_check.check_records(settings))
    assert results["spf:umkm.test"].state == "wrong"
    assert results["spf:umkm.test"].message == (
        f"SPF umkm.test tidak memuat relay pengirim ({RELAY}): tambahkan agar email dari "
        "relay lolos SPF.")
    assert results["spf:bounce.umkm.test"].state == "ok"


def test_two_spf_records_are_wrong(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, settings)
    dns_zone.txt("umkm.test", "v=spf1 include:_spf.lain.test ~all")
    result = by_kind(dns_check.check_records(settings))["spf:umkm.test"]
    assert result.state == "wrong" and "lebih dari satu catatan SPF" in result.message


def test_dmarc_on_the_wrong_name_fails(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, settings, skip="dmarc")
    dns_zone.txt("dmarc.umkm.test", "v=DMARC1; p=none; rua=mailto:dmarc@umkm.test")
    result = by_kind(dns_check.check_records(settings))["dmarc"]
    assert result.state == "wrong"
    assert result.message == ("Catatan DMARC ditemukan di dmarc.umkm.test, padahal harus di "
                              "_dmarc.umkm.test: pindahkan ke nama itu.")


def test_no_dmarc_at_all_is_missing(dns_zone: Zone, dkim_key: Path) -> None:
    settings = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, settings, skip="dmarc")
    result = by_kind(dns_check.check_records(settings))["dmarc"]
    assert result.state == "missing" and "_dmarc.umkm.test" in result.message


def test_misaligned_from_fails(dns_zone: Zone, dkim_key: Path) -> None:
    """From lain.test while DKIM signs as umkm.test and bounces go to bounce.umkm.test."""
    good = make_settings(dns_zone, dkim_key)
    publish_all(dns_zone, good)
    settings = make_settings(dns_zone, dkim_key, mail_from="Dinas <info@lain.test>")
    publish_all(dns_zone, Settings(**{**settings.__dict__, "dkim_domain": "lain.test"}),
                skip="dkim")  # lain.test has its own SPF and DMARC: only alignment is off
    results = by_kind(dns_check.check_records(settings))
    assert results["dmarc"].state == "ok"
    assert results["align"].state == "wrong"
    assert results["align"].message.startswith(
        "Domain From lain.test tidak selaras dengan umkm.test, bounce.umkm.test "
        "(DKIM d= / alamat balik): DMARC akan gagal.")


def test_subdomains_of_one_organisation_align() -> None:
    assert dns_check.org_domain("umkm.ttskab.go.id") == "ttskab.go.id"
    assert dns_check.aligned("bounce.umkm.ttskab.go.id", "umkm.ttskab.go.id", strict=False)
    assert not dns_check.aligned("bounce.umkm.ttskab.go.id", "umkm.ttskab.go.id", strict=True)
    assert not dns_check.aligned("kupangkab.go.id", "umkm.ttskab.go.id", strict=False)


def test_unreachable_resolver_is_never_ok(dkim_key: Path) -> None:
    zone = Zone()
    zone.address = "127.0.0.1:9"  # discard port: nothing answers DNS there
    settings = make_settings(zone, dkim_key, dns_timeout=0.3)
    results = dns_check.check_records(settings)
    assert results and all(r.state == "missing" for r in results if r.kind != "align")
    assert "DNS tidak dapat ditanya" in results[0].message


@pytest.fixture
def cli_env(dns_zone: Zone, dkim_key: Path, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Settings:
    monkeypatch.chdir(tmp_path)
    env = {"VAR_DIR": str(tmp_path / "var"), "MAIL_FROM": "Dinas <pemasaran@umkm.test>",
           "DKIM_DOMAIN": "umkm.test", "DKIM_SELECTOR": SELECTOR,
           "DKIM_KEY_PATH": str(dkim_key), "SPF_SOURCES": RELAY,
           "BOUNCE_DOMAIN": "bounce.umkm.test", "BOUNCE_MX": "mx.umkm.test",
           "DNS_RESOLVER": dns_zone.address, "DNS_TIMEOUT": "2"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return make_settings(dns_zone, dkim_key)


def test_umkm_dns_prints_and_checks(cli_env: Settings, dns_zone: Zone) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["dns"])
    assert printed.exit_code == 0, printed.output
    assert "_dmarc.umkm.test. IN TXT" in printed.output
    assert "s1._domainkey.umkm.test. IN TXT" in printed.output
    missing = runner.invoke(app, ["dns", "--check"])
    assert missing.exit_code == 1
    assert "hilang" in missing.output and "Tidak ada catatan SPF" in missing.output
    publish_all(dns_zone, cli_env)
    good = runner.invoke(app, ["dns", "--check"])
    assert good.exit_code == 0, good.output
    assert "hilang" not in good.output and "salah" not in good.output
