"""The channel contract: errors, normalized types, the adapter pipeline and the registry.

Everything the engine needs to talk to a channel lives here, so that ``engine`` depends on
one small, stable module and every channel (email, Facebook, a third-party plugin) is
interchangeable behind it.  Nothing here imports from ``engine``: arrows point
``web``/``workers`` -> ``engine`` -> ``channels``.

Errors (one tree, drawn once, after httpx ``_exceptions.py``)::

    Exception
    ├── ChannelError                  a delivery attempt did not succeed
    │   ├── TransientChannelError     retry later (4xx, throttling, dropped connection);
    │   │                             ``retry_after`` seconds when the provider said so;
    │   │                             ``affects_account`` when the whole account is down
    │   ├── PermanentChannelError     fail this ONE delivery (5xx, invalid recipient)
    │   └── AuthChannelError          the account needs reconnecting: pause that account
    └── ConfigurationError            the adapter cannot work at all as configured
                                      (unknown channel, missing SDK, bad option)

``ConfigurationError`` is deliberately outside the ``ChannelError`` tree (django-anymail
does the same): a wrong setting is not a delivery outcome, must never be retried and must
never be recorded as a failed message; it surfaces loudly to whoever configured it.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, cast

from babel.messages.pofile import read_po

from channels.metrics import EngagementMetric
from channels.tokens import TokenExchange, TokenSet, refresh_once

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "umkm.channels"

# User-facing texts of this package live in its own gettext catalog (``channels.po``): the
# engine reads it with its own and renders ``t(exc.code, **exc.params)``; ``str(exc)`` is the
# Indonesian text so that channels stay usable without the engine.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# --------------------------------------------------------------------------- errors


class SendStatus(StrEnum):
    """Outcome of one delivery attempt; a StrEnum so it compares equal to stored strings."""

    SENT = "sent"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AUTH = "auth"


class ConfigurationError(Exception):
    """The adapter cannot work as configured; never a delivery outcome (see module doc).

    ``code`` and ``params`` let the engine translate the message (``engine.common.i18n``);
    ``str()`` is the Indonesian text.
    """

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(_render(code, "id", params))

    def render(self, lang: str = "id") -> str:
        """The message in ``lang`` for callers that do not go through ``engine.common.i18n``."""
        return _render(self.code, lang, self.params)


@cache
def _texts(lang: str) -> dict[str, str]:
    """This package's catalog for ``lang``: msgid -> text (the ``.po`` source is the truth)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "channels.po"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id and m.string}


def _render(code: str, lang: str, params: Mapping[str, Any]) -> str:
    text = _texts(lang).get(code) or _texts("id")[code]
    return text.format(**params)


