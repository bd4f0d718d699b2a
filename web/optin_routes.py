"""``/u/berlangganan-lagi``: a person who withdrew asks for the confirmation link again.

Security rules of this page:

* the answer is the same page, byte for byte, whether or not the address is known or
  withdrawn, so it cannot be used to learn who is on anyone's list;
* a link goes only to the address the person typed and only when that person's own
  withdrawal stands (:func:`engine.delivery.optin_mail.request_from_person`), within the
  per-(customer, channel) limit stored in the database;
* per client address the form is throttled with the atomic counters of
  :mod:`engine.umkm.login_limit` (another key space), so it cannot be used to probe or
  to flood in bulk;
* no cookie session exists under ``/u/``: the form carries a signed, timestamped token
  (itsdangerous, its own purpose) that only this site can mint, checked on ``POST``.

The router is included before :mod:`web.tracking_routes`, whose ``/u/{token}`` would
otherwise take this path for an unsubscribe token.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from engine.common.crypto import derived_key
from engine.common.i18n import t
from engine.db import session_factory
from engine.delivery import optin_mail
from engine.umkm import login_limit
from web.pages import render

router = APIRouter(include_in_schema=False)

PATH = "/u/berlangganan-lagi"
FORM_PURPOSE = "resubscribe-form"
FORM_MAX_AGE = 2 * 3600
PER_CLIENT = 10
NO_STORE = {"Cache-Control": "no-store, private, max-age=0"}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derived_key(FORM_PURPOSE), salt=FORM_PURPOSE)


def form_token() -> str:
    return str(_serializer().dumps("resubscribe"))


def _form_ok(token: str) -> bool:
    try:
        return bool(_serializer().loads(token, max_age=FORM_MAX_AGE) == "resubscribe")
    except (BadSignature, ValueError, TypeError):
        return False


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _page(request: Request, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    ctx = {"title": t("resub.title"), "form_token": form_token(), "error": None,
           "done": False, **context}
    response = render(request, "resubscribe.html", ctx, status_code=status_code)
    response.headers.update(NO_STORE)
    return response


@router.get(PATH)
def resubscribe_form(request: Request) -> Response:
    """The form: one field, the email address or WhatsApp number."""
    return _page(request, {})


@router.post(PATH)
async def resubscribe_post(request: Request) -> Response:
    """Send the link when the person's own withdrawal stands; answer the same anyway."""
    form = await request.form()
    if not _form_ok(str(form.get("csrf_token") or "")):
        return _page(request, {"error": t("resub.form_invalid")}, status_code=403)
    address = str(form.get("address") or "").strip()
    if not address or len(address) > 254:
        return _page(request, {"error": t("resub.address_required")}, status_code=400)
    settings = request.app.state.settings
    client = _client(request)
    key = "optin-self:" + hashlib.sha256(client.encode()).hexdigest()[:40]
    with session_factory(settings)() as db:
        hits = login_limit.bump(db, key)
        db.commit()
        if hits > PER_CLIENT:
            minutes = int(login_limit.WINDOW.total_seconds() // 60)
            response = _page(request, {"error": t("resub.too_many", minutes=minutes)},
                             status_code=429)
            response.headers["Retry-After"] = str(minutes * 60)
            return response
        optin_mail.request_from_person(db, settings, address, client=client)
        db.commit()
    response = render(request, "resubscribe.html",
                      {"title": t("resub.title"), "done": True, "error": None,
                       "form_token": ""})
    response.headers.update(NO_STORE)
    return response
