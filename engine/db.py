"""Database engine and sessions: one code path for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Engine,
    String,
    all_,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql._typing import _ColumnExpressionArgument
from sqlalchemy.sql.elements import ColumnElement

from engine.config import Settings, get_settings

_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web process read while a worker writes; foreign keys are off by default.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def get_engine(settings: Settings | None = None) -> Engine:
    url = (settings or get_settings()).effective_database_url
    eng = _engines.get(url)
    if eng is None:
        eng = _engines[url] = make_engine(url)
    return eng


def dispose_engines() -> None:
    for eng in _engines.values():
        eng.dispose()
    _engines.clear()


def is_postgres(session_or_engine: Session | Engine | Connection) -> bool:
    if isinstance(session_or_engine, Session):
        bind: Engine | Connection = session_or_engine.get_bind()
    else:
        bind = session_or_engine
    return bind.dialect.name == "postgresql"


def in_list(bind: Session | Engine | Connection, column: _ColumnExpressionArgument[Any],
            values: Iterable[Any], *, text: bool = False, negate: bool = False,
            ) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``.

    Why: an ``IN`` list of a batch's 250 ids is expanded into 250 parameters at every
    execution, a new statement text each time for psycopg (too long for its cache) and
    for the server (parsed and planned again); one array parameter keeps the text
    constant, so it is prepared once.  ``text``: the values are strings (else bigints);
    ``negate``: ``NOT IN`` (``<> ALL``).
    """
    items = list(values)
    column = coercions.expect(roles.ExpressionElementRole, column)
    if not is_postgres(bind):
        return column.not_in(items) if negate else column.in_(items)
    array = bindparam(None, items, type_=ARRAY(String() if text else BigInteger()))
    return column != all_(array) if negate else column == any_(array)


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(settings), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = session_factory(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(settings: Settings | None = None) -> None:
    """Bring the schema to the newest Alembic revision (same migrations on both backends)."""
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    cfg = Config()
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (settings or get_settings()).effective_database_url)
    cfg.attributes["engine"] = get_engine(settings)
    command.upgrade(cfg, "head")