class ChannelError(Exception):
    """A delivery attempt did not succeed; ``raw`` keeps what the provider answered."""

    # A bare ChannelError carries no verdict; transient lets the engine's attempt cap end
    # it instead of failing a message on an unclassified hiccup.
    status: ClassVar[SendStatus] = SendStatus.TRANSIENT

    def __init__(self, message: str, *, raw: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.raw: dict[str, Any] = dict(raw or {})


class TransientChannelError(ChannelError):
    """Retry later.

    ``retry_after``: seconds the provider asked us to wait (None = engine backoff).
    ``affects_account``: the failure is not about this message but the whole account or
    server (connection refused, page throttled): the rest of the batch for the same
    account is answered ``transient`` without being attempted.
    """

    def __init__(
        self,
        message: str,
        *,
        raw: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        affects_account: bool = False,
    ) -> None:
        super().__init__(message, raw=raw)
        self.retry_after = retry_after
        self.affects_account = affects_account


class PermanentChannelError(ChannelError):
    """This one delivery cannot succeed (bad recipient, rejected content): fail it alone."""

    status: ClassVar[SendStatus] = SendStatus.PERMANENT


class AuthChannelError(ChannelError):
    """The account's credentials stopped working: pause the account, keep the deliveries."""

    status: ClassVar[SendStatus] = SendStatus.AUTH


# --------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One delivery handed to a channel, already rendered.

    ``payload``: for email the complete RFC 5322 message as bytes (with ``envelope_from``
    as the SMTP envelope sender); for social channels a JSON-able dict.
    ``message_id``: stable per delivery, so a retry is recognisable as the same message.
    ``account``: which sending account (social account key, SMTP relay); failures that
    affect an account pause only the messages of that account.
    ``crlf_only``: the caller guarantees an email payload ends every line with CRLF
    (:mod:`engine.message.mime` builds them so), which spares the SMTP channel its bare-LF
    check, two passes over every message; leave it False for bytes from elsewhere.
    ``no_leading_dots``: the caller guarantees that no line of an email payload starts
    with ``.`` (:mod:`engine.message.mime` writes such a character as ``=2E``), so the
    SMTP channel need not search the message for lines to dot-stuff.
    """

    delivery_id: int
    recipient: str
    payload: bytes | Mapping[str, Any]
    message_id: str = ""
    envelope_from: str = ""
    account: str = ""
    crlf_only: bool = False
    no_leading_dots: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    """The normalized outcome of one delivery; ``raw`` keeps the provider's own answer."""

    delivery_id: int
    status: SendStatus
    provider_id: str | None = None
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None
    # True when the failure concerns the whole account (auth, server down): the engine
    # pauses that account instead of counting the failure against the message.
    affects_account: bool = False

    @property
    def ok(self) -> bool:
        return self.status is SendStatus.SENT

    @property
    def held_back(self) -> bool:
        """Never tried: its account had just failed as a whole, or is cooling down. Such a
        message waits without spending one of its attempts."""
        return bool(self.raw.get("not_attempted") or self.raw.get("cooling_down"))


@dataclass(frozen=True, slots=True)
class AccountCredentials:
    """A social account as the engine hands it to an adapter (tokens already decrypted).

    ``key`` is the engine's name for the account (``facebook:dinas``, ``tiktok:biz-12``);
    ``external_id`` the provider's id (Page id, IG user id, TikTok open_id, WhatsApp
    phone-number id). Never log this object: ``repr`` hides the tokens.
    """

    key: str
    external_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class SocialHooks(Protocol):
    """What a social adapter may ask of the engine while it works on one delivery.

    ``checkpoint`` persists provider state (an Instagram container id, a TikTok
    publish_id) in the engine's own transaction *before* the next irreversible step, so a
    worker killed in between resumes from it instead of publishing twice;
    ``load_state`` returns what an earlier attempt checkpointed. ``store_tokens`` saves a
    refreshed access token together with the rotated refresh token atomically.
    ``refresh_tokens`` serializes refreshes per account across workers (see
    :func:`refresh_once`): ``exchange`` runs at most once per rotation, under a lock, and
    the new set is stored before the lock is released.
    ``cool_down`` stops every call on an account until the time passes (throttling).
    """

    def checkpoint(self, delivery_id: int, state: Mapping[str, Any]) -> None: ...

    def load_state(self, delivery_id: int) -> Mapping[str, Any]: ...

    def store_tokens(self, account_key: str, access_token: str, refresh_token: str | None,
                     expires_at: datetime | None) -> None: ...

    def refresh_tokens(self, account_key: str, stale_refresh_token: str,
                       exchange: TokenExchange) -> TokenSet: ...

    def cool_down(self, account_key: str, seconds: float, reason: str) -> None: ...


class MemorySocialHooks:
    """In-memory :class:`SocialHooks` for adapter tests and the sandbox."""

    def __init__(self) -> None:
        self.state: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, tuple[str, str | None, datetime | None]] = {}
        self.cooldowns: dict[str, tuple[float, str]] = {}
        self._refreshing = threading.Lock()

    def checkpoint(self, delivery_id: int, state: Mapping[str, Any]) -> None:
        self.state.setdefault(delivery_id, {}).update(state)

    def load_state(self, delivery_id: int) -> Mapping[str, Any]:
        return dict(self.state.get(delivery_id, {}))

    def store_tokens(self, account_key: str, access_token: str, refresh_token: str | None,
                     expires_at: datetime | None) -> None:
        self.tokens[account_key] = (access_token, refresh_token, expires_at)

    def refresh_tokens(self, account_key: str, stale_refresh_token: str,
                       exchange: TokenExchange) -> TokenSet:
        """One process-wide lock stands in for the database's row lock."""
        with self._refreshing:
            stored = self.tokens.get(account_key)
            tokens, fresh = refresh_once(TokenSet(*stored) if stored else None,
                                         stale_refresh_token, exchange)
            if fresh:
                self.store_tokens(account_key, *tokens)
            return tokens

    def cool_down(self, account_key: str, seconds: float, reason: str) -> None:
        self.cooldowns[account_key] = (seconds, reason)


