"""Settings, resolved in exactly one place.

Order of precedence (first wins):

1. the process environment (``DATABASE_URL=... umkm ...``),
2. the ``.env`` file in the working directory (read with python-dotenv, never
   written into ``os.environ`` so tests can swap it),
3. the defaults below, which are the *embedded mode*: SQLite under ``var/``, no
   Redis, sandbox social channels, mail written as ``.eml`` files.

Secrets are kept in :class:`Secret` so that ``repr(settings)`` and logs never show them.

The keys stay flat (one environment variable each); what each channel needs of them is
grouped in one frozen dataclass per channel (:class:`ChannelSettings`), read with
:meth:`Settings.channel_settings` by the one adapter factory (``engine.outbox.adapters``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Self

from dotenv import dotenv_values


class Secret:
    """A string that never shows itself in ``repr``/``str`` (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# The selector of the key ``umkm init`` generates when none is configured.
GENERATED_DKIM_SELECTOR = "umkm1"


# About doubling from 200 a day to 50,000, then no limit (docs/deliverability.md).
DEFAULT_WARMUP_SCHEDULE = "200,400,800,1600,3200,6400,12800,25600,50000"


def _default_var_dir() -> str:
    return str(Path.cwd() / "var")


@dataclass(frozen=True)
class Settings:
    """Every configuration key of the engine; ``.env.example`` documents each one."""

    var_dir: str = field(default_factory=_default_var_dir)
    database_url: str = ""
    redis_url: str = ""
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    lang: str = "id"
    timezone: str = "Asia/Makassar"
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: Secret = field(default_factory=lambda: Secret(""))
    smtp_starttls: bool = False
    smtp_reconnect_after: int = 500
    # Seconds to wait for the SMTP server at each step (connect, each reply).
    smtp_timeout: float = 30.0
    mail_from: str = "Dinas Koperasi UMKM TTS <pemasaran@umkm.ttskab.go.id>"
    # The monthly Pasal 15 report goes to these addresses (comma separated; empty = off).
    report_recipients: str = ""
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key_path: str = ""
    # Deliverability (docs/deliverability.md): the SPF mechanisms of the relay that sends
    # for the domain ("ip4:203.0.113.5 include:_spf.relay.example"); the DMARC report
    # mailbox (empty = dmarc@<From domain>); the MX host of the bounce domain (empty = any
    # MX); the DNS resolver the checks ask ("127.0.0.1:5353"; empty = the system's) and
    # how long one lookup may take.
    spf_sources: str = ""
    dmarc_rua: str = ""
    bounce_mx: str = ""
    dns_resolver: str = ""
    dns_timeout: float = 3.0
    graph_url: str = "https://graph.facebook.com"
    graph_version: str = "v23.0"
    # Connecting accounts from the dashboard (Facebook Login for a Page): the Meta app's
    # id and secret, and where Facebook's consent dialog lives (tests: a fake server).
    meta_app_id: str = ""
    meta_app_secret: Secret = field(default_factory=lambda: Secret(""))
    meta_dialog_url: str = "https://www.facebook.com"
    tiktok_url: str = "https://open.tiktokapis.com"
    # TikTok Login Kit's consent page (tests: a fake server).
    tiktok_auth_url: str = "https://www.tiktok.com"
    tiktok_client_key: str = ""
    tiktok_client_secret: Secret = field(default_factory=lambda: Secret(""))
    # Unaudited TikTok apps may only post privately (SELF_ONLY); set true after the audit.
    tiktok_audited: bool = False
    social_mode: str = "sandbox"
    # Seconds between status polls of an Instagram container / TikTok publish, and the
    # pace of Meta posts per process (posts/second; 0 = unpaced): tests turn both down.
    social_poll_seconds: float = 3.0
    social_rate: float = 1.0
    # Seconds to wait for a social platform's API (each request); an unanswered post is
    # looked up before any retry, never blindly posted again.
    social_timeout: float = 30.0
    # The beat reads social post insights at most this often (per post).
    metrics_interval_minutes: int = 60
    batch_size: int = 250
    max_attempts: int = 5
    error_budget: float = 0.2
    # A claim is a lease of this many seconds, renewed by its worker while it works; the
    # sweeper requeues only `sending` rows whose lease expired (a dead worker's), so a
    # slow worker is never doubled and a crash is recovered within about one lease.
    lease_seconds: int = 90
    # Rows claimed before leases existed (no lease_until) count as a dead worker's after
    # this long in `sending`.
    stale_after_seconds: int = 600
    # After a relay-wide temporary refusal (421, 451 on MAIL, every RCPT deferred, the
    # relay unreachable) the untried rest of a batch waits this long, no attempt spent.
    relay_retry_seconds: float = 60.0
    # Pending ids handed to the broker are handed again only after this grace period.
    enqueue_grace_seconds: int = 300
    # Shared SMTP rate limit for all workers (messages/second; 0 = unlimited).
    smtp_rate: float = 0.0
    smtp_burst: int = 200
    beat_interval_seconds: float = 30.0
    # Soft bounces (different deliveries, 30 days) before an address is suppressed.
    soft_bounce_limit: int = 3
    # ...counted within this many days (older soft bounces have cleared by themselves).
    soft_bounce_window_days: int = 30
    # VERP: envelope sender bounce+<signed delivery token>@<this domain> per message, so
    # any bounce names its delivery (docs/bounces.md: MX, SPF, DMARC alignment).
    # "" = off (envelope sender = From address); "auto" = the sender's own domain.
    bounce_domain: str = ""
    # Shared secret of the bounce webhook (X-Webhook-Secret); empty = webhook off.
    bounce_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    # WhatsApp Cloud API webhook: the Meta app secret (X-Hub-Signature-256 check) and the
    # verify token of the subscription handshake; empty = not checked / handshake off.
    whatsapp_app_secret: Secret = field(default_factory=lambda: Secret(""))
    whatsapp_verify_token: Secret = field(default_factory=lambda: Secret(""))
    # Redis redelivers a task not acknowledged within this many seconds to another
    # worker (tasks are acknowledged after they ran). Far above any batch's duration.
    broker_visibility_timeout: int = 3 * 3600
    # Maildir that receives bounces and complaints (RFC 3464 / ARF); empty = not polled.
    bounce_maildir: str = ""
    # Maildir of the DMARC rua mailbox (aggregate reports, RFC 7489); empty = not polled.
    dmarc_maildir: str = ""
    # Warm-up of a new sending domain (engine.outbox.warmup): emails per local day, day 1
    # first, unlimited after the last; "off" = no limit. Day 1 = WARMUP_START (YYYY-MM-DD),
    # empty = the day the first email was sent.
    warmup_schedule: str = DEFAULT_WARMUP_SCHEDULE
    warmup_start: str = ""
    # Largest request body the web app reads (bytes); bigger bodies get 413 while streaming.
    max_body_bytes: int = 1024 * 1024
    # Deepest nesting of a JSON request body ({ and [); deeper bodies get 422.
    max_json_depth: int = 64
    # Product photos (engine.media): where they are kept ("local" folder or "s3"), the
    # folder (empty = var/media), the largest upload in bytes and in pixels (checked from
    # the header, before decoding: decompression bombs), and photos fetched from a URL.
    media_store: str = "local"
    media_dir: str = ""
    media_max_bytes: int = 15 * 1024 * 1024
    media_max_pixels: int = 40_000_000
    media_fetch_timeout: float = 15.0
    # Kesepakatan bersama (Pasal 13-14): the largest signed PDF accepted, and how many days
    # before an agreement ends the beat records its one reminder for the admins.
    agreement_max_bytes: int = 10 * 1024 * 1024
    agreement_reminder_days: int = 30
    # Where the reminder is also mailed (e.g. the Dinas's shared mailbox); empty = the
    # notice on /dinas/kesepakatan only (Dinas accounts have no e-mail address).
    agreement_reminder_to: str = ""
    # MEDIA_STORE=s3: any S3-compatible bucket (AWS, MinIO, Wasabi...). The endpoint is
    # empty for AWS itself; keys empty = boto3's own chain (env, profile, instance role).
    # Photos are still served through /media/ on this site unless a public base URL is set.
    media_s3_bucket: str = ""
    media_s3_endpoint_url: str = ""
    media_s3_region: str = ""
    media_s3_access_key: Secret = field(default_factory=lambda: Secret(""))
    media_s3_secret_key: Secret = field(default_factory=lambda: Secret(""))
    media_s3_public_base_url: str = ""
    # Tests only: let the URL fetch reach 127.0.0.1 (never private or link-local ranges).
    media_fetch_allow_loopback: bool = False

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: web, worker and beat share one process."""
        return not self.redis_url

    @property
    def production(self) -> bool:
        """True when social channels are live: webhooks then act on real customers, so
        their secrets are required (sandbox mode keeps working with no setup)."""
        return self.social_mode != "sandbox"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.var_dir) / 'umkm.db'}"

    @property
    def media_root(self) -> Path:
        return Path(self.media_dir) if self.media_dir else Path(self.var_dir) / "media"

    @property
    def secret_key_file(self) -> Path:
        return Path(self.var_dir) / "secret.key"

    @property
    def generated_dkim_key_file(self) -> Path:
        """Where ``umkm init`` writes the DKIM key it generates (mode 0600)."""
        return Path(self.var_dir) / "dkim" / f"{GENERATED_DKIM_SELECTOR}.pem"

    @property
    def from_address(self) -> str:
        """The bare address of MAIL_FROM (``Name <a@b>`` -> ``a@b``)."""
        return self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()

    @property
    def from_domain(self) -> str:
        """The domain of the From address: the one DMARC aligns SPF and DKIM with."""
        return self.from_address.rsplit("@", 1)[-1].lower()

    def channel_settings(self, channel: str) -> ChannelSettings | None:
        """The settings group of a channel (by its registry name); None when it has none."""
        group = ChannelSettings._by_channel.get(channel)
        return group.from_settings(self) if group is not None else None


# ----------------------------------------------------------------------------- per channel
@dataclass(frozen=True)
class ChannelSettings:
    """What one channel reads of the settings, in that channel's own option names.

    A subclass names its channel (``class X(ChannelSettings, channel="tiktok")``) and
    is found by it, so the factory needs no list of channels; a channel without a group
    (a plugin) gets no options and reads its own from its account's ``meta``.
    """

    _by_channel: ClassVar[dict[str, type[ChannelSettings]]] = {}

    def __init_subclass__(cls, channel: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if channel:
            ChannelSettings._by_channel[channel] = cls

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The group as ``from_options`` takes it; a secret is unwrapped only here, at the
        hand-over to the channel (which never sees :class:`Secret`)."""
        found: dict[str, Any] = {}
        for f in fields(self):
            if f.metadata.get("option", True):
                value = getattr(self, f.name)
                found[f.name] = value.get() if isinstance(value, Secret) else value
        return found


# A field of a channel's group that the adapter does not take (webhook secrets).
_NOT_AN_OPTION = {"option": False}


@dataclass(frozen=True)
class SmtpSettings(ChannelSettings, channel="email_smtp"):
    host: str
    port: int
    username: str
    password: Secret
    starttls: bool
    reconnect_after: int
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_user,
                   settings.smtp_password, settings.smtp_starttls,
                   settings.smtp_reconnect_after, settings.smtp_timeout)


