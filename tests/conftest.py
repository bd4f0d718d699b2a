"""Shared fixtures: isolated settings and a migrated database per test, on SQLite and on
the machine's real PostgreSQL.

With ``CI=true`` a missing service is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from engine.config import Settings, get_settings, reset_settings
from engine.db import dispose_engines, migrate, session_factory
from engine.models import Base

pytest_plugins = ["tests.smtp_server", "tests.services", "tests.web_helpers", "tests.fake_dns"]

TEST_SECRET = "test-secret-key-not-for-production-0123456789"
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist every worker writes its own ``--log-file`` (``pytest-gw0.log``
    ...): the workers would otherwise truncate and overwrite one shared file, and
    ``tests.check_logs`` must read every line the suite logged."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # xdist hands its workers COLUMNS=80; the CLI's module-level Rich consoles would
        # pin that width at import, where a plain run reads each CliRunner's COLUMNS.
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)
    log_file = config.getoption("log_file", None)
    if worker and log_file:
        path = Path(log_file)
        config.option.log_file = str(path.with_name(f"{path.stem}-{worker}{path.suffix}"))


def service_missing(what: str, why: object) -> None:
    """Skip locally, fail in CI: a missing service must never pass silently there."""
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _apply_env(monkeypatch: pytest.MonkeyPatch, var_dir: Path, database_url: str) -> Settings:
    monkeypatch.chdir(var_dir.parent)  # no stray .env from the repo is read
    for key in list(os.environ):
        if key in {"DATABASE_URL", "REDIS_URL", "SMTP_HOST", "SMTP_PORT", "UMKM_LANG",
                   "DKIM_KEY_PATH", "BASE_URL"}:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VAR_DIR", str(var_dir))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("LANG", "C.UTF-8")
    reset_settings()
    dispose_engines()
    return get_settings()


@pytest.fixture(autouse=True)
def _warmup_off(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The domain warm-up (engine.outbox.warmup) would hold back mail of tests that send
    more than day 1's quota; it is on only in tests marked ``warmup``. The env var reaches
    worker subprocesses, the patch settings built in code (``Settings(...)``)."""
    if request.node.get_closest_marker("warmup") is not None:
        return
    from engine.outbox import warmup

    monkeypatch.setenv("WARMUP_SCHEDULE", "off")
    monkeypatch.setattr(warmup, "schedule_of", lambda settings: None)


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """`--lang en` in one CLI test must not leak into the next test."""
    from engine.common.i18n import set_lang

    set_lang(None)
    yield
    set_lang(None)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for every test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    migrate(Settings(database_url=f"sqlite:///{path}"))
    dispose_engines()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A private PostgreSQL database for this test session, migrated once."""
    name = f"umkm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_missing("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate(Settings(database_url=url))
    dispose_engines()
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    eng = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_template: Path,
) -> Iterator[Settings]:
    """Settings for an empty, migrated database: each test runs on both backends."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    if request.param == "sqlite":
        db_path = var_dir / "umkm.db"
        shutil.copy(sqlite_template, db_path)
        url = f"sqlite:///{db_path}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate_pg(url)
    yield _apply_env(monkeypatch, var_dir, url)
    dispose_engines()
    reset_settings()


@pytest.fixture
def sqlite_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path
) -> Iterator[Settings]:
    """Settings for tests that only need the embedded default."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    db_path = var_dir / "umkm.db"
    shutil.copy(sqlite_template, db_path)
    yield _apply_env(monkeypatch, var_dir, f"sqlite:///{db_path}")
    dispose_engines()
    reset_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Session]:
    session = session_factory(settings)()
    yield session
    session.close()
