"""WhatsApp Cloud API adapter against the fake Cloud API; opt-out keywords; webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.base import (
    AccountCredentials,
    ConfigurationError,
    MemorySocialHooks,
    OutboundMessage,
    SendStatus,
)
from channels.registry import get_adapter_class
from channels.whatsapp import WhatsAppChannel, is_opt_out, parse_webhook, verify_signature
from tests.fake_http import Reply
from tests.fake_whatsapp import (
    ACCESS_TOKEN,
    API_VERSION,
    PHONE_NUMBER_ID,
    FakeWhatsApp,
    fake_whatsapp_fixture,  # noqa: F401  (provides the ``fake_whatsapp`` fixture)
)

ACCOUNT = "whatsapp:dinas"
CUSTOMER = "6281234567890"
TEMPLATE = {
    "name": "promo_umkm",
    "language": {"code": "id"},
    "components": [{"type": "body", "parameters": [
        {"type": "text", "text": "Maria"}, {"type": "text", "text": "Rp 350.000"}]}],
}


def make(fake: FakeWhatsApp, hooks: MemorySocialHooks | None = None,
         token: str = ACCESS_TOKEN) -> WhatsAppChannel:
    credentials = AccountCredentials(ACCOUNT, PHONE_NUMBER_ID, token)
    return WhatsAppChannel(credentials, hooks=hooks or MemorySocialHooks(), base_url=fake.url,
                           api_version=API_VERSION)


def message(payload: dict[str, Any], delivery_id: int = 1) -> OutboundMessage:
    return OutboundMessage(delivery_id, payload.get("to", CUSTOMER), payload, account=ACCOUNT)


def template_payload(**extra: Any) -> dict[str, Any]:
    return {"to": CUSTOMER, "template": TEMPLATE, "product_id": 5, "business_id": 2, **extra}


# --------------------------------------------------------------------------- sending


def test_approved_template_is_sent_to_the_customer(fake_whatsapp: FakeWhatsApp) -> None:
    with make(fake_whatsapp) as channel:
        result = channel.send(message(template_payload()))

    assert result.status is SendStatus.SENT, result.error
    assert result.provider_id is not None and result.provider_id.startswith("wamid.")
    (request,) = fake_whatsapp.requests
    assert request.path == f"/{API_VERSION}/{PHONE_NUMBER_ID}/messages"
    assert request.bearer == ACCESS_TOKEN
    assert request.json() == {"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": CUSTOMER, "type": "template", "template": TEMPLATE}
    assert (result.raw["product_id"], result.raw["business_id"]) == (5, 2)


def test_language_code_string_and_local_number_are_normalised(
    fake_whatsapp: FakeWhatsApp,
) -> None:
    payload = {"to": "0812-3456-7890", "template": {"name": "info_pelatihan", "language": "id"}}
    result = make(fake_whatsapp).send(message(payload))
    assert result.ok, result.error
    sent = fake_whatsapp.sent[0]
    assert sent["to"] == CUSTOMER
    assert sent["template"] == {"name": "info_pelatihan", "language": {"code": "id"},
                                "components": []}


def test_free_text_inside_the_24_hour_window_is_sent(fake_whatsapp: FakeWhatsApp) -> None:
    last = datetime.now(UTC) - timedelta(hours=2)
    fake_whatsapp.inbound[CUSTOMER] = last
    payload = {"to": CUSTOMER, "text": "Terima kasih, pesanan Anda kami teruskan ke UMKM.",
               "last_inbound_at": last.isoformat()}
    result = make(fake_whatsapp).send(message(payload))
    assert result.ok, result.error
    assert fake_whatsapp.sent[0]["type"] == "text"
    assert fake_whatsapp.sent[0]["text"]["body"] == payload["text"]


@pytest.mark.parametrize("last_inbound_at", [
    None, "", (datetime.now(UTC) - timedelta(hours=25)).isoformat(), "bukan tanggal"],
    ids=["none", "empty", "25-hours-ago", "not-a-date"])
def test_free_text_outside_the_window_is_refused_before_calling_the_api(
    fake_whatsapp: FakeWhatsApp, last_inbound_at: str | None
) -> None:
    payload = {"to": CUSTOMER, "text": "Promo hari ini!", "last_inbound_at": last_inbound_at}
    result = make(fake_whatsapp).send(message(payload))
    assert result.status is SendStatus.PERMANENT
    assert "di luar jendela 24 jam" in (result.error or "")
    assert fake_whatsapp.requests == []


def test_window_is_measured_with_the_injected_clock(fake_whatsapp: FakeWhatsApp) -> None:
    credentials = AccountCredentials(ACCOUNT, PHONE_NUMBER_ID, ACCESS_TOKEN)
    later = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    channel = WhatsAppChannel(credentials, hooks=MemorySocialHooks(), base_url=fake_whatsapp.url,
                              now=lambda: later)
    payload = {"to": CUSTOMER, "text": "Halo", "last_inbound_at": "2026-12-01T09:59:00Z"}
    assert "24 jam" in (channel.send(message(payload)).error or "")


def test_api_reports_131047_as_outside_the_window(fake_whatsapp: FakeWhatsApp) -> None:
    # our record says the customer wrote, WhatsApp disagrees: its verdict wins
    payload = {"to": CUSTOMER, "text": "Halo", "last_inbound_at": datetime.now(UTC).isoformat()}
    result = make(fake_whatsapp).send(message(payload))
    assert result.status is SendStatus.PERMANENT
    assert "di luar jendela 24 jam" in (result.error or "")
    assert result.raw["error"]["code"] == 131047


@pytest.mark.parametrize("payload, fragment", [
    ({"to": "12", "template": TEMPLATE}, "nomor WhatsApp tidak valid"),
    ({"to": CUSTOMER}, "membutuhkan 'template'"),
    ({"to": CUSTOMER, "template": {"language": "id"}}, "'name'"),
])
def test_unusable_payload_fails_without_a_request(
    fake_whatsapp: FakeWhatsApp, payload: dict[str, Any], fragment: str
) -> None:
    result = make(fake_whatsapp).send(message(payload))
    assert result.status is SendStatus.PERMANENT
    assert fragment in (result.error or "")
    assert fake_whatsapp.requests == []


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize("code, retry_after, account_wide", [
    (130429, 60, True), (131048, 3600, True), (131056, 6, False)])
def test_rate_limits_are_transient(
    fake_whatsapp: FakeWhatsApp, code: int, retry_after: float, account_wide: bool
) -> None:
    fake_whatsapp.enqueue(fake_whatsapp.messages_path, FakeWhatsApp.error(code))
    hooks = MemorySocialHooks()
    result = make(fake_whatsapp, hooks).send(message(template_payload()))
    assert result.status is SendStatus.TRANSIENT
    assert result.retry_after == retry_after
    assert result.affects_account is account_wide
    # the whole number cools down for its own limits, not for one customer's pair limit
    assert (ACCOUNT in hooks.cooldowns) is account_wide


def test_expired_token_needs_a_reconnect_and_stops_the_batch(fake_whatsapp: FakeWhatsApp) -> None:
    channel = make(fake_whatsapp, token="EAAG-expired")
    results = channel.send_batch([message(template_payload(), n) for n in range(3)])
    assert [r.status for r in results] == [SendStatus.AUTH] * 3
    assert results[0].raw["error"]["code"] == 190
    assert results[1].raw["not_attempted"] is True
    assert len(fake_whatsapp.requests) == 1


def test_undeliverable_number_fails_alone(fake_whatsapp: FakeWhatsApp) -> None:
    fake_whatsapp.undeliverable.add("6281111111111")
    batch = [message(template_payload(to="6281111111111"), 1), message(template_payload(), 2)]
    bad, good = make(fake_whatsapp).send_batch(batch)
    assert bad.status is SendStatus.PERMANENT and not bad.affects_account
    assert "tidak dapat dikirim ke nomor ini" in (bad.error or "")
    assert good.ok


@pytest.mark.parametrize("template, code", [
    ({"name": "tidak_ada", "language": {"code": "id"}}, 132001),
    ({"name": "promo_umkm", "language": {"code": "id"}, "components": []}, 132000),
])
def test_template_problems_are_permanent(
    fake_whatsapp: FakeWhatsApp, template: dict[str, Any], code: int
) -> None:
    result = make(fake_whatsapp).send(message({"to": CUSTOMER, "template": template}))
    assert result.status is SendStatus.PERMANENT
    assert result.raw["error"]["code"] == code


@pytest.mark.parametrize("reply, status", [
    (FakeWhatsApp.error(131021), SendStatus.PERMANENT),
    (FakeWhatsApp.error(131051), SendStatus.PERMANENT),
    (FakeWhatsApp.error(131000), SendStatus.TRANSIENT),
    (Reply(503, b"Service Unavailable"), SendStatus.TRANSIENT),
    (FakeWhatsApp.error(200), SendStatus.AUTH),
])
def test_other_codes_map_to_the_error_tree(
    fake_whatsapp: FakeWhatsApp, reply: Reply, status: SendStatus
) -> None:
    fake_whatsapp.enqueue(fake_whatsapp.messages_path, reply)
    result = make(fake_whatsapp).send(message(template_payload()))
    assert result.status is status
    assert result.raw["http_status"] == reply.status


def test_unreachable_api_is_transient_for_the_account(fake_whatsapp: FakeWhatsApp) -> None:
    channel = make(fake_whatsapp)
    fake_whatsapp.stop()
    result = channel.send(message(template_payload()))
    assert result.status is SendStatus.TRANSIENT and result.affects_account


def test_share_kit_mode_is_not_this_adapter(fake_whatsapp: FakeWhatsApp) -> None:
    credentials = AccountCredentials(ACCOUNT, PHONE_NUMBER_ID, ACCESS_TOKEN)
    with pytest.raises(ConfigurationError, match="share_kit"):
        WhatsAppChannel(credentials, hooks=MemorySocialHooks(), mode="share_kit")


def test_registry_resolves_whatsapp() -> None:
    assert get_adapter_class("whatsapp") is WhatsAppChannel


# --------------------------------------------------------------------------- opt-out


@pytest.mark.parametrize("text", [
    "STOP", "stop", " Stop! ", "S T O P", "BERHENTI", "berhenti ya kak", "Unsub", "UNSUBSCRIBE",
    "berhenti berlangganan", "Berhenti   BERLANGGANAN.", "BerhentiBerlangganan",
    "jangan kirim lagi", "Tolong jangan kirim lagi ya, terima kasih", "stop promosi",
    "batal langganan", "opt-out", "please stop", "Remove me from this list",
])
def test_opt_out_keywords_are_recognised(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", [
    "", "   ", "Halo kak, masih ada stok madu?", "Harga stop kontak berapa?",
    "Jangan berhenti berkarya, UMKM TTS hebat!", "Saya mau pesan 2 selendang",
    "Kirim lagi katalognya dong", "stopwatch",
])
def test_ordinary_messages_are_not_opt_outs(text: str) -> None:
    assert not is_opt_out(text)


# --------------------------------------------------------------------------- webhooks


def webhook(messages: list[dict[str, Any]] | None = None,
            statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6238012345", "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages is not None:
        value["contacts"] = [{"profile": {"name": "Maria Tefa"}, "wa_id": CUSTOMER}]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA-ID", "changes": [{"field": "messages", "value": value}]}]}


def test_webhook_inbound_messages_are_parsed_with_opt_out() -> None:
    body = webhook(messages=[
        {"from": CUSTOMER, "id": "wamid.IN1", "timestamp": "1764583200", "type": "text",
         "text": {"body": "BERHENTI"}},
        {"from": CUSTOMER, "id": "wamid.IN2", "timestamp": "1764583260", "type": "button",
         "button": {"payload": "STOP_PROMO", "text": "Stop promosi"}},
        {"from": CUSTOMER, "id": "wamid.IN3", "timestamp": "1764583320", "type": "text",
         "text": {"body": "Madu masih ada?"}},
        {"from": CUSTOMER, "id": "wamid.IN4", "timestamp": "1764583380", "type": "image",
         "image": {"id": "MEDIA", "mime_type": "image/jpeg"}},
    ])
    events = parse_webhook(body)
    assert [(e.kind, e.wa_id, e.message_id, e.text, e.opt_out) for e in events] == [
        ("message", CUSTOMER, "wamid.IN1", "BERHENTI", True),
        ("message", CUSTOMER, "wamid.IN2", "Stop promosi", True),
        ("message", CUSTOMER, "wamid.IN3", "Madu masih ada?", False),
        ("message", CUSTOMER, "wamid.IN4", None, False),
    ]
    first = events[0]
    assert first.timestamp == datetime(2025, 12, 1, 10, 0, tzinfo=UTC)
    assert first.profile_name == "Maria Tefa" and first.phone_number_id == PHONE_NUMBER_ID


def test_webhook_status_updates_are_parsed() -> None:
    body = webhook(statuses=[
        {"id": "wamid.OUT1", "status": "delivered", "timestamp": "1764583200",
         "recipient_id": CUSTOMER},
        {"id": "wamid.OUT1", "status": "read", "timestamp": "1764583300", "recipient_id": CUSTOMER},
        {"id": "wamid.OUT2", "status": "failed", "timestamp": "1764583400",
         "recipient_id": CUSTOMER, "errors": [{"code": 131047, "title": "Re-engagement message"}]},
    ])
    events = parse_webhook(body)
    assert [(e.kind, e.message_id, e.status) for e in events] == [
        ("status", "wamid.OUT1", "delivered"), ("status", "wamid.OUT1", "read"),
        ("status", "wamid.OUT2", "failed")]
    assert events[2].errors[0]["code"] == 131047
    assert all(e.wa_id == CUSTOMER and not e.opt_out for e in events)


@pytest.mark.parametrize("body", [
    {}, {"object": "page", "entry": []},
    {"object": "whatsapp_business_account", "entry": "bukan daftar"},
    {"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "messages", "value": {"messages": [{"from": CUSTOMER, "timestamp": "x"}]}}]}]},
])
def test_odd_webhooks_yield_nothing_instead_of_raising(body: dict[str, Any]) -> None:
    assert parse_webhook(body) == []


def test_webhook_signature_is_verified() -> None:
    body = json.dumps(webhook(messages=[])).encode()
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert verify_signature(body, good, "app-secret")
    assert not verify_signature(body + b" ", good, "app-secret")
    assert not verify_signature(body, None, "app-secret")
    assert not verify_signature(body, good, "")