@dataclass(frozen=True)
class OutboxSettings(ChannelSettings):
    """File channels write under ``var/outbox/`` (embedded mode)."""

    root: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(Path(settings.var_dir) / "outbox")


@dataclass(frozen=True)
class FileEmailSettings(OutboxSettings, channel="email_file"):
    pass


@dataclass(frozen=True)
class SandboxSettings(OutboxSettings, channel="sandbox"):
    pass


@dataclass(frozen=True)
class FacebookSettings(ChannelSettings, channel="facebook"):
    graph_url: str
    graph_version: str
    rate_per_second: float | None  # SOCIAL_RATE; 0 = unpaced
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.graph_url, settings.graph_version, settings.social_rate or None,
                   settings.social_timeout, **cls._own(settings))

    @classmethod
    def _own(cls, settings: Settings) -> dict[str, Any]:
        """Keys a Meta channel adds to the Graph settings it shares with Facebook."""
        return {}


@dataclass(frozen=True)
class InstagramSettings(FacebookSettings, channel="instagram"):
    poll_interval: float = 3.0

    @classmethod
    def _own(cls, settings: Settings) -> dict[str, Any]:
        return {"poll_interval": settings.social_poll_seconds}


@dataclass(frozen=True)
class TikTokSettings(ChannelSettings, channel="tiktok"):
    base_url: str
    client_key: str
    client_secret: Secret
    audited: bool
    poll_interval: float
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.tiktok_url, settings.tiktok_client_key,
                   settings.tiktok_client_secret, settings.tiktok_audited,
                   settings.social_poll_seconds, settings.social_timeout)


