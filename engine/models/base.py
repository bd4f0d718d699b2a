"""The declarative base every table module shares (DESIGN §4).

Why a module of its own: the tables live in :mod:`engine.models` and, for newer concerns,
in submodules beside it; all of them import the base from here, so no submodule has to
import the package that imports it.

Conventions: money is whole Rupiah (``int``); times are timezone-aware UTC; JSON
columns hold provider payloads and free-form attributes; personal data (NIK, tokens)
is encrypted before it reaches a column (see :mod:`engine.common.crypto`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Integer,
    MetaData,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids on PostgreSQL, plain INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """``value`` as UTC-aware: SQLite hands back naive datetimes, and every time stored is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # SQLite drops the zone: values read back naive are UTC.
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class StrEnum(enum.StrEnum):
    """Enum members that compare and serialise as their plain string value."""


def enum_type(cls: type[enum.Enum]) -> Enum:
    # native_enum=False: a CHECK-free VARCHAR, so adding a value needs no type migration.
    return Enum(cls, native_enum=False, length=32, validate_strings=True,
                values_callable=lambda e: [m.value for m in e])
