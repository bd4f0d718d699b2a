"""The one adapter factory (``engine.outbox.adapters``): real adapters built from settings.

Each test builds what the dispatcher and the social publisher get, from ``Settings``
alone, and checks the options arrived where the channel uses them: the embedded
defaults (``.eml`` files, the sandbox), the SMTP relay, each social platform with its
account, hooks and clock, and the loud error for a channel nobody registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import AccountCredentials, ConfigurationError, MemorySocialHooks
from channels.email_file import FileEmailChannel
from channels.email_smtp import SmtpChannel
from channels.facebook import FacebookChannel
from channels.instagram import InstagramChannel
from channels.sandbox import SandboxChannel
from channels.tiktok import TikTokChannel
from channels.whatsapp import WhatsAppChannel
from engine.config import Secret, Settings
from engine.outbox import adapters

CREDS = AccountCredentials("tiktok:dinas", "open-id-1", "access-1", "refresh-1")
CLOCK = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class Hooks(MemorySocialHooks):
    """What the engine's hooks add for the factory: the dispatcher's clock."""

    def __init__(self, now: datetime | None = None) -> None:
        super().__init__()
        self.now = now


@pytest.fixture(autouse=True)
def _fresh_email_cache() -> Iterator[None]:
    adapters.close_email_adapters()
    yield
    adapters.close_email_adapters()


def live(tmp_path: Path, **values: object) -> Settings:
    return Settings(var_dir=str(tmp_path), social_mode="live", **values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- email

def test_without_smtp_host_mail_goes_to_eml_files_once_per_process(tmp_path: Path) -> None:
    settings = Settings(var_dir=str(tmp_path))
    adapter = adapters.email_adapter(settings)
    assert isinstance(adapter, FileEmailChannel)
    assert adapter.directory == tmp_path / "outbox" / "email"
    assert adapters.email_adapter(settings) is adapter  # reused across batches


def test_smtp_relay_gets_every_smtp_setting(tmp_path: Path) -> None:
    settings = Settings(var_dir=str(tmp_path), smtp_host="relay.test", smtp_port=2525,
                        smtp_user="mailer", smtp_password=Secret("s3cret"),
                        smtp_starttls=True, smtp_reconnect_after=40, smtp_timeout=7.5)
    adapter = adapters.email_adapter(settings)
    assert isinstance(adapter, SmtpChannel)
    assert (adapter.host, adapter.port, adapter.username) == ("relay.test", 2525, "mailer")
    assert adapter._password == "s3cret"
    assert (adapter.starttls, adapter.reconnect_after, adapter.timeout) == (True, 40, 7.5)
    assert "s3cret" not in repr(adapter)
    assert adapters.email_adapter(settings) is adapter


def test_smtp_without_login_sends_none_and_closing_forgets_the_connection(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=str(tmp_path), smtp_host="relay.test")
    adapter = adapters.email_adapter(settings)
    assert isinstance(adapter, SmtpChannel)
    assert adapter.username is None and adapter._password is None
    assert (adapter.port, adapter.starttls, adapter.reconnect_after) == (25, False, 500)
    adapters.close_email_adapters()
    assert adapters.email_adapter(settings) is not adapter


# --------------------------------------------------------------------------- sandbox

@pytest.mark.parametrize("platform", ["facebook", "instagram", "tiktok", "whatsapp", "kentongan"])
def test_embedded_mode_posts_every_platform_to_the_sandbox(tmp_path: Path, platform: str) -> None:
    settings = Settings(var_dir=str(tmp_path))  # SOCIAL_MODE=sandbox is the default
    adapter = adapters.social_adapter(platform, None, Hooks(), settings)
    assert isinstance(adapter, SandboxChannel)
    assert adapter.channel == platform
    assert adapter.directory == tmp_path / "outbox" / platform


def test_share_kit_sandbox_is_built_in_live_mode_too(tmp_path: Path) -> None:
    adapter = adapters.sandbox_adapter(live(tmp_path), "whatsapp")
    assert isinstance(adapter, SandboxChannel) and adapter.channel == "whatsapp"


# --------------------------------------------------------------------------- live social

def test_facebook_gets_graph_settings_pace_and_its_account(tmp_path: Path) -> None:
    settings = live(tmp_path, graph_url="http://127.0.0.1:9/", graph_version="24.0",
                    social_rate=2.0, social_timeout=4.0)
    creds = AccountCredentials("facebook:dinas", "page-1", "page-token")
    adapter = adapters.social_adapter("facebook", creds, Hooks(), settings)
    assert isinstance(adapter, FacebookChannel)
    assert adapter.capabilities.rate_per_second == 2.0
    assert adapter.accounts.credentials("facebook:dinas") is creds
    client = adapter.accounts.client("facebook:dinas")
    assert (client.graph_url, client.version) == ("http://127.0.0.1:9/", "v24.0")
    assert client.graph.timeout == 4.0
    adapter.close()


def test_instagram_polls_at_the_social_poll_interval_and_rate_zero_is_unpaced(
    tmp_path: Path,
) -> None:
    settings = live(tmp_path, social_rate=0.0, social_poll_seconds=0.25)
    creds = AccountCredentials("instagram:dinas", "ig-1", "ig-token")
    adapter = adapters.social_adapter("instagram", creds, Hooks(), settings)
    assert isinstance(adapter, InstagramChannel)
    assert adapter.poll_interval == 0.25
    assert adapter.capabilities.rate_per_second is None


def test_tiktok_gets_app_credentials_audit_flag_and_the_hooks(tmp_path: Path) -> None:
    settings = live(tmp_path, tiktok_url="http://127.0.0.1:9", tiktok_client_key="ck",
                    tiktok_client_secret=Secret("cs"), tiktok_audited=True,
                    social_poll_seconds=0.5, social_timeout=3.0)
    hooks = Hooks()
    adapter = adapters.social_adapter("tiktok", CREDS, hooks, settings)
    assert isinstance(adapter, TikTokChannel)
    assert (adapter.base_url, adapter.client_key, adapter.client_secret) == (
        "http://127.0.0.1:9", "ck", "cs")
    assert adapter.audited and adapter.poll_interval == 0.5 and adapter._timeout == 3.0
    assert adapter.credentials is CREDS and adapter.hooks is hooks


def test_whatsapp_measures_its_window_with_the_dispatchers_clock(tmp_path: Path) -> None:
    settings = live(tmp_path, graph_url="http://127.0.0.1:9", graph_version="v23.0")
    creds = AccountCredentials("whatsapp:dinas", "phone-1", "wa-token")
    adapter = adapters.social_adapter("whatsapp", creds, Hooks(CLOCK), settings)
    assert isinstance(adapter, WhatsAppChannel)
    assert adapter.endpoint == "http://127.0.0.1:9/v23.0/phone-1/messages"
    assert adapter._now() == CLOCK
    wall = adapters.social_adapter("whatsapp", creds, Hooks(None), settings)
    assert isinstance(wall, WhatsAppChannel)
    assert abs((wall._now() - datetime.now(UTC)).total_seconds()) < 5


def test_live_platform_without_an_account_is_refused(tmp_path: Path) -> None:
    with pytest.raises(adapters.NoAccountError, match="tiktok"):
        adapters.social_adapter("tiktok", None, Hooks(), live(tmp_path))


def test_unknown_channel_says_what_was_meant(tmp_path: Path) -> None:
    creds = AccountCredentials("facebok:dinas", "page-1", "token")
    with pytest.raises(ConfigurationError) as caught:
        adapters.social_adapter("facebok", creds, Hooks(), live(tmp_path))
    assert caught.value.code == "channel.unknown_suggest"
    assert caught.value.params["suggestion"] == "facebook"
    assert "Maksud Anda 'facebook'?" in str(caught.value)
    assert "Did you mean 'facebook'?" in caught.value.render("en")


# --------------------------------------------------------------------------- settings

def test_channel_settings_mask_secrets_and_unwrap_them_only_as_options(tmp_path: Path) -> None:
    settings = live(tmp_path, tiktok_client_secret=Secret("cs-secret"),
                    whatsapp_app_secret=Secret("app-secret"))
    tiktok = settings.channel_settings("tiktok")
    whatsapp = settings.channel_settings("whatsapp")
    assert tiktok is not None and whatsapp is not None
    assert "cs-secret" not in repr(tiktok) and "app-secret" not in repr(whatsapp)
    assert tiktok.options()["client_secret"] == "cs-secret"
    assert "app_secret" not in whatsapp.options()  # the webhook's, not the adapter's
    assert settings.channel_settings("kentongan") is None  # plugins read account meta
