"""``POST /webhooks/bounce``: bounces and complaints pushed by a relay or an ESP.

Two bodies are accepted: JSON ``{recipient, type: hard|soft|complaint, message_id?,
diagnostic?}`` (``application/json``) or a raw RFC 3464/5965 report
(``message/rfc822`` or ``multipart/report``), parsed like the bounce mailbox.

Authentication: the shared secret in the ``X-Webhook-Secret`` header must equal the
setting ``bounce_webhook_secret`` (``UMKM_BOUNCE_SECRET`` in the environment or
``.env``); while it is empty the webhook is off (503), so a fresh installation never
accepts unauthenticated suppressions.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, StringConstraints, ValidationError
from sqlalchemy.orm import Session

from engine.common.i18n import t
from engine.config import Settings
from engine.db import session_factory
from engine.engagement import bounces

SECRET_HEADER = "X-Webhook-Secret"
MAX_RAW_BYTES = 2 * 1024 * 1024
RAW_TYPES = ("message/rfc822", "multipart/report")


_Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
_PART = r"[^@\s<>\x00-\x1f\x7f]+"
_ADDRESS = rf"^{_PART}@{_PART}\.{_PART}$"


class BounceIn(BaseModel):
    """A bounce or complaint about one recipient."""

    recipient: Annotated[str, StringConstraints(
        min_length=3, max_length=254, pattern=_ADDRESS)] = Field(
        description="Alamat email penerima yang memantul atau mengeluh.")
    type: Literal["hard", "soft", "complaint"]
    message_id: Annotated[_Text, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Message-ID pesan asli (<umkm.RUN.DELIVERY.hash@domain>).")
    diagnostic: Annotated[_Text, StringConstraints(max_length=1000)] | None = None


class OutcomeOut(BaseModel):
    kind: Literal["hard", "soft", "complaint"]
    action: Literal["suppressed", "counted", "duplicate", "ignored"]
    delivery_id: int | None = None
    reason: str = ""


class BounceResult(BaseModel):
    outcomes: list[OutcomeOut]


class WebhookError(BaseModel):
    detail: str


router = APIRouter(tags=["webhook"])
webhook_secret = APIKeyHeader(name=SECRET_HEADER, auto_error=False,
                              description="Rahasia bersama (UMKM_BOUNCE_SECRET).")


def _session(request: Request) -> Iterator[Session]:
    session = session_factory(request.app.state.settings)()
    try:
        yield session
    finally:
        session.close()


def _error(status: int, key: str, **params: Any) -> JSONResponse:
    return JSONResponse({"detail": t(key, **params)}, status_code=status)


def _authorised(settings: Settings, presented: str | None) -> JSONResponse | None:
    expected = settings.bounce_webhook_secret.get()
    if not expected:
        return _error(503, "bounce.off")
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        return _error(401, "bounce.unauthorized")
    return None


def _to_out(outcomes: list[bounces.Outcome]) -> dict[str, Any]:
    return BounceResult(outcomes=[
        OutcomeOut(kind=o.kind, action=o.action, delivery_id=o.delivery_id, reason=o.reason)
        for o in outcomes]).model_dump()


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BounceIn.model_json_schema()},
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/webhooks/bounce",
    summary="Terima pantulan atau keluhan email",
    response_model=BounceResult,
    openapi_extra=_BODY_DOC,
    responses={
        200: {"description": "Diterapkan (diblokir, dihitung, duplikat atau diabaikan)."},
        401: {"model": WebhookError, "description": "Rahasia webhook salah atau tidak ada."},
        413: {"model": WebhookError, "description": "Isi terlalu besar."},
        415: {"model": WebhookError, "description": "Jenis isi tidak didukung."},
        422: {"description": "Isi tidak sah (JSON atau laporan DSN/ARF)."},
        503: {"model": WebhookError, "description": "Webhook belum diaktifkan."},
    },
)
async def bounce_webhook(
    request: Request,
    db: Session = Depends(_session),
    secret: str | None = Security(webhook_secret),
) -> Any:
    """Apply one bounce or complaint: hard and complaint suppress at once, soft after N."""
    denied = _authorised(request.app.state.settings, secret)
    if denied is not None:
        return denied
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_RAW_BYTES:
        return _error(413, "bounce.too_large")
    if content_type in RAW_TYPES:
        try:
            outcomes = bounces.handle_raw(db, body, source="webhook")
        except bounces.NotAReport as exc:
            return _error(422, "bounce.not_report", reason=str(exc))
    elif content_type == "application/json":
        notice = _json_notice(body)
        outcomes = [bounces.apply_notice(db, notice, source="webhook")]
    else:
        return _error(415, "bounce.media")
    db.commit()
    return _to_out(outcomes)


def _json_notice(body: bytes) -> bounces.Notice:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                       "msg": t("bounce.bad_json"), "input": None}]) from None
    try:
        parsed = BounceIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    return bounces.Notice(kind=parsed.type, recipient=parsed.recipient.lower(),
                          message_id=parsed.message_id, diagnostic=parsed.diagnostic,
                          status="5.0.0" if parsed.type == "hard" else None)
