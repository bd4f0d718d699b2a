"""``/webhooks/whatsapp``: the WhatsApp Cloud API webhook (opt-outs and the 24-hour window).

``GET`` answers Meta's subscription check: ``hub.mode=subscribe`` with the verify token
configured in ``UMKM_WA_VERIFY_TOKEN`` gets ``hub.challenge`` back as plain text.

``POST`` receives customer messages and delivery statuses. The ``X-Hub-Signature-256``
HMAC of the raw body must match ``UMKM_WA_APP_SECRET`` (Meta signs every webhook with the
app secret); it fails closed: with no secret configured only a sandbox installation
(``SOCIAL_MODE=sandbox``, the default) accepts unsigned posts, because a forged
``BERHENTI`` would otherwise withdraw a real customer's consent. Then every message
opens that customer's 24-hour window and an opt-out keyword (``BERHENTI``, ``STOP``...)
withdraws WhatsApp consent at once (:func:`engine.social.inbound.record_whatsapp_inbound`).
Unknown shapes are acknowledged with 200 and ignored, because Meta keeps retrying a
webhook that fails.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from channels.whatsapp import parse_webhook, verify_signature
from engine.common.i18n import t
from engine.db import session_factory
from engine.social import inbound

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 1024 * 1024


router = APIRouter(tags=["webhook"])


@router.get("/webhooks/whatsapp", summary="Verifikasi langganan webhook WhatsApp",
            response_class=PlainTextResponse,
            responses={403: {"description": "Token verifikasi salah atau belum diatur."}})
def verify_subscription(
    request: Request,
    mode: Annotated[str, Query(alias="hub.mode")] = "",
    token: Annotated[str, Query(alias="hub.verify_token")] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)] = "",
) -> Response:
    expected = request.app.state.settings.whatsapp_verify_token.get()
    if mode == "subscribe" and expected and hmac.compare_digest(token.encode(),
                                                                expected.encode()):
        return PlainTextResponse(challenge)
    return PlainTextResponse(t("wa.hook.bad_verify"), status_code=403)


def signed_as_required(request: Request, body: bytes) -> bool:
    """A valid signature when a secret is set; without one, only in sandbox mode.

    Production without a secret refuses every post (``create_app`` already refuses to
    start that way; this keeps the route closed if it is ever built otherwise).
    """
    settings = request.app.state.settings
    secret = settings.whatsapp_app_secret.get()
    if not secret:
        return not settings.production
    return verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret)


@router.post("/webhooks/whatsapp", summary="Terima pesan dan status WhatsApp",
             responses={200: {"description": "Diterima (pesan dicatat, opt-out diterapkan)."},
                        403: {"description": "Tanda tangan X-Hub-Signature-256 tidak sah."},
                        413: {"description": "Isi terlalu besar."}})
async def receive(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"detail": t("wa.hook.too_large")}, status_code=413)
    if not signed_as_required(request, body):
        return JSONResponse({"detail": t("wa.hook.bad_signature")}, status_code=403)
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):
        payload = None
    events = parse_webhook(payload) if isinstance(payload, dict) else []
    if not events:
        return JSONResponse({"messages": 0, "opt_outs": 0})
    with session_factory(request.app.state.settings)() as session:
        summary = inbound.record_whatsapp_inbound(session, events)
    return JSONResponse({"messages": summary.messages, "opt_outs": summary.opt_outs})
