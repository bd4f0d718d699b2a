"""Bounces and complaints: DSN/ARF parsing, suppression policy, Maildir, CLI, webhook."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app as cli_app
from engine.config import Secret, Settings
from engine.customers.consent import has_consent
from engine.delivery.pipeline import _blocked_at_send_time
from engine.engagement import bounces
from engine.engagement.tracking import message_id_for
from engine.models import Customer, Delivery, EngagementEvent, Suppression, utcnow
from tests.factories import (
    make_business,
    make_campaign,
    make_customer,
    make_delivery,
    make_run,
    make_suppression,
)
from web.app import create_app

DATA = Path(__file__).resolve().parents[1] / "data"
DOMAIN = "umkm.ttskab.go.id"
SECRET = "rahasia-webhook-uji-123"


def sample(name: str, delivery: Delivery | None = None, recipient: str | None = None,
           message_id: str | None = None) -> bytes:
    text = (DATA / name).read_text()
    if delivery is not None:
        message_id = message_id or message_id_for(delivery.id, delivery.run_id, DOMAIN)
        recipient = recipient or delivery.recipient
    text = text.replace("{{MESSAGE_ID}}", message_id or "<lain@contoh.id>")
    return text.replace("{{RECIPIENT}}", recipient or "siapa@contoh.id").encode()


def sent_mail(db: Session, customer: Customer | None = None) -> Delivery:
    """A sent promotional mail with its stable Message-ID, as dispatch leaves it."""
    business = make_business(db)
    customer = customer or make_customer(db, marketing=True)
    run = make_run(db, make_campaign(db))
    delivery = make_delivery(db, run, customer, business_id=business.id)
    delivery.message_id = message_id_for(delivery.id, run.id, DOMAIN)
    db.flush()
    return delivery


def _suppressions(db: Session) -> list[tuple[str, str]]:
    db.expire_all()
    return [(s.address, str(s.reason)) for s in db.scalars(select(Suppression))]


def _events(db: Session, type_: str) -> list[EngagementEvent]:
    return list(db.scalars(select(EngagementEvent).where(EngagementEvent.type == type_)))


# ----------------------------------------------------------------------------- parsing
def test_postfix_hard_bounce_is_parsed() -> None:
    raw = sample("dsn_hard_postfix.eml", message_id="<umkm.4.17.0123456789abcdef@x.id>",
                 recipient="Budi.Santoso@Contoh.id")
    [notice] = bounces.parse_report(raw)
    assert notice.kind == "hard"
    assert notice.recipient == "budi.santoso@contoh.id"
    assert (notice.action, notice.status) == ("failed", "5.1.1")
    assert notice.message_id == "<umkm.4.17.0123456789abcdef@x.id>"
    assert notice.diagnostic is not None and "User unknown" in notice.diagnostic


def test_delayed_4xx_is_soft_and_complaint_is_complaint() -> None:
    [soft] = bounces.parse_report(sample("dsn_soft_headers.eml", recipient="ani@contoh.id",
                                         message_id="<umkm.1.2.0123456789abcdef@x.id>"))
    assert (soft.kind, soft.status, soft.recipient) == ("soft", "4.2.2", "ani@contoh.id")
    assert soft.message_id == "<umkm.1.2.0123456789abcdef@x.id>"  # from text/rfc822-headers
    [complaint] = bounces.parse_report(sample("arf_complaint.eml", recipient="ani@contoh.id"))
    assert (complaint.kind, complaint.feedback_type, complaint.recipient) == (
        "complaint", "abuse", "ani@contoh.id")


def test_a_plain_mail_is_not_a_report() -> None:
    with pytest.raises(bounces.NotAReport):
        bounces.parse_report(sample("auto_reply.eml"))


# ----------------------------------------------------------------------------- policy
def test_hard_bounce_suppresses_at_once_and_only_once(db: Session) -> None:
    delivery = sent_mail(db)
    raw = sample("dsn_hard_postfix.eml", delivery)

    first = bounces.handle_raw(db, raw)
    again = bounces.handle_raw(db, raw)

    assert [o.action for o in first + again] == ["suppressed", "duplicate"]
    assert _suppressions(db) == [(delivery.recipient, "bounced")]
    [event] = _events(db, "hard_bounce")
    assert (event.delivery_id, event.run_id, event.customer_id, event.business_id) == (
        delivery.id, delivery.run_id, delivery.customer_id, delivery.business_id)
    assert event.raw["status"] == "5.1.1"


def test_three_soft_bounces_within_30_days_suppress(db: Session) -> None:
    customer = make_customer(db, marketing=True)
    mails = [sent_mail(db, customer) for _ in range(3)]
    now = utcnow()

    actions = []
    for mail in mails:
        raw = sample("dsn_soft_headers.eml", mail)
        actions += [o.action for o in bounces.handle_raw(db, raw, now=now)]
        if mail is mails[0]:  # the same DSN read twice counts once
            actions += [o.action for o in bounces.handle_raw(db, raw, now=now)]
        if mail is not mails[-1]:
            assert _suppressions(db) == []

    assert actions == ["counted", "duplicate", "counted", "suppressed"]
    assert _suppressions(db) == [(customer.email, "bounced")]
    assert len(_events(db, "soft_bounce")) == 3


def test_soft_bounces_older_than_30_days_do_not_count(db: Session) -> None:
    customer = make_customer(db, marketing=True)
    mails = [sent_mail(db, customer) for _ in range(3)]
    now = utcnow()
    whens = [now - timedelta(days=45), now - timedelta(days=2), now]
    outcomes = [bounces.handle_raw(db, sample("dsn_soft_headers.eml", m), now=when)[0]
                for m, when in zip(mails, whens, strict=True)]
    assert [o.action for o in outcomes] == ["counted", "counted", "counted"]
    assert _suppressions(db) == []


def test_complaint_suppresses_and_withdraws_marketing_consent(db: Session) -> None:
    delivery = sent_mail(db)
    [outcome] = bounces.handle_raw(db, sample("arf_complaint.eml", delivery))
    assert (outcome.kind, outcome.action, outcome.delivery_id) == (
        "complaint", "suppressed", delivery.id)
    assert _suppressions(db) == [(delivery.recipient, "complained")]
    assert delivery.customer_id is not None
    assert not has_consent(db, delivery.customer_id, "email")
    assert len(_events(db, "complaint")) == 1


def test_a_made_up_message_id_is_not_trusted(db: Session) -> None:
    delivery = sent_mail(db)
    forged = f"<umkm.{delivery.run_id}.{delivery.id}.ffffffffffffffff@{DOMAIN}>"
    [outcome] = bounces.handle_raw(db, sample("dsn_hard_postfix.eml", message_id=forged,
                                              recipient="orang.asing@contoh.id"))
    assert (outcome.action, outcome.delivery_id) == ("ignored", None)
    assert _suppressions(db) == []


def test_bounce_of_a_known_address_without_our_message_id_still_counts(db: Session) -> None:
    customer = make_customer(db, marketing=True)
    [outcome] = bounces.handle_raw(db, sample("dsn_hard_postfix.eml",
                                              recipient=customer.email))
    assert (outcome.action, outcome.delivery_id) == ("suppressed", None)
    assert _suppressions(db) == [(customer.email, "bounced")]


def test_hard_bounce_after_unsubscribe_blocks_transactional_mail_too(db: Session) -> None:
    delivery = sent_mail(db)
    make_suppression(db, delivery.recipient, reason="unsubscribed")
    assert _blocked_at_send_time(db, [delivery], "transactional") == {}
    bounces.handle_raw(db, sample("dsn_hard_postfix.eml", delivery))
    assert _suppressions(db) == [(delivery.recipient, "bounced")]
    assert _blocked_at_send_time(db, [delivery], "transactional") == {
        delivery.id: "suppressed:bounced"}


# ----------------------------------------------------------------------------- Maildir + CLI
def _maildir(root: Path, mails: list[bytes]) -> Path:
    box = mailbox.Maildir(str(root), create=True)
    for raw in mails:
        box.add(raw)
    return root


def test_maildir_is_processed_once_and_moved(db: Session, settings: Settings,
                                             tmp_path: Path) -> None:
    hard, complaint = sent_mail(db), sent_mail(db)
    db.commit()
    root = _maildir(tmp_path / "bounces", [
        sample("dsn_hard_postfix.eml", hard), sample("arf_complaint.eml", complaint),
        sample("auto_reply.eml")])

    report = bounces.process_maildir(root, settings)
    second = bounces.process_maildir(root, settings)

    assert (report.messages, report.hard, report.complaints, report.suppressed,
            report.unrecognised, report.errors) == (3, 1, 1, 2, 1, 0)
    assert second.messages == 0
    box = mailbox.Maildir(str(root), create=False)
    assert len(box) == 0
    assert len(box.get_folder("processed")) == 2
    assert len(box.get_folder("unrecognised")) == 1
    assert all("S" in m.get_flags() for m in box.get_folder("processed"))
    assert sorted(_suppressions(db)) == sorted([(hard.recipient, "bounced"),
                                                (complaint.recipient, "complained")])


def test_cli_processes_a_maildir(db: Session, settings: Settings, tmp_path: Path) -> None:
    delivery = sent_mail(db)
    db.commit()
    root = _maildir(tmp_path / "kotak", [sample("dsn_hard_postfix.eml", delivery)])

    result = CliRunner().invoke(cli_app, ["bounces", "process", str(root)])

    assert result.exit_code == 0, result.output
    assert "Pantulan permanen (hard)" in result.output
    assert _suppressions(db) == [(delivery.recipient, "bounced")]


def test_cli_rejects_a_folder_that_is_not_a_maildir(sqlite_settings: Settings,
                                                    tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["bounces", "process", str(tmp_path / "tidak-ada")])
    assert result.exit_code == 1
    assert "bukan folder Maildir" in result.output
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- webhook
@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    configured = replace(settings, bounce_webhook_secret=Secret(SECRET))
    with TestClient(create_app(configured)) as test_client:
        yield test_client


def test_webhook_json_hard_bounce(client: TestClient, db: Session) -> None:
    delivery = sent_mail(db)
    db.commit()
    response = client.post("/webhooks/bounce", headers={"X-Webhook-Secret": SECRET}, json={
        "recipient": delivery.recipient.upper(), "type": "hard",
        "message_id": delivery.message_id, "diagnostic": "550 5.1.1 user unknown"})
    assert response.status_code == 200
    assert response.json()["outcomes"] == [
        {"kind": "hard", "action": "suppressed", "delivery_id": delivery.id, "reason": ""}]
    assert _suppressions(db) == [(delivery.recipient, "bounced")]


def test_webhook_raw_dsn(client: TestClient, db: Session) -> None:
    delivery = sent_mail(db)
    db.commit()
    response = client.post("/webhooks/bounce", content=sample("arf_complaint.eml", delivery),
                           headers={"X-Webhook-Secret": SECRET,
                                    "Content-Type": "message/rfc822"})
    assert response.status_code == 200
    assert response.json()["outcomes"][0]["action"] == "suppressed"
    assert _suppressions(db) == [(delivery.recipient, "complained")]


def test_webhook_rejects_bad_secret_bad_body_and_unknown_types(
        client: TestClient, db: Session) -> None:
    customer = make_customer(db)
    db.commit()
    body = {"recipient": customer.email, "type": "hard"}
    assert client.post("/webhooks/bounce", json=body).status_code == 401
    assert client.post("/webhooks/bounce", json=body,
                       headers={"X-Webhook-Secret": "salah"}).status_code == 401
    auth = {"X-Webhook-Secret": SECRET}
    bad = client.post("/webhooks/bounce", json={"recipient": "bukan-email", "type": "x"},
                      headers=auth)
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {
        ("body", "recipient"), ("body", "type")}
    assert client.post("/webhooks/bounce", content=b"{", headers={
        **auth, "Content-Type": "application/json"}).status_code == 422
    assert client.post("/webhooks/bounce", content=b"hallo", headers={
        **auth, "Content-Type": "text/plain"}).status_code == 415
    assert client.post("/webhooks/bounce", content=sample("auto_reply.eml"), headers={
        **auth, "Content-Type": "message/rfc822"}).status_code == 422
    app: Any = client.app
    app.state.settings = replace(app.state.settings, bounce_webhook_secret=Secret(""))
    assert client.post("/webhooks/bounce", json=body, headers=auth).status_code == 503
    assert _suppressions(db) == []


def test_beat_bounce_mailbox_task_reads_the_configured_bounce_mailbox(
        db: Session, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The beat's bounce-mailbox job polls BOUNCE_MAILDIR: a hard bounce suppresses
    without anyone running `umkm bounces process`."""
    from engine.config import reset_settings
    from workers.tasks import beat_bounce_mailbox

    hard = sent_mail(db)
    db.commit()
    root = _maildir(tmp_path / "kotak-bounce", [sample("dsn_hard_postfix.eml", hard)])
    monkeypatch.setenv("BOUNCE_MAILDIR", str(root))
    reset_settings()

    report = beat_bounce_mailbox()

    assert report["count"] == 1
    assert _suppressions(db) == [(hard.recipient, "bounced")]
    assert beat_bounce_mailbox()["count"] == 0  # handled mail left the inbox


def test_a_processed_bounce_is_counted_by_the_monthly_report(db: Session,
                                                             settings: Settings) -> None:
    """The bounce pipeline and the Pasal 15 report speak the same event vocabulary."""
    from engine.reporting.build import build_report

    delivery = sent_mail(db)
    db.commit()
    bounces.handle_raw(db, sample("dsn_hard_postfix.eml", delivery))
    db.commit()

    report = build_report(db, "2026-12", "campaign")

    assert report.totals["sent"] == 1
    assert report.totals["bounced_hard"] == 1
    assert report.totals["delivered"] == 0
