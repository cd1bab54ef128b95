"""Alembic environment: runs against the connection handed over by bot.core.store.migrate."""

from __future__ import annotations

from alembic import context

from bot.core.store import models  # noqa: F401  (registers every table on the metadata)
from bot.core.store.models import ALL_TABLES

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    raise RuntimeError("run migrations through `incident-bot db upgrade`")

context.configure(
    connection=connection,
    target_metadata=ALL_TABLES,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
