"""Rate limits shared by every worker (DESIGN §3, §6): token buckets and cool-downs.

Why shared: a provider limit (an SMTP relay's messages per second, a Meta page's calls
per hour) belongs to the *account*, not to one worker process. With ten workers each
keeping its own bucket the account would see ten times the allowed rate.

- Production (``REDIS_URL`` set): one bucket per (channel, account) lives in Redis and is
  updated by ONE Lua script, so "refill, check, take" is atomic across all processes and
  machines, and the clock is the Redis server's (``TIME``), not each worker's.
- Embedded (no Redis): the same API on an in-process, thread-safe bucket; the embedded
  mode runs web, worker and beat in one process, so in-process *is* shared.

A cool-down (``cool_down``) stops all calls for one key until it expires, e.g. a Meta page
that answered "too many calls": no worker may touch it again before the provider's window
has passed. ``acquire`` honours it, so every caller respects it without extra code.

If Redis is configured but unreachable, every call raises :class:`RateLimiterUnavailable`:
limits are never silently switched off.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from engine.common.i18n import t
from engine.config import Settings, get_settings

T = TypeVar("T")

KEY_PREFIX = "umkm:rl:"
COOL_PREFIX = "umkm:cool:"
MIN_STEP = 0.005  # seconds; never poll faster than this (no hot spinning)
MAX_STEP = 0.25  # seconds; re-check at least this often (tokens freed, cool-down cleared)


# KEYS[1] bucket hash {tokens, ts}; KEYS[2] cool-down string (its TTL is the cool-down).
# ARGV[1] rate (tokens/s), ARGV[2] burst, ARGV[3] tokens wanted.
# Returns the seconds to wait as a string ("0" = granted); Lua numbers would be truncated
# to integers in a Redis reply. A refused request takes nothing, so a caller that gives
# up does not starve the others.
BUCKET_LUA = """
local cool = redis.call('PTTL', KEYS[2])
if cool > 0 then return string.format('%.6f', cool / 1000) end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) else now = ts end
if tokens >= want then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens - want),
             'ts', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
  return '0'
end
return string.format('%.6f', (want - tokens) / rate)
"""

# KEYS[1] cool-down key; ARGV[1] milliseconds; ARGV[2] reason. Never shortens a longer
# cool-down already in place (two workers reporting throttling must not shorten it).
COOL_LUA = """
local left = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[1])
if left >= want then return left end
redis.call('SET', KEYS[1], ARGV[2], 'PX', want)
return want
"""


class RateLimiterUnavailable(RuntimeError):
    """Redis is configured for the shared limits but cannot be reached."""


class RateLimitTimeout(Exception):
    """``wait`` could not get tokens within ``max_wait``; ``retry_after`` says when to retry.

    Callers put the work back in the database with ``next_attempt_at`` instead of blocking
    a worker for minutes (DESIGN §6: long waits live in the database).
    """

    def __init__(self, key: str, retry_after: float, max_wait: float) -> None:
        super().__init__(t("ratelimit.timeout", name=key, seconds=retry_after, max_wait=max_wait))
        self.key = key
        self.retry_after = retry_after


def bucket_key(channel: str, account: str) -> str:
    """The limiter key of one provider account, e.g. ``email:smtp-main``."""
    return f"{channel}:{account}"


def _check_request(tokens: int, rate: float, burst: int) -> None:
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if burst < 1:
        raise ValueError(f"burst must be >= 1, got {burst}")
    if not 1 <= tokens <= burst:
        raise ValueError(f"tokens must be between 1 and burst ({burst}), got {tokens}")


class RateLimiter(ABC):
    """Token buckets and cool-downs keyed by (channel, account); see the module docstring."""

    @abstractmethod
    def acquire(self, key: str, tokens: int = 1, *, rate: float, burst: int) -> float:
        """Take ``tokens`` now if the bucket (``rate`` per second, at most ``burst`` saved)
        allows it and the key is not cooling down; return 0.0 when granted, otherwise the
        seconds to wait before asking again (nothing is taken then)."""

    @abstractmethod
    def cool_down(self, key: str, seconds: float, reason: str = "") -> float:
        """Block every call for ``key`` for ``seconds`` (never shortens a longer one);
        return the cool-down now in force, in seconds."""

    @abstractmethod
    def cooling(self, key: str) -> float:
        """Seconds left of the cool-down of ``key`` (0.0 when none)."""

    @abstractmethod
    def cooling_reason(self, key: str) -> str | None:
        """Why ``key`` is cooling down (None when it is not), for logs and the dashboard."""

    @abstractmethod
    def clear_cool_down(self, key: str) -> None:
        """End a cool-down early (an operator knows the provider recovered)."""

    def wait(self, key: str, tokens: int = 1, *, rate: float, burst: int,
             max_wait: float) -> float:
        """Block until granted; return the seconds waited.

        Sleeps in small steps (between ``MIN_STEP`` and ``MAX_STEP``, with jitter so
        competing workers do not wake in lockstep) and asks again, because another process
        may take the freed tokens first. Raises :class:`RateLimitTimeout` at once when the
        wait would exceed ``max_wait``, rather than sleeping for nothing.
        """
        _check_request(tokens, rate, burst)
        start = time.monotonic()
        while True:
            delay = self.acquire(key, tokens, rate=rate, burst=burst)
            waited = time.monotonic() - start
            if delay <= 0:
                return waited
            if waited + delay > max_wait:
                raise RateLimitTimeout(key, delay, max_wait)
            step = min(MAX_STEP, max(MIN_STEP, delay))
            time.sleep(step * random.uniform(1.0, 1.1))


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class LocalRateLimiter(RateLimiter):
    """In-process limiter for the embedded mode: one lock, monotonic clock.

    ``clock`` is injectable so the bucket arithmetic can be checked without sleeping.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._cool: dict[str, tuple[float, str]] = {}

    def _cool_left(self, key: str, now: float) -> float:
        until, _ = self._cool.get(key, (0.0, ""))
        if until <= now:
            self._cool.pop(key, None)
            return 0.0
        return until - now

    def acquire(self, key: str, tokens: int = 1, *, rate: float, burst: int) -> float:
        _check_request(tokens, rate, burst)
        with self._lock:
            now = self._clock()
            cool = self._cool_left(key, now)
            if cool > 0:
                return cool
            bucket = self._buckets.setdefault(key, _Bucket(float(burst), now))
            if now > bucket.stamp:
                bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
                bucket.stamp = now
            if bucket.tokens >= tokens:
                bucket.tokens -= tokens
                return 0.0
            return (tokens - bucket.tokens) / rate

    def cool_down(self, key: str, seconds: float, reason: str = "") -> float:
        with self._lock:
            now = self._clock()
            left = self._cool_left(key, now)
            if left >= seconds:
                return left
            self._cool[key] = (now + seconds, reason)
            return seconds

    def cooling(self, key: str) -> float:
        with self._lock:
            return self._cool_left(key, self._clock())

    def cooling_reason(self, key: str) -> str | None:
        with self._lock:
            if self._cool_left(key, self._clock()) <= 0:
                return None
            return self._cool[key][1]

    def clear_cool_down(self, key: str) -> None:
        with self._lock:
            self._cool.pop(key, None)


