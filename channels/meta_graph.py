"""The one place that knows facebook-sdk: Graph client, error mapping, usage headers.

Facebook and Instagram both talk to the Meta Graph API, and both go through
:class:`MetaGraphClient`.  Everything specific to facebook-sdk 3.1.0 lives here, so the
client can be swapped (httpx, a newer SDK) by rewriting this module only:

- its constructor rejects every Graph version newer than 3.1, so the client is built
  *without* ``version`` and ``graph.version`` (the SDK stores it as ``"v23.0"``) is set
  afterwards from configuration;
- the base URL is the module global ``facebook.FACEBOOK_GRAPH_URL``; it is set before
  every call, so a test's fake server is the one actually called (clients with
  *different* URLs in concurrent threads of one process would race on it; the engine
  configures one URL per process);
- it ignores HTTP status codes and usage headers, so we pass our own
  ``requests.Session`` whose response hook records the status and reads
  ``X-App-Usage`` / ``X-Business-Use-Case-Usage`` / ``X-Page-Usage`` and cools the
  account down (``SocialHooks.cool_down``) before Meta starts refusing calls.

Graph errors become the channel error tree through :mod:`channels.graph_errors`, the
table this client shares with the WhatsApp Cloud API adapter.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Self, TypedDict, Unpack, cast

import facebook
import requests
import urllib3.exceptions

from channels.base import (
    AccountCredentials,
    AuthChannelError,
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    MemorySocialHooks,
    PayloadT,
    SocialHooks,
    TransientChannelError,
    pick,
)
from channels.graph_errors import (
    THROTTLE_CODES,
    OutcomeUnknownError,
    as_int,
    classify_graph_error,
    error_body,
    redact,
)

log = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.facebook.com/"
DEFAULT_GRAPH_VERSION = "v23.0"
USAGE_HEADERS = ("x-app-usage", "x-business-use-case-usage", "x-page-usage")

_VERSION = re.compile(r"^v?(\d{1,3})\.(\d{1,2})$")
_lock = threading.Lock()


def normalize_graph_version(value: str) -> str:
    """``"23.0"`` or ``"v23.0"`` -> ``"v23.0"`` (the form facebook-sdk keeps in ``version``)."""
    match = _VERSION.match(value.strip())
    if not match:
        raise ConfigurationError(
            "channel.bad_option",
            name="meta",
            detail=f"versi Graph API {value!r} tidak valid (contoh: v23.0)",
        )
    return f"v{match.group(1)}.{match.group(2)}"


def normalize_graph_url(value: str) -> str:
    """The SDK concatenates ``FACEBOOK_GRAPH_URL + path``: it must end with a slash."""
    url = value.strip()
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            "channel.bad_option", name="meta", detail=f"alamat Graph API {value!r} tidak valid"
        )
    return url if url.endswith("/") else url + "/"


class GraphOptions(TypedDict, total=False):
    """The Graph settings a Meta channel takes as keywords (all optional)."""

    graph_url: str
    graph_version: str
    timeout: float
    usage_threshold: float
    throttle_cool_down: float


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """Validated Graph settings, shared by every client of one adapter.

    Checked once when the adapter is built, so a wrong version or URL is a
    configuration error before the first post, not a failed delivery.
    """

    graph_url: str = DEFAULT_GRAPH_URL
    graph_version: str = DEFAULT_GRAPH_VERSION
    timeout: float = 30.0
    usage_threshold: float = 90.0
    throttle_cool_down: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "graph_url", normalize_graph_url(self.graph_url))
        object.__setattr__(self, "graph_version", normalize_graph_version(self.graph_version))


# --------------------------------------------------------------------------- usage


@dataclass(frozen=True, slots=True)
class UsageReport:
    """One usage block Meta reported: percentages of the budget, and the penalty if any."""

    header: str
    call_count: float = 0.0
    total_time: float = 0.0
    total_cputime: float = 0.0
    regain_seconds: float = 0.0  # ``estimated_time_to_regain_access`` is in minutes

    @property
    def peak(self) -> float:
        return max(self.call_count, self.total_time, self.total_cputime)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _report(header: str, block: Mapping[str, Any]) -> UsageReport:
    return UsageReport(
        header=header,
        call_count=_number(block.get("call_count")),
        total_time=_number(block.get("total_time")),
        total_cputime=_number(block.get("total_cputime")),
        regain_seconds=_number(block.get("estimated_time_to_regain_access")) * 60.0,
    )


def parse_usage_headers(headers: Mapping[str, str]) -> list[UsageReport]:
    """Read every usage header present; malformed ones are logged and ignored.

    ``X-App-Usage`` / ``X-Page-Usage`` hold one flat object; ``X-Business-Use-Case-Usage``
    maps each business object id to a list of blocks (one per use-case type).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    reports: list[UsageReport] = []
    for name in USAGE_HEADERS:
        value = lowered.get(name)
        if not value:
            continue
        try:
            data = json.loads(value)
        except ValueError:
            log.warning("meta: unreadable %s header ignored", name)
            continue
        if not isinstance(data, dict):
            continue
        if name == "x-business-use-case-usage":
            for blocks in data.values():
                for block in blocks if isinstance(blocks, list) else [blocks]:
                    if isinstance(block, dict):
                        reports.append(_report(name, block))
        else:
            reports.append(_report(name, data))
    return reports


