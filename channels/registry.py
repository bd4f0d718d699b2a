"""The channel registry: names -> adapter classes, imported only when asked for.

Built-in channels are one line each in :data:`BUILTIN_ADAPTERS`; third parties add
theirs through the entry-point group ``umkm.channels`` (after kombu
``transport/__init__.py``).  Everything else a caller may want to know about a channel
-- is it email, a post platform or a messenger, what do people call it -- the adapter
class declares in its :class:`~channels.base.Capabilities`, so no module anywhere keeps
its own list of channel names: it asks :func:`channel_names` or :func:`channels_of_kind`.
"""

from __future__ import annotations

import difflib
import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from channels.base import ENTRY_POINT_GROUP, ChannelAdapter, ChannelKind, ConfigurationError

# One line per built-in channel; the order is the order channels are listed in (reports,
# campaign keys).  The sandbox stands in for the social channels in embedded mode.
BUILTIN_ADAPTERS: dict[str, str] = {
    "email_smtp": "channels.email_smtp:SmtpChannel",
    "email_file": "channels.email_file:FileEmailChannel",
    "facebook": "channels.facebook:FacebookChannel",
    "instagram": "channels.instagram:InstagramChannel",
    "tiktok": "channels.tiktok:TikTokChannel",
    "whatsapp": "channels.whatsapp:WhatsAppChannel",
    "sandbox": "channels.sandbox:SandboxChannel",
}

# Import name -> pip distribution name, where they differ (for the install hint).
PIP_NAMES: dict[str, str] = {
    "facebook": "facebook-sdk",
    "yaml": "pyyaml",
    "dkim": "dkimpy",
    "aiosmtpd": "aiosmtpd",
}

_resolved: dict[str, type[ChannelAdapter[Any, Any]]] = {}


def available_channels() -> list[str]:
    """Every channel name this installation knows: built-ins plus ``umkm.channels`` plugins."""
    names = set(BUILTIN_ADAPTERS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def plugin_channels() -> list[str]:
    """The installed third-party channels, sorted; read from the metadata, never imported.

    A plugin cannot take a built-in's name, so those are left out (see
    :func:`get_adapter_class`).
    """
    found = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(found - set(BUILTIN_ADAPTERS))


def channels_of_kind(*kinds: ChannelKind, plugins: bool = True) -> list[str]:
    """The adapters whose ``capabilities.kind`` is one of ``kinds`` (all kinds if none).

    Built-ins come in registry order, then plugins (imported to read their kind, so pass
    ``plugins=False`` where a broken plugin must not matter).  A stand-in (kind None,
    the sandbox) is never listed.
    """
    names = list(BUILTIN_ADAPTERS) + (plugin_channels() if plugins else [])
    return [name for name in names if _kind_matches(kind_of(name), kinds)]


def channel_names(*kinds: ChannelKind, plugins: bool = True) -> list[str]:
    """The names campaigns and deliveries use for the channels of ``kinds``.

    A post or message adapter is a channel under its own name; the email transports
    (SMTP, ``.eml`` files) are all the one channel ``"email"``, because which of them
    sends is configuration, not a campaign's choice.
    """
    names: list[str] = []
    for name in channels_of_kind(*kinds, plugins=plugins):
        channel = ChannelKind.EMAIL.value if kind_of(name) is ChannelKind.EMAIL else name
        if channel not in names:
            names.append(channel)
    return names


def kind_of(name: str) -> ChannelKind | None:
    """What a channel carries; ``"email"`` is the email channel whatever its transport."""
    if name == ChannelKind.EMAIL.value:
        return ChannelKind.EMAIL
    return _builtin_kind(name) if name in BUILTIN_ADAPTERS else \
        get_adapter_class(name).capabilities.kind


def channel_label(name: str) -> str:
    """How people call a channel (``TikTok``); its name when it declares none or is unknown.

    Never raises: a label is for display, and a report must still render when a plugin
    that once posted has been uninstalled.
    """
    if name == ChannelKind.EMAIL.value:
        emails = channels_of_kind(ChannelKind.EMAIL, plugins=False)
        name_for_label = emails[0] if emails else name
    else:
        name_for_label = name
    try:
        label = get_adapter_class(name_for_label).capabilities.label
    except ConfigurationError:
        return name
    return label or name


@cache
def _builtin_kind(name: str) -> ChannelKind | None:
    """Built-ins never change within a process: their kinds are read once."""
    return get_adapter_class(name).capabilities.kind


def _kind_matches(kind: ChannelKind | None, wanted: tuple[ChannelKind, ...]) -> bool:
    return kind is not None and (not wanted or kind in wanted)


def get_adapter_class(name: str) -> type[ChannelAdapter[Any, Any]]:
    """Resolve a channel name to its adapter class, importing it only now.

    Built-ins win over plugins of the same name (a plugin cannot hijack ``email_smtp``).
    Raises :class:`ConfigurationError` for unknown names (with "did you mean"), missing
    optional SDKs (with the ``pip install`` hint) and targets that are not adapters.
    """
    cached = _resolved.get(name)
    if cached is not None:
        return cached
    target = BUILTIN_ADAPTERS.get(name)
    obj = _load_target(name, target) if target is not None else _load_entry_point(name)
    if not (isinstance(obj, type) and issubclass(obj, ChannelAdapter)):
        raise ConfigurationError("channel.not_adapter", name=name, target=_describe(obj))
    _resolved[name] = obj
    return obj


def clear_registry_cache() -> None:
    """Forget resolved classes (tests that install plugins at runtime)."""
    _resolved.clear()


def _unknown_channel(name: str) -> ConfigurationError:
    """The error for a name nobody registered, with "did you mean" when one is close."""
    available = available_channels()
    listed = ", ".join(available)
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
    if close:
        return ConfigurationError(
            "channel.unknown_suggest", name=name, suggestion=close[0], available=listed
        )
    return ConfigurationError("channel.unknown", name=name, available=listed)


def _load_target(name: str, target: str) -> object:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _import_problem(name, module_name, exc) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigurationError("channel.not_available", name=name, module=target) from exc


def _load_entry_point(name: str) -> object:
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise _unknown_channel(name)
    ep = matches[0]
    try:
        return ep.load()
    except ImportError as exc:
        raise _import_problem(name, ep.module, exc) from exc
    except AttributeError as exc:
        raise ConfigurationError("channel.not_available", name=name, module=ep.value) from exc


def _import_problem(name: str, module_name: str, exc: ImportError) -> ConfigurationError:
    """Tell a missing adapter module apart from a missing third-party SDK it needs."""
    missing = exc.name or ""
    if not missing or missing == module_name or module_name.startswith(missing + "."):
        return ConfigurationError("channel.not_available", name=name, module=module_name)
    top = missing.split(".")[0]
    return ConfigurationError("channel.missing_sdk", name=name, package=PIP_NAMES.get(top, top))


def _describe(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__