@dataclass(frozen=True)
class WhatsAppSettings(ChannelSettings, channel="whatsapp"):
    base_url: str
    api_version: str
    timeout: float
    app_secret: Secret = field(metadata=_NOT_AN_OPTION)
    verify_token: Secret = field(metadata=_NOT_AN_OPTION)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.graph_url, settings.graph_version, settings.social_timeout,
                   settings.whatsapp_app_secret, settings.whatsapp_verify_token)


_SECRET_FIELDS = {"secret_key", "smtp_password", "tiktok_client_secret", "meta_app_secret",
                  "bounce_webhook_secret", "whatsapp_app_secret", "whatsapp_verify_token",
                  "media_s3_access_key", "media_s3_secret_key"}
# Keys whose plain upper-case name would collide with standard variables (LANG is the
# system locale) or that deployments already know under a prefixed name.
_ENV_NAMES = {"lang": "UMKM_LANG", "soft_bounce_limit": "UMKM_SOFT_BOUNCE_LIMIT",
              "bounce_webhook_secret": "UMKM_BOUNCE_SECRET",
              "whatsapp_app_secret": "UMKM_WA_APP_SECRET",
              "whatsapp_verify_token": "UMKM_WA_VERIFY_TOKEN"}


def env_name(field_name: str) -> str:
    """The environment / .env key of a settings field."""
    return _ENV_NAMES.get(field_name, field_name.upper())