# --------------------------------------------------------------------------- errors


def _nothing_sent(exc: requests.RequestException) -> bool:
    """True when the request surely never reached Meta (so a POST may be repeated)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


# --------------------------------------------------------------------------- client


class MetaGraphClient:
    """A facebook-sdk ``GraphAPI`` for one account, wrapped for the channel contract.

    Every call returns the decoded JSON or raises a ``ChannelError``.  While the account
    cools down (Meta throttled it, or usage headers crossed ``usage_threshold`` percent)
    calls fail fast with an account-wide ``TransientChannelError`` and never reach Meta.
    """

    def __init__(
        self,
        account: AccountCredentials,
        hooks: SocialHooks,
        config: GraphConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        config = config or GraphConfig()
        self.account_key = account.key
        self.hooks = hooks
        self.graph_url = config.graph_url
        self.usage_threshold = config.usage_threshold
        self.throttle_cool_down = config.throttle_cool_down
        self._clock = clock
        self._cooling_until = 0.0
        self._cool_reason = ""
        self.last_status: int | None = None
        self.last_usage: list[UsageReport] = []
        self.session = requests.Session()
        self.session.hooks["response"].append(self._on_response)
        # No ``version=`` here: facebook-sdk 3.1.0 would reject it (it knows 2.8-3.1).
        self.graph = facebook.GraphAPI(
            access_token=account.access_token, timeout=config.timeout, session=self.session
        )
        self.graph.version = config.graph_version

    @property
    def version(self) -> str:
        return str(self.graph.version)

    def close(self) -> None:
        self.session.close()

    # -- calls ----------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``/{version}/{path}``; safe to repeat, so any transport failure is transient."""
        return self._call("GET", path, params, None)

    def post(self, path: str, **data: Any) -> dict[str, Any]:
        """POST ``/{version}/{path}``; a lost answer raises :class:`OutcomeUnknownError`."""
        return self._call("POST", path, None, data)

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        data: dict[str, Any] | None,
    ) -> dict[str, Any]:
        self._refuse_while_cooling()
        self.last_status = None
        self.last_usage = []
        args = {k: v for k, v in (params or {}).items() if v is not None}
        post_args = None if data is None else {k: v for k, v in data.items() if v is not None}
        try:
            with _lock:  # the base URL is a module global of facebook-sdk
                facebook.FACEBOOK_GRAPH_URL = self.graph_url
            result = self.graph.request(
                f"{self.graph.version}/{path.lstrip('/')}",
                args=args,
                post_args=post_args,
                method=method,
            )
        except facebook.GraphAPIError as exc:
            raise self._graph_error(exc) from None
        except requests.RequestException as exc:
            raise self._transport_error(method, path, exc) from None
        except (ValueError, KeyError) as exc:  # undecodable body / no content-type
            raise self._garbled(method, path, exc) from None
        if not isinstance(result, dict):
            raise self._garbled(method, path, TypeError(type(result).__name__))
        if self.last_status is not None and self.last_status >= 400:
            # facebook-sdk only raises when the body has an ``error`` key
            raise classify_graph_error(result, http_status=self.last_status)
        return result

    # -- errors ---------------------------------------------------------------------
    def _graph_error(self, exc: Any) -> ChannelError:
        payload = getattr(exc, "result", None)
        code = as_int(error_body(payload).get("code"))
        retry_after = None
        if code in THROTTLE_CODES:
            retry_after = self._throttled(error_body(payload).get("message") or "throttled")
        return classify_graph_error(payload, http_status=self.last_status, retry_after=retry_after)

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException
    ) -> ChannelError:
        detail = f"{type(exc).__name__}: {redact(str(exc))[:300]}"
        raw = {"transport": type(exc).__name__, "method": method, "path": path}
        if method == "POST" and not _nothing_sent(exc):
            return OutcomeUnknownError(
                f"Meta: jawaban atas {method} /{path} hilang ({type(exc).__name__}); "
                "hasilnya diperiksa dulu sebelum mencoba lagi",
                raw={**raw, "outcome_unknown": True, "detail": detail},
            )
        return TransientChannelError(
            f"Meta tidak dapat dihubungi ({type(exc).__name__})",
            raw={**raw, "detail": detail},
            affects_account=True,
        )

    def _garbled(self, method: str, path: str, exc: Exception) -> ChannelError:
        raw = {"method": method, "path": path, "http_status": self.last_status,
               "detail": f"{type(exc).__name__}: {redact(str(exc))[:200]}"}
        if method == "POST":
            return OutcomeUnknownError(
                f"Meta: jawaban atas {method} /{path} tidak terbaca",
                raw={**raw, "outcome_unknown": True},
            )
        return TransientChannelError(f"Meta: jawaban atas GET /{path} tidak terbaca", raw=raw)

    # -- cool-down ------------------------------------------------------------------
    def cooling_for(self) -> float:
        """Seconds this account still has to wait (0 when it may call Meta)."""
        return max(0.0, self._cooling_until - self._clock())

    def _refuse_while_cooling(self) -> None:
        remaining = self.cooling_for()
        if remaining > 0:
            raise TransientChannelError(
                f"akun {self.account_key} sedang didinginkan: {self._cool_reason}",
                raw={"cooling_down": True, "reason": self._cool_reason},
                retry_after=remaining,
                affects_account=True,
            )

    def _cool_down(self, seconds: float, reason: str) -> None:
        """Stop this client and tell the engine, which stops every worker on the account."""
        until = self._clock() + seconds
        if until <= self._cooling_until:
            return  # never shorten a cool-down that is already longer
        self._cooling_until = until
        self._cool_reason = reason
        log.warning("meta: account %s cooling down %.0fs: %s", self.account_key, seconds, reason)
        self.hooks.cool_down(self.account_key, seconds, reason)

    def _throttled(self, message: str) -> float:
        regain = max((r.regain_seconds for r in self.last_usage), default=0.0)
        seconds = max(regain, self.throttle_cool_down)
        self._cool_down(seconds, f"Meta membatasi panggilan: {redact(str(message))}")
        return seconds

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """requests hook: remember the status and act on the usage headers of every answer."""
        self.last_status = response.status_code
        self.last_usage = parse_usage_headers(response.headers)
        if not self.last_usage:
            return
        worst = max(self.last_usage, key=lambda r: (r.regain_seconds, r.peak))
        regain = max(r.regain_seconds for r in self.last_usage)
        peak = max(r.peak for r in self.last_usage)
        if regain > 0:
            self._cool_down(regain, f"{worst.header}: akses pulih dalam {regain:.0f} detik")
        elif peak >= self.usage_threshold:
            self._cool_down(
                self.throttle_cool_down,
                f"{worst.header}: pemakaian {peak:.0f}% dari batas Meta",
            )

    def cool_down(self, seconds: float, reason: str) -> None:
        """Cool this account down for a reason the adapter found (e.g. publishing quota)."""
        self._cool_down(seconds, reason)


