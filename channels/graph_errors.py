"""Graph API error codes and their verdicts, shared by every Meta product we talk to.

Facebook Pages and Instagram (through :mod:`channels.meta_graph`) and the WhatsApp Cloud
API (:mod:`channels.whatsapp`) answer with the same error object
(``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``) and share
the generic Graph codes below; WhatsApp adds its own 13xxxx codes on top of these
tables instead of keeping a second copy.  No SDK is imported here, so the WhatsApp
adapter does not need facebook-sdk.

Verdicts for Pages and Instagram (DESIGN §7)::

    190, 102, subcodes 458-467 / 492        AuthChannelError (reconnect the account)
    10, 200-299 (a permission is missing)   AuthChannelError (reconnect, granting it)
    4, 17, 32, 613, 341, 80001..            TransientChannelError, whole account, cool-down
    368 (temporarily blocked)               TransientChannelError, whole account
    1, 2, is_transient, HTTP 5xx            TransientChannelError
    100, 506 (duplicate), ..                PermanentChannelError (this post only)

Why a missing permission pauses the account instead of failing the post: every other
post of that account would be refused the same way, so failing them one by one spends a
whole batch (issue 17); once someone reconnects granting the permission, the posts that
waited go out. The WhatsApp adapter treats 10 the same way.

A POST that may have reached Meta without us seeing the answer (read timeout, dropped
connection) raises :class:`OutcomeUnknownError`: callers must check before posting again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from channels.base import (
    AuthChannelError,
    ChannelError,
    PermanentChannelError,
    TransientChannelError,
)

TOKEN_INVALID = 190  # the access token expired or was revoked
APP_THROTTLE = 4  # the app's call budget is spent
INVALID_PARAMETER = 100
PERMISSION_CODES = frozenset(range(200, 300))  # a permission the token lacks

AUTH_CODES = frozenset({102, TOKEN_INVALID})
AUTH_SUBCODES = frozenset({*range(458, 468), 492})
# Rate limiting: app (4), user (17), page (32), custom (613), app limit (341), and the
# Business-Use-Case codes Pages/Instagram answer with (80001-80014).
THROTTLE_CODES = frozenset({APP_THROTTLE, 17, 32, 341, 613, *range(80000, 80015)})
BLOCKED_CODES = frozenset({368})
TRANSIENT_CODES = frozenset({1, 2})
DUPLICATE_POST = 506
PERMISSION_DENIED = 10
PERMANENT_CODES = frozenset({INVALID_PARAMETER, DUPLICATE_POST})

# The SDK puts the token in the query string; requests' exception texts quote the URL.
_TOKEN_IN_TEXT = re.compile(r"(access_token=)[^&\s'\"]+")


def redact(text: str) -> str:
    """Remove access tokens from text that may end up in logs or stored errors."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text)


class OutcomeUnknownError(TransientChannelError):
    """A POST may have been carried out by Meta but we never saw the answer.

    Retrying blindly could publish twice; the adapters look the post up first.
    """


def error_body(payload: object) -> dict[str, Any]:
    """The ``error`` object of a Graph answer, or ``{}`` when it has none."""
    if isinstance(payload, Mapping):
        inner = payload.get("error")
        if isinstance(inner, Mapping):
            return dict(inner)
    return {}


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_graph_error(
    payload: object,
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> ChannelError:
    """Map one Graph error answer to the channel error tree (see the module doc).

    ``retry_after`` is the cool-down already decided for throttling, echoed to the engine.
    """
    error = error_body(payload)
    code = as_int(error.get("code"))
    subcode = as_int(error.get("error_subcode"))
    if error:
        text = str(error.get("message") or "galat Graph API tanpa keterangan")
    else:
        text = str(payload) if isinstance(payload, str) and payload else "jawaban tidak dikenal"
    raw: dict[str, Any] = {"error": error} if error else {"body": redact(str(payload))[:500]}
    if http_status is not None:
        raw["http_status"] = http_status
    message = f"Meta: {redact(text)}" + (f" (kode {code})" if code is not None else "")
    if code in AUTH_CODES or subcode in AUTH_SUBCODES:
        return AuthChannelError(f"{message}; akun perlu dihubungkan ulang", raw=raw)
    if code == PERMISSION_DENIED or code in PERMISSION_CODES:
        return AuthChannelError(
            f"{message}; izin akun kurang, hubungkan ulang dengan izin itu", raw=raw)
    if code in THROTTLE_CODES:
        return TransientChannelError(
            f"{message}; akun sedang dibatasi Meta", raw=raw,
            retry_after=retry_after, affects_account=True,
        )
    if code in BLOCKED_CODES:
        return TransientChannelError(
            f"{message}; akun diblokir sementara", raw=raw, affects_account=True
        )
    if code in TRANSIENT_CODES or error.get("is_transient") is True:
        return TransientChannelError(message, raw=raw)
    if code in PERMANENT_CODES:
        return PermanentChannelError(message, raw=raw)
    if code is None or (http_status is not None and http_status >= 500):
        # No Graph verdict on this post (a 5xx, an HTML page from a proxy, an empty
        # body): worth another try later.
        status = f" HTTP {http_status}" if http_status is not None else ""
        return TransientChannelError(f"{message}{status}", raw=raw)
    return PermanentChannelError(message, raw=raw)