def _coerce(name: str, raw: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if name in _SECRET_FIELDS:
        return Secret(raw)
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)
    if kind in ("bool", bool):
        return raw.strip().lower() in {"1", "true", "yes", "on", "ya"}
    return raw


def load_settings(env: dict[str, str] | None = None, dotenv_path: str | None = ".env") -> Settings:
    """Build settings from environment, then ``.env``, then defaults."""
    environ = dict(os.environ) if env is None else env
    file_values: dict[str, str | None] = {}
    if dotenv_path and Path(dotenv_path).is_file():
        file_values = dotenv_values(dotenv_path)
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = env_name(f.name)
        raw = environ.get(key)
        if raw is None:
            raw = file_values.get(key)
        if raw is not None and raw != "":
            values[f.name] = _coerce(f.name, raw)
    settings = Settings(**values)
    if not settings.secret_key and settings.secret_key_file.is_file():
        key = settings.secret_key_file.read_text().strip()
        values["secret_key"] = Secret(key)
        settings = Settings(**values)
    if not settings.dkim_key_path and settings.generated_dkim_key_file.is_file():
        # A fresh install signs with the key `umkm init` generated (safe default).
        values["dkim_key_path"] = str(settings.generated_dkim_key_file)
        values.setdefault("dkim_selector", GENERATED_DKIM_SELECTOR)
        settings = Settings(**values)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call :func:`reset_settings` after changes)."""
    return load_settings()


def reset_settings() -> None:
    get_settings.cache_clear()


def ensure_secret_key(settings: Settings) -> tuple[Settings, bool]:
    """Create ``var/secret.key`` when no key is configured; return (settings, created).

    The key encrypts NIK and tokens at rest; it lives outside git (``var/`` is ignored).
    """
    if settings.secret_key:
        return settings, False
    path = settings.secret_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
        created = True
    else:
        created = False
    key = path.read_text().strip()
    values = {f.name: getattr(settings, f.name) for f in fields(Settings)}
    values["secret_key"] = Secret(key)
    return Settings(**values), created