# --------------------------------------------------------------------------- accounts

AccountSource = Mapping[str, AccountCredentials] | Callable[[str], AccountCredentials | None]


class MetaAccounts:
    """The accounts an adapter may post as, and one lazily built client per account.

    ``accounts`` is a mapping ``key -> AccountCredentials`` or a callable that resolves a
    key (the engine decrypts tokens on demand).  An account the engine cannot resolve is
    an :class:`AuthChannelError`: it has to be (re)connected, and only its deliveries wait.
    """

    def __init__(
        self,
        channel: str,
        accounts: AccountSource,
        hooks: SocialHooks,
        **options: Unpack[GraphOptions],
    ) -> None:
        self.channel = channel
        self.hooks = hooks
        self._source = accounts
        self._config = GraphConfig(**options)
        self._clients: dict[str, MetaGraphClient] = {}

    def credentials(self, key: str) -> AccountCredentials:
        found = self._source.get(key) if isinstance(self._source, Mapping) else self._source(key)
        if found is None or not found.access_token or not found.external_id:
            raise AuthChannelError(
                f"akun {self.channel} {key!r} belum terhubung; hubungkan dengan "
                f"'umkm account connect {self.channel}'",
                raw={"account": key, "not_connected": True},
            )
        return found

    def client(self, key: str) -> MetaGraphClient:
        client = self._clients.get(key)
        if client is None:
            client = MetaGraphClient(self.credentials(key), self.hooks, self._config)
            self._clients[key] = client
        return client

    def key_for(self, account: str | None, external_id: str | None = None) -> str:
        """The account to read metrics with: given, found by provider id, or the only one."""
        if account:
            return account
        if isinstance(self._source, Mapping):
            if external_id:
                for key, creds in self._source.items():
                    if creds.external_id == external_id:
                        return key
            if len(self._source) == 1:
                return next(iter(self._source))
        raise ConfigurationError(
            "channel.bad_option",
            name=self.channel,
            detail="akun untuk membaca metrik tidak dapat ditentukan; sebutkan account=...",
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


# --------------------------------------------------------------------------- adapters


class MetaChannel(ChannelAdapter[PayloadT, dict[str, Any]]):
    """What the Facebook and Instagram adapters share: accounts, Graph clients, pacing.

    ``rate_per_second`` overrides the class's pace for this instance (``None`` =
    unpaced, for tests against a local fake); the Graph keywords go to every client.
    """

    option_names = (*GraphOptions.__annotations__, "rate_per_second")

    def __init__(
        self,
        accounts: AccountSource,
        hooks: SocialHooks,
        *,
        rate_per_second: float | None = 1.0,
        **graph: Unpack[GraphOptions],
    ) -> None:
        super().__init__()
        self.hooks = hooks
        self.accounts = MetaAccounts(self.name, accounts, hooks, **graph)
        if rate_per_second != type(self).capabilities.rate_per_second:
            self.capabilities = replace(type(self).capabilities, rate_per_second=rate_per_second)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     credentials: AccountCredentials | None = None,
                     hooks: SocialHooks | None = None) -> Self:
        """One connected account (the engine builds one adapter per account)."""
        accounts = {credentials.key: credentials} if credentials is not None else {}
        build: Any = cls
        return cast(Self, build(accounts, hooks or MemorySocialHooks(),
                                **pick(options, *cls.option_names)))

    def close(self) -> None:
        self.accounts.close()
        super().close()


# --------------------------------------------------------------------------- insights


def insight_values(payload: Mapping[str, Any]) -> dict[str, tuple[int, dict[str, Any]]]:
    """``/insights`` answer -> ``{metric name: (count, raw entry)}``.

    Entries carry ``values: [{"value": n}]`` (lifetime metrics) or ``total_value:
    {"value": n}``; a breakdown value (``{"like": 3, "love": 1}``) is summed.  Metrics
    without data are simply absent, as Meta returns no entry rather than 0.
    """
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for entry in payload.get("data") or []:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        value: Any = None
        total = entry.get("total_value")
        if isinstance(total, Mapping):
            value = total.get("value")
        values = entry.get("values")
        if value is None and isinstance(values, list) and values:
            last = values[-1]
            value = last.get("value") if isinstance(last, Mapping) else None
        count = _count(value)
        if count is not None:
            found[str(entry["name"])] = (count, dict(entry))
    return found


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, Mapping):
        parts = [_count(v) for v in value.values()]
        return sum(p for p in parts if p is not None)
    return None
