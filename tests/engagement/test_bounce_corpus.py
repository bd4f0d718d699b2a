"""Bounces as real servers send them: the corpus figures, Sisimai bridge, VERP, CLI."""

from __future__ import annotations

import json
import mailbox
import smtplib
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app as cli_app
from engine.config import Settings
from engine.delivery.beat import read_bounce_mailbox
from engine.delivery.context import bounce_domain
from engine.engagement import bounce_verp, bounces, sisimai_bridge
from engine.engagement.bounce_reasons import decide_reason, is_hard
from engine.models import EngagementEvent, Suppression, utcnow
from tests.engagement.corpus_score import CORPUS, score
from tests.engagement.test_bounces import sent_mail
from tests.smtp_server import ScriptedSMTPServer

needs_sisimai = pytest.mark.skipif(not sisimai_bridge.available(),
                                   reason="libsisimai-perl tidak terpasang")


def test_corpus_is_varied_enough() -> None:
    expected = json.loads((CORPUS / "expected.json").read_text())
    formats = {name.rsplit("_", 1)[0] for name in expected}
    reasons = {r["reason"] for e in expected.values() for r in e["recipients"]}
    assert len(expected) >= 120 and len(formats) >= 15
    assert {"userunknown", "mailboxfull", "blocked", "spamdetected", "suspend", "expired",
            "feedback"} <= reasons


@needs_sisimai
def test_corpus_with_sisimai() -> None:
    result = score(use_sisimai=True)
    print("\n" + result.line("sisimai") + "\n" + "\n".join(result.misses))
    assert result.pct(result.recognised, result.reports) >= 95
    assert result.pct(result.recipients_ok, result.recipients) >= 98
    assert result.pct(result.verdicts_ok, result.recipients) >= 95
    assert result.false_positives == 0


def test_corpus_with_the_fallback_only() -> None:
    """Without Sisimai (embedded default) nothing crashes and nothing is invented."""
    result = score(use_sisimai=False)
    print("\n" + result.line("fallback") + "\n" + "\n".join(result.misses))
    assert result.false_positives == 0
    assert result.pct(result.recognised, result.reports) >= 80
    assert result.pct(result.verdicts_ok, result.recipients) >= 80


@pytest.mark.parametrize(("status", "diagnostic", "reason", "hard"), [
    ("5.0.0", "550 5.2.2 Mailbox full", "mailboxfull", False),
    ("5.7.1", "554 5.7.1 Client host blocked using zen.spamhaus.org", "blocked", False),
    ("4.1.1", "450 4.1.1 <a@b.id>: Recipient address rejected: User unknown", "userunknown",
     True),
    ("5.0.0", "550 account suspended", "suspend", False),
    ("5.1.2", "Host or domain name not found", "hostunknown", True),
])
def test_hard_or_soft_follows_the_reason(status: str, diagnostic: str, reason: str,
                                         hard: bool) -> None:
    found = decide_reason(status, diagnostic, "failed")
    assert (found, is_hard(found)) == (reason, hard)


@needs_sisimai
def test_bridge_restarts_after_a_crash() -> None:
    bridge = sisimai_bridge.SisimaiBridge(timeout=20)
    raw = (CORPUS / "qmail_00.eml").read_bytes()
    try:
        assert bridge.analyse(raw)[0]["reason"] == "userunknown"
        assert bridge._proc is not None
        bridge._proc.kill()
        bridge._proc.wait()
        assert bridge.analyse(raw)[0]["reason"] == "userunknown"
    finally:
        bridge.close()


