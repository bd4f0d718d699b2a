"""Confirmed opt-in links: the only way a person's own withdrawal is lifted (issue 13).

A business cannot undo a person's unsubscribe (:func:`engine.customers.consent.
grant_by_business` refuses); the person can, by opening a link the Dinas sends them and
pressing the button on ``/u/konfirmasi/<token>`` (``web.tracking_routes``).  The
token is signed with a key derived from the installation secret (itsdangerous, its
own purpose), names one (customer, channel) and the address it was made for, and
expires after :data:`MAX_AGE`: a forwarded or old link cannot confirm someone else or
a changed address.

Sending the link is the Dinas's job (mail or WhatsApp to that very address, e.g. from
the CLI or by hand); the API never sends it, so a business cannot use it to mail
people who left.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from engine.common.crypto import derived_key, digest
from engine.customers.consent import CHANNELS, address_for
from engine.models import Customer

MAX_AGE = timedelta(days=7)
PATH = "/u/konfirmasi/"
_PURPOSE = "confirm-opt-in"


class InvalidConfirmation(Exception):
    """The token is not ours, names nothing, or has ``expired`` (then the page says so)."""

    def __init__(self, expired: bool = False) -> None:
        self.expired = expired
        super().__init__("expired" if expired else "invalid")


@dataclass(frozen=True)
class Confirmation:
    """Whom a verified token speaks for."""

    customer: Customer
    channel: str
    address: str


def _signer_at(issued_at: datetime | None) -> type[TimestampSigner]:
    """A signer stamping ``issued_at`` (tests mint old tokens); the clock otherwise."""
    if issued_at is None:
        return TimestampSigner
    stamp = int(issued_at.astimezone(UTC).timestamp())

    class _At(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return _At


def _serializer(issued_at: datetime | None = None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derived_key(_PURPOSE), salt=_PURPOSE,
                                  signer=_signer_at(issued_at))


def _address_tag(address: str) -> str:
    """A keyed digest of the address: binds the token without putting it in the URL."""
    return digest(address.lower(), _PURPOSE)[:24]


def make_token(customer: Customer, channel: str, *, issued_at: datetime | None = None) -> str:
    """The signed token for (customer, channel); ``ValueError`` without an address there."""
    address = address_for(customer, channel)
    if channel not in CHANNELS or not address:
        raise ValueError(f"pelanggan {customer.id} tidak punya alamat {channel}")
    payload: dict[str, Any] = {"c": customer.id, "ch": channel, "a": _address_tag(address)}
    return str(_serializer(issued_at).dumps(payload))


def confirmation_url(base_url: str, customer: Customer, channel: str) -> str:
    """The link the Dinas sends to the person (``{base_url}/u/konfirmasi/<token>``)."""
    return base_url.rstrip("/") + PATH + make_token(customer, channel)


def verify(session: Session, token: str, *, max_age: timedelta = MAX_AGE) -> Confirmation:
    """The (customer, channel, address) of a valid token, else :class:`InvalidConfirmation`.

    Why the address is re-checked: the customer's address for the channel must still be
    the one the link was sent to, or the link would confirm a different mailbox.
    """
    try:
        data = _serializer().loads(token, max_age=int(max_age.total_seconds()))
    except SignatureExpired:
        raise InvalidConfirmation(expired=True) from None
    except (BadSignature, ValueError, TypeError):
        raise InvalidConfirmation() from None
    if not isinstance(data, dict):
        raise InvalidConfirmation()
    customer_id, channel, tag = data.get("c"), data.get("ch"), data.get("a")
    if not isinstance(customer_id, int) or channel not in CHANNELS or not isinstance(tag, str):
        raise InvalidConfirmation()
    customer = session.get(Customer, customer_id)
    address = address_for(customer, str(channel)) if customer is not None else None
    if customer is None or not address or \
            not hmac.compare_digest(_address_tag(address), tag):
        raise InvalidConfirmation()
    return Confirmation(customer, str(channel), address)
