"""Column types every table shares: aware UTC timestamps on SQLite as on PostgreSQL, JSON blobs;
and the Core table behind a table class, for the bulk statements.

Migrations refer to ``bot.core.store.models.UTCDateTime``, so the type keeps that name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Table
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.core.clock import utc


class UTCDateTime(TypeDecorator):
    """Aware UTC in, aware UTC out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else utc(value)


def table_of(model: type[SQLModel]) -> Table:
    """The Core ``Table`` of a table class: bulk inserts and upserts take it, not a row at a time."""
    return model.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table classes without declaring it


def ts_column(nullable: bool = True, index: bool = False) -> Any:
    """A ``UTCDateTime`` column (NULL unless a fact has happened: stage timestamps are facts)."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def json_column() -> Any:
    """A JSON column for free-form evidence and parameters, so a new capability adds no table."""
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
