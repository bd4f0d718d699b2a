"""DMARC aggregate reports: the corpus (tests/data/dmarc), hostile input, storage, summary."""

from __future__ import annotations

import mailbox
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app as cli_app
from engine.config import Settings
from engine.delivery.dmarc_sources import is_known, known_networks, unknown_sources
from engine.engagement import dmarc
from engine.models import DmarcRecord, DmarcReport
from engine.reporting.dmarc_summary import summarize

CORPUS = Path(__file__).resolve().parents[1] / "data" / "dmarc"
RELAY = "ip4:203.0.113.0/28 ip6:2001:db8::/64 include:_spf.relay.example"
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
GOOD = [f"{stem}{ext}" for stem in ("google", "microsoft", "yahoo")
        for ext in (".xml", ".xml.gz", ".zip")] + ["google-mail.eml"]
HOSTILE = {
    "hostile-billion-laughs.xml": "DTD atau entitas",
    "hostile-external-entity.xml": "DTD atau entitas",
    "hostile-malformed.xml": "XML laporan DMARC rusak",
    "hostile-missing-fields.xml": "report_id tidak ada",
    "hostile-bomb.xml.gz": "lebih besar dari 20 MB",
    "hostile-bomb.zip": "lebih besar dari 20 MB",
    "hostile-many-members.zip": "satu berkas XML",
    "hostile-truncated.xml.gz": "rusak atau tidak dapat dibuka",
}


def _relay(settings: Settings) -> Settings:
    return replace(settings, spf_sources=RELAY)


@pytest.mark.parametrize("name", GOOD)
def test_every_shape_of_the_corpus_parses_to_the_same_figures(name: str) -> None:
    report = dmarc.parse_report((CORPUS / name).read_bytes())
    stem = name.split(".")[0].removesuffix("-mail")
    expected = {"google": ("google.com", "4217703911902155806", 3, 157),
                "microsoft": ("Enterprise Outlook", "9f3c2a41d7be4c0e8a5b61f2c3d4e5f6", 2, 43),
                "yahoo": ("Yahoo", "1796169600.778812", 3, 67)}[stem]
    assert (report.org_name, report.report_id, len(report.rows),
            sum(r.count for r in report.rows)) == expected
    assert report.policy_domain == "umkm.ttskab.go.id" and report.policy_p == "none"


def test_microsoft_namespaced_fields_are_read() -> None:
    report = dmarc.parse_report((CORPUS / "microsoft.xml.gz").read_bytes())
    assert report.begin == datetime(2026, 12, 1, tzinfo=UTC)
    forwarder = report.rows[1]
    assert (forwarder.source_ip, forwarder.count, forwarder.dkim_aligned,
            forwarder.spf_aligned) == ("192.0.2.44", 3, True, False)
    assert [(a.method, a.domain, a.result) for a in forwarder.auth_results] == [
        ("dkim", "umkm.ttskab.go.id", "pass"), ("spf", "forwarder.example.org", "pass")]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_with_a_reason_in_indonesian(name: str) -> None:
    with pytest.raises(dmarc.DmarcRefused) as refused:
        dmarc.parse_report((CORPUS / name).read_bytes())
    assert HOSTILE[name] in str(refused.value)
    assert "nothing" not in str(refused.value)


def test_external_entity_is_never_resolved() -> None:
    data = (CORPUS / "hostile-external-entity.xml").read_bytes()
    with pytest.raises(dmarc.DmarcRefused) as refused:
        dmarc.parse_report(data)
    assert "root:" not in str(refused.value)


def test_a_mail_without_a_report_is_refused() -> None:
    mail = b"From: a@example.org\r\nSubject: halo\r\n\r\nhanya teks\r\n"
    with pytest.raises(dmarc.DmarcRefused, match="Bukan laporan agregat DMARC"):
        dmarc.parse_report(mail)


def _import(db: Session, *names: str) -> list[dmarc.ImportOutcome]:
    outcomes = [dmarc.import_path(db, CORPUS / name) for name in names]
    db.commit()
    return outcomes


def test_import_is_idempotent_and_hostile_files_store_nothing(db: Session) -> None:
    first = _import(db, "google.xml", "microsoft.zip", "yahoo.xml.gz", *sorted(HOSTILE))
    assert [o.status for o in first[:3]] == ["imported"] * 3
    assert {o.status for o in first[3:]} == {"refused"}
    again = _import(db, "google.zip", "google-mail.eml", "microsoft.xml", "yahoo.xml")
    assert [o.status for o in again] == ["duplicate"] * 4
    assert db.scalar(select(func.count()).select_from(DmarcReport)) == 3
    assert db.scalar(select(func.sum(DmarcRecord.count))) == 157 + 43 + 67


