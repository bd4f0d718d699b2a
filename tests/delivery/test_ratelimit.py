"""Shared rate limits: one bucket per account across PROCESSES (Redis) and threads
(embedded); cool-downs stop everybody; a configured but dead Redis is an error."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from engine.config import Settings
from engine.outbox.ratelimit import (
    LocalRateLimiter,
    RateLimiter,
    RateLimiterUnavailable,
    RateLimitTimeout,
    RedisRateLimiter,
    bucket_key,
    get_rate_limiter,
    reset_rate_limiters,
)
from tests.services import RedisServer, free_port

RATE, BURST = 50.0, 10
FORK = multiprocessing.get_context("fork")


def _key() -> str:
    return bucket_key("email", f"smtp-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["embedded", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "embedded":
        yield LocalRateLimiter()
        return
    redis_limiter = RedisRateLimiter(request.getfixturevalue("redis_url"))
    yield redis_limiter
    redis_limiter.close()


# ----------------------------------------------------------- same API, both backends


def test_burst_is_granted_then_the_rate_applies(limiter: RateLimiter) -> None:
    key = _key()
    assert [limiter.acquire(key, rate=RATE, burst=BURST) for _ in range(BURST)] == [0.0] * BURST
    delay = limiter.acquire(key, rate=RATE, burst=BURST)
    assert 0.0 < delay <= 1 / RATE + 0.001
    assert limiter.acquire(bucket_key("email", "other"), rate=RATE, burst=BURST) == 0.0
    time.sleep(delay + 0.01)
    assert limiter.acquire(key, rate=RATE, burst=BURST) == 0.0


def test_refused_request_takes_nothing(limiter: RateLimiter) -> None:
    key = _key()
    assert limiter.acquire(key, 3, rate=1.0, burst=3) == 0.0
    assert limiter.acquire(key, 3, rate=1.0, burst=3) > 2.0  # refused...
    assert limiter.acquire(key, 3, rate=1.0, burst=3) > 2.0  # ...and no debt piled up
    with pytest.raises(ValueError):
        limiter.acquire(key, 4, rate=1.0, burst=3)  # could never be granted


def test_cool_down_blocks_and_is_never_shortened(limiter: RateLimiter) -> None:
    key = _key()
    assert limiter.cooling(key) == 0.0 and limiter.cooling_reason(key) is None
    limiter.cool_down(key, 30, "Meta: terlalu banyak panggilan")
    assert limiter.cool_down(key, 5, "shorter") == pytest.approx(30, abs=0.5)
    assert 29 < limiter.cooling(key) <= 30
    assert limiter.cooling_reason(key) == "Meta: terlalu banyak panggilan"
    assert limiter.acquire(key, rate=RATE, burst=BURST) > 29  # no call at all
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout) as info:
        limiter.wait(key, rate=RATE, burst=BURST, max_wait=2)
    assert time.monotonic() - started < 0.5  # fails fast, does not sleep for nothing
    assert info.value.retry_after > 29
    limiter.clear_cool_down(key)
    assert limiter.acquire(key, rate=RATE, burst=BURST) == 0.0


# ------------------------------------------------------------ shared between workers


def _drain(url: str, key: str, barrier: Any, seconds: float, out: Any) -> None:
    """One 'worker' process: take tokens as fast as the shared bucket allows."""
    limiter = RedisRateLimiter(url)
    barrier.wait()
    deadline = time.monotonic() + seconds
    granted = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            limiter.wait(key, rate=RATE, burst=BURST, max_wait=left)
        except RateLimitTimeout:
            break
        granted += 1
    out.put(granted)


def test_two_processes_share_one_bucket(redis_url: str) -> None:
    key, seconds = _key(), 2.0
    barrier, out = FORK.Barrier(2), FORK.Queue()
    procs = [FORK.Process(target=_drain, args=(redis_url, key, barrier, seconds, out))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    counts = [out.get(timeout=20) for _ in procs]
    for proc in procs:
        proc.join(5)
    total = sum(counts)
    # Alone, each would get BURST + RATE * seconds = 110; together they share those 110.
    assert RATE * seconds - BURST <= total <= RATE * seconds + BURST + 5, counts
    assert min(counts) > 10, counts  # both really competed for the same bucket


def _wait_through_cool_down(url: str, key: str, out: Any) -> None:
    limiter = RedisRateLimiter(url)
    out.put(("cooling", limiter.cooling(key), limiter.cooling_reason(key)))
    limiter.wait(key, rate=RATE, burst=BURST, max_wait=5)
    out.put(("granted", time.monotonic(), None))


def test_cool_down_blocks_every_process_until_it_expires(redis_url: str) -> None:
    key, out = _key(), FORK.Queue()
    started = time.monotonic()
    RedisRateLimiter(redis_url).cool_down(key, 1.0, "page throttled")
    procs = [FORK.Process(target=_wait_through_cool_down, args=(redis_url, key, out))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    events = [out.get(timeout=20) for _ in range(4)]
    for proc in procs:
        proc.join(5)
    seen = [(left, reason) for kind, left, reason in events if kind == "cooling"]
    granted = [at - started for kind, at, _ in events if kind == "granted"]
    assert len(seen) == 2 and all(0 < left <= 1.0 and reason == "page throttled"
                                  for left, reason in seen)
    assert len(granted) == 2
    assert all(0.98 <= g < 1.6 for g in granted), granted


# ------------------------------------------------------------------- embedded mode


def test_embedded_limiter_is_shared_by_threads() -> None:
    limiter, key, seconds = LocalRateLimiter(), _key(), 1.0
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        deadline, granted = time.monotonic() + seconds, 0
        while (left := deadline - time.monotonic()) > 0:
            try:
                limiter.wait(key, rate=RATE, burst=BURST, max_wait=left)
            except RateLimitTimeout:
                break
            granted += 1
        counts.append(granted)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert RATE * seconds - BURST <= sum(counts) <= RATE * seconds + BURST + 3, counts


def test_embedded_cool_down_blocks_all_threads() -> None:
    limiter, key = LocalRateLimiter(), _key()
    started = time.monotonic()
    limiter.cool_down(key, 0.5, "throttled")
    granted: list[float] = []

    def worker() -> None:
        limiter.wait(key, rate=RATE, burst=BURST, max_wait=5)
        granted.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(granted) == 3 and all(0.5 <= g < 1.0 for g in granted), granted


def test_factory_picks_backend_and_shares_one_instance(redis_url: str) -> None:
    reset_rate_limiters()
    try:
        embedded = get_rate_limiter(Settings())
        assert isinstance(embedded, LocalRateLimiter)
        assert get_rate_limiter(Settings()) is embedded  # one bucket set per process
        assert isinstance(get_rate_limiter(Settings(redis_url=redis_url)), RedisRateLimiter)
    finally:
        reset_rate_limiters()


# ---------------------------------------------------------------- Redis unavailable


def test_redis_down_is_a_clear_error_and_recovers(private_redis: RedisServer) -> None:
    limiter, key = RedisRateLimiter(private_redis.url), _key()
    assert limiter.acquire(key, rate=RATE, burst=BURST) == 0.0

    private_redis.stop()
    started = time.monotonic()
    with pytest.raises(RateLimiterUnavailable, match=f"127.0.0.1:{private_redis.port}"):
        limiter.acquire(key, rate=RATE, burst=BURST)
    with pytest.raises(RateLimiterUnavailable):
        limiter.wait(key, rate=RATE, burst=BURST, max_wait=1)  # never "no limit"
    with pytest.raises(RateLimiterUnavailable):
        limiter.cool_down(key, 10, "x")
    assert time.monotonic() - started < 5  # reported promptly, not after long retries

    private_redis.start()  # empty script cache: the Lua script is loaded again by itself
    assert limiter.acquire(key, rate=RATE, burst=BURST) == 0.0
    limiter.close()


def test_error_never_shows_the_redis_password() -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(RateLimiterUnavailable) as info:
        RedisRateLimiter(url).acquire(_key(), rate=RATE, burst=BURST)
    assert "s3cret-pw" not in str(info.value)
    assert "***" in str(info.value)
