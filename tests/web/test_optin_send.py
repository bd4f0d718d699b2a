"""Issue 13: the confirmed opt-in link is actually sent, to that address only, rarely.

Real SMTP on loopback (aiosmtpd) receives the mail; following its link and pressing
the button lifts the person's own suppression.  The public page answers the same for
every address, and the per-(customer, channel) limit lives in the database.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli import _load_commands
from engine.cli.app import app as cli_app
from engine.config import Settings
from engine.customers import consent
from engine.delivery import optin_mail
from engine.delivery.context import reset_process_state
from engine.models import OptinLinkSend
from tests.factories import make_customer
from tests.smtp_server import ScriptedSMTPServer
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
PAGE = "/u/berlangganan-lagi"
LINK = re.compile(r"(https?://\S+?/u/konfirmasi/[A-Za-z0-9_.\-]+)")
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture
def smtp(settings: Settings, smtp_server: ScriptedSMTPServer) -> Iterator[Settings]:
    yield dataclasses.replace(settings, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    reset_process_state()


@pytest.fixture
def client(smtp: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(smtp)) as test_client:
        yield test_client


def _ask(client: TestClient, address: str) -> tuple[int, str]:
    form = client.get(PAGE)
    assert form.status_code == 200
    found = FORM_TOKEN.search(form.text)
    assert found
    response = client.post(PAGE, data={"address": address, "csrf_token": found.group(1)})
    return response.status_code, response.text


def _link_in(server: ScriptedSMTPServer, index: int = -1) -> str:
    message = server.messages[index].message
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = LINK.search(part.get_content())
    assert found, part.get_content()
    return found.group(1)


def test_the_link_arrives_by_smtp_and_confirming_lifts_the_suppression(
        client: TestClient, db: Session, smtp_server: ScriptedSMTPServer) -> None:
    customer = make_customer(db, email="ani.benu@contoh.id", name="Ani Benu", marketing=True)
    consent.unsubscribe(db, customer, "email", "one-click")
    db.commit()

    status, _ = _ask(client, "Ani.Benu@contoh.id")

    assert status == 200
    assert smtp_server.recipients() == ["ani.benu@contoh.id"]
    assert "Konfirmasi" in str(smtp_server.messages[0].message["Subject"])
    url = _link_in(smtp_server)
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200
    token = FORM_TOKEN.search(page.text)
    assert token
    done = client.post("/" + path, data={"csrf_token": token.group(1)})
    assert done.status_code == 200
    db.expire_all()
    assert consent.find_suppression(db, "email", "ani.benu@contoh.id") is None
    assert consent.has_consent(db, customer.id, "email")


def test_a_second_request_within_the_window_sends_nothing(
        client: TestClient, db: Session, smtp_server: ScriptedSMTPServer) -> None:
    customer = make_customer(db, email="budi@contoh.id", marketing=True)
    consent.unsubscribe(db, customer, "email", "one-click")
    db.commit()
    first = _ask(client, "budi@contoh.id")
    second = _ask(client, "budi@contoh.id")
    assert first == second
    assert smtp_server.recipients() == ["budi@contoh.id"]
    db.expire_all()
    assert len(list(db.scalars(select(OptinLinkSend)))) == 1


def test_the_answer_does_not_reveal_who_is_on_the_list(
        client: TestClient, db: Session, smtp_server: ScriptedSMTPServer) -> None:
    left = make_customer(db, email="pergi@contoh.id", marketing=True)
    consent.unsubscribe(db, left, "email", "one-click")
    make_customer(db, email="tetap@contoh.id", marketing=True)
    db.commit()
    answers = {address: _ask(client, address) for address in
               ("pergi@contoh.id", "tetap@contoh.id", "tidak-ada@contoh.id", "081299990000")}
    assert len(set(answers.values())) == 1, answers
    assert answers["pergi@contoh.id"][0] == 200
    assert smtp_server.recipients() == ["pergi@contoh.id"]  # only the person who left


def test_the_form_needs_its_token_and_is_throttled_per_client(
        client: TestClient, db: Session, smtp_server: ScriptedSMTPServer) -> None:
    forged = client.post(PAGE, data={"address": "x@contoh.id", "csrf_token": "palsu"})
    assert forged.status_code == 403
    statuses = [_ask(client, f"orang{i}@contoh.id")[0] for i in range(12)]
    assert statuses[:9] == [200] * 9 and statuses[-1] == 429
    assert smtp_server.recipients() == []


def test_cli_sends_and_refuses_a_second_link_within_the_window(
        settings: Settings, db: Session, smtp_server: ScriptedSMTPServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    customer = make_customer(db, email="cli@contoh.id", marketing=True)
    consent.unsubscribe(db, customer, "email", "one-click")
    db.commit()
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    from engine.config import reset_settings
    reset_settings()
    _load_commands()
    runner = CliRunner()
    try:
        first = runner.invoke(cli_app, ["customers", "send-confirmation", "cli@contoh.id"])
        second = runner.invoke(cli_app, ["customers", "send-confirmation", "cli@contoh.id"])
    finally:
        reset_process_state()
    assert first.exit_code == 0, first.output
    assert "cli@contoh.id" in first.output
    assert second.exit_code != 0 and "10 menit" in " ".join(second.output.split())
    assert smtp_server.recipients() == ["cli@contoh.id"]


def test_whatsapp_goes_to_the_sandbox_outbox_with_the_link(
        settings: Settings, db: Session) -> None:
    customer = make_customer(db, phone="6281200000077", marketing=True)
    consent.unsubscribe(db, customer, "whatsapp", "whatsapp:opt-out")
    db.commit()
    sent = optin_mail.send_confirmation(db, settings, customer, "whatsapp", requested_by="uji")
    written = list((Path(settings.var_dir) / "outbox" / "whatsapp").glob("*.json"))
    assert sent.address == "6281200000077" and len(written) == 1
    document = json.loads(written[0].read_text())
    assert document["recipient"] == "6281200000077"
    assert "/u/konfirmasi/" in document["payload"]["text"]
    with pytest.raises(optin_mail.TooSoon):
        optin_mail.send_confirmation(db, settings, customer, "whatsapp", requested_by="uji")


def test_the_business_api_cannot_send_the_link() -> None:
    for path in (ROOT / "web").glob("api*.py"):
        source = path.read_text(encoding="utf-8")
        assert "optin_mail" not in source and "confirmation_url" not in source, path
