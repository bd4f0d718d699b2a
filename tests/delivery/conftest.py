"""Fixtures of the delivery tests that run real ``celery worker`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.config import reset_settings
from engine.db import dispose_engines
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
