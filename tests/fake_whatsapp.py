"""A fake WhatsApp Cloud API (``POST /{version}/{phone-number-id}/messages``) on loopback.

It checks the bearer token (190 when wrong), knows a set of approved templates (132001
for an unknown name/language, 132000 when the body parameter count differs), keeps the
customer service window per customer (131047 for free-form text outside it), refuses
unreachable numbers (131026) and answers with the Graph error shape
``{"error": {"message", "type", "code", "error_data": {"messaging_product", "details"},
"fbtrace_id"}}``. Any other code can be scripted with :meth:`FakeWhatsApp.error`.

Usage::

    def test_x(fake_whatsapp):
        fake_whatsapp.inbound["6281234567890"] = datetime.now(UTC)  # window open
        fake_whatsapp.enqueue(fake_whatsapp.messages_path, FakeWhatsApp.error(130429))
        ... WhatsAppChannel(credentials, hooks=..., base_url=fake_whatsapp.url) ...
        assert fake_whatsapp.sent[0]["template"]["name"] == "promo_umkm"
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fake_http import FakeHTTPServer, Recorded, Reply

API_VERSION = "v23.0"
PHONE_NUMBER_ID = "109876543210"
ACCESS_TOKEN = "EAAG-fake-system-user-token"

TITLES: dict[int, str] = {
    190: "Error validating access token: Session has expired",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131021: "Recipient cannot be sender",
    131051: "Unsupported message type",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    131000: "Something went wrong",
}
HTTP_STATUS: dict[int, int] = {190: 401, 131000: 500, 132001: 404}


@dataclass
class FakeWhatsApp(FakeHTTPServer):
    """State of the fake Cloud API; tests change it directly."""

    tokens: set[str] = field(default_factory=lambda: {ACCESS_TOKEN})
    # approved templates: (name, language code) -> number of body parameters
    templates: dict[tuple[str, str], int] = field(default_factory=lambda: {
        ("promo_umkm", "id"): 2, ("promo_umkm", "en"): 2, ("info_pelatihan", "id"): 0})
    inbound: dict[str, datetime] = field(default_factory=dict)  # last customer message
    undeliverable: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        FakeHTTPServer.__init__(self)
        self._ids = itertools.count(1)

    @property
    def messages_path(self) -> str:
        return f"/{API_VERSION}/{PHONE_NUMBER_ID}/messages"

    @staticmethod
    def error(code: int, details: str = "", status: int | None = None,
              subcode: int | None = None) -> Reply:
        error: dict[str, Any] = {
            "message": f"(#{code}) {TITLES.get(code, 'Error')}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or TITLES.get(
                code, "")},
            "fbtrace_id": "AfakeTraceId",
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        return Reply(status or HTTP_STATUS.get(code, 400), {"error": error})

    def handle(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != self.messages_path:
            return Reply(400, {"error": {"message": "Unsupported post request", "code": 100,
                                         "type": "GraphMethodException"}})
        if request.bearer not in self.tokens:
            return self.error(190, "Session has expired", subcode=463)
        body = request.json() or {}
        to = str(body.get("to") or "")
        if body.get("messaging_product") != "whatsapp" or not to.isdigit():
            return self.error(100, "Invalid parameter")
        if to in self.undeliverable:
            return self.error(131026, "Message Undeliverable.")
        kind = body.get("type")
        if kind == "template":
            problem = self._check_template(body.get("template") or {})
        elif kind == "text":
            last = self.inbound.get(to)
            outside = last is None or datetime.now(UTC) - last > timedelta(hours=24)
            problem = self.error(131047, "Message failed to send because more than 24 hours "
                                 "have passed since the customer last replied.") if outside \
                else None
        else:
            problem = self.error(131051, f"type {kind!r}")
        if problem is not None:
            return problem
        self.sent.append(body)
        wamid = f"wamid.HBgNFAKE{next(self._ids):06d}"
        return Reply(200, {"messaging_product": "whatsapp",
                           "contacts": [{"input": to, "wa_id": to}],
                           "messages": [{"id": wamid, "message_status": "accepted"}]})

    def _check_template(self, template: dict[str, Any]) -> Reply | None:
        key = (template.get("name"), (template.get("language") or {}).get("code"))
        expected = self.templates.get(key)  # type: ignore[arg-type]
        if expected is None:
            return self.error(132001, f"template name ({key[0]}) does not exist in {key[1]}")
        params = sum(len(c.get("parameters") or []) for c in template.get("components") or []
                     if c.get("type") == "body")
        if params != expected:
            return self.error(132000, f"body: expected {expected}, received {params}")
        return None


@pytest.fixture(name="fake_whatsapp")
def fake_whatsapp_fixture() -> Iterator[FakeWhatsApp]:
    server = FakeWhatsApp()
    server.start()
    try:
        yield server
    finally:
        server.stop()
