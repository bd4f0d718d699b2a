"""Channel adapters behind one contract (:mod:`channels.base`).

The engine talks to channels only through the names re-exported here; adapter modules
(``email_smtp``, ``facebook``, ...) are imported lazily by :func:`get_adapter_class`
(:mod:`channels.registry`), so an optional SDK is needed only when its channel is used.
"""

from channels.base import (
    ENTRY_POINT_GROUP,
    AuthChannelError,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    ChannelKind,
    ConfigurationError,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    TransientChannelError,
)
from channels.metrics import EngagementMetric, MetricType
from channels.registry import (
    BUILTIN_ADAPTERS,
    available_channels,
    channel_label,
    channel_names,
    channels_of_kind,
    clear_registry_cache,
    get_adapter_class,
    kind_of,
    plugin_channels,
)

__all__ = [
    "BUILTIN_ADAPTERS",
    "ENTRY_POINT_GROUP",
    "AuthChannelError",
    "Capabilities",
    "ChannelAdapter",
    "ChannelError",
    "ChannelKind",
    "ConfigurationError",
    "EngagementMetric",
    "MetricType",
    "OutboundMessage",
    "PermanentChannelError",
    "SendResult",
    "SendStatus",
    "TransientChannelError",
    "available_channels",
    "channel_label",
    "channel_names",
    "channels_of_kind",
    "clear_registry_cache",
    "get_adapter_class",
    "kind_of",
    "plugin_channels",
]
