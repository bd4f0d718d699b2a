"""Fixtures of the delivery tests that run real ``celery worker`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine.config import Settings, get_settings, reset_settings
from engine.db import dispose_engines, session_factory
from engine.delivery.context import reset_process_state
from tests.conftest import _truncate_pg
from tests.smtp_server import ScriptedSMTPServer
from tests.worker_helpers import World, make_world

WorldFactory = Callable[..., World]


@pytest.fixture
def world(pg_database: str, clean_redis: str, smtp_server: ScriptedSMTPServer,
          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorldFactory]:
    """``world(redis_url=None, **ENV)``: an empty PostgreSQL, Redis and SMTP, wired."""
    _truncate_pg(pg_database)

    def build(redis_url: str | None = None, **env: str) -> World:
        return make_world(env, pg_database, redis_url or clean_redis, smtp_server,
                          tmp_path, monkeypatch)

    yield build
    reset_process_state()
    dispose_engines()
    reset_settings()


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Settings a test module adds to :func:`smtp_wired` (override it in the module)."""
    return {}


@pytest.fixture
def smtp_wired(settings: Settings, smtp_server: ScriptedSMTPServer, extra_env: dict[str, str],
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Session]]:
    """Settings wired to the loopback SMTP server (both backends) and a session."""
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    for name, value in extra_env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    reset_process_state()
    live = get_settings()
    session = session_factory(live)()
    try:
        yield live, session
    finally:
        session.close()
        reset_process_state()
