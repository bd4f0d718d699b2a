"""Channel adapters behind one contract (:mod:`channels.base`).

The engine talks to channels only through the names re-exported here; adapter modules
(``email_smtp``, ``facebook``, ...) are imported lazily by :func:`get_adapter_class`, so
an optional SDK is needed only when its channel is used.
"""

from channels.base import (
    BUILTIN_ADAPTERS,
    ENTRY_POINT_GROUP,
    AuthChannelError,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    EngagementMetric,
    MetricType,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    TransientChannelError,
    available_channels,
    clear_registry_cache,
    get_adapter_class,
)

__all__ = [
    "BUILTIN_ADAPTERS",
    "ENTRY_POINT_GROUP",
    "AuthChannelError",
    "Capabilities",
    "ChannelAdapter",
    "ChannelError",
    "ConfigurationError",
    "EngagementMetric",
    "MetricType",
    "OutboundMessage",
    "PermanentChannelError",
    "SendResult",
    "SendStatus",
    "TransientChannelError",
    "available_channels",
    "clear_registry_cache",
    "get_adapter_class",
]