# The payload dict every social adapter receives in ``OutboundMessage.payload``:
#   caption: str            rendered text of the post (templates/social/*.j2)
#   media_url: str | None   public URL of the photo/video (Instagram/TikTok pull it)
#   media_type: "image" | "video" | None
#   link: str | None        tracked link to the product page (Facebook link posts)
#   product_id, business_id: int | None   attribution, echoed back in SendResult.raw
#   whatsapp only: to (E.164 digits), template {name, language, components}, text
SOCIAL_PAYLOAD_KEYS = ("caption", "media_url", "media_type", "link", "product_id",
                       "business_id", "to", "template", "text")


class ChannelKind(StrEnum):
    """What a channel carries, which decides how the engine plans and sends for it."""

    EMAIL = "email"  # a rendered RFC 5322 message per recipient
    POST = "post"  # one public post per product or campaign, on an account
    MESSAGE = "message"  # a direct message to a customer who consented (WhatsApp)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can carry; the engine checks campaigns against it at validate time.

    ``max_batch`` is the largest batch the dispatcher should hand over at once;
    ``rate_per_second`` is honoured by :meth:`ChannelAdapter.send_batch` itself.
    ``kind`` and ``label`` let the registry answer "which channels post" and "what do
    people call it" (:mod:`channels.registry`), so nobody keeps a list of channel names;
    a plugin that declares neither is a post platform named by its registry name.
    """

    media_types: frozenset[str] = frozenset({"text"})
    max_text_length: int | None = None
    max_batch: int = 100
    rate_per_second: float | None = None
    metrics: bool = False
    # None: a stand-in with no channel of its own (the sandbox), never listed by kind.
    kind: ChannelKind | None = ChannelKind.POST
    label: str = ""

    def check(
        self, channel: str, *, media_type: str | None = None, text: str | None = None
    ) -> None:
        """Raise :class:`ConfigurationError` for content this channel cannot carry.

        Unsupported features fail loudly before launch instead of silently dropping.
        """
        if media_type is not None and media_type not in self.media_types:
            raise ConfigurationError("channel.unsupported", name=channel, feature=media_type)
        limit = self.max_text_length
        if text is not None and limit is not None and len(text) > limit:
            raise ConfigurationError(
                "channel.unsupported",
                name=channel,
                feature=f"teks lebih dari {limit} karakter ({len(text)})",
            )


# --------------------------------------------------------------------------- adapter

PayloadT = TypeVar("PayloadT")
ResponseT = TypeVar("ResponseT")

# Exceptions from ``build_payload`` that mean "this message's data is unusable": nothing
# was sent yet, so failing that one message is always safe.  Anything else (a bug, a
# Celery time limit) propagates instead of being mistaken for a verdict on a recipient.
_BAD_DATA = (ValueError, TypeError, LookupError, AttributeError)


class ChannelAdapter(ABC, Generic[PayloadT, ResponseT]):
    """Base class of every channel; it owns the fixed pipeline, subclasses fill the steps.

    Per message: :meth:`build_payload` -> :meth:`transmit` -> :meth:`parse`, and the
    errors raised by any step become a :class:`SendResult` status, so one bad recipient
    fails alone and the batch goes on.  After an :class:`AuthChannelError` (or a
    transient error with ``affects_account``) the remaining messages of that account
    are not attempted.  ``transmit`` must translate its transport's errors into
    ``ChannelError``; an exception it cannot name means the outcome is unknown:
    :meth:`send` lets it escape, :meth:`send_batch` stops that account (see
    :meth:`_unexpected`) so the results of messages already sent are never lost.

    An adapter owns its session/connection: :meth:`open` / :meth:`close` (or ``with``).
    Instances are not thread-safe; use one per worker task.
    """

    name: str = ""
    capabilities: Capabilities = Capabilities()
    # The keys of ``from_options`` this channel's constructor takes as keywords.
    option_names: ClassVar[tuple[str, ...]] = ()
    # class-level defaults: a plugin that forgets ``super().__init__()`` still works
    _opened: bool = False
    _last_send: float = 0.0

    def __init__(self) -> None:
        self._opened = False
        self._last_send = 0.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     credentials: AccountCredentials | None = None,
                     hooks: SocialHooks | None = None) -> Self:
        """Build the adapter from its settings and the account it sends as.

        The engine builds every adapter through this one call (``engine.outbox.adapters``)
        and each channel decides which option goes where, so adding a channel never adds
        a branch to the engine.  ``options`` are the channel's own settings in its own
        words (secrets already unwrapped; keys not in :attr:`option_names` are ignored).
        The default is the account contract of the social channels and of plugins,
        ``cls(credentials, hooks=hooks, **options)``: a plugin (no ``option_names``)
        reads its own options from its account (``credentials.extra``).
        """
        build: Any = cls
        return cast(Self, build(require_account(cls.name, credentials),
                                hooks=hooks or MemorySocialHooks(),
                                **pick(options, *cls.option_names)))

    # -- lifecycle ------------------------------------------------------------------
    def open(self) -> None:
        """Acquire resources; subclasses extend it (connections may still be lazy)."""
        self._opened = True

    def close(self) -> None:
        """Release resources; safe to call twice."""
        self._opened = False

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- steps the subclasses implement ------------------------------------------------
    @abstractmethod
    def build_payload(self, message: OutboundMessage) -> PayloadT:
        """Turn the normalized message into what the transport sends; validate here."""

    @abstractmethod
    def transmit(self, message: OutboundMessage, payload: PayloadT) -> ResponseT:
        """Send it; raise a ``ChannelError`` subclass for every failure you can name."""

    @abstractmethod
    def parse(self, message: OutboundMessage, response: ResponseT) -> SendResult:
        """Read the provider's answer into a :class:`SendResult` (raise if it is an error)."""

    def fetch_metrics(self, provider_post_ids: Sequence[str]) -> list[EngagementMetric]:
        """Read engagement of published posts; channels with ``capabilities.metrics``."""
        raise ConfigurationError("channel.unsupported", name=self.name, feature="metrics")

    # -- the pipeline ---------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Run the pipeline for one message; never raises a ``ChannelError``."""
        if not self._opened:
            self.open()
        try:
            payload = self.build_payload(message)
        except ChannelError as exc:
            return self._result_from_error(message, exc)
        except _BAD_DATA as exc:
            log.warning("channel %s: delivery %s unusable: %r", self.name, message.delivery_id, exc)
            return SendResult(
                message.delivery_id,
                SendStatus.PERMANENT,
                error=f"pesan tidak dapat disusun: {exc}",
                raw={"exception": type(exc).__name__},
            )
        self._pace()
        try:
            response = self.transmit(message, payload)
            return self.parse(message, response)
        except ChannelError as exc:
            return self._result_from_error(message, exc)

    def send_batch(self, messages: Iterable[OutboundMessage],
                   gate: SendGate | None = None) -> list[SendResult]:
        """Send every message, in order, one result each (same order as the input).

        ``gate`` is asked before each message (the engine checks its lease, a pause, a
        cancel, the send window, a shutdown): a reason from it stops the batch there,
        and that message and the rest come back :func:`stopped` (never tried, no attempt
        spent), except :data:`LEASE_LOST`, which skips only that one message.
        """
        results: list[SendResult] = []
        stopped: dict[str, SendResult] = {}  # account -> the failure that stopped it
        halted: str | None = None
        for message in messages:
            cause = stopped.get(message.account)
            if cause is not None:
                results.append(_not_attempted(message, cause))
                continue
            if halted is None and gate is not None:
                reason = gate(message)
                if reason == LEASE_LOST:
                    results.append(stopped_result(message, LEASE_LOST))
                    continue
                halted = reason
            if halted is not None:
                results.append(stopped_result(message, halted))
                continue
            try:
                result = self.send(message)
            except Exception as exc:
                if isinstance(exc, ConfigurationError) and not results:
                    raise  # nothing was sent yet: surface the setting loudly
                result = self._unexpected(message, exc)
            results.append(result)
            if result.affects_account:
                stopped[message.account] = result
        return results

    def _unexpected(self, message: OutboundMessage, exc: Exception) -> SendResult:
        """An exception no step could name, inside a batch.

        Raising would lose the results of the messages already sent (and send them again
        on retry), so the batch stops for this account instead: the in-flight message
        is ``transient`` with ``outcome_unknown`` (it may have gone out), the rest of the
        account is not attempted, and the engine's attempt cap ends a persistent bug.
        A Celery soft time limit lands here too and ends the batch promptly.
        """
        log.exception("channel %s: unexpected error on delivery %s", self.name, message.delivery_id)
        return SendResult(
            message.delivery_id,
            SendStatus.TRANSIENT,
            error=f"galat tak terduga di kanal {self.name}: {exc!r}",
            raw={"exception": type(exc).__name__, "outcome_unknown": True},
            affects_account=True,
        )

    @staticmethod
    def _result_from_error(message: OutboundMessage, exc: ChannelError) -> SendResult:
        retry_after = None
        affects_account = isinstance(exc, AuthChannelError)
        if isinstance(exc, TransientChannelError):
            retry_after = exc.retry_after
            affects_account = exc.affects_account
        return SendResult(
            message.delivery_id,
            exc.status,
            error=exc.message,
            raw=dict(exc.raw),
            retry_after=retry_after,
            affects_account=affects_account,
        )

    def _pace(self) -> None:
        """Keep to ``capabilities.rate_per_second`` within this process."""
        rate = self.capabilities.rate_per_second
        if not rate:
            return
        wait = self._last_send + 1.0 / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_send = time.monotonic()