def test_summary_per_day_and_source(db: Session, settings: Settings) -> None:
    _import(db, "google.xml.gz", "microsoft.xml", "yahoo.zip", "google.zip")
    summary = summarize(db, _relay(settings), days=30, now=NOW)
    got = {(line.day, line.source_ip): (line.volume, line.spf_pass, line.dkim_pass, line.known)
           for line in summary.lines}
    assert got == {
        (date(2026, 12, 1), "203.0.113.5"): (150, 120, 150, True),
        (date(2026, 12, 1), "198.51.100.77"): (7, 0, 0, False),
        (date(2026, 12, 1), "2001:db8::25"): (40, 40, 40, True),
        (date(2026, 12, 1), "192.0.2.44"): (3, 0, 3, False),
        (date(2026, 12, 2), "203.0.113.5"): (60, 60, 60, True),
        (date(2026, 12, 2), "203.0.113.6"): (5, 5, 5, True),
        (date(2026, 12, 2), "198.51.100.77"): (2, 0, 0, False),
    }
    first = next(line for line in summary.lines if line.source_ip == "203.0.113.5"
                 and line.day == date(2026, 12, 1))
    assert (first.spf_rate, first.dkim_rate) == (0.8, 1.0)
    assert summary.reports == 3
    assert summary.lines[0].day == date(2026, 12, 2)  # newest first
    assert {line.source_ip for line in summary.unknown} == {"198.51.100.77", "192.0.2.44"}
    assert summarize(db, _relay(settings), days=1, now=NOW).lines == [
        line for line in summary.lines if line.day == date(2026, 12, 2)]


def test_unknown_sources_use_the_relay_settings(db: Session, settings: Settings) -> None:
    _import(db, "google.xml", "yahoo.xml")
    since = datetime(2026, 11, 1, tzinfo=UTC)
    assert unknown_sources(db, _relay(settings), since) == {"198.51.100.77": 9}
    lone = replace(settings, spf_sources="", smtp_host="203.0.113.5")
    assert unknown_sources(db, lone, since) == {"198.51.100.77": 9, "203.0.113.6": 5}
    assert not is_known("203.0.113.16", known_networks(_relay(settings)))
    assert is_known("2001:db8::ffff", known_networks(_relay(settings)))


def test_maildir_import_moves_mail_once(settings: Settings, tmp_path: Path) -> None:
    box = mailbox.Maildir(str(tmp_path / "rua"), create=True)
    box.add((CORPUS / "google-mail.eml").read_bytes())
    box.add((CORPUS / "google-mail.eml").read_bytes())
    box.add(b"From: x@example.org\r\nSubject: spam\r\n\r\nbukan laporan\r\n")
    summary = dmarc.import_maildir(tmp_path / "rua", settings)
    assert (summary.messages, summary.count("imported"), summary.count("duplicate"),
            summary.count("refused")) == (3, 1, 1, 1)
    assert len(box) == 0
    assert len(box.get_folder("processed")) == 2 and len(box.get_folder("refused")) == 1
    assert dmarc.import_maildir(tmp_path / "rua", settings).messages == 0


def test_cli_import_and_report(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPF_SOURCES", RELAY)
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(cli_app, ["dmarc", "import", str(CORPUS / "google.zip"),
                                     str(CORPUS / "hostile-bomb.zip")])
    assert result.exit_code == 0, result.output
    assert "1 laporan diimpor, 0 sudah ada sebelumnya, 1 ditolak" in " ".join(result.output.split())
    again = runner.invoke(cli_app, ["dmarc", "import", str(CORPUS / "google.xml")])
    assert "0 laporan diimpor, 1 sudah ada" in " ".join(again.output.split())
    shown = runner.invoke(cli_app, ["dmarc", "report", "--days", "3660"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "198.51.100.77" in text and "TIDAK DIKENAL" in text and "80,0%" in text
    assert "IP 198.51.100.77 mengirim 7 pesan" in text


def test_beat_task_reads_the_dmarc_mailbox(settings: Settings, db: Session, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """DMARC_MAILDIR is polled by the beat: new reports are stored, handled mail leaves."""
    from engine.config import reset_settings
    from engine.delivery.beat import JOBS
    from workers.tasks import beat_dmarc_mailbox

    box = mailbox.Maildir(str(tmp_path / "rua"), create=True)
    box.add((CORPUS / "google-mail.eml").read_bytes())
    monkeypatch.setenv("DMARC_MAILDIR", str(tmp_path / "rua"))
    reset_settings()
    assert "dmarc_mailbox" in JOBS
    assert beat_dmarc_mailbox()["count"] == 1
    assert beat_dmarc_mailbox()["count"] == 0
    assert db.scalar(select(DmarcReport.org_name)) == "google.com"


def test_doctor_warns_about_an_unknown_source(db: Session, settings: Settings) -> None:
    from engine.delivery.doctor import WARN, check_dmarc_sources

    assert check_dmarc_sources(db, _relay(settings), NOW).level == "pass"
    _import(db, "google.xml")
    item = check_dmarc_sources(db, _relay(settings), NOW)
    assert item.level == WARN and "198.51.100.77 (7)" in item.message
    later = datetime(2027, 2, 1, tzinfo=UTC)  # the report is older than 30 days
    assert check_dmarc_sources(db, _relay(settings), later).level == "pass"
