"""Engine and transactions for SQLite (default) and PostgreSQL (several replicas).

SQLite is shared by threads (HTTP handlers, workers) and sometimes processes
(a console beside ``serve``), so it runs in WAL mode with a busy timeout and
every writing transaction starts with ``BEGIN IMMEDIATE``: a read-modify-write
on an incident can then never interleave with another writer.  Reads
(``Database.reading``) begin a plain deferred transaction instead: in WAL mode
they read a snapshot beside the writer and never queue behind it, so
``GET /api/incidents`` or ``/incident status`` answer while the watcher or a
storm writes.  On PostgreSQL the domain takes row locks (``SELECT ... FOR
UPDATE``) where it needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from bot.core.errors import ConfigError

READ_ONLY = "incident_bot_read_only"  # execution option: a transaction that only reads


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the engine for ``url`` with the pragmas this bot relies on."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except Exception as exc:  # sqlalchemy raises several types for a bad URL
        raise ConfigError(f"INCIDENT_BOT_DATABASE_URL: cannot use {redact_url(url)!r}: {exc}") from exc
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def redact_url(url: str) -> str:
    """A database URL with its password replaced, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


class Database:
    """The store handle the rest of the bot receives."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._read_engine = self.engine.execution_options(**{READ_ONLY: True})
        # SQLite has one writer; threads of this process queue here (woken the moment the writer
        # commits) instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms
        self._writer = threading.RLock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception."""
        with self._writer or nullcontext(), Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction: never takes SQLite's write lock, never commits.

        Only for reads: closing the session ends the transaction without a
        commit (what is written inside is discarded) and leaves the rows read
        usable.  On SQLite a deferred transaction that starts writing may fail
        with "database is locked" instead of waiting, another reason not to.
        """
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    def check(self) -> None:
        """Fail fast with a clear sentence when the database is unreachable."""
        try:
            with self._read_engine.connect() as conn:  # a read: /readyz never waits for the writer
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise ConfigError(
                f"INCIDENT_BOT_DATABASE_URL: cannot connect to {redact_url(self.url)}: {exc.orig}"
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def insert_once(session: Session, row: Any) -> bool:
    """Insert ``row`` unless a unique constraint says it exists; False then.

    The insert runs in a savepoint so that losing a race with another replica
    (or a retried delivery) leaves the caller's transaction usable.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True