def require_account(channel: str, credentials: AccountCredentials | None) -> AccountCredentials:
    """The account an adapter sends as; one built without it could only fail later."""
    if credentials is None:
        raise ConfigurationError("channel.no_account", name=channel)
    return credentials


def pick(options: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The ``options`` among ``names`` that are given, as keyword arguments.

    ``from_options`` passes on only what was set, so a constructor's defaults stay the
    one place each default is written.
    """
    return {name: options[name] for name in names if name in options}


# Asked before each message of a batch: None to send it, or why the batch stops there.
SendGate = Callable[[OutboundMessage], "str | None"]
LEASE_LOST = "lease_lost"  # this message is no longer the caller's to send (only it)


def stopped_result(message: OutboundMessage, reason: str) -> SendResult:
    """The answer for a message the gate kept back: never tried, so no attempt spent."""
    return SendResult(
        message.delivery_id,
        SendStatus.TRANSIENT,
        error=f"tidak dicoba: {reason}",
        raw={"not_attempted": True, "stopped": reason},
    )


def _not_attempted(message: OutboundMessage, cause: SendResult) -> SendResult:
    """The answer for a message skipped because its account just failed as a whole."""
    return SendResult(
        message.delivery_id,
        cause.status,
        error=f"tidak dicoba, akun dijeda: {cause.error}",
        raw={"not_attempted": True, "cause_delivery_id": cause.delivery_id},
        retry_after=cause.retry_after,
        affects_account=True,
    )
