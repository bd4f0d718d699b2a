"""Portable SQL pieces the report sources share (PostgreSQL in production, SQLite in
tests and the embedded default).

Why custom constructs: grouping by WITA month and comparing ``click + N days`` with a
stored timestamp are written differently on the two backends; compiling them per dialect
keeps every source a single query on both.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import DateTime, String

from engine.reporting.periods import Period


class month_key(FunctionElement[str]):
    """``'YYYY-MM'`` of a UTC timestamp in a fixed-offset zone (WITA has no DST)."""

    type = String()
    inherit_cache = True

    def __init__(self, column: ColumnElement[datetime], tz: str) -> None:
        self.tz = tz
        super().__init__(column)


@compiles(month_key, "postgresql")
def _month_key_pg(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    zone = element.tz.replace("'", "")
    return f"to_char(timezone('{zone}', {compiler.process(column, **kw)}), 'YYYY-MM')"


@compiles(month_key)
def _month_key_sqlite(element: month_key, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    offset = datetime(2000, 1, 1, tzinfo=ZoneInfo(element.tz)).utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    return f"strftime('%Y-%m', {compiler.process(column, **kw)}, '{minutes:+d} minutes')"


class add_days(FunctionElement[datetime]):
    """``timestamp + N days`` that compares exactly with stored timestamps on both backends."""

    type = DateTime(timezone=True)
    inherit_cache = True

    def __init__(self, column: ColumnElement[datetime], days: int) -> None:
        self.days = int(days)
        super().__init__(column)


@compiles(add_days, "postgresql")
def _add_days_pg(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"({compiler.process(column, **kw)} + interval '{element.days} days')"


@compiles(add_days)
def _add_days_sqlite(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'; datetime() drops the fraction, so
    # it is re-attached to keep the string comparison exact at the window boundary.
    (column,) = element.clauses
    col = compiler.process(column, **kw)
    return f"(datetime({col}, '+{element.days} days') || substr({col}, 20))"


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 when ``condition`` holds, else 0: facts are summed, never filtered, per metric."""
    return case((condition, 1), else_=0)


def human(event: Any) -> ColumnElement[bool]:
    """Events not flagged as bots (mail scanners open and click every link)."""
    return event.suspected_bot.is_not(True)  # type: ignore[no-any-return]


def in_period(column: Any, period: Period) -> ColumnElement[bool]:
    """``start <= column < end``: the period's end is exclusive, so months never overlap."""
    return and_(column >= period.start, column < period.end)
