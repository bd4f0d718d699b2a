"""Signed tracking tokens, UTM tagging and tracked links (opens, clicks, unsubscribes).

Why signed tokens instead of database ids in URLs: the web app answers ``/t/o/<token>``,
``/t/c/<token>`` and ``/u/<token>`` without trusting the visitor; a token cannot be
forged or edited to unsubscribe somebody else or to inflate another UMKM's clicks.

Token layout (before base64url without padding)::

    kind (1 byte) | body (big-endian unsigned ints, optional UTF-8 channel) | HMAC-SHA256[:16]

    kind 1 click        body = delivery_id (8) + link_id (8)
    kind 2 open         body = delivery_id (8)
    kind 3 unsubscribe  body = delivery_id (8)
    kind 4 unsubscribe  body = customer_id (8) + channel (UTF-8, 1..32 bytes)

The MAC covers kind and body with the key ``derived_key("tracking")``, so a token of
one kind can never be replayed as another.  Every malformed input raises
:class:`InvalidToken` and nothing else: the web routes turn that into a 404.

Links: a :class:`RunTracker` (one per campaign run and process) maps ``(url, product)``
to a :class:`TrackedLink` row through a :class:`LinkRegistry` (database or in-memory),
remembering each link so a run creates it once; :meth:`RunTracker.for_delivery` gives
the per-recipient :class:`DeliveryTracker` whose ``track``/``open_pixel`` the email
templates call.  :class:`PreviewTracker` produces the same UTM-tagged targets without
tokens or database, for previews and ``campaign validate``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.common.crypto import derived_key
from engine.models import TrackedLink

TokenKind = Literal["click", "open", "unsubscribe"]

_MAC_LEN = 16
_KIND_CLICK = 1
_KIND_OPEN = 2
_KIND_UNSUB_DELIVERY = 3
_KIND_UNSUB_CUSTOMER = 4
_U64 = struct.Struct(">Q")
_U64X2 = struct.Struct(">QQ")
_MAX_CHANNEL_BYTES = 32
_MAX_TOKEN_CHARS = 200
_KINDS_FOR: dict[str, frozenset[int]] = {
    "click": frozenset({_KIND_CLICK}),
    "open": frozenset({_KIND_OPEN}),
    "unsubscribe": frozenset({_KIND_UNSUB_DELIVERY, _KIND_UNSUB_CUSTOMER}),
}


class InvalidToken(Exception):
    """A tracking token that is tampered, truncated, of another kind or plain garbage."""


@dataclass(frozen=True, slots=True)
class TokenData:
    """What a verified token says; unused fields are ``None``."""

    kind: TokenKind
    delivery_id: int | None = None
    link_id: int | None = None
    customer_id: int | None = None
    channel: str | None = None


@lru_cache(maxsize=4)
def _keyed_hmac(key: bytes) -> hmac.HMAC:
    # Copying a keyed HMAC skips the key schedule: ~1.5 µs instead of ~2.5 µs per token,
    # and a campaign render makes several tokens per recipient.
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(payload: bytes) -> bytes:
    mac = _keyed_hmac(derived_key("tracking")).copy()
    mac.update(payload)
    return mac.digest()[:_MAC_LEN]


def _seal(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload + _mac(payload)).rstrip(b"=").decode("ascii")


def _check_id(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise ValueError(f"{what} must be an integer in [0, 2**64), got {value!r}")
    return value


def _click_prefix(delivery_id: int) -> bytes:
    """The part of a click token that is the same for all links of one delivery."""
    return bytes([_KIND_CLICK]) + _U64.pack(_check_id(delivery_id, "delivery_id"))


def _click_token_after(prefix: bytes, link_id: int) -> str:
    return _seal(prefix + _U64.pack(_check_id(link_id, "link_id")))


def make_click_token(delivery_id: int, link_id: int) -> str:
    return _click_token_after(_click_prefix(delivery_id), link_id)


def make_open_token(delivery_id: int) -> str:
    return _seal(bytes([_KIND_OPEN]) + _U64.pack(_check_id(delivery_id, "delivery_id")))


def make_unsubscribe_token(
    delivery_id: int | None = None, *, customer_id: int | None = None, channel: str | None = None
) -> str:
    """Per delivery (email one-click) or per customer + channel (WhatsApp, preferences)."""
    if delivery_id is not None:
        if customer_id is not None or channel is not None:
            raise ValueError("give either delivery_id or customer_id + channel, not both")
        body = _U64.pack(_check_id(delivery_id, "delivery_id"))
        return _seal(bytes([_KIND_UNSUB_DELIVERY]) + body)
    if customer_id is None or not channel:
        raise ValueError("an unsubscribe token needs delivery_id or customer_id + channel")
    raw_channel = channel.encode("utf-8")
    if len(raw_channel) > _MAX_CHANNEL_BYTES:
        raise ValueError(f"channel name too long: {channel!r}")
    body = _U64.pack(_check_id(customer_id, "customer_id")) + raw_channel
    return _seal(bytes([_KIND_UNSUB_CUSTOMER]) + body)


def _unseal(token: str) -> bytes:
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        raise InvalidToken("token kosong atau terlalu panjang")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error) as exc:  # non-ASCII, bad alphabet or length
        raise InvalidToken("token bukan base64url") from exc
    # Canonical encoding only: a second spelling of the same bytes is not accepted.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken("token tidak kanonik")
    if len(raw) < 1 + _MAC_LEN:
        raise InvalidToken("token terlalu pendek")
    payload, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
    if not hmac.compare_digest(mac, _mac(payload)):
        raise InvalidToken("tanda tangan token tidak cocok")
    return payload


def _decode(kind_byte: int, body: bytes) -> TokenData:
    if kind_byte == _KIND_CLICK and len(body) == _U64X2.size:
        delivery_id, link_id = _U64X2.unpack(body)
        return TokenData("click", delivery_id=delivery_id, link_id=link_id)
    if kind_byte == _KIND_OPEN and len(body) == _U64.size:
        return TokenData("open", delivery_id=_U64.unpack(body)[0])
    if kind_byte == _KIND_UNSUB_DELIVERY and len(body) == _U64.size:
        return TokenData("unsubscribe", delivery_id=_U64.unpack(body)[0])
    if kind_byte == _KIND_UNSUB_CUSTOMER and _U64.size < len(body) <= _U64.size + 32:
        try:
            channel = body[_U64.size:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidToken("kanal token rusak") from exc
        return TokenData("unsubscribe", customer_id=_U64.unpack(body[: _U64.size])[0],
                         channel=channel)
    raise InvalidToken("isi token tidak sesuai jenisnya")


#: Verified tokens remembered per process (the pixel and the click verify one per request).
VERIFIED_TOKENS = 20_000


def parse_token(token: str, kind: TokenKind) -> TokenData:
    """Verify ``token`` and return its content; :class:`InvalidToken` for anything wrong.

    A token that verified is remembered with the key it verified under (a changed
    secret verifies afresh); one that failed is never remembered, so a stream of forged
    tokens costs the full check each time and fills nothing.
    """
    if not isinstance(token, str):
        raise InvalidToken("token bukan teks")
    return _verified(derived_key("tracking"), token, kind)


@lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(key: bytes, token: str, kind: TokenKind) -> TokenData:
    # ``key`` only separates the entries of different secrets; _unseal derives it itself.
    allowed = _KINDS_FOR.get(kind)
    if allowed is None:
        raise InvalidToken(f"jenis token tidak dikenal: {kind!r}")
    payload = _unseal(token)
    if payload[0] not in allowed:
        raise InvalidToken("token untuk keperluan lain")
    return _decode(payload[0], payload[1:])


# --- URLs -------------------------------------------------------------------------------


def click_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/t/c/{token}"


def open_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/t/o/{token}"


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def add_utm(url: str, utm: Mapping[str, str | None]) -> str:
    """Add ``utm_*`` parameters to an http(s) URL, keeping its query and fragment.

    Keys may be given with or without the ``utm_`` prefix.  A parameter the author already
    wrote into the URL wins (it was chosen on purpose); empty values are skipped; other
    schemes (``mailto:``, ``tel:``) come back unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    for key, value in utm.items():
        name = key if key.startswith("utm_") else f"utm_{key}"
        if value and name not in present:
            query.append((name, str(value)))
            present.add(name)
    return urlunsplit(parts._replace(query=urlencode(query)))


