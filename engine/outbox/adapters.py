"""The one place the engine builds channel adapters.

Every adapter comes from the same three steps: the registry resolves the channel's class
(``channels.registry``, lazy import, "did you mean" for a typo), the channel's settings
group is read (:meth:`engine.config.Settings.channel_settings`, secrets unwrapped at the
hand-over), and the class builds itself from those options and the account
(``ChannelAdapter.from_options``).  So adding a channel never adds a branch here, and a
plugin channel is built exactly like a built-in one.

On top of that, three policies of the engine live here and nowhere else:

* email reuses one connection per process across batches (relays limit connections,
  and a TLS handshake per batch would dominate the send time); without an SMTP host
  mail is written as ``.eml`` files;
* social channels post to the sandbox in embedded mode (``SOCIAL_MODE=sandbox``) and
  need a connected account otherwise;
* the caller's clock (``hooks.now``) is the adapter's clock, so WhatsApp's 24-hour
  window is measured from the same instant the dispatcher decides with.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from channels.base import AccountCredentials, ChannelAdapter, SocialHooks
from channels.registry import get_adapter_class
from engine.common.errors import BadRequest
from engine.config import Settings

log = logging.getLogger(__name__)

SANDBOX = "sandbox"
SMTP = "email_smtp"
EML_FILES = "email_file"

# Email adapters of this process by relay (or outbox directory), reused across batches.
_email: dict[str, ChannelAdapter[Any, Any]] = {}


class ClockedHooks(SocialHooks, Protocol):
    """Social hooks that carry the dispatcher's clock (``None`` = the wall clock)."""

    now: datetime | None


class NoAccountError(BadRequest, ValueError):
    """A live social adapter was asked for without a connected account."""


def build_adapter(name: str, settings: Settings, /, *,
                  credentials: AccountCredentials | None = None,
                  hooks: SocialHooks | None = None, **options: Any) -> ChannelAdapter[Any, Any]:
    """Any channel's adapter from its settings group; ``options`` add to or override it.

    Raises ``channels.ConfigurationError`` for an unknown channel (with "did you mean"),
    a missing SDK or an option the channel refuses.
    """
    cls = get_adapter_class(name)
    group = settings.channel_settings(name)
    merged = {**(group.options() if group is not None else {}), **options}
    return cls.from_options(merged, credentials=credentials, hooks=hooks)


def email_adapter(settings: Settings) -> ChannelAdapter[Any, Any]:
    """One SMTP connection per process, reused across batches (or .eml files embedded)."""
    key = f"smtp:{settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host else \
        f"file:{settings.var_dir}"
    adapter = _email.get(key)
    if adapter is None:
        adapter = build_adapter(SMTP if settings.smtp_host else EML_FILES, settings)
        _email[key] = adapter
    return adapter


def close_email_adapters() -> None:
    """Close and forget this process's email connections (tests, worker shutdown)."""
    for adapter in _email.values():
        try:
            adapter.close()
        except Exception:
            log.debug("adapter close failed", exc_info=True)
    _email.clear()


def sandbox_adapter(settings: Settings, channel: str) -> ChannelAdapter[Any, Any]:
    """The sandbox writing ``channel``'s payloads under ``var/outbox/<channel>/``."""
    return build_adapter(SANDBOX, settings, channel=channel)


def social_adapter(platform: str, credentials: AccountCredentials | None, hooks: ClockedHooks,
                   settings: Settings) -> ChannelAdapter[Any, Any]:
    """The sandbox in embedded mode, otherwise the platform's adapter for one account.

    A plugin adapter (entry point ``umkm.channels``) is built as
    ``cls(credentials, hooks=hooks)``: its own options travel in the account's ``meta``
    (``AccountCredentials.extra``), so the engine needs no change for it.
    """
    if settings.social_mode == SANDBOX:
        return sandbox_adapter(settings, platform)
    if credentials is None:
        raise NoAccountError("acct.not_found", key=platform)
    clock = hooks.now
    extra = {"now": lambda: clock} if clock is not None else {}
    return build_adapter(platform, settings, credentials=credentials, hooks=hooks, **extra)
