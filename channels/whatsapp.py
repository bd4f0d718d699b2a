"""WhatsApp Business Cloud API adapter (``cloud_api`` mode) plus webhook helpers.

Two WhatsApp modes exist (DESIGN §7): the Cloud API cannot post into an existing
community group, so the shared group of Pasal 7(2)a gets a *share kit* that staff
forward by hand (:mod:`engine.social.sharekit`); customers who gave WhatsApp consent get
**approved template messages** through this adapter.

Rules this module enforces, and why:

* Business-initiated messages must be approved templates; free-form text is allowed only
  inside the 24-hour customer service window that opens when the customer writes to us.
  The window is checked *before* calling the API (``payload["last_inbound_at"]``), so a
  campaign never even tries a message WhatsApp would refuse (131047).
* Opt-out keywords (``BERHENTI``, ``STOP`` ...) arrive as inbound messages; the web app
  runs :func:`parse_webhook` and :func:`is_opt_out` on each webhook and records the
  withdrawal of consent at once (UU 27/2022), and stores the last inbound time that
  opens the 24-hour window.
* Graph error codes map onto the channel error tree (see :func:`classify_whatsapp_error`):
  the generic Graph codes come from :mod:`channels.graph_errors`, shared with Facebook
  and Instagram; the tables here only add what is WhatsApp's own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from channels.base import (
    AccountCredentials,
    AuthChannelError,
    Capabilities,
    ChannelError,
    ChannelKind,
    ConfigurationError,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    SocialHooks,
    TransientChannelError,
)
from channels.graph_errors import (
    APP_THROTTLE,
    INVALID_PARAMETER,
    PERMISSION_CODES,
    TOKEN_INVALID,
    TRANSIENT_CODES,
    error_body,
)
from channels.http import HttpChannel, nothing_sent

log = logging.getLogger(__name__)

SERVICE_WINDOW = timedelta(hours=24)
MAX_TEXT = 4096  # body of a text message
_E164_DIGITS = re.compile(r"^[1-9]\d{7,14}$")

OUTSIDE_WINDOW_TEXT = (
    "pesan bebas di luar jendela 24 jam: pelanggan belum menulis dalam 24 jam terakhir, "
    "gunakan template yang sudah disetujui"
)

# code -> (seconds to wait, whole account?)  Throughput (130429) and spam (131048) limits
# are per business number; the pair limit (131056) concerns one customer only, so it
# must not pause the rest of the campaign.
_THROTTLE: dict[int, tuple[float, bool]] = {
    APP_THROTTLE: (60.0, True),
    80007: (300.0, True),
    130429: (60.0, True),
    131048: (3600.0, True),
    131056: (6.0, False),
    131049: (24 * 3600.0, False),  # per-user marketing limit: try that customer tomorrow
}
# Unlike a Page, a business number treats 10 (permission denied) as a reconnect.
_AUTH_CODES = frozenset({0, 10, TOKEN_INVALID, 131005})
_TRANSIENT_CODES = TRANSIENT_CODES | {131000, 131016, 131057}
_PERMANENT_TEXTS: dict[int, str] = {
    131047: OUTSIDE_WINDOW_TEXT,
    131026: "pesan tidak dapat dikirim ke nomor ini (bukan pengguna WhatsApp atau memblokir)",
    131021: "nomor penerima sama dengan nomor pengirim",
    131051: "jenis pesan tidak didukung WhatsApp",
    131008: "parameter wajib tidak ada",
    131009: "nilai parameter tidak valid",
    132000: "jumlah parameter tidak cocok dengan template yang disetujui",
    132001: "template tidak ada atau belum disetujui untuk bahasa ini",
    132005: "teks template terlalu panjang setelah diisi",
    132007: "isi template melanggar kebijakan WhatsApp",
    132012: "format parameter tidak cocok dengan template",
    132015: "template dijeda karena kualitasnya rendah",
    132016: "template dinonaktifkan karena kualitasnya rendah",
    INVALID_PARAMETER: "parameter permintaan tidak valid",
}


# --------------------------------------------------------------------------- opt-out

# Whole-message keywords: a short message ("stop", "Berhenti ya") made of these opts out.
_OPT_OUT_WORDS = frozenset({
    "stop", "berhenti", "unsub", "unsubscribe", "optout", "keluar", "batal", "stopp",
    "cancel", "quit", "end", "hentikan",
})
# Phrases specific enough to count anywhere in a longer message.
_OPT_OUT_PHRASES = (
    "berhenti berlangganan", "berhenti langganan", "batal langganan", "batalkan langganan",
    "stop langganan", "stop promo", "stop promosi", "stop kirim", "berhenti kirim",
    "jangan kirim lagi", "jangan kirim pesan lagi", "jangan kirimi saya", "jangan kirim promo",
    "jangan hubungi saya", "hapus nomor saya", "tidak mau menerima", "tidak ingin menerima",
    "unsubscribe", "opt out", "remove me", "do not contact", "dont message", "stop messaging",
    "stop sending",
)
_SHORT_MESSAGE_WORDS = 3
_FILLER = frozenset({"ya", "yah", "dong", "aja", "saja", "please", "pls", "tolong", "mohon",
                     "kak", "min", "saya", "mau", "now", "all"})


def _normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("'", "")
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def is_opt_out(text: str) -> bool:
    """Whether an inbound WhatsApp message withdraws consent (Indonesian or English).

    Case, punctuation and spacing do not matter (``"S T O P!"``, ``"berhenti
    BERLANGGANAN"``). A bare keyword counts only in a short message (``"stop ya kak"``),
    so ``"harga stop kontak berapa?"`` is not an opt-out; the longer phrases count
    anywhere (``"tolong jangan kirim lagi ya"``).
    """
    normalized = _normalize(text)
    if not normalized:
        return False
    compact = normalized.replace(" ", "")
    if compact in _OPT_OUT_WORDS or compact in _COMPACT_PHRASES:
        return True
    padded = f" {normalized} "
    if any(f" {phrase} " in padded for phrase in _OPT_OUT_PHRASES):
        return True
    words = normalized.split()
    meaningful = [w for w in words if w not in _FILLER]
    return len(words) <= _SHORT_MESSAGE_WORDS and bool(meaningful) and all(
        w in _OPT_OUT_WORDS for w in meaningful
    )


_COMPACT_PHRASES = frozenset(p.replace(" ", "") for p in _OPT_OUT_PHRASES)


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One event of a Cloud API webhook: a customer's message or a delivery status.

    ``wa_id`` is the customer's number: the sender (``from``) of a message, the
    recipient of a status. ``message_id`` is the wamid (of the inbound message, or of
    our outbound message the status is about).
    """

    kind: Literal["message", "status"]
    wa_id: str
    timestamp: datetime
    message_id: str
    phone_number_id: str = ""
    text: str | None = None
    message_type: str = ""
    status: str | None = None  # sent | delivered | read | failed
    profile_name: str | None = None
    errors: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def opt_out(self) -> bool:
        return self.kind == "message" and bool(self.text) and is_opt_out(self.text or "")


def parse_webhook(payload: Mapping[str, Any]) -> list[InboundEvent]:
    """Turn a Cloud API webhook body into inbound messages and status updates.

    Unknown shapes are skipped, never raised: Meta retries a webhook that fails, and one
    odd entry must not block the opt-outs in the rest of the batch.
    """
    if payload.get("object") != "whatsapp_business_account":
        return []
    events: list[InboundEvent] = []
    for entry in _dicts(payload.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            events.extend(_value_events(value))
    return events


def _value_events(value: Mapping[str, Any]) -> list[InboundEvent]:
    metadata = _dict(value.get("metadata"))
    phone_number_id = str(metadata.get("phone_number_id") or "")
    names = {
        str(c.get("wa_id")): str(_dict(c.get("profile")).get("name") or "") or None
        for c in _dicts(value.get("contacts"))
    }
    events: list[InboundEvent] = []
    for message in _dicts(value.get("messages")):
        when = _timestamp(message.get("timestamp"))
        sender = str(message.get("from") or "")
        if when is None or not sender:
            continue
        kind = str(message.get("type") or "")
        events.append(InboundEvent(
            kind="message", wa_id=sender, timestamp=when, message_id=str(message.get("id") or ""),
            phone_number_id=phone_number_id, text=_message_text(message), message_type=kind,
            profile_name=names.get(sender), raw=dict(message),
        ))
    for status in _dicts(value.get("statuses")):
        when = _timestamp(status.get("timestamp"))
        if when is None:
            continue
        events.append(InboundEvent(
            kind="status", wa_id=str(status.get("recipient_id") or ""), timestamp=when,
            message_id=str(status.get("id") or ""), phone_number_id=phone_number_id,
            status=str(status.get("status") or ""),
            errors=tuple(_dicts(status.get("errors"))), raw=dict(status),
        ))
    return events


def _message_text(message: Mapping[str, Any]) -> str | None:
    """The words the customer sent: text body, quick-reply button or interactive reply."""
    kind = message.get("type")
    if kind == "text":
        body = _dict(message.get("text")).get("body")
    elif kind == "button":
        body = _dict(message.get("button")).get("text")
    elif kind == "interactive":
        interactive = _dict(message.get("interactive"))
        reply = _dict(interactive.get("button_reply") or interactive.get("list_reply"))
        body = reply.get("title")
    else:
        body = None
    return str(body) if body else None


def verify_signature(body: bytes, signature_header: str | None, app_secret: str) -> bool:
    """Check Meta's ``X-Hub-Signature-256`` of a webhook body (constant-time)."""
    if not signature_header or not signature_header.startswith("sha256=") or not app_secret:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature_header[7:])


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _timestamp(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# --------------------------------------------------------------------------- errors


def classify_whatsapp_error(
    code: int | None, http_status: int, message: str, raw: dict[str, Any]
) -> ChannelError:
    """One Cloud API error -> the channel error tree (without side effects)."""
    detail = f"#{code} {message}".strip() if code is not None else f"HTTP {http_status}"
    if code in _AUTH_CODES or (code is None and http_status in (401, 403)):
        return AuthChannelError(f"akses WhatsApp ditolak; hubungkan ulang akun ({detail})", raw=raw)
    if code is not None and code in _THROTTLE:
        seconds, account_wide = _THROTTLE[code]
        return TransientChannelError(
            f"batas kirim WhatsApp tercapai ({detail})",
            raw=raw, retry_after=seconds, affects_account=account_wide,
        )
    if code is not None and code in _PERMANENT_TEXTS:
        return PermanentChannelError(f"{_PERMANENT_TEXTS[code]} ({detail})", raw=raw)
    if code in _TRANSIENT_CODES or http_status >= 500:
        return TransientChannelError(f"galat sementara WhatsApp ({detail})", raw=raw)
    if code is not None and code in PERMISSION_CODES:
        return AuthChannelError(f"izin WhatsApp tidak cukup; hubungkan ulang akun ({detail})",
                                raw=raw)
    return PermanentChannelError(f"WhatsApp menolak pesan ({detail})", raw=raw)


# --------------------------------------------------------------------------- adapter


class WhatsAppChannel(HttpChannel[dict[str, Any], dict[str, Any]]):
    """Template (and in-window text) messages through ``POST /{phone-number-id}/messages``.

    ``credentials.external_id`` is the WhatsApp phone-number id; the token is a system
    user (or business) token with ``whatsapp_business_messaging``.
    """

    name = "whatsapp"
    capabilities = Capabilities(
        media_types=frozenset({"text", "template", "image"}),
        max_text_length=MAX_TEXT,
        max_batch=100,
        rate_per_second=None,  # 80 msg/s per number: far above what a kabupaten sends
        metrics=False,
        kind=ChannelKind.MESSAGE,
        label="WhatsApp",
    )
    option_names = ("base_url", "api_version", "timeout", "now", "mode")

    def __init__(
        self,
        credentials: AccountCredentials,
        *,
        hooks: SocialHooks,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v23.0",
        http: httpx.Client | None = None,
        mode: str = "cloud_api",
        timeout: float = 30.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(http=http, timeout=timeout)
        if mode != "cloud_api":
            raise ConfigurationError(
                "channel.bad_option", name=self.name,
                detail=f"mode {mode!r}: adapter ini hanya untuk cloud_api; share_kit dibuat "
                "oleh engine.social.sharekit",
            )
        if not credentials.external_id:
            raise ConfigurationError("channel.bad_option", name=self.name,
                                     detail="phone-number id WhatsApp (external_id) kosong")
        self.credentials = credentials
        self.hooks = hooks
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._now = now

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/{self.api_version}/{self.credentials.external_id}/messages"

    # -- pipeline steps ---------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        payload = message.payload
        if not isinstance(payload, Mapping):
            raise PermanentChannelError("payload WhatsApp harus berupa dict")
        to = _recipient(payload.get("to") or message.recipient)
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": to}
        template = payload.get("template")
        if template:
            body.update(type="template", template=_template(template))
            return body
        text = payload.get("text")
        if text:
            self._require_open_window(payload.get("last_inbound_at"))
            text = str(text)
            if len(text) > MAX_TEXT:
                raise PermanentChannelError(f"teks WhatsApp lebih dari {MAX_TEXT} karakter")
            body.update(type="text", text={"preview_url": "https://" in text, "body": text})
            return body
        raise PermanentChannelError("pesan WhatsApp membutuhkan 'template' (atau 'text')")

    def transmit(self, message: OutboundMessage, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.credentials.access_token}"}
        response = self._post(self.endpoint, _transport_error, json=payload, headers=headers)
        try:
            document = response.json()
        except ValueError:
            document = {"body": response.text[:500]}
        if not isinstance(document, dict):
            document = {"body": document}
        if response.is_success and not document.get("error"):
            return document
        raise self._api_error(response.status_code, document)

    def parse(self, message: OutboundMessage, response: dict[str, Any]) -> SendResult:
        messages = _dicts(response.get("messages"))
        wamid = str(messages[0].get("id") or "") if messages else ""
        if not wamid:
            raise PermanentChannelError(
                "WhatsApp tidak mengembalikan id pesan; periksa sebelum mengirim ulang",
                raw={"response": response, "outcome_unknown": True},
            )
        raw: dict[str, Any] = {"response": response}
        if isinstance(message.payload, Mapping):
            raw.update({k: message.payload.get(k) for k in ("product_id", "business_id")})
        return SendResult(message.delivery_id, SendStatus.SENT, provider_id=wamid, raw=raw)

    # -- helpers ----------------------------------------------------------------------
    def _require_open_window(self, last_inbound_at: object) -> None:
        """Free-form text only within 24 hours of the customer's last message."""
        last = _parse_time(last_inbound_at)
        if last is None or self._now() - last > SERVICE_WINDOW:
            raise PermanentChannelError(
                OUTSIDE_WINDOW_TEXT, raw={"last_inbound_at": str(last_inbound_at or "")}
            )

    def _api_error(self, http_status: int, document: dict[str, Any]) -> ChannelError:
        error = error_body(document)
        code = error.get("code")
        code = code if isinstance(code, int) else None
        raw: dict[str, Any] = {"http_status": http_status, "error": error or document}
        exc = classify_whatsapp_error(code, http_status, str(error.get("message") or ""), raw)
        if isinstance(exc, TransientChannelError) and exc.affects_account:
            self.hooks.cool_down(self.credentials.key, exc.retry_after or 60.0, exc.message)
        return exc


def _recipient(value: object) -> str:
    digits = re.sub(r"[\s()+.-]", "", str(value or ""))
    if digits.startswith("0"):  # local Indonesian notation 08xx
        digits = "62" + digits[1:]
    if not _E164_DIGITS.match(digits):
        raise PermanentChannelError(f"nomor WhatsApp tidak valid: {value!r}")
    return digits


def _template(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not value.get("name"):
        raise PermanentChannelError("template WhatsApp membutuhkan 'name'")
    language = value.get("language") or "id"
    if isinstance(language, str):
        language = {"code": language}
    if not isinstance(language, Mapping) or not language.get("code"):
        raise PermanentChannelError("template WhatsApp membutuhkan 'language.code'")
    components = value.get("components") or []
    if not isinstance(components, list):
        raise PermanentChannelError("'components' template WhatsApp harus berupa daftar")
    return {"name": str(value["name"]), "language": {"code": str(language["code"])},
            "components": components}


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _transport_error(exc: httpx.HTTPError) -> ChannelError:
    raw = {"exception": type(exc).__name__}
    if nothing_sent(exc):
        return TransientChannelError(f"tidak dapat terhubung ke WhatsApp: {exc!r}", raw=raw,
                                     affects_account=True)
    # The request may have been accepted: a resend could message the customer twice.
    return PermanentChannelError(
        "hasil pengiriman WhatsApp tidak pasti (koneksi terputus); tidak dikirim ulang",
        raw={**raw, "outcome_unknown": True},
    )