def redact_url(url: str) -> str:
    """The URL without its password, safe for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class RedisRateLimiter(RateLimiter):
    """Limiter shared by all workers through Redis (hash-tagged keys, so both keys of one
    account sit in the same Redis Cluster slot as the Lua script requires)."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0) -> None:
        self._url = url
        # A short retry rides out a blip (Redis restarting); a server that stays down is
        # reported within about a second instead of redis-py's multi-second default.
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
            decode_responses=True,
        )
        # Registered once: redis-py sends EVALSHA and reloads the script by itself when
        # the server lost its script cache (restart), so callers never see NOSCRIPT.
        self._bucket = self._client.register_script(BUCKET_LUA)
        self._cool_script = self._client.register_script(COOL_LUA)

    @staticmethod
    def _keys(key: str) -> tuple[str, str]:
        return f"{KEY_PREFIX}{{{key}}}", f"{COOL_PREFIX}{{{key}}}"

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RateLimiterUnavailable(
                t("ratelimit.unavailable", url=redact_url(self._url), error=exc)) from exc

    def acquire(self, key: str, tokens: int = 1, *, rate: float, burst: int) -> float:
        _check_request(tokens, rate, burst)
        reply: Any = self._call(
            lambda: self._bucket(keys=list(self._keys(key)), args=[rate, burst, tokens]))
        return float(reply)

    def cool_down(self, key: str, seconds: float, reason: str = "") -> float:
        millis = max(1, round(seconds * 1000))
        _, cool_key = self._keys(key)
        reply: Any = self._call(
            lambda: self._cool_script(keys=[cool_key], args=[millis, reason]))
        return int(reply) / 1000

    def cooling(self, key: str) -> float:
        _, cool_key = self._keys(key)
        left: Any = self._call(lambda: self._client.pttl(cool_key))
        return max(0, int(left)) / 1000

    def cooling_reason(self, key: str) -> str | None:
        _, cool_key = self._keys(key)
        reason: Any = self._call(lambda: self._client.get(cool_key))
        return None if reason is None else str(reason)

    def clear_cool_down(self, key: str) -> None:
        _, cool_key = self._keys(key)
        self._call(lambda: self._client.delete(cool_key))

    def close(self) -> None:
        self._client.close()


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def get_rate_limiter(settings: Settings | None = None) -> RateLimiter:
    """The process-wide limiter for these settings: Redis-backed when ``redis_url`` is
    set, else the in-process one. Cached, because an embedded limiter is only shared if
    every caller in the process gets the same instance."""
    settings = settings or get_settings()
    with _limiters_lock:
        limiter = _limiters.get(settings.redis_url)
        if limiter is None:
            limiter = (RedisRateLimiter(settings.redis_url) if settings.redis_url
                       else LocalRateLimiter())
            _limiters[settings.redis_url] = limiter
        return limiter


def reset_rate_limiters() -> None:
    """Forget cached limiters (tests, or after the settings changed)."""
    with _limiters_lock:
        for limiter in _limiters.values():
            if isinstance(limiter, RedisRateLimiter):
                limiter.close()
        _limiters.clear()
