"""The OAuth ``state`` of the dashboard's connect flows: signed, bound, short-lived, one-time.

No table: the state is ``<nonce>.<issued>.<signature>``, the signature an HMAC (key
derived from the engine secret) over the platform, the nonce, the issue time and the
browser's session id and user. The nonce also goes into a short-lived cookie that the
callback clears, so a state works once, only in the browser that started the flow,
only for the platform it was made for and for :data:`STATE_MAX_AGE` seconds. A forged
or replayed callback (login CSRF: someone else's account connected to the Dinas) is
refused before any code is exchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Request
from fastapi.responses import Response

from engine.common import crypto
from engine.common.crypto import derived_key
from web.auth import web_session

STATE_COOKIE = "umkm_oauth"
STATE_MAX_AGE = 600
COOKIE_PATH = "/dinas/akun-sosial/hubungkan"


def _signature(request: Request, platform: str, nonce: str, issued: str) -> str:
    session = web_session(request)
    message = "|".join((platform, nonce, issued, session.raw_id, str(session.user_id)))
    return hmac.new(derived_key("oauth-state"), message.encode(), hashlib.sha256).hexdigest()


def issue_state(request: Request, response: Response, platform: str) -> str:
    """A new state for ``platform``; its nonce cookie is set on ``response``."""
    nonce, issued = secrets.token_urlsafe(16), str(int(time.time()))
    response.set_cookie(STATE_COOKIE, f"{platform}.{nonce}", max_age=STATE_MAX_AGE,
                        httponly=True, samesite="lax", path=COOKIE_PATH,
                        secure=request.url.scheme == "https")
    return f"{nonce}.{issued}.{_signature(request, platform, nonce, issued)}"


def state_problem(request: Request, platform: str, state: str) -> str | None:
    """``None`` when ``state`` is the one this browser was given, else the catalog key of
    what is wrong (``connect.state.*``)."""
    parts = state.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return "connect.state.bad"
    nonce, issued, signature = parts
    expected = _signature(request, platform, nonce, issued)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "connect.state.bad"
    if not 0 <= time.time() - int(issued) <= STATE_MAX_AGE:
        return "connect.state.expired"
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not hmac.compare_digest(cookie.encode(), f"{platform}.{nonce}".encode()):
        return "connect.state.used"
    return None


def clear_state(response: Response) -> None:
    """Spend the state: its nonce cookie is gone, a replay is refused."""
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)


SEAL_PURPOSE = "oauth-user-token"


def seal(request: Request, secret: str) -> str:
    """``secret`` encrypted for this browser's session, for :data:`STATE_MAX_AGE` seconds
    (the Facebook user token while the admin picks a page: never in the page itself)."""
    stamp = f"{int(time.time())}|{web_session(request).raw_id}|{secret}"
    return crypto.encrypt(stamp, SEAL_PURPOSE)


def unseal(request: Request, sealed: str) -> str:
    """The secret of :func:`seal`, or ``""`` when tampered, expired or another session's."""
    try:
        issued, raw_id, secret = crypto.decrypt(sealed, SEAL_PURPOSE).split("|", 2)
    except ValueError:
        return ""
    fresh = issued.isdigit() and 0 <= time.time() - int(issued) <= STATE_MAX_AGE
    mine = hmac.compare_digest(raw_id.encode(), web_session(request).raw_id.encode())
    return secret if fresh and mine else ""