def url_hash(url: str) -> str:
    """The key of ``tracked_link`` (``unique(run_id, url_hash)``): SHA-256 of the target."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


# --- link registries --------------------------------------------------------------------


class LinkRegistry(Protocol):
    """Gives the id of the tracked link for ``url`` (the UTM-tagged target) in one run."""

    def link_id(self, url: str, product_id: int | None, business_id: int | None,
                label: str | None = None) -> int: ...


class InMemoryLinkRegistry:
    """For previews and tests: ids are counted in memory, nothing is stored."""

    def __init__(self) -> None:
        self.links: dict[str, tuple[int, str, int | None, int | None, str | None]] = {}
        self._lock = threading.Lock()

    def link_id(self, url: str, product_id: int | None, business_id: int | None,
                label: str | None = None) -> int:
        with self._lock:
            found = self.links.get(url)
            if found is None:
                found = (len(self.links) + 1, url, product_id, business_id, label)
                self.links[url] = found
            return found[0]


class DbLinkRegistry:
    """``tracked_link`` rows of one run, each inserted once and cached in this process.

    It uses its own short transactions (not the caller's): a link row must exist before
    any message carrying its token leaves, whatever happens to the sending transaction.
    Two workers inserting the same link race on ``unique(run_id, url_hash)``; the loser
    reads the winner's row.
    """

    def __init__(self, sessions: sessionmaker[Session], run_id: int) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self._cache: dict[str, int] = {}
        self._lock = threading.Lock()

    def preload(self) -> int:
        """Read every existing link of the run in one query (a resumed run starts warm)."""
        with self.sessions() as session:
            query = select(TrackedLink.url_hash, TrackedLink.id)
            rows = session.execute(query.where(TrackedLink.run_id == self.run_id)).all()
        with self._lock:
            self._cache.update({h: i for h, i in rows})
        return len(rows)

    def link_id(self, url: str, product_id: int | None, business_id: int | None,
                label: str | None = None) -> int:
        digest = url_hash(url)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(digest)
            if cached is None:
                cached = self._cache[digest] = self._fetch_or_insert(
                    digest, url, product_id, business_id, label
                )
            return cached

    def _select(self, session: Session, digest: str) -> int | None:
        return session.execute(
            select(TrackedLink.id).where(
                TrackedLink.run_id == self.run_id, TrackedLink.url_hash == digest
            )
        ).scalar_one_or_none()

    def _fetch_or_insert(self, digest: str, url: str, product_id: int | None,
                         business_id: int | None, label: str | None) -> int:
        with self.sessions() as session:
            existing = self._select(session, digest)
            if existing is not None:
                return existing
            row = TrackedLink(run_id=self.run_id, url=url, url_hash=digest,
                              product_id=product_id, business_id=business_id, label=label)
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                winner = self._select(session, digest)
                if winner is None:  # the conflict was something else (e.g. unknown product)
                    raise
                return winner
            return row.id


# --- trackers (what templates call) ---------------------------------------------------------


def _product_ids(product: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    if not product:
        return None, None
    business = product.get("business") or {}
    business_id = product.get("business_id", business.get("id") if business else None)
    return product.get("id"), business_id


def _utm_content(product_id: int | None, label: str | None) -> str | None:
    if product_id is not None:
        return f"produk-{product_id}"
    return label


class RunTracker:
    """Tracked links of one campaign run: target URL + link id are computed once per link."""

    def __init__(
        self, registry: LinkRegistry, base_url: str, utm: Mapping[str, str | None],
        channel_utm: Callable[[str], Mapping[str, str | None]] | None = None,
    ) -> None:
        if any(char in base_url for char in "&<>\"' "):
            raise ValueError(f"BASE_URL must not contain HTML special characters: {base_url!r}")
        self.registry = registry
        self.base_url = base_url.rstrip("/")
        self.utm = dict(utm)
        self._channel_utm = channel_utm
        self._channels: dict[str, RunTracker] = {}
        self._links: dict[tuple[str, int | None, str | None], int] = {}

    def for_channel(self, channel: str) -> RunTracker:
        """The same run's links tagged with ``channel``'s UTM values.

        Why: a campaign writes ``utm.medium: "{{ channel }}"`` once; a WhatsApp message or
        post must land with ``utm_medium=whatsapp``, not the email default. The target
        differs per channel, so each channel gets its own ``tracked_link`` rows.
        """
        if self._channel_utm is None:
            return self
        found = self._channels.get(channel)
        if found is None:
            found = self._channels[channel] = RunTracker(
                self.registry, self.base_url, self._channel_utm(channel))
        return found

    def link(self, url: str, product: Mapping[str, Any] | None = None,
             label: str | None = None) -> int | None:
        """The link id for ``url`` (``None`` for links that are not tracked, e.g. mailto)."""
        key = (url, product.get("id") if product else None, label)
        found = self._links.get(key)
        if found is None:
            if not url.lower().startswith(("http://", "https://")):
                return None
            product_id, business_id = _product_ids(product)
            target = add_utm(url, {**self.utm, "utm_content": _utm_content(product_id, label)})
            found = self.registry.link_id(target, product_id, business_id, label)
            self._links[key] = found
        return found

    def for_delivery(self, delivery_id: int) -> DeliveryTracker:
        return DeliveryTracker(self, delivery_id)


class DeliveryTracker:
    """Per-recipient tracker: ``track(url, product=p)`` and ``open_pixel()`` for templates.

    The same link in the HTML and the text part gets the same token (memoized): one
    HMAC per distinct link and recipient.
    """

    __slots__ = ("_click_prefix", "_clicks", "_memo", "delivery_id", "run")

    def __init__(self, run: RunTracker, delivery_id: int) -> None:
        self.run = run
        self.delivery_id = delivery_id
        self._memo: dict[tuple[str, int | None, str | None], str] = {}
        self._click_prefix = b""  # kind + delivery id of this recipient's click tokens
        self._clicks = f"{run.base_url}/t/c/"

    def track(self, url: str, product: Mapping[str, Any] | None = None,
              label: str | None = None) -> str:
        key = (url, product.get("id") if product else None, label)
        found = self._memo.get(key)
        if found is None:
            link_id = self.run.link(url, product, label)
            # A tracked URL is base_url (html-safe) + base64url: Markup spares the escaping.
            found = url if link_id is None else Markup(self._clicks + self._click_token(link_id))
            self._memo[key] = found
        return found

    def _click_token(self, link_id: int) -> str:
        """:func:`make_click_token` of this delivery, the same token, with the part that
        is the same for all of the recipient's links packed once (a campaign email
        carries a dozen links)."""
        if not self._click_prefix:
            self._click_prefix = _click_prefix(self.delivery_id)
        return _click_token_after(self._click_prefix, link_id)

    def open_pixel(self) -> Markup:
        src = f"{self.run.base_url}/t/o/{make_open_token(self.delivery_id)}"
        return Markup(  # base_url is html-safe (checked) and tokens are base64url
            f'<img src="{src}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0;" />'
        )

    def unsubscribe_url(self) -> str:
        return f"{self.run.base_url}/u/{make_unsubscribe_token(self.delivery_id)}"


class PreviewTracker:
    """No tokens, no database: links point straight at their UTM-tagged targets."""

    def __init__(self, utm: Mapping[str, str | None] | None = None) -> None:
        self.utm = dict(utm or {})
        self._memo: dict[tuple[str, int | None, str | None], str] = {}

    def track(self, url: str, product: Mapping[str, Any] | None = None,
              label: str | None = None) -> str:
        product_id, _ = _product_ids(product)
        key = (url, product_id, label)
        found = self._memo.get(key)
        if found is None:
            found = add_utm(url, {**self.utm, "utm_content": _utm_content(product_id, label)})
            if len(self._memo) < 10_000:  # previews of huge catalogs must not grow forever
                self._memo[key] = found
        return found

    def open_pixel(self) -> Markup:
        return Markup("")


class Tracker(Protocol):
    """What :func:`engine.message.render.render_email` needs from a tracker."""

    def track(self, url: str, product: Mapping[str, Any] | None = None,
              label: str | None = None) -> str: ...

    def open_pixel(self) -> Markup: ...


# ----------------------------------------------------------------------------- message ids
def message_id_for(delivery_id: int, run_id: int, domain: str) -> str:
    """A Message-ID fixed by (delivery, run, domain): a retried send reuses it (DESIGN §6).

    Receivers and our bounce handling can then recognise a duplicate of an in-flight
    message after a crash instead of counting two mails.
    """
    digest = hashlib.sha256(f"{run_id}:{delivery_id}:{domain}".encode()).hexdigest()[:16]
    return f"<umkm.{run_id}.{delivery_id}.{digest}@{domain}>"
