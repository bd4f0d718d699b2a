"""VERP return paths: ``bounce+<delivery>-<mac>@<bounce domain>`` per message.

Whatever layout a receiving MTA uses for its bounce, it sends it to the envelope sender,
so the address alone names the delivery (and through it the recipient).  The MAC
(``derived_key("verp")``, over the delivery id and the recipient) stops a forged bounce
naming somebody else's delivery: a token that does not verify is ignored.  Lower-case
base32 because some MTAs lower-case local parts on the way back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from engine.common.crypto import derived_key

PREFIX = "bounce"
VERP_RE = re.compile(rf"\b{PREFIX}\+(\d{{1,19}})-([a-z2-7]{{16}})@([A-Za-z0-9.-]{{1,253}})",
                     re.I)


def _mac(delivery_id: int, recipient: str) -> str:
    digest = hmac.new(derived_key("verp"), f"{delivery_id}:{recipient.strip().lower()}"
                      .encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode().lower()


def return_path(delivery_id: int, recipient: str, domain: str) -> str:
    """The envelope sender of one message."""
    return f"{PREFIX}+{delivery_id}-{_mac(delivery_id, recipient)}@{domain}"


def find_token(text: str) -> tuple[int, str] | None:
    """The (delivery id, mac) of the first VERP address in a bounce, unverified."""
    found = VERP_RE.search(text)
    return (int(found.group(1)), found.group(2).lower()) if found else None


def verify(delivery_id: int, mac: str, recipient: str) -> bool:
    return hmac.compare_digest(_mac(delivery_id, recipient), mac.lower())
