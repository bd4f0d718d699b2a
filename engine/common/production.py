"""The settings a production installation must have before the web app starts.

In sandbox mode (the default, ``make demo``, the tests) nothing is required: webhooks act
on sandbox data only. Once social channels are live a forged webhook would withdraw real
customers' consent, so the web app refuses to start without the secrets that let it
check who is calling, and names each missing one.
"""

from __future__ import annotations

from engine.common.errors import EngineError
from engine.config import Settings, env_name

# Settings fields a production web app cannot run safely without.
REQUIRED_IN_PRODUCTION = ("secret_key", "whatsapp_app_secret")


class UnsafeSettings(EngineError):
    """Production settings that would leave the web edge open; raised at start-up."""

    http_status = 500


def missing_production_secrets(settings: Settings) -> list[str]:
    """The environment names of required secrets that are empty (none in sandbox mode)."""
    if not settings.production:
        return []
    return [env_name(name) for name in REQUIRED_IN_PRODUCTION if not getattr(settings, name)]


def check_production_settings(settings: Settings) -> None:
    """Refuse to serve in production mode with a required secret missing.

    Called from ``web.app.create_app`` so that ``umkm serve`` stops with a clear message
    instead of answering unsigned webhooks.
    """
    missing = missing_production_secrets(settings)
    if missing:
        raise UnsafeSettings("config.production_missing", names=", ".join(missing))