def test_bridge_times_out_instead_of_hanging(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    silent = tmp_path / "silent.pl"
    silent.write_text("sleep 600;\n")
    monkeypatch.setattr(sisimai_bridge, "SCRIPT", silent)
    bridge = sisimai_bridge.SisimaiBridge(timeout=0.5)
    with pytest.raises(sisimai_bridge.BridgeError):
        bridge.analyse(b"Subject: x\n\nx\n")
    assert bridge._proc is None


@needs_sisimai
def test_cli_check_qmail_and_gmail() -> None:
    expected = json.loads((CORPUS / "expected.json").read_text())
    files = ["qmail_00.eml", "gmail_02.eml"]
    result = CliRunner().invoke(cli_app, ["bounces", "check", "--json",
                                          *[str(CORPUS / f) for f in files]])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    for name, answer in zip(files, answers, strict=True):
        [want] = expected[name]["recipients"]
        [got] = answer["recipients"]
        assert (answer["kind"], got["address"], got["reason"], got["verdict"]) == (
            "bounce", want["address"], want["reason"], want["hard"])
    [qmail] = expected["qmail_00.eml"]["recipients"]
    plain = CliRunner().invoke(cli_app, ["bounces", "check", str(CORPUS / "qmail_00.eml")])
    assert qmail["address"] in plain.output and "alasan userunknown" in plain.output


def _bounce_to(return_path: str, recipient: str) -> bytes:
    """A qmail bounce (free text, no Message-ID of ours) as the MTA delivers it."""
    return (f"Return-Path: <>\nDelivered-To: {return_path}\nFrom: MAILER-DAEMON@mx.contoh.id"
            f"\nTo: {return_path}\nSubject: failure notice\n\nHi. This is the qmail-send "
            "program at mx.contoh.id.\nI'm afraid I wasn't able to deliver your message to "
            "the following addresses.\nThis is a permanent error; I've given up. Sorry it "
            f"didn't work out.\n\n<{recipient}>:\nSorry, no mailbox here by that name. "
            "(#5.1.1)\n\n--- Below this line is a copy of the message.\n\nSubject: Promo\n"
            ).encode()


def test_verp_round_trip_marks_the_delivery_and_ignores_forgeries(
        db: Session, settings: Settings, smtp_server: ScriptedSMTPServer,
        tmp_path: Path) -> None:
    delivery, other = sent_mail(db), sent_mail(db)
    db.commit()
    domain = bounce_domain(replace(settings, bounce_domain="auto"), "pemasaran@umkm.id")
    assert domain == "umkm.id"
    return_path = bounce_verp.return_path(delivery.id, delivery.recipient, domain)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as smtp:
        smtp.sendmail(return_path, [delivery.recipient], b"Subject: Promo\n\nHalo\n")
    [received] = smtp_server.wait_for(1)
    assert received.mail_from == return_path

    forged = bounce_verp.return_path(other.id, "orang@lain.id", domain)
    box = mailbox.Maildir(str(tmp_path / "bounces"), create=True)
    box.add(_bounce_to(forged, other.recipient))
    box.add(_bounce_to(received.mail_from, "tidak-disebut@contoh.id"))
    report = read_bounce_mailbox(replace(settings, bounce_maildir=str(tmp_path / "bounces")),
                                 utcnow())
    assert report.count == 2

    db.expire_all()
    suppressed = [s.address for s in db.scalars(select(Suppression))]
    assert suppressed == [delivery.recipient]
    [event] = db.scalars(select(EngagementEvent).where(EngagementEvent.type == "hard_bounce"))
    assert event.delivery_id == delivery.id


def test_arf_without_original_rcpt_to_uses_verp(db: Session) -> None:
    delivery = sent_mail(db)
    token = bounce_verp.return_path(delivery.id, delivery.recipient, "umkm.id")
    raw = (f"From: fbl@isp.id\nTo: {token}\nSubject: Abuse report\nMIME-Version: 1.0\n"
           'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
           "--b\nContent-Type: text/plain\n\nabuse\n--b\n"
           "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n\n--b--\n")
    [outcome] = bounces.handle_raw(db, raw.encode())
    assert (outcome.kind, outcome.action, outcome.delivery_id) == (
        "complaint", "suppressed", delivery.id)


def test_whatsapp_failed_status_fails_the_delivery_and_suppresses_unreachable(
        db: Session) -> None:
    from channels.whatsapp import parse_webhook
    from engine.social.inbound import record_whatsapp_inbound
    from tests.factories import make_campaign, make_customer, make_delivery, make_run

    run = make_run(db, make_campaign(db))
    gone = make_delivery(db, run, make_customer(db, phone="6281200000001"),
                         channel="whatsapp", provider_id="wamid.GONE")
    late = make_delivery(db, run, make_customer(db, phone="6281200000002"),
                         channel="whatsapp", provider_id="wamid.LATE")
    db.commit()

    def status(wamid: str, number: str, code: int) -> dict[str, object]:
        return {"id": wamid, "status": "failed", "timestamp": "1796087522",
                "recipient_id": number, "errors": [{"code": code, "title": "x"}]}

    payload = {"object": "whatsapp_business_account", "entry": [{"changes": [{
        "field": "messages", "value": {"statuses": [
            status("wamid.GONE", "6281200000001", 131026),
            status("wamid.LATE", "6281200000002", 131047)]}}]}]}
    summary = record_whatsapp_inbound(db, parse_webhook(payload))

    db.expire_all()
    assert (summary.failed, summary.unreachable) == (2, 1)
    assert (str(gone.status), str(late.status)) == ("failed", "failed")
    assert gone.error is not None and gone.error.startswith("whatsapp 131026")
    assert [(s.channel, s.address) for s in db.scalars(select(Suppression))] == [
        ("whatsapp", gone.recipient)]
