"""Schema migrations (alembic), run by `incident-bot db upgrade` and at start.

Migrations live in the package so that an installed bot can upgrade its own
database without an alembic.ini lying around.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.core.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    """The head revision (several heads, from parallel branches, are joined with "+")."""
    heads = sorted(ScriptDirectory.from_config(_config()).get_heads())
    return "+".join(heads) if heads else None


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        heads = sorted(MigrationContext.configure(conn).get_current_heads())
    return "+".join(heads) if heads else None


def _lock_schema(conn: Connection) -> None:
    """One migrator at a time: replicas starting together on an empty database queue here.

    PostgreSQL: a transaction-scoped advisory lock (released at commit), so the
    second replica reads the version table only after the first committed it.
    SQLite: the connection's ``BEGIN IMMEDIATE`` already holds the write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('incident-bot:migrations'))")


def upgrade(db: Database, revision: str = "heads") -> tuple[str | None, str | None]:
    """Bring the schema to ``revision``; returns (before, after)."""
    before = current_revision(db)
    cfg = _config()
    with db.engine.begin() as conn:
        _lock_schema(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(db)


def revision(db: Database, message: str) -> None:
    """Autogenerate a new revision against ``db`` (a developer tool)."""
    cfg = _config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
